"""Reading the autonomy ladder (models.AutonomyLevel) and the pauses that override it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from dispatch.closeout.selectors import autonomy_pause_effective
from dispatch.tickets.models import Ticket

from .models import AutonomyLevel


def default_level() -> int:
    """The level where no row of the ladder applies (DISPATCH_AUTOPILOT_DEFAULT_LEVEL)."""
    return max(0, min(3, int(getattr(settings, "DISPATCH_AUTOPILOT_DEFAULT_LEVEL", 1))))


@dataclass(frozen=True)
class Ladder:
    """The ladder as it stands, read once per pass (one query)."""

    rows: dict[tuple[str, str], int]

    @classmethod
    def read(cls) -> Ladder:
        return cls({(r.incident_type.upper(), r.priority): r.level for r in AutonomyLevel.objects.all()})

    def level(self, incident_type: str, priority: str) -> int:
        """The most specific rung: type and priority, type, priority, the default row, the setting."""
        kind = (incident_type or "").strip().upper()
        for key in ((kind, priority), (kind, ""), ("", priority), ("", "")):
            if key in self.rows and (key[0] == "" or kind):
                return self.rows[key]
        return default_level()


def paused(ticket: Ticket) -> str | None:
    """Why the autopilot may not act on this ticket now (a pause's scope), or None."""
    pause = autonomy_pause_effective(ticket)
    if pause is None:
        return None
    return f"autonomy paused ({pause.scope_type.lower()})"
