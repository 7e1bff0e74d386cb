"""What one phase knows that another needs, handed over without the phases importing each other.

Layers run `common` <- `tickets` <- phases: intake, scheduling and closeout never import one
another. Where one needs a fact another keeps (scheduling needs an incident's typical duration
from closeout's templates and the customer's time preference from intake's extracted facts;
intake needs the templates' keywords), the keeping app registers a reader here when Django
starts (its AppConfig.ready) and the other asks through this module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

_readers: dict[str, Callable[..., Any]] = {}


def reader_register(name: str, reader: Callable[..., Any]) -> None:
    """Called by the owning app's ready(): `name` is one of the readers below."""
    _readers[name] = reader


def _reader(name: str) -> Callable[..., Any]:
    try:
        return _readers[name]
    except KeyError:
        raise LookupError(f"No app has registered the {name!r} reader: is its app installed?") from None


def incident_duration_minutes(incident_type: str) -> int | None:
    """The incident template's typical job length in minutes, or None when there is no template."""
    return _reader("incident_duration_minutes")(incident_type)


def incident_keywords() -> dict[str, list[str]]:
    """Keywords per incident type, as the templates say now (an admin edit counts at once)."""
    return _reader("incident_keywords")()


def ticket_time_preference(ticket_id: Any) -> tuple[Any, datetime | None] | None:
    """The customer's latest stated time preference for a ticket and when it was stated, or None."""
    return _reader("ticket_time_preference")(ticket_id)


def incident_type_names() -> dict[str, str]:
    """Each incident type that has a template, with the template's name (for pickers)."""
    return _reader("incident_type_names")()
