"""Reading a value a caller sent: a UUID, an email address, a time zone. Each refuses bad input
with the one 400 INVALID_REQUEST (naming the field) or, for a zone, falls back as documented.

Append new parsers at the end; several faces and phases share this module.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .errors import invalid_request


def uuid_parse(value: Any, *, field: str) -> uuid.UUID:
    """`value` as a UUID; 400 INVALID_REQUEST naming `field` when it is not one."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise invalid_request(f"{field!r} must be a UUID.", field=field) from None


def email_parse(value: Any, *, field: str) -> str | None:
    """An email address, trimmed and lower-cased; None when absent; 400 when not an address."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{field!r} must be an email address.", field=field)
    address = value.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise invalid_request(f"{field!r} is not a valid email address.", field=field) from None
    return address


def zone_or_default(name: str | None) -> ZoneInfo:
    """The named time zone, or the project's TIME_ZONE when the name is blank or unknown
    (a site's zone is typed by a person; a typo must not break a page)."""
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (KeyError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def whole_number_parse(raw: str | None, *, field: str) -> int | None:
    """A whole number typed into a form ("90", " 3 "); None when left blank; 400 INVALID_REQUEST
    naming `field` for anything else. The service that takes it checks its range."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise invalid_request(f"'{field}' must be a whole number.", field=field) from None


# A form's amount may not exceed what a person would type for one line of a job.
MAX_TYPED_DOLLARS = Decimal("1000000")


def dollars_parse(raw: str | None, *, field: str) -> int | None:
    """Dollars as a person types them ("125", "$1,125.50") in whole cents; None when left blank;
    400 INVALID_REQUEST naming `field` for text, negative amounts or more than a million."""
    text = (raw or "").strip().replace("$", "").replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise invalid_request(f"'{field}' must be an amount like 125.50.", field=field) from None
    if amount.is_nan() or amount < 0 or amount > MAX_TYPED_DOLLARS:
        raise invalid_request(f"'{field}' must be an amount from 0 to 1,000,000.", field=field)
    return int((amount * 100).to_integral_value())
