"""Writes that involve a technician's availability.

Booking a technician is a read-check-write: "is anyone else in this window?" then "book it".
`technician_lock_for_booking` makes that safe under concurrency by locking the technician's
row first, so two bookings of one technician run one after the other and the second sees the
first. Scheduling services call it inside the ticket executor's transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from dispatch.common.errors import DispatchError

from .models import Technician
from .selectors import technician_key


def technician_not_found(technician_id: Any) -> DispatchError:
    return DispatchError(
        "ASSIGNMENT_NOT_FOUND",
        f"No technician {technician_id}.",
        status=409,
        dimension="assignment",
        details={"tech_id": str(technician_id)},
    )


def technician_unavailable(technician: Technician, message: str, **details: Any) -> DispatchError:
    return DispatchError(
        "TECH_UNAVAILABLE",
        message,
        status=409,
        dimension="assignment",
        details={"tech_id": str(technician.pk), **details},
    )


def technician_lock_for_booking(*, technician_id: Any, annotations: dict | None = None) -> Technician:
    """Lock an active technician's row for a booking; refuses an unknown or inactive technician.
    `annotations` (e.g. technician_fit_annotations) are read in the same query."""
    if not transaction.get_connection().in_atomic_block:
        # Outside a transaction the lock would be released at once and protect nothing.
        raise RuntimeError("technician_lock_for_booking must run inside the booking's transaction.")
    key = technician_key(technician_id)
    if key is None:
        raise technician_not_found(technician_id)
    # On PostgreSQL this row lock queues concurrent bookings of the same technician; on SQLite
    # the IMMEDIATE transaction already holds the database's write lock, which serialises them.
    technician = (
        Technician.objects.select_for_update(of=("self",)).filter(pk=key).annotate(**(annotations or {})).first()
    )
    if technician is None:
        raise technician_not_found(technician_id)
    if not technician.is_active:
        raise technician_unavailable(technician, f"{technician.display_name} is not active and cannot be booked.")
    return technician
