"""Amounts of money: always whole cents in an integer."""

from __future__ import annotations

import math
from typing import Any

from .errors import invalid_request

# Ten billion dollars: beyond any field-service job, well inside a 64-bit column.
MAX_CENTS = 10**12


def cents_value(value: Any, field: str) -> int | None:
    """A non-negative whole number of cents, or None; 400 INVALID_REQUEST for anything else
    (fractions, infinities, booleans, amounts no column could hold)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_request(f"'{field}' must be a whole number of cents.", field=field)
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise invalid_request(f"'{field}' must be a whole number of cents.", field=field)
    cents = int(value)
    if not 0 <= cents <= MAX_CENTS:
        raise invalid_request(f"'{field}' must be between 0 and {MAX_CENTS} cents.", field=field)
    return cents
