"""Scheduling, assignment and check-in: the contract's schedule.*, assignment.*,
dispatch.force_unassign and tech.check_in tools.

Every service runs through the ticket executor (one transaction, the ticket row locked, one
audit event) and writes its own rows inside it. Bookings additionally lock the technician's
row, so that "is this technician free?" and "book them" cannot interleave with another
booking of the same technician; on PostgreSQL an exclusion constraint backs that up.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician
from dispatch.technicians.selectors import (
    technician_fit_annotations,
    technician_key,
    technician_open_job_counts,
    technician_region_codes,
    technician_skill_level,
    technicians_active,
)
from dispatch.technicians.services import technician_lock_for_booking, technician_unavailable
from dispatch.tickets.commands import Command, command
from dispatch.tickets.models import Site, Ticket
from dispatch.tickets.policy import access_check
from dispatch.tickets.services import (
    Outcome,
    TicketChange,
    audit_only,
    invalid_transition,
    role_forbidden,
    ticket_execute,
    ticket_not_found,
)
from dispatch.tickets.states import TicketState

from . import engine
from .notifications import booking_notify, proposal_notify
from .models import (
    BOOKED_STATUSES,
    Appointment,
    AppointmentStatus,
    CheckIn,
    RecommendationSnapshot,
    ScheduleHold,
    ScheduleProposal,
    TimeOff,
)
from .selectors import (
    appointments_booked_for_ticket,
    RELEASED_TICKET_STATES,
    appointments_booked_overlapping,
    hold_active_for_ticket,
    proposal_open_for_ticket,
)

S = TicketState

# --- Commands: the contract's tool names, roles and from-states, exactly --------------------

SCHEDULE_PROPOSE = command(
    "schedule.propose", ["dispatcher", "agent"], ["READY_TO_SCHEDULE"], "SCHEDULE_PROPOSED", "Propose windows"
)
SCHEDULE_CONFIRM = command("schedule.confirm", ["dispatcher"], ["SCHEDULE_PROPOSED"], "SCHEDULED", "Confirm a window")
SCHEDULE_HOLD = command(
    "schedule.hold", ["dispatcher"], ["SCHEDULE_PROPOSED", "SCHEDULED"], None, "Hold for customer confirmation"
)
SCHEDULE_RELEASE = command(
    "schedule.release", ["dispatcher"], ["PENDING_CUSTOMER_CONFIRMATION"], None, "Release hold (customer confirmed)"
)
SCHEDULE_ROLLBACK = command(
    "schedule.rollback", ["dispatcher"], ["PENDING_CUSTOMER_CONFIRMATION"], None, "Roll back hold"
)
ASSIGNMENT_RECOMMEND = command(
    "assignment.recommend",
    ["dispatcher", "agent"],
    ["SCHEDULED", "READY_TO_SCHEDULE", "SCHEDULE_PROPOSED"],
    None,
    "Recommend technicians",
)
ASSIGNMENT_DISPATCH = command(
    "assignment.dispatch", ["dispatcher"], ["TRIAGED", "SCHEDULED"], "DISPATCHED", "Dispatch a technician"
)
DISPATCH_FORCE_UNASSIGN = command(
    "dispatch.force_unassign",
    ["dispatcher"],
    [
        "READY_TO_SCHEDULE",
        "SCHEDULE_PROPOSED",
        "SCHEDULED",
        "PENDING_CUSTOMER_CONFIRMATION",
        "DISPATCHED",
        "ON_SITE",
        "IN_PROGRESS",
        "ON_HOLD",
        "COMPLETED_PENDING_VERIFICATION",
        "VERIFIED",
        "INVOICED",
    ],
    "SCHEDULED",
    "Unassign the technician",
)
TECH_CHECK_IN = command("tech.check_in", ["technician", "dispatcher"], ["DISPATCHED"], "IN_PROGRESS", "Check in on site")
# Beyond the contract: the slot engine's read-only suggestions (an agent then calls schedule.propose
# with them) and a technician's time off.
SCHEDULE_SUGGEST = command(
    "schedule.suggest",
    ["dispatcher", "agent"],
    ["READY_TO_SCHEDULE", "SCHEDULE_PROPOSED", "PENDING_CUSTOMER_CONFIRMATION"],
    None,
    "Suggest windows",
)
TIME_OFF_ADD = command("technician.time_off_add", ["dispatcher"], None, None, "Add time off")

MAX_PROPOSAL_OPTIONS = 10
MOMENT_YEARS = (2000, 2100)
MAX_WINDOW = timedelta(hours=12)
RECOMMENDATION_DEFAULT_LIMIT = 5
RECOMMENDATION_MAX_LIMIT = 20
DISPATCH_MODES = ("STANDARD", "EMERGENCY_BYPASS")
OVERLAP_CONSTRAINT = "appointment_no_technician_overlap"

# Ranking weights of assignment.recommend: the right skill dominates; then being free in the
# window (a booked technician cannot take the job at all, one from the next region can), then
# covering the site's region; each open job costs a little.
WEIGHT_SKILL = 1000
WEIGHT_SKILL_LEVEL = 20
WEIGHT_FREE = 500
WEIGHT_REGION = 200
WEIGHT_OPEN_JOB = 10


# --- Input parsing (bad input is refused before anything is written) ------------------------


def _role_check(command_: Command, actor: Actor) -> None:
    # Checked before the payload, so a caller without the role learns nothing about the input rules.
    if not command_.allows_role(actor.role):
        raise role_forbidden(command_, actor.role)


def _moment(value: Any, field: str) -> datetime:
    """An aware datetime from an ISO-8601 string with a timezone (or a datetime)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise invalid_request(f"{field} must be an ISO-8601 date-time, e.g. 2026-03-02T09:00:00-08:00.", field=field)
    else:
        raise invalid_request(f"{field} is required (an ISO-8601 date-time).", field=field)
    if timezone.is_naive(moment):
        raise invalid_request(f"{field} needs a timezone offset (Z or ±hh:mm).", field=field)
    # Far-off years are typos or probes; the edges of the calendar would also overflow in UTC.
    if not MOMENT_YEARS[0] <= moment.year <= MOMENT_YEARS[1]:
        raise invalid_request(f"{field} must fall between the years {MOMENT_YEARS[0]} and {MOMENT_YEARS[1]}.", field=field)
    return moment


def _window(start: Any, end: Any, field: str, *, max_length: timedelta | None = None) -> tuple[datetime, datetime]:
    prefix = f"{field}." if field else ""
    start_at, end_at = _moment(start, f"{prefix}start"), _moment(end, f"{prefix}end")
    if end_at <= start_at:
        raise invalid_request(f"{prefix}end must be after {prefix}start.", field=f"{prefix}end")
    if max_length is not None and end_at - start_at > max_length:
        hours = int(max_length.total_seconds() // 3600)
        raise invalid_request(f"{field or 'The window'} is longer than {hours} hours.", field=field or "end")
    return start_at, end_at


def _window_object(value: Any, field: str) -> tuple[datetime, datetime]:
    if not isinstance(value, dict):
        raise invalid_request(f"{field} must be an object with start and end.", field=field)
    return _window(value.get("start"), value.get("end"), field)


def _uuid(value: Any, field: str, *, required: bool = True) -> uuid.UUID | None:
    if value is None or value == "":
        if required:
            raise invalid_request(f"{field} is required (a UUID).", field=field)
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise invalid_request(f"{field} must be a UUID.", field=field) from None


def _iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, keeping microseconds when there are any (snapshots restore exactly)."""
    if moment is None:
        return None
    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_iso(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _window_json(start: datetime | None, end: datetime | None) -> dict[str, str | None]:
    return {"start": _iso(start), "end": _iso(end)}


def _options_clean(options: Any) -> list[dict]:
    if not isinstance(options, list) or not options:
        raise invalid_request("options must be a non-empty list of windows.", field="options")
    if len(options) > MAX_PROPOSAL_OPTIONS:
        raise invalid_request(f"Propose at most {MAX_PROPOSAL_OPTIONS} windows.", field="options")
    cleaned = []
    for index, option in enumerate(options):
        field = f"options[{index}]"
        if not isinstance(option, dict):
            raise invalid_request(f"{field} must be an object with start and end.", field=field)
        start, end = _window(option.get("start"), option.get("end"), field, max_length=MAX_WINDOW)
        tech_id = _uuid(option.get("tech_id"), f"{field}.tech_id", required=False)
        # Anything else the proposer attached (a score, a reason) is kept as given.
        extra = {k: v for k, v in option.items() if k not in ("start", "end", "tech_id")}
        cleaned.append({**extra, "start": _iso(start), "end": _iso(end), "tech_id": str(tech_id) if tech_id else None})
    tech_ids = {o["tech_id"] for o in cleaned if o["tech_id"]}
    if tech_ids:
        known = {str(pk) for pk in Technician.objects.filter(pk__in=tech_ids).values_list("pk", flat=True)}
        unknown = sorted(tech_ids - known)
        if unknown:
            raise invalid_request(f"No technician {unknown[0]}.", field="options", unknown_tech_ids=unknown)
    return cleaned


# --- Booking: the one place an appointment is saved -------------------------------------------


def fresh_proposal(ticket: Ticket) -> dict:
    """The engine's current best windows for a ticket: what a refused booking can pick instead."""
    suggestion = engine.slots_suggest(ticket=ticket, limit=3)
    return {
        "suggested_windows": [
            {
                "tech_id": str(window.technician_id),
                "technician_name": window.technician_name,
                **_window_json(window.start, window.end),
                "reason": window.reason,
            }
            for window in suggestion.windows
        ],
        "suggestion_explanation": suggestion.explanation,
    }


def _conflict_error(
    technician: Technician, start: datetime, end: datetime, clash: Appointment | None, ticket: Ticket | None = None
) -> DispatchError:
    details: dict[str, Any] = {"requested_window": _window_json(start, end)}
    if clash is not None:
        # The other booking's window, not its ticket: a scoped caller must not learn other customers' jobs.
        details["conflicting_window"] = _window_json(clash.start, clash.end)
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
            Appointment.objects.filter(pk__in=released, ticket__state=S.CANCELLED).update(
                status=AppointmentStatus.CANCELLED,
                cancelled_at=now,
                cancelled_reason="The ticket was cancelled.",
                updated_at=now,
            )
            Appointment.objects.filter(pk__in=released).exclude(ticket__state=S.CANCELLED).update(
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


def appointment_confirmed(
    *, ticket: Ticket, start: datetime, end: datetime, actor: Actor, technician: Technician | None = None,
    technician_id: Any = None, proposal: ScheduleProposal | None = None,
) -> Appointment:
    """Book a CONFIRMED window for the ticket through appointment_save (and its double-booking guard)."""
    appointment = Appointment(
        ticket=ticket,
        technician=technician,
        start=start,
        end=end,
        status=AppointmentStatus.CONFIRMED,
        proposal=proposal,
        created_by=actor.actor_id,
    )
    if technician is None:
        appointment.technician_id = technician_id
    return appointment_save(appointment, technician=technician)


def appointment_cancel(appointment: Appointment, reason: str) -> None:
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = timezone.now()
    appointment.cancelled_reason = reason
    appointment.save(update_fields=["status", "cancelled_at", "cancelled_reason", "updated_at"])


def _scheduling_error(code: str, message: str, **details: Any) -> DispatchError:
    return DispatchError(code, message, status=409, dimension="scheduling", details=details)


# --- schedule.propose ------------------------------------------------------------------------


def schedule_propose(
    *, actor: Actor, ticket_id: Any, options: Any, payload: dict | None = None, expected_version: int | None = None
) -> Outcome:
    """Offer the customer appointment windows and move the ticket to SCHEDULE_PROPOSED."""
    _role_check(SCHEDULE_PROPOSE, actor)
    cleaned = _options_clean(options)

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        now = timezone.now()
        superseded = ScheduleProposal.objects.filter(ticket=ticket, status=ScheduleProposal.Status.OPEN).update(
            status=ScheduleProposal.Status.SUPERSEDED, decided_at=now
        )
        proposal = ScheduleProposal.objects.create(ticket=ticket, options=cleaned, created_by=actor.actor_id)
        # As in the reference API, the first window shows as the ticket's tentative schedule
        # until one is confirmed.
        ticket.scheduled_start = _parse_iso(cleaned[0]["start"])
        ticket.scheduled_end = _parse_iso(cleaned[0]["end"])
        change.transition(S.SCHEDULE_PROPOSED)
        change.audit_payload.update({"proposal_id": str(proposal.id), "superseded_proposals": superseded})
        # The customer is asked in the same transaction: a rolled-back proposal sends nothing.
        change.audit_payload["customer_notification"] = proposal_notify(ticket=ticket, proposal=proposal)
        return {"proposal_id": str(proposal.id), "options": cleaned}

    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=SCHEDULE_PROPOSE,
        payload=payload if payload is not None else {"options": cleaned},
        apply=apply,
        expected_version=expected_version,
    )


# --- schedule.suggest (read-only) ---------------------------------------------------------------

SUGGEST_MAX_HORIZON_DAYS = 60
SUGGEST_MAX_LIMIT = 10


def _bounded_int(value: Any, field: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_request(f"{field} must be an integer from {low} to {high}.", field=field)
    return value


def suggestion_json(suggestion: engine.Suggestion) -> dict:
    """The engine's answer as plain JSON (what the tool, the board and the admin show)."""
    return {
        "ticket_id": str(suggestion.ticket_id),
        "windows": [
            {
                "tech_id": str(window.technician_id),
                "tech_name": window.technician_name,
                "start": _iso(window.start),
                "end": _iso(window.end),
                "arrival_window": _window_json(window.arrival_start, window.arrival_end),
                "score": window.score,
                "reason": window.reason,
                "travel_minutes": window.travel_minutes,
                "added_travel_minutes": window.added_travel_minutes,
                "skill_level": window.skill_level,
            }
            for window in suggestion.windows
        ],
        "explanation": suggestion.explanation,
        "excluded": suggestion.excluded,
        "duration_minutes": suggestion.duration_minutes,
        "sla_due": _iso(suggestion.sla_due),
        "horizon": _window_json(suggestion.horizon_start, suggestion.horizon_end),
        "customer_preferences": [_window_json(a, b) for a, b in suggestion.preferences]
        if suggestion.preferences is not None
        else None,
    }


def schedule_suggest(
    *,
    actor: Actor,
    ticket_id: Any,
    horizon_days: Any = engine.DEFAULT_HORIZON_DAYS,
    limit: Any = engine.DEFAULT_LIMIT,
    payload: dict | None = None,
) -> dict:
    """The slot engine's best windows for a schedulable ticket, with reasons (reads only; no audit event)."""
    _role_check(SCHEDULE_SUGGEST, actor)
    horizon = _bounded_int(horizon_days, "horizon_days", 1, SUGGEST_MAX_HORIZON_DAYS, engine.DEFAULT_HORIZON_DAYS)
    count = _bounded_int(limit, "limit", 1, SUGGEST_MAX_LIMIT, engine.DEFAULT_LIMIT)
    key = _uuid(ticket_id, "ticket_id")
    ticket = Ticket.objects.select_related("site").filter(pk=key).first()
    if ticket is None:
        raise ticket_not_found(ticket_id)
    access_check(actor, ticket)
    if not SCHEDULE_SUGGEST.allows_state(ticket.state):
        raise invalid_transition(ticket.state, None, tool=SCHEDULE_SUGGEST.tool)
    return suggestion_json(engine.slots_suggest(ticket=ticket, horizon_days=horizon, limit=count))


# --- schedule.confirm ------------------------------------------------------------------------


def _option_match(proposal: ScheduleProposal, start: datetime, end: datetime, tech_id: uuid.UUID | None) -> int | None:
    """Index of the proposed option with exactly this window (preferring one naming `tech_id`)."""
    matches = [
        index
        for index, option in enumerate(proposal.options)
        if _parse_iso(option.get("start")) == start and _parse_iso(option.get("end")) == end
    ]
    if tech_id is not None:
        for index in matches:
            if proposal.options[index].get("tech_id") == str(tech_id):
                return index
    return matches[0] if matches else None


def schedule_confirm(
    *,
    actor: Actor,
    ticket_id: Any,
    start: Any,
    end: Any,
    tech_id: Any = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Book one of the open proposal's windows as a CONFIRMED appointment; the ticket becomes SCHEDULED."""
    _role_check(SCHEDULE_CONFIRM, actor)
    start_at, end_at = _window(start, end, "")
    tech_key = _uuid(tech_id, "tech_id", required=False)

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        proposal = proposal_open_for_ticket(ticket_id=ticket.id)
        if proposal is None:
            raise _scheduling_error(
                "SCHEDULE_WINDOW_NOT_PROPOSED", "This ticket has no open proposal; propose windows first."
            )
        index = _option_match(proposal, start_at, end_at, tech_key)
        if index is None:
            raise _scheduling_error(
                "SCHEDULE_WINDOW_NOT_PROPOSED",
                "That window is not one of the proposed options.",
                requested_window=_window_json(start_at, end_at),
                proposed_windows=[{k: o.get(k) for k in ("start", "end", "tech_id")} for o in proposal.options],
            )
        # The caller's technician wins over the one the option suggested.
        chosen = tech_key or technician_key(proposal.options[index].get("tech_id"))
        now = timezone.now()
        # A confirmation replaces whatever booking the ticket still had (a reschedule).
        replaced = list(appointments_booked_for_ticket(ticket_id=ticket.id))
        for old in replaced:
            appointment_cancel(old, "Replaced by a newly confirmed window.")
        appointment = appointment_confirmed(
            ticket=ticket, start=start_at, end=end_at, actor=actor, technician_id=chosen, proposal=proposal
        )
        proposal.status = ScheduleProposal.Status.ACCEPTED
        proposal.accepted_option = index
        proposal.decided_at = now
        proposal.save(update_fields=["status", "accepted_option", "decided_at"])
        ticket.scheduled_start, ticket.scheduled_end = start_at, end_at
        change.transition(S.SCHEDULED)
        result = {
            "appointment_id": str(appointment.id),
            "proposal_id": str(proposal.id),
            "option_index": index,
            "tech_id": str(chosen) if chosen else None,
            "window": _window_json(start_at, end_at),
        }
        change.audit_payload.update({k: v for k, v in result.items() if k != "window"})
        if replaced:
            change.audit_payload["replaced_appointment_ids"] = [str(a.id) for a in replaced]
        change.audit_payload["customer_notification"] = booking_notify(ticket=ticket, appointment=appointment)
        return result

    request = {"start": _iso(start_at), "end": _iso(end_at), **({"tech_id": str(tech_key)} if tech_key else {})}
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=SCHEDULE_CONFIRM,
        payload=payload if payload is not None else request,
        apply=apply,
        expected_version=expected_version,
    )


# --- schedule.hold / release / rollback ------------------------------------------------------


def schedule_hold(
    *,
    actor: Actor,
    ticket_id: Any,
    hold_reason: Any,
    confirmation_window: Any,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Park a proposed or scheduled ticket until the customer confirms, keeping a snapshot of what it was."""
    _role_check(SCHEDULE_HOLD, actor)
    reason = hold_reason.strip().upper() if isinstance(hold_reason, str) else ""
    if reason not in ScheduleHold.Reason.values:
        raise invalid_request(
            f"hold_reason must be one of {', '.join(ScheduleHold.Reason.values)}.", field="hold_reason"
        )
    window_start, window_end = _window_object(confirmation_window, "confirmation_window")

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        active = hold_active_for_ticket(ticket_id=ticket.id)
        if active is not None:
            raise _scheduling_error(
                "SCHEDULE_HOLD_STATE_CONFLICT",
                "The ticket already has an active hold; release or roll it back first.",
                confirmation_id=str(active.id),
            )
        booked = list(appointments_booked_for_ticket(ticket_id=ticket.id))
        snapshot = {
            "state": ticket.state,
            "scheduled_start": _iso(ticket.scheduled_start),
            "scheduled_end": _iso(ticket.scheduled_end),
            "assigned_tech_id": str(ticket.assigned_tech_id) if ticket.assigned_tech_id else None,
            "appointments": [{"id": str(a.id), "status": a.status} for a in booked],
        }
        hold = ScheduleHold.objects.create(
            ticket=ticket,
            hold_reason=reason,
            confirmation_start=window_start,
            confirmation_end=window_end,
            snapshot=snapshot,
            created_by=actor.actor_id,
        )
        # While the customer decides, the slot stays theirs: HELD still reserves the technician.
        Appointment.objects.filter(
            pk__in=[a.id for a in booked if a.status == AppointmentStatus.CONFIRMED]
        ).update(status=AppointmentStatus.HELD, updated_at=timezone.now())
        change.transition(S.PENDING_CUSTOMER_CONFIRMATION)
        result = {
            "confirmation_id": str(hold.id),
            "hold_id": str(hold.id),
            "snapshot_id": str(hold.id),
            "hold_reason": reason,
            "hold_state": snapshot["state"],
            "confirmation_window": _window_json(window_start, window_end),
        }
        change.audit_payload.update({"confirmation_id": str(hold.id), "hold_state": snapshot["state"]})
        return result

    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=SCHEDULE_HOLD,
        payload=payload
        if payload is not None
        else {"hold_reason": reason, "confirmation_window": _window_json(window_start, window_end)},
        apply=apply,
        expected_version=expected_version,
    )


def _hold_for_restore(ticket: Ticket, confirmation_id: uuid.UUID, *, mismatch_code: str) -> ScheduleHold:
    hold = hold_active_for_ticket(ticket_id=ticket.id)
    if hold is None:
        raise _scheduling_error("HOLD_SNAPSHOT_MISSING", "This ticket has no active hold to return from.")
    if hold.id != confirmation_id:
        raise _scheduling_error(
            mismatch_code,
            "That confirmation id does not match the ticket's active hold.",
            confirmation_id=str(confirmation_id),
        )
    return hold


def _snapshot_restore(change: TicketChange, hold: ScheduleHold) -> dict:
    """Put the ticket and its bookings back exactly as the hold's snapshot recorded them."""
    ticket = change.ticket
    snapshot = hold.snapshot
    ticket.scheduled_start = _parse_iso(snapshot.get("scheduled_start"))
    ticket.scheduled_end = _parse_iso(snapshot.get("scheduled_end"))
    ticket.assigned_tech_id = technician_key(snapshot.get("assigned_tech_id"))
    recorded = {item["id"]: item["status"] for item in snapshot.get("appointments", [])}
    for appointment in Appointment.objects.filter(pk__in=list(recorded)).order_by("start", "id"):
        wanted = recorded[str(appointment.id)]
        if appointment.status != wanted:
            appointment.status = wanted
            appointment_save(appointment)
    change.transition(snapshot["state"])
    return {
        "restored_state": snapshot["state"],
        "restored_window": {"start": snapshot.get("scheduled_start"), "end": snapshot.get("scheduled_end")},
        "restored_appointments": snapshot.get("appointments", []),
    }


def schedule_release(
    *,
    actor: Actor,
    ticket_id: Any,
    customer_confirmation_id: Any,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """The customer confirmed: return the ticket exactly to its state and booking before the hold."""
    _role_check(SCHEDULE_RELEASE, actor)
    confirmation_key = _uuid(customer_confirmation_id, "customer_confirmation_id")

    def apply(change: TicketChange) -> dict:
        hold = _hold_for_restore(change.ticket, confirmation_key, mismatch_code="HOLD_CONFIRMATION_MISSING")
        now = timezone.now()
        if now > hold.confirmation_end:
            # A confirmation arriving after the window it was asked for is not one (as upstream).
            raise _scheduling_error(
                "CUSTOMER_CONFIRMATION_STALE",
                "The customer's confirmation window has passed; roll the hold back or propose again.",
                confirmation_id=str(hold.id),
                confirmation_window=_window_json(hold.confirmation_start, hold.confirmation_end),
            )
        restored = _snapshot_restore(change, hold)
        hold.status = ScheduleHold.Status.RELEASED
        hold.released_at, hold.released_by = now, actor.actor_id
        hold.save(update_fields=["status", "released_at", "released_by"])
        change.audit_payload.update({"confirmation_id": str(hold.id), "restored_state": restored["restored_state"]})
        return {"confirmation_id": str(hold.id), "hold_id": str(hold.id), "snapshot_id": str(hold.id), **restored}

    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=SCHEDULE_RELEASE,
        payload=payload if payload is not None else {"customer_confirmation_id": str(confirmation_key)},
        apply=apply,
        expected_version=expected_version,
    )


def schedule_rollback(
    *,
    actor: Actor,
    ticket_id: Any,
    confirmation_id: Any,
    reason: str = "",
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Undo a hold: return the ticket exactly to its snapshot, recording why."""
    # Upstream restores the same snapshot on rollback as on release; a rollback differs in
    # recording a reason, answering SCHEDULE_HOLD_STATE_CONFLICT for a wrong id, and (unlike
    # upstream) working after the confirmation window passed: undoing a stale hold is its point.
    _role_check(SCHEDULE_ROLLBACK, actor)
    confirmation_key = _uuid(confirmation_id, "confirmation_id")
    reason = (reason or "").strip() if isinstance(reason, str) else ""

    def apply(change: TicketChange) -> dict:
        hold = _hold_for_restore(change.ticket, confirmation_key, mismatch_code="SCHEDULE_HOLD_STATE_CONFLICT")
        restored = _snapshot_restore(change, hold)
        hold.status = ScheduleHold.Status.ROLLED_BACK
        hold.released_at, hold.released_by, hold.release_reason = timezone.now(), actor.actor_id, reason
        hold.save(update_fields=["status", "released_at", "released_by", "release_reason"])
        change.audit_payload.update({"confirmation_id": str(hold.id), "restored_state": restored["restored_state"]})
        return {
            "confirmation_id": str(hold.id),
            "hold_id": str(hold.id),
            "snapshot_id": str(hold.id),
            "reason": reason or None,
            **restored,
        }

    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=SCHEDULE_ROLLBACK,
        payload=payload
        if payload is not None
        else {"confirmation_id": str(confirmation_key), **({"reason": reason} if reason else {})},
        apply=apply,
        expected_version=expected_version,
    )


# --- assignment.recommend --------------------------------------------------------------------


def service_type_normalize(value: Any) -> str:
    """DOOR_WONT_LATCH from ' door_wont_latch_v2 ' (a template version suffix is dropped, as upstream)."""
    if not isinstance(value, str) or not value.strip():
        raise invalid_request("service_type is required.", field="service_type")
    return re.sub(r"_V\d+$", "", value.strip().upper())


def _jobs_phrase(count: int) -> str:
    if count == 0:
        return "no open jobs"
    return f"{count} open job" + ("" if count == 1 else "s")


def _candidates_rank(
    *,
    technicians: list[Technician],
    incident_types: list[str],
    region: str,
    availability: dict[uuid.UUID, tuple[bool, str]],
    loads: dict[uuid.UUID, int],
) -> list[dict]:
    """Score every technician and explain the score in plain words (no queries: all prefetched)."""
    candidates = []
    for technician in technicians:
        reasons: list[str] = []
        score = 0
        skill = technician_skill_level(technician, incident_types)
        if skill is not None:
            score += WEIGHT_SKILL + WEIGHT_SKILL_LEVEL * skill[1]
            reasons.append(f"{skill[0]} level {skill[1]}")
        else:
            reasons.append(f"no {incident_types[0]} skill")
        if not region:
            covers = True
            reasons.append("site has no service region")
        else:
            covers = region in technician_region_codes(technician)
            reasons.append(f"covers {region}" if covers else f"does not cover {region}")
        if covers:
            score += WEIGHT_REGION
        available, phrase = availability.get(technician.pk, (False, "no free window found"))
        reasons.append(phrase)
        if available:
            score += WEIGHT_FREE
        load = loads.get(technician.pk, 0)
        score -= WEIGHT_OPEN_JOB * load
        reasons.append(_jobs_phrase(load))
        candidates.append(
            {
                "tech_id": str(technician.pk),
                "name": technician.display_name,
                "tech_name": technician.display_name,
                "score": score,
                "available": available,
                "reasons": reasons,
                "reason": f"{technician.display_name}: " + ", ".join(reasons),
                "matches": {
                    "capability": skill is not None,
                    "skill_level": skill[1] if skill else None,
                    "zone": covers,
                    "available": available,
                    "active_load": load,
                },
            }
        )
    candidates.sort(key=lambda c: (-c["score"], c["matches"]["active_load"], c["name"], c["tech_id"]))
    return candidates


def _availability(
    ticket: Ticket, technicians: list[Technician], start: datetime | None, end: datetime | None
) -> dict[uuid.UUID, tuple[bool, str]]:
    """Per technician: can they take the job (the slot engine's shift, travel, booking and time-off
    rules), and the deciding fact in a few words.

    With a window, each technician is checked in that window; without one, the engine's best
    window for each technician in the next two weeks is named (only technicians with the skill
    and region are placed, so the others have none).
    """
    if start and end:
        checked = engine.placements_check(ticket=ticket, technicians=technicians, start=start, end=end)
        return {
            pk: (False, "; ".join(v.short for v in found)) if found else (True, "free in the window")
            for pk, found in checked.items()
        }
    suggestion = engine.slots_suggest(
        ticket=ticket, per_technician=True, technician_ids=[t.pk for t in technicians], use_ticket_preferences=False
    )
    site_zone = ticket.site.timezone
    found = {
        window.technician_id: (True, f"next free {engine.moment_text(window.start, site_zone)}")
        for window in suggestion.windows
    }
    days = f"{engine.DEFAULT_HORIZON_DAYS} days"
    return {t.pk: found.get(t.pk, (False, f"no free window in the next {days}")) for t in technicians}


def assignment_recommend(
    *,
    actor: Actor,
    ticket_id: Any,
    service_type: Any,
    limit: Any = RECOMMENDATION_DEFAULT_LIMIT,
    preferred_window: Any = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Rank active technicians for the job by skill, region, availability and load, with reasons."""
    _role_check(ASSIGNMENT_RECOMMEND, actor)
    wanted_type = service_type_normalize(service_type)
    if limit is None:
        limit = RECOMMENDATION_DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RECOMMENDATION_MAX_LIMIT:
        raise invalid_request(
            f"recommendation_limit must be an integer from 1 to {RECOMMENDATION_MAX_LIMIT}.", field="recommendation_limit"
        )
    window = _window_object(preferred_window, "preferred_window") if preferred_window is not None else None

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        start, end = window or (ticket.scheduled_start, ticket.scheduled_end)
        region = (
            Site.objects.filter(pk=ticket.site_id).values_list("service_region", flat=True).first() or ""
        ).strip().upper()
        incident_types = [wanted_type] + (
            [ticket.incident_type.upper()] if ticket.incident_type and ticket.incident_type.upper() != wanted_type else []
        )
        # A constant number of queries whatever the number of technicians: technicians with
        # skills and regions (3), one grouped count of open jobs, and the slot engine's fixed set.
        technicians = list(technicians_active())
        loads = technician_open_job_counts(technician_ids=[t.pk for t in technicians])
        availability = _availability(ticket, technicians, start, end)
        ranked = _candidates_rank(
            technicians=technicians,
            incident_types=incident_types,
            region=region,
            availability=availability,
            loads=loads,
        )[:limit]
        snapshot = RecommendationSnapshot.objects.create(
            ticket=ticket,
            service_type=wanted_type,
            window_start=start,
            window_end=end,
            recommended_tech_id=uuid.UUID(ranked[0]["tech_id"]) if ranked else None,
            candidates=ranked,
            created_by=actor.actor_id,
        )
        evaluated_at = _iso(snapshot.created_at)
        change.audit_payload.update(
            {
                "recommendation_snapshot_id": str(snapshot.id),
                "service_type": wanted_type,
                "candidate_count": len(ranked),
                "recommended_tech_id": ranked[0]["tech_id"] if ranked else None,
            }
        )
        return {
            "recommendation_snapshot_id": str(snapshot.id),
            "snapshot_id": str(snapshot.id),
            "service_type": wanted_type,
            "window": _window_json(start, end) if start and end else None,
            "evaluated_at": evaluated_at,
            "candidates": ranked,
            # The reference API's name for the same list.
            "recommendations": ranked,
        }

    request = {"service_type": wanted_type, "recommendation_limit": limit}
    if window:
        request["preferred_window"] = _window_json(*window)
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=ASSIGNMENT_RECOMMEND,
        payload=payload if payload is not None else request,
        apply=apply,
        expected_version=expected_version,
    )


# --- assignment.dispatch ---------------------------------------------------------------------


def _assignment_error(code: str, message: str, **details: Any) -> DispatchError:
    return DispatchError(code, message, status=409, dimension="assignment", details=details)


def _bypass_check(actor: Actor, mode: str, rationale: str, confirmation: Any) -> None:
    """From TRIAGED a job skips scheduling only as a confirmed, explained emergency by a known actor."""
    missing = []
    if mode != "EMERGENCY_BYPASS":
        missing.append("dispatch_mode=EMERGENCY_BYPASS")
    if not rationale:
        missing.append("dispatch_rationale")
    if confirmation is not True:
        missing.append("dispatch_confirmation=true")
    if not actor.actor_id:
        missing.append("actor identity")
    if missing:
        raise _assignment_error(
            "ASSIGNMENT_BYPASS_DENIED",
            "Dispatching a triaged ticket before scheduling needs an emergency bypass: " + ", ".join(missing) + ".",
            missing_requirements=missing,
        )


def _fit_wanted(ticket: Ticket) -> tuple[str, str]:
    return (ticket.incident_type or "").upper(), (ticket.site.service_region or "").upper()


def _fit_check(technician: Technician, ticket: Ticket) -> dict:
    """The technician must have the ticket's skill and cover the site's region (as upstream).
    Reads the fit annotated on the technician by technician_fit_annotations."""
    incident_type, region = _fit_wanted(ticket)
    level, covers = technician.skill_level, bool(technician.covers)
    if incident_type and level is None:
        raise _assignment_error(
            "ASSIGNMENT_CAPABILITY_MISMATCH",
            f"{technician.display_name} has no {incident_type} skill.",
            tech_id=str(technician.pk),
            service_type=incident_type,
        )
    if region and not covers:
        raise _assignment_error(
            "ASSIGNMENT_ZONE_MISMATCH",
            f"{technician.display_name} does not cover {region}.",
            tech_id=str(technician.pk),
            ticket_region=region,
        )
    return {"service_type": incident_type or None, "skill_level": level, "region": region or None}


def _local_window(site: Site, start: datetime, end: datetime) -> str:
    try:
        zone = ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return f"{local_start:%a %b} {local_start.day} {local_start:%H:%M}–{local_end:%H:%M}"


def _technician_notify(technician: Technician, ticket: Ticket, appointment: Appointment) -> dict:
    """Queue the technician's dispatch message in this transaction: it goes out only if the dispatch commits."""
    from dispatch.messaging.services import outbox_enqueue

    site = ticket.site
    urgency = "EMERGENCY job" if ticket.priority == "EMERGENCY" else "New job"
    # No access code in an SMS: the technician reads it in the job packet, behind their login.
    body = (
        f"{settings.DISPATCH_COMPANY_NAME}: {urgency} {ticket.short_ref} - {ticket.summary[:90]}. "
        f"{site.name}, {site.address}. {_local_window(site, appointment.start, appointment.end)}. "
        f"Details: {settings.DISPATCH_PUBLIC_URL}/tech/"
    )
    refused = []
    for channel in ("SMS", "EMAIL"):
        # The login's email is read only when the phone did not work (saves a query per dispatch).
        recipient = technician.phone if channel == "SMS" else technician.user.email
        if not recipient:
            continue
        try:
            message = outbox_enqueue(
                channel=channel, recipient=recipient, body=body, template="tech_dispatched", ticket=ticket
            )
        except DispatchError as exc:
            # An unusable number must not stop a dispatch; the email route is tried next and
            # the audit event says how (or whether) the technician was told.
            refused.append({"channel": channel, "code": exc.code})
            continue
        return {"outbox_id": str(message.id), "channel": channel, "refused": refused}
    return {"outbox_id": None, "channel": None, "refused": refused}


def assignment_dispatch(
    *,
    actor: Actor,
    ticket_id: Any,
    tech_id: Any,
    dispatch_mode: Any = "STANDARD",
    dispatch_rationale: Any = "",
    dispatch_confirmation: Any = False,
    recommendation_snapshot_id: Any = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Send a technician to the job: assign, book their time, queue their notification, DISPATCHED."""
    _role_check(ASSIGNMENT_DISPATCH, actor)
    tech_key = _uuid(tech_id, "tech_id")
    mode = (dispatch_mode or "STANDARD").strip().upper() if isinstance(dispatch_mode, str) or dispatch_mode is None else ""
    if mode not in DISPATCH_MODES:
        raise invalid_request("dispatch_mode must be STANDARD or EMERGENCY_BYPASS.", field="dispatch_mode")
    rationale = dispatch_rationale.strip() if isinstance(dispatch_rationale, str) else ""
    snapshot_key = _uuid(recommendation_snapshot_id, "recommendation_snapshot_id", required=False)

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        emergency = ticket.state == S.TRIAGED
        if emergency:
            _bypass_check(actor, mode, rationale, dispatch_confirmation)
        if snapshot_key is not None:
            snapshot = RecommendationSnapshot.objects.filter(pk=snapshot_key, ticket=ticket).first()
            if snapshot is None:
                raise _assignment_error(
                    "ASSIGNMENT_NOT_FOUND",
                    "No such recommendation snapshot for this ticket.",
                    recommendation_snapshot_id=str(snapshot_key),
                )
            if snapshot.recommended_tech_id != tech_key:
                raise _assignment_error(
                    "ASSIGNMENT_RECOMMENDATION_MISMATCH",
                    "The technician is not the one the cited recommendation named.",
                    recommendation_snapshot_id=str(snapshot_key),
                    recommended_tech_id=str(snapshot.recommended_tech_id) if snapshot.recommended_tech_id else None,
                    tech_id=str(tech_key),
                )
        incident_type, region = _fit_wanted(ticket)
        technician = technician_lock_for_booking(
            technician_id=tech_key, annotations=technician_fit_annotations(incident_type=incident_type, region_code=region)
        )
        fit = _fit_check(technician, ticket)
        now = timezone.now()
        appointment = None if emergency else appointments_booked_for_ticket(ticket_id=ticket.id).first()
        if appointment is not None:
            appointment.technician = technician
            appointment_save(appointment, technician=technician)
        else:
            start, end = ticket.scheduled_start, ticket.scheduled_end
            if emergency or not (start and end and end > now):
                # An emergency (or a booking whose window has passed) starts now, for as long
                # as this kind of job usually takes.
                start = now
                end = now + timedelta(minutes=engine.job_minutes(ticket.incident_type))
            appointment = appointment_confirmed(ticket=ticket, start=start, end=end, actor=actor, technician=technician)
            ticket.scheduled_start, ticket.scheduled_end = start, end
        ticket.assigned_tech = technician
        change.transition(S.DISPATCHED)
        notification = _technician_notify(technician, ticket, appointment)
        result = {
            "tech_id": str(technician.pk),
            "dispatch_mode": mode,
            "appointment_id": str(appointment.id),
            "window": _window_json(appointment.start, appointment.end),
            "notification_outbox_id": notification["outbox_id"],
        }
        change.audit_payload.update(
            {
                "dispatch_mode": mode,
                "appointment_id": str(appointment.id),
                "dispatch_validation": {
                    "tech_id": str(technician.pk),
                    "recommendation_snapshot_id": str(snapshot_key) if snapshot_key else None,
                    "matched_capability": True,
                    "matched_zone": True,
                    **fit,
                },
                "technician_notification": notification,
            }
        )
        return result

    request = {"tech_id": str(tech_key), "dispatch_mode": mode}
    if rationale:
        request["dispatch_rationale"] = rationale
    if dispatch_confirmation is not False:
        request["dispatch_confirmation"] = dispatch_confirmation
    if snapshot_key:
        request["recommendation_snapshot_id"] = str(snapshot_key)
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=ASSIGNMENT_DISPATCH,
        payload=payload if payload is not None else request,
        apply=apply,
        expected_version=expected_version,
    )


# --- dispatch.force_unassign -----------------------------------------------------------------


def dispatch_force_unassign(
    *,
    actor: Actor,
    ticket_id: Any,
    reason: Any = "",
    reassign_type: Any = "",
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Take the technician off the job: cancel their booking (kept as history), clear the assignment, SCHEDULED."""
    _role_check(DISPATCH_FORCE_UNASSIGN, actor)
    reason = reason.strip() if isinstance(reason, str) else ""
    reassign_type = reassign_type.strip() if isinstance(reassign_type, str) else ""

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        previous_tech = ticket.assigned_tech_id
        if ticket.state != S.SCHEDULED:
            # The graph has no edge back to SCHEDULED from some of the contract's from-states
            # (READY_TO_SCHEDULE, completed work): those are refused here with 409.
            change.transition(S.SCHEDULED)
        cancelled = []
        now = timezone.now()
        for appointment in appointments_booked_for_ticket(ticket_id=ticket.id):
            if appointment.technician_id is not None:
                appointment_cancel(appointment, reason or "Technician unassigned by the dispatcher.")
                cancelled.append(str(appointment.id))
            elif appointment.status == AppointmentStatus.HELD:
                # The ticket leaves the customer-confirmation hold: the unassigned slot is simply booked again.
                appointment.status = AppointmentStatus.CONFIRMED
                appointment.save(update_fields=["status", "updated_at"])
        hold = hold_active_for_ticket(ticket_id=ticket.id)
        if hold is not None:
            hold.status = ScheduleHold.Status.CANCELLED
            hold.released_at, hold.released_by = now, actor.actor_id
            hold.release_reason = "Ended by dispatch.force_unassign."
            hold.save(update_fields=["status", "released_at", "released_by", "release_reason"])
        ticket.assigned_tech = None
        result = {
            "previous_tech_id": str(previous_tech) if previous_tech else None,
            "cancelled_appointment_ids": cancelled,
            "ended_hold_id": str(hold.id) if hold else None,
        }
        change.audit_payload.update(result)
        return result

    request = {k: v for k, v in {"reason": reason, "reassign_type": reassign_type}.items() if v}
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=DISPATCH_FORCE_UNASSIGN,
        payload=payload if payload is not None else request,
        apply=apply,
        expected_version=expected_version,
    )


# --- tech.check_in ---------------------------------------------------------------------------


def tech_check_in(
    *,
    actor: Actor,
    ticket_id: Any,
    timestamp: Any,
    location: Any = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record the technician's arrival: DISPATCHED → ON_SITE → IN_PROGRESS in one call, with time and place."""
    _role_check(TECH_CHECK_IN, actor)
    arrived_at = _moment(timestamp, "timestamp")
    if location is not None and not isinstance(location, dict):
        raise invalid_request("location must be an object, e.g. {\"lat\": 37.8, \"lng\": -122.27}.", field="location")

    def apply(change: TicketChange) -> dict:
        ticket = change.ticket
        appointment = (
            appointments_booked_for_ticket(ticket_id=ticket.id).filter(technician_id=ticket.assigned_tech_id).first()
        )
        check_in = CheckIn.objects.create(
            ticket=ticket,
            appointment=appointment,
            technician_id=ticket.assigned_tech_id,
            arrived_at=arrived_at,
            location=location or {},
            recorded_by=actor.actor_id,
        )
        # Two transitions, one audit event: the executor writes both rows in this order.
        change.transition(S.ON_SITE)
        change.transition(S.IN_PROGRESS)
        change.audit_payload.update({"check_in_id": str(check_in.id), "arrived_at": _iso(arrived_at)})
        return {"check_in_id": str(check_in.id), "arrived_at": _iso(arrived_at), "location": location or {}}

    request = {"timestamp": _iso(arrived_at), **({"location": location} if location is not None else {})}
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=TECH_CHECK_IN,
        payload=payload if payload is not None else request,
        apply=apply,
        expected_version=expected_version,
    )


# --- time off ----------------------------------------------------------------------------------

TIME_OFF_MAX = timedelta(days=366)


def time_off_add(
    *, actor: Actor, technician_id: Any, start: Any, end: Any, reason: Any = "", payload: dict | None = None
) -> dict:
    """Record a technician's time off and list the booked jobs it falls on (it changes no ticket)."""
    _role_check(TIME_OFF_ADD, actor)
    start_at, end_at = _window(start, end, "", max_length=TIME_OFF_MAX)
    tech_key = _uuid(technician_id, "technician_id")
    reason = reason.strip()[:200] if isinstance(reason, str) else ""
    with transaction.atomic():
        technician = Technician.objects.filter(pk=tech_key).first()
        if technician is None:
            raise invalid_request(f"No technician {tech_key}.", field="technician_id")
        time_off = TimeOff.objects.create(
            technician=technician, start=start_at, end=end_at, reason=reason, created_by=actor.actor_id
        )
        # The dispatcher decides what happens to these (move, reassign, tell the customer):
        # time off alone never changes a booked job.
        booked = (
            appointments_booked_overlapping(start=start_at, end=end_at, technician_ids=[technician.pk])
            .select_related("ticket")
            .order_by("start", "id")
        )
        affected = [
            {
                "appointment_id": str(appointment.id),
                "ticket_id": str(appointment.ticket_id),
                "ticket_ref": appointment.ticket.short_ref,
                "ticket_state": appointment.ticket.state,
                "summary": appointment.ticket.summary[:120],
                "window": _window_json(appointment.start, appointment.end),
            }
            for appointment in booked
        ]
        record = {
            "time_off_id": str(time_off.id),
            "technician_id": str(technician.pk),
            "window": _window_json(start_at, end_at),
            "reason": reason,
            "affected_appointment_ids": [item["appointment_id"] for item in affected],
        }
        audit_only(actor=actor, command=TIME_OFF_ADD, payload=payload if payload is not None else record)
    return {"time_off_id": str(time_off.id), "technician_id": str(technician.pk), "affected": affected}
