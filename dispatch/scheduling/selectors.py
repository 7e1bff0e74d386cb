"""Reads of the schedule: who is booked when, and a ticket's open proposal, active hold and booking."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, QuerySet

from dispatch.tickets.models import StateTransition
from dispatch.tickets.states import TicketState

from .models import BOOKED_STATUSES, Appointment, ScheduleHold, ScheduleProposal, Shift

# Once a ticket is cancelled or its work is done, its booking no longer holds the technician's
# time, even before anything has marked that booking cancelled or completed.
RELEASED_TICKET_STATES = frozenset(
    {
        TicketState.CANCELLED,
        TicketState.CLOSED,
        TicketState.COMPLETED_PENDING_VERIFICATION,
        TicketState.VERIFIED,
        TicketState.INVOICED,
    }
)


def appointments_booked_overlapping(
    *,
    start: datetime,
    end: datetime,
    technician_ids: Iterable[uuid.UUID] | None = None,
    exclude_ids: Iterable[uuid.UUID] = (),
    include_released: bool = False,
) -> QuerySet[Appointment]:
    """Booked (HELD/CONFIRMED) appointments of a technician that overlap [start, end).

    Half-open like the PostgreSQL constraint: back-to-back jobs do not overlap. Each row
    carries `ticket_state`; bookings of released tickets (see above) are left out unless
    `include_released`.
    """
    booked = Appointment.objects.filter(
        technician__isnull=False, status__in=BOOKED_STATUSES, start__lt=end, end__gt=start
    ).annotate(ticket_state=F("ticket__state"))
    if not include_released:
        booked = booked.exclude(ticket__state__in=RELEASED_TICKET_STATES)
    if technician_ids is not None:
        booked = booked.filter(technician_id__in=list(technician_ids))
    exclude_ids = [pk for pk in exclude_ids if pk is not None]
    if exclude_ids:
        booked = booked.exclude(pk__in=exclude_ids)
    return booked


def technicians_busy_between(
    *, start: datetime, end: datetime, technician_ids: Iterable[uuid.UUID] | None = None
) -> set[uuid.UUID]:
    """Ids of technicians with a booking overlapping [start, end) (one query)."""
    rows = appointments_booked_overlapping(start=start, end=end, technician_ids=technician_ids)
    return set(rows.order_by().values_list("technician_id", flat=True).distinct())


def appointments_booked_for_ticket(*, ticket_id: uuid.UUID) -> QuerySet[Appointment]:
    """The ticket's live bookings (HELD or CONFIRMED), earliest first."""
    return Appointment.objects.filter(ticket_id=ticket_id, status__in=BOOKED_STATUSES).order_by("start", "id")


def proposal_open_for_ticket(*, ticket_id: uuid.UUID) -> ScheduleProposal | None:
    return ScheduleProposal.objects.filter(ticket_id=ticket_id, status=ScheduleProposal.Status.OPEN).first()


def hold_active_for_ticket(*, ticket_id: uuid.UUID) -> ScheduleHold | None:
    return ScheduleHold.objects.filter(ticket_id=ticket_id, status=ScheduleHold.Status.ACTIVE).first()


def dispatch_transition_current(ticket_id) -> StateTransition | None:
    """The ticket's latest move into DISPATCHED: the dispatch an acknowledgement, a departure and
    an arrival answer. None for a ticket never dispatched."""
    return StateTransition.objects.filter(ticket_id=ticket_id, to_state=TicketState.DISPATCHED).order_by("-seq").first()


def technicians_with_shifts(technician_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these technicians have at least one weekly shift (one query)."""
    ids = list(technician_ids)
    if not ids:
        return set()
    return set(
        Shift.objects.filter(technician_id__in=ids).order_by().values_list("technician_id", flat=True).distinct()
    )
