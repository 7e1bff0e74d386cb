"""What the scheduling tools accept: role first, then moments, windows and ids read from a request.

Bad input is refused (400 INVALID_REQUEST, naming the field) before anything is locked or written.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common import parsing
from dispatch.common.actors import Actor
from dispatch.common.errors import invalid_request
from dispatch.tickets.commands import Command
from dispatch.tickets.policy import role_refusal

MOMENT_YEARS = (2000, 2100)


def role_check(command: Command, actor: Actor) -> None:
    """Refuse a role that may not use the tool before its input is read: such a caller learns
    nothing about the input rules (the executor asks the same question again)."""
    refusal = role_refusal(command, actor.role)
    if refusal:
        raise refusal


def moment_parse(value: Any, field: str) -> datetime:
    """An aware datetime from an ISO-8601 string with a timezone (or a datetime)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise invalid_request(
                f"{field} must be an ISO-8601 date-time, e.g. 2026-03-02T09:00:00-08:00.", field=field
            )
    else:
        raise invalid_request(f"{field} is required (an ISO-8601 date-time).", field=field)
    if timezone.is_naive(moment):
        raise invalid_request(f"{field} needs a timezone offset (Z or ±hh:mm).", field=field)
    # Far-off years are typos or probes; the edges of the calendar would also overflow in UTC.
    if not MOMENT_YEARS[0] <= moment.year <= MOMENT_YEARS[1]:
        raise invalid_request(
            f"{field} must fall between the years {MOMENT_YEARS[0]} and {MOMENT_YEARS[1]}.", field=field
        )
    return moment


def window_parse(start: Any, end: Any, field: str, *, max_length: timedelta | None = None) -> tuple[datetime, datetime]:
    """(start, end) of a window that ends after it starts and, with `max_length`, is no longer than that."""
    prefix = f"{field}." if field else ""
    start_at, end_at = moment_parse(start, f"{prefix}start"), moment_parse(end, f"{prefix}end")
    if end_at <= start_at:
        raise invalid_request(f"{prefix}end must be after {prefix}start.", field=f"{prefix}end")
    if max_length is not None and end_at - start_at > max_length:
        hours = int(max_length.total_seconds() // 3600)
        raise invalid_request(f"{field or 'The window'} is longer than {hours} hours.", field=field or "end")
    return start_at, end_at


def window_object_parse(value: Any, field: str) -> tuple[datetime, datetime]:
    """A window given as an object {"start", "end"}."""
    if not isinstance(value, dict):
        raise invalid_request(f"{field} must be an object with start and end.", field=field)
    return window_parse(value.get("start"), value.get("end"), field)


def uuid_parse(value: Any, field: str, *, required: bool = True) -> uuid.UUID | None:
    """A UUID, or None for an optional one left out."""
    if value is None or value == "":
        if required:
            raise invalid_request(f"{field} is required (a UUID).", field=field)
        return None
    return parsing.uuid_parse(value, field=field)


def bounded_int(value: Any, field: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_request(f"{field} must be an integer from {low} to {high}.", field=field)
    return value


def number_parse(value: Any, field: str, low: float, high: float) -> float:
    """A finite number from low to high (a JSON number or its text), else a 400 naming the field."""
    if isinstance(value, bool):
        raise invalid_request(f"{field} must be a number.", field=field)
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        raise invalid_request(f"{field} must be a number.", field=field) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise invalid_request(f"{field} must be between {low:g} and {high:g}.", field=field)
    return number


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, keeping microseconds when there are any (snapshots restore exactly)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_parse(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def window_json(start: datetime | None, end: datetime | None) -> dict[str, str | None]:
    return {"start": iso(start), "end": iso(end)}
