"""django-q2 entry points of the scheduling wake-ups; each parses its argument and calls one service.

The schedule "scheduling wake-ups" (migration 0003) runs `wakeups_run` every minute. `now` is
an ISO-8601 string so a test or an operator can run a wake-up as of a given moment.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import wakeups


def _moment(now: str | datetime | None) -> datetime | None:
    if now is None or isinstance(now, datetime):
        return now
    moment = parse_datetime(now)
    if moment is None:
        raise ValueError(f"now must be an ISO-8601 date-time, not {now!r}.")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def wakeups_run(now: str | datetime | None = None) -> dict[str, int]:
    """Every minute: resolve cleared escalations, then hold stale proposals, escalate, flag SLA risks, remind."""
    return wakeups.wakeups_run(now=_moment(now))


def proposals_stale_hold(now: str | datetime | None = None) -> int:
    """Hold unanswered proposals, remind each customer once, escalate."""
    return wakeups.proposals_stale_hold(now=_moment(now))


def dispatches_unacknowledged_escalate(now: str | datetime | None = None) -> int:
    """Escalate dispatches the technician has not acknowledged in time."""
    return wakeups.dispatches_unacknowledged_escalate(now=_moment(now))


def sla_risks_flag(now: str | datetime | None = None) -> int:
    """Flag tickets that will miss their SLA due time."""
    return wakeups.sla_risks_flag(now=_moment(now))


def appointment_reminders_send(now: str | datetime | None = None) -> int:
    """Send the day-before reminders."""
    return wakeups.appointment_reminders_send(now=_moment(now))
