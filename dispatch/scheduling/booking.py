"""The dispatch board's two writes: book a queued ticket on a technician, move a booked job.

Both run through the ticket executor (one transaction, the ticket row locked, one audit event)
and save the appointment through the same `appointment_save` as schedule.confirm: the
technician's row is locked first, so "does this slot pass every rule?" and "book it" cannot
interleave with another booking of that technician, and PostgreSQL's exclusion constraint
backs that up. Every rule of the slot engine is checked again here, under that lock: what the
board showed a few seconds ago is a hint, not a promise.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician
from dispatch.technicians.services import technician_lock_for_booking
from dispatch.tickets.commands import command
from dispatch.tickets.models import Ticket
from dispatch.tickets.selectors import iso_utc
from dispatch.tickets.services import Outcome, TicketChange, ticket_change
from dispatch.tickets.states import TicketState

from . import engine
from .appointments import appointment_cancel, appointment_confirmed, fresh_proposal, latest_start, told_window
from .crews import CrewNeed, crew_complete, crew_ids_parse, crew_names_text, crew_need, run_text, visit_book
from .engine import slot_check
from .inputs import role_check
from .models import BOOKED_STATUSES, Appointment, ScheduleProposal
from .notifications import booking_notify
from .selectors import appointments_booked_for_ticket

# Board actions beyond the contract's tools: a dispatcher books a window the engine checked
# (skipping the customer round-trip of propose/confirm) or drags a booked job elsewhere.
SCHEDULE_BOOK = command(
    "schedule.book", ["dispatcher"], ["READY_TO_SCHEDULE", "SCHEDULE_PROPOSED"], "SCHEDULED", "Book from the board"
)
# Only a SCHEDULED job moves: once dispatched, the technician has been told and holds the job;
# taking it away is dispatch.force_unassign, a decision of its own with its own audit event.
SCHEDULE_MOVE = command("schedule.move", ["dispatcher"], ["SCHEDULED"], None, "Move on the board")

MAX_JOB = timedelta(hours=12)
MOVED_REASON = "moved"
REPLACED_REASON = "Replaced by a booking from the dispatch board."


# --- input ----------------------------------------------------------------------------------


def uuid_parse(value: Any, field: str) -> uuid.UUID:
    """A UUID from a caller, or INVALID_REQUEST naming the field."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise invalid_request(f"{field} must be a UUID.", field=field) from None


def _aware(value: Any, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise invalid_request(f"{field} must be a date-time.", field=field)
    if timezone.is_naive(value):
        raise invalid_request(f"{field} needs a timezone.", field=field)
    return value


def _job_window(start: Any, end: Any) -> tuple[datetime, datetime]:
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise invalid_request("end must be after start.", field="end")
    if end - start > MAX_JOB:
        raise invalid_request("A booking is at most 12 hours long.", field="end")
    return start, end


# --- refusals ---------------------------------------------------------------------------------


def window_text(start: datetime, end: datetime) -> str:
    """'Tue Mar 3, 09:00–10:30' in the company's timezone."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return f"{local_start:%a %b} {local_start.day}, {local_start:%H:%M}–{local_end:%H:%M}"


def _window_json(start: datetime, end: datetime) -> dict:
    return {"start": iso_utc(start), "end": iso_utc(end)}


def _rule_violation(
    ticket: Ticket, technician: Technician, start: datetime, end: datetime, reasons: list[str]
) -> DispatchError:
    return DispatchError(
        "SLOT_RULE_VIOLATION",
        f"{technician.display_name} cannot take {ticket.short_ref} on {window_text(start, end)}: " + "; ".join(reasons),
        status=409,
        dimension="scheduling",
        details={
            "reasons": reasons,
            "tech_id": str(technician.pk),
            "requested_window": _window_json(start, end),
            **fresh_proposal(ticket),
        },
    )


def _rules_check(
    ticket: Ticket, technician: Technician, start: datetime, end: datetime, *, ignore: uuid.UUID | None
) -> None:
    reasons = slot_check(ticket=ticket, technician=technician, start=start, end=end, ignore_appointment_id=ignore)
    if reasons:
        raise _rule_violation(ticket, technician, start, end, list(reasons))


def _proposals_supersede(ticket: Ticket) -> list[str]:
    """Close the customer's open proposal: its windows are no longer on offer once the job is booked."""
    open_ids = [
        str(pk)
        for pk in ScheduleProposal.objects.filter(ticket=ticket, status=ScheduleProposal.Status.OPEN).values_list(
            "pk", flat=True
        )
    ]
    if open_ids:
        ScheduleProposal.objects.filter(pk__in=open_ids).update(
            status=ScheduleProposal.Status.SUPERSEDED, decided_at=timezone.now()
        )
    return open_ids


# --- schedule.book ----------------------------------------------------------------------------


def appointment_book(
    *,
    actor: Actor,
    ticket_id: Any,
    technician_id: Any,
    start: datetime,
    end: datetime,
    request: dict | None = None,
    expected_version: int | None = None,
    crew: Any = None,
) -> Outcome:
    """Book a queued ticket on a technician after every slot rule passes: a CONFIRMED appointment, SCHEDULED.

    A job type that needs a crew or several days books the whole visit (crews.visit_book) with
    `technician_id` as its lead; `crew` names the others (lead first or not), and whoever is
    still missing is chosen from the qualified technicians free on every day."""
    role_check(SCHEDULE_BOOK, actor)
    tech_key = uuid_parse(technician_id, "technician_id")
    start, end = _job_window(start, end)
    named = crew_ids_parse(crew)
    asked = {"tech_id": str(tech_key), **_window_json(start, end)}
    if named:
        asked["crew"] = [str(pk) for pk in named]
    with ticket_change(
        actor=actor,
        command=SCHEDULE_BOOK,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=asked,
    ) as change:
        ticket = change.ticket
        need = crew_need(ticket.incident_type)
        if need.together:
            change.result = _visit_book(
                change, actor, need, [tech_key, *(pk for pk in named if pk != tech_key)], start, end
            )
        else:
            change.result = _single_book(change, actor, tech_key, start, end)
    return change.outcome


def _single_book(change: TicketChange, actor: Actor, tech_key: uuid.UUID, start: datetime, end: datetime) -> dict:
    """schedule.book for a one-technician, one-day job."""
    ticket = change.ticket
    # Locked before the rules are read, so nobody books this technician between check and save.
    technician = technician_lock_for_booking(technician_id=tech_key)
    replaced = list(appointments_booked_for_ticket(ticket_id=ticket.id))
    _rules_check(ticket, technician, start, end, ignore=replaced[0].pk if replaced else None)
    for old in replaced:
        appointment_cancel(old, REPLACED_REASON)
    appointment = appointment_confirmed(ticket=ticket, start=start, end=end, actor=actor, technician=technician)
    superseded = _proposals_supersede(ticket)
    ticket.scheduled_start, ticket.scheduled_end = start, end
    if ticket.state == TicketState.READY_TO_SCHEDULE:
        # The graph reaches SCHEDULED only through a proposal: the dispatcher's booking is
        # that proposal and its acceptance at once, two transition rows under one event.
        change.transition(TicketState.SCHEDULE_PROPOSED)
    change.transition(TicketState.SCHEDULED)
    result = {
        "appointment_id": str(appointment.id),
        "tech_id": str(technician.pk),
        "technician_name": technician.display_name,
        "window": _window_json(start, end),
        "window_text": window_text(start, end),
    }
    # Queued in this transaction: the customer hears of the booking only if it commits.
    notice = booking_notify(ticket=ticket, appointment=appointment)
    change.audit_payload.update(
        {
            "appointment_id": str(appointment.id),
            "tech_id": str(technician.pk),
            "superseded_proposal_ids": superseded,
            "replaced_appointment_ids": [str(a.id) for a in replaced],
            "customer_notice": notice,
        }
    )
    return result


def _visit_book(
    change: TicketChange, actor: Actor, need: CrewNeed, named: list[uuid.UUID], start: datetime, end: datetime
) -> dict:
    """schedule.book for a crew or multi-day job: every part in one booking, one audit event."""
    ticket = change.ticket
    now = timezone.now()
    crew_ids = crew_complete(ticket=ticket, need=need, named=named, start=start, end=end, now=now)
    replaced = list(appointments_booked_for_ticket(ticket_id=ticket.id))
    for old in replaced:
        appointment_cancel(old, REPLACED_REASON)
    visit = visit_book(ticket=ticket, actor=actor, need=need, crew_ids=crew_ids, start=start, end=end, now=now)
    superseded = _proposals_supersede(ticket)
    ticket.scheduled_start, ticket.scheduled_end = start, visit.run[-1][1]
    ticket.assigned_tech = visit.lead
    if ticket.state == TicketState.READY_TO_SCHEDULE:
        change.transition(TicketState.SCHEDULE_PROPOSED)
    change.transition(TicketState.SCHEDULED)
    # One confirmation for the visit: the customer hears of its first day's arrival.
    notice = booking_notify(ticket=ticket, appointment=visit.first)
    visit_json = visit.as_json()
    change.audit_payload.update(
        {
            "appointment_id": str(visit.first.id),
            "tech_id": str(visit.lead.pk),
            **visit_json,
            "superseded_proposal_ids": superseded,
            "replaced_appointment_ids": [str(a.id) for a in replaced],
            "customer_notice": notice,
        }
    )
    zone = engine.zone_named(ticket.site.timezone)
    return {
        "appointment_id": str(visit.first.id),
        "tech_id": str(visit.lead.pk),
        "technician_name": visit.lead.display_name,
        "window": _window_json(start, end),
        "window_text": window_text(start, end),
        **visit_json,
        "visit_text": f"{crew_names_text([t.display_name for t in visit.crew])}, {run_text(visit.run, zone)}",
    }


# --- schedule.move ----------------------------------------------------------------------------


def _appointment_gone(appointment_id: Any) -> DispatchError:
    return DispatchError(
        "APPOINTMENT_NOT_BOOKED",
        "That booking was cancelled or moved meanwhile; the board shows the current schedule.",
        status=409,
        dimension="scheduling",
        details={"appointment_id": str(appointment_id)},
    )


def _visit_part_refused(ticket: Ticket) -> DispatchError:
    """A crew's or a run's part never moves alone: its technicians and days were booked together."""
    return DispatchError(
        "VISIT_PART_NOT_MOVABLE",
        f"{ticket.short_ref} is booked as one visit for a crew or several days; one part cannot move alone. "
        "Book the job again from its ticket to move the whole visit.",
        status=409,
        dimension="scheduling",
        details={"ticket_id": str(ticket.pk)},
    )


def _move_refused(error: DispatchError, ticket: Ticket | None) -> DispatchError:
    """The executor's state refusal, told the way the board's user needs it."""
    state = error.details.get("from_state", "")
    ref = ticket.short_ref if ticket else "This job"
    if state in (TicketState.DISPATCHED, TicketState.ON_SITE, TicketState.IN_PROGRESS, TicketState.ON_HOLD):
        why = (
            f"{ref} is already {state.replace('_', ' ').lower()}: the technician has the job. "
            "Unassign it on the ticket page first (dispatch.force_unassign), then book it again."
        )
    elif state == TicketState.PENDING_CUSTOMER_CONFIRMATION:
        why = f"{ref} is held for the customer's confirmation; release or roll back the hold first."
    else:
        why = f"{ref} is {state.replace('_', ' ').lower() or 'not scheduled'}; only scheduled jobs can be moved."
    return DispatchError(error.code, why, status=error.status, dimension=error.dimension, details=error.details)


def appointment_move(
    *,
    actor: Actor,
    appointment_id: Any,
    technician_id: Any,
    start: datetime,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Move a scheduled job to another technician or time, same length, every rule re-checked; history kept."""
    role_check(SCHEDULE_MOVE, actor)
    appointment_key = uuid_parse(appointment_id, "appointment_id")
    tech_key = uuid_parse(technician_id, "technician_id")
    start = _aware(start, "start")
    found = Appointment.objects.filter(pk=appointment_key).select_related("ticket").first()
    if found is None:
        raise DispatchError(
            "APPOINTMENT_NOT_FOUND", f"No appointment {appointment_key}.", status=404, dimension="request"
        )

    asked = {"appointment_id": str(appointment_key), "tech_id": str(tech_key), "start": iso_utc(start)}
    try:
        with ticket_change(
            actor=actor,
            command=SCHEDULE_MOVE,
            ticket_id=found.ticket_id,
            expected_version=expected_version,
            request=request,
            audit=asked,
        ) as change:
            ticket = change.ticket
            # Re-read under the ticket's lock: a booking changes only inside its ticket's executor.
            old = Appointment.objects.filter(pk=appointment_key, ticket=ticket, status__in=BOOKED_STATUSES).first()
            if old is None:
                raise _appointment_gone(appointment_key)
            if old.visit is not None:
                raise _visit_part_refused(ticket)
            end = start + (old.end - old.start)
            if old.technician_id == tech_key and old.start == start:
                raise invalid_request("The job is already booked there.", field="start")
            technician = technician_lock_for_booking(technician_id=tech_key)
            _rules_check(ticket, technician, start, end, ignore=old.pk)
            told = told_window(old)
            # Still arriving inside the window the customer was told: it stays their window, and
            # they need not hear of the move. Outside it, the new start makes a new window.
            keeps_window = told[0] <= start <= latest_start(told, old.end - old.start)
            # Cancelled before the new row is saved: on the same technician the two would overlap.
            appointment_cancel(old, MOVED_REASON)
            new = appointment_confirmed(
                ticket=ticket,
                start=start,
                end=end,
                actor=actor,
                technician=technician,
                proposal=old.proposal,
                promised=told if keeps_window else None,
            )
            ticket.scheduled_start, ticket.scheduled_end = start, end
            if ticket.assigned_tech_id is not None:
                ticket.assigned_tech = technician
            moved = {
                "moved_from": {
                    "tech_id": str(old.technician_id) if old.technician_id else None,
                    **_window_json(old.start, old.end),
                },
                "moved_to": {"tech_id": str(technician.pk), **_window_json(start, end)},
            }
            change.audit_payload.update(
                {"cancelled_appointment_id": str(old.id), "appointment_id": str(new.id), **moved}
            )
            if not keeps_window:
                # A new window is news for the customer; a change of technician, or of the arrival
                # inside the window they were told, is not.
                change.audit_payload["customer_notice"] = booking_notify(ticket=ticket, appointment=new)
            change.result = {
                "appointment_id": str(new.id),
                "cancelled_appointment_id": str(old.id),
                "tech_id": str(technician.pk),
                "technician_name": technician.display_name,
                "window": _window_json(start, end),
                "window_text": window_text(start, end),
                **moved,
            }
    except DispatchError as error:
        if error.code == "INVALID_STATE_TRANSITION":
            raise _move_refused(error, found.ticket) from None
        raise
    return change.outcome
