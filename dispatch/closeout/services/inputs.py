"""Checks of a request's fields, shared by the closeout services: bad input is refused with 400
INVALID_REQUEST before anything is locked or written."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError


def invalid(message: str, field: str, **details) -> DispatchError:
    return DispatchError(
        "INVALID_REQUEST", message, status=400, dimension="request", details={"field": field, **details}
    )


def text(value, field: str, *, required: bool = False, max_length: int = 4000) -> str:
    """A trimmed string; None and "" are "not given" unless required."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise invalid(f"Field '{field}' is required.", field)
        return ""
    if not isinstance(value, str):
        raise invalid(f"Field '{field}' must be a string.", field)
    value = value.strip()
    if len(value) > max_length:
        raise invalid(f"Field '{field}' is longer than {max_length} characters.", field)
    return value


def string_list(value, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item.strip() for item in value):
        raise invalid(f"Field '{field}' must be a list of non-empty strings.", field)
    return [item.strip() for item in value]


def moment(value, field: str, *, required: bool) -> datetime | None:
    if value is None or value == "":
        if required:
            raise invalid(f"Field '{field}' is required.", field)
        return None
    parsed = value if isinstance(value, datetime) else (parse_datetime(value) if isinstance(value, str) else None)
    if parsed is None:
        raise invalid(f"Field '{field}' must be an ISO-8601 date-time.", field)
    if timezone.is_naive(parsed):
        raise invalid(f"Field '{field}' must carry a time zone (e.g. 'Z').", field)
    return parsed


def role_name(actor: Actor) -> str:
    return actor.role.value if hasattr(actor.role, "value") else str(actor.role)
