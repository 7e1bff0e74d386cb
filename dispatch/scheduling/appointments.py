"""Saving a booking: the one place an appointment is written, and the guard against double-booking.

Every booking locks the technician's row first (`technician_lock_for_booking`), so "is this
technician free?" and "book them" cannot interleave with another booking of the same
technician; on PostgreSQL an exclusion constraint backs that up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.technicians.models import Technician
from dispatch.technicians.services import technician_lock_for_booking, technician_unavailable
from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState

from . import engine
from .inputs import window_json
from .models import BOOKED_STATUSES, Appointment, AppointmentStatus, ScheduleProposal
from .selectors import RELEASED_TICKET_STATES, appointments_booked_overlapping

OVERLAP_CONSTRAINT = "appointment_no_technician_overlap"


def scheduling_error(code: str, message: str, **details: Any) -> DispatchError:
    return DispatchError(code, message, status=409, dimension="scheduling", details=details)


def window_passed_error(start: datetime, end: datetime, **details: Any) -> DispatchError:
    """A window whose start is behind us cannot be offered or booked: the customer would be told a
    time that has already come (409 SCHEDULE_WINDOW_PASSED)."""
    return scheduling_error(
        "SCHEDULE_WINDOW_PASSED",
        "That window has already begun; offer or book a window that is still ahead.",
        requested_window=window_json(start, end),
        **details,
    )


def fresh_proposal(ticket: Ticket) -> dict:
    """The engine's current best windows for a ticket: what a refused booking can pick instead."""
    suggestion = engine.slots_suggest(ticket=ticket, limit=3)
    return {
        "suggested_windows": [
            {
                "tech_id": str(window.technician_id),
                "technician_name": window.technician_name,
                **window_json(window.start, window.end),
                "reason": window.reason,
                **({"crew": [str(tech_id) for tech_id, _name in window.crew]} if window.crew else {}),
            }
            for window in suggestion.windows
        ],
        "suggestion_explanation": suggestion.explanation,
    }


def _conflict_error(
    technician: Technician, start: datetime, end: datetime, clash: Appointment | None, ticket: Ticket | None = None
) -> DispatchError:
    details: dict[str, Any] = {"requested_window": window_json(start, end)}
    if clash is not None:
        # The other booking's window, not its ticket: a scoped caller must not learn other customers' jobs.
        details["conflicting_window"] = window_json(clash.start, clash.end)
    if ticket is not None:
        # The loser of a race gets something to book instead, computed after the winner's commit.
        details.update(fresh_proposal(ticket))
    return technician_unavailable(
        technician, f"{technician.display_name} is already booked in an overlapping window.", **details
    )


def appointment_save(appointment: Appointment, *, technician: Technician | None = None) -> Appointment:
    """Save an appointment, refusing one that would double-book its technician (409 TECH_UNAVAILABLE).

    `technician`, when given, must already be locked by `technician_lock_for_booking` in this
    transaction; otherwise the appointment's technician is locked here.
    """
    if appointment.technician_id is not None and appointment.status in BOOKED_STATUSES:
        if technician is None or technician.pk != appointment.technician_id:
            technician = technician_lock_for_booking(technician_id=appointment.technician_id)
        appointment.technician = technician
        overlapping = list(
            appointments_booked_overlapping(
                start=appointment.start,
                end=appointment.end,
                technician_ids=[technician.pk],
                exclude_ids=[appointment.pk],
                include_released=True,
            )
        )
        released = [a.pk for a in overlapping if a.ticket_state in RELEASED_TICKET_STATES]
        if released:
            # Bookings of jobs cancelled or finished since no longer hold the technician's time;
            # close them (under the technician's lock) so they neither block this booking nor
            # trip the database constraint.
            now = timezone.now()
            Appointment.objects.filter(pk__in=released, ticket__state=TicketState.CANCELLED).update(
                status=AppointmentStatus.CANCELLED,
                cancelled_at=now,
                cancelled_reason="The ticket was cancelled.",
                updated_at=now,
            )
            Appointment.objects.filter(pk__in=released).exclude(ticket__state=TicketState.CANCELLED).update(
                status=AppointmentStatus.COMPLETED, updated_at=now
            )
        clash = next((a for a in overlapping if a.ticket_state not in RELEASED_TICKET_STATES), None)
        if clash is not None:
            raise _conflict_error(technician, appointment.start, appointment.end, clash, ticket=appointment.ticket)
    try:
        appointment.save()
    except IntegrityError as exc:
        # Only reachable on PostgreSQL when a booking slipped past the lock (raw SQL, another
        # code path). No query runs between here and the rollback the raise causes, so no
        # savepoint is needed around the save.
        if OVERLAP_CONSTRAINT in str(exc) and appointment.technician is not None:
            raise _conflict_error(appointment.technician, appointment.start, appointment.end, None) from None
        raise
    return appointment


def told_window(appointment: Appointment) -> tuple[datetime, datetime]:
    """The arrival window the customer was told: the one kept when the day plan moved the job,
    else from the booked start, DISPATCH_ARRIVAL_WINDOW_MINUTES long (the job's own span when
    that is set to 0)."""
    if appointment.promised_start and appointment.promised_end:
        return appointment.promised_start, appointment.promised_end
    arrival = engine.arrival_window_minutes()
    if not arrival:
        return appointment.start, appointment.end
    return appointment.start, appointment.start + timedelta(minutes=arrival)


def latest_start(told: tuple[datetime, datetime], duration: timedelta) -> datetime:
    """The latest start that keeps the promise: arrival by the end of the told arrival window, or,
    where customers are told the visit itself (arrival windows off), the visit's own start."""
    if engine.arrival_window_minutes():
        return told[1]
    return told[1] - duration


def ticket_told_window(ticket_id: Any) -> tuple[datetime, datetime] | None:
    """The told window of the ticket's booked visit (catalog.ticket_told_window), or None."""
    booked = (
        Appointment.objects.filter(ticket_id=ticket_id, status__in=BOOKED_STATUSES)
        .only("start", "end", "promised_start", "promised_end")
        .order_by("-start")
        .first()
    )
    return told_window(booked) if booked else None


def appointment_confirmed(
    *,
    ticket: Ticket,
    start: datetime,
    end: datetime,
    actor: Actor,
    technician: Technician | None = None,
    technician_id: Any = None,
    proposal: ScheduleProposal | None = None,
    promised: tuple[datetime, datetime] | None = None,
    visit: Any = None,
) -> Appointment:
    """Book a CONFIRMED window for the ticket through appointment_save (and its double-booking guard).

    `promised`: the window the customer was told, when it is not start–end (a re-planned job).
    `visit`: the key shared by the parts of a crew or multi-day visit (crews.visit_book)."""
    appointment = Appointment(
        ticket=ticket,
        technician=technician,
        start=start,
        end=end,
        status=AppointmentStatus.CONFIRMED,
        proposal=proposal,
        created_by=actor.actor_id,
        promised_start=promised[0] if promised else None,
        promised_end=promised[1] if promised else None,
        visit=visit,
    )
    if technician is None:
        appointment.technician_id = technician_id
    return appointment_save(appointment, technician=technician)


def appointment_cancel(appointment: Appointment, reason: str) -> None:
    """Cancel a booking, keeping it as history with the reason."""
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = timezone.now()
    appointment.cancelled_reason = reason
    appointment.save(update_fields=["status", "cancelled_at", "cancelled_reason", "updated_at"])
