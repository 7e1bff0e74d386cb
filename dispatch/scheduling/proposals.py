"""Offering and booking windows: the contract's schedule.propose, schedule.confirm,
schedule.hold, schedule.release and schedule.rollback, and the slot engine's suggestions.

Each write is one `ticket_change` (one transaction, the ticket row locked, one audit event)
that writes its own rows inside it; a booking goes through `appointment_save`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import invalid_request
from dispatch.technicians.models import Technician
from dispatch.technicians.selectors import technician_key
from dispatch.technicians.services import technician_lock_for_booking
from dispatch.tickets import policy
from dispatch.tickets.commands import command
from dispatch.tickets.selectors import ticket_get_for_actor
from dispatch.tickets.services import Outcome, TicketChange, ticket_change
from dispatch.tickets.states import TicketState

from . import engine
from .appointments import (
    appointment_cancel,
    appointment_confirmed,
    appointment_save,
    scheduling_error,
    window_passed_error,
)
from .crews import crew_complete, crew_need, visit_book
from .inputs import (
    bounded_int,
    iso,
    iso_parse,
    role_check,
    uuid_parse,
    window_json,
    window_object_parse,
    window_parse,
)
from .models import Appointment, AppointmentStatus, ScheduleHold, ScheduleProposal
from .notifications import booking_notify, proposal_notify
from .selectors import appointments_booked_for_ticket, hold_active_for_ticket, proposal_open_for_ticket

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
# Beyond the contract: the slot engine's read-only suggestions (an agent then calls
# schedule.propose with them).
SCHEDULE_SUGGEST = command(
    "schedule.suggest",
    ["dispatcher", "agent"],
    ["READY_TO_SCHEDULE", "SCHEDULE_PROPOSED", "PENDING_CUSTOMER_CONFIRMATION"],
    None,
    "Suggest windows",
)

MAX_PROPOSAL_OPTIONS = 10
MAX_WINDOW = timedelta(hours=12)
SUGGEST_MAX_HORIZON_DAYS = 60
SUGGEST_MAX_LIMIT = 10


def _options_clean(options: Any) -> list[dict]:
    if not isinstance(options, list) or not options:
        raise invalid_request("options must be a non-empty list of windows.", field="options")
    if len(options) > MAX_PROPOSAL_OPTIONS:
        raise invalid_request(f"Propose at most {MAX_PROPOSAL_OPTIONS} windows.", field="options")
    cleaned = []
    now = timezone.now()
    for index, option in enumerate(options):
        field = f"options[{index}]"
        if not isinstance(option, dict):
            raise invalid_request(f"{field} must be an object with start and end.", field=field)
        start, end = window_parse(option.get("start"), option.get("end"), field, max_length=MAX_WINDOW)
        if start <= now:
            # The customer would be asked to choose a time that has already come.
            raise window_passed_error(start, end, field=field)
        tech_id = uuid_parse(option.get("tech_id"), f"{field}.tech_id", required=False)
        # Anything else the proposer attached (a score, a reason) is kept as given.
        extra = {k: v for k, v in option.items() if k not in ("start", "end", "tech_id")}
        cleaned.append({**extra, "start": iso(start), "end": iso(end), "tech_id": str(tech_id) if tech_id else None})
    tech_ids = {o["tech_id"] for o in cleaned if o["tech_id"]}
    if tech_ids:
        known = {str(pk) for pk in Technician.objects.filter(pk__in=tech_ids).values_list("pk", flat=True)}
        unknown = sorted(tech_ids - known)
        if unknown:
            raise invalid_request(f"No technician {unknown[0]}.", field="options", unknown_tech_ids=unknown)
    return cleaned


# --- schedule.propose ------------------------------------------------------------------------


def schedule_propose(
    *, actor: Actor, ticket_id: Any, options: Any, request: dict | None = None, expected_version: int | None = None
) -> Outcome:
    """Offer the customer appointment windows and move the ticket to SCHEDULE_PROPOSED."""
    role_check(SCHEDULE_PROPOSE, actor)
    cleaned = _options_clean(options)
    with ticket_change(
        actor=actor,
        command=SCHEDULE_PROPOSE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"options": cleaned},
    ) as change:
        ticket = change.ticket
        now = timezone.now()
        superseded = ScheduleProposal.objects.filter(ticket=ticket, status=ScheduleProposal.Status.OPEN).update(
            status=ScheduleProposal.Status.SUPERSEDED, decided_at=now
        )
        proposal = ScheduleProposal.objects.create(ticket=ticket, options=cleaned, created_by=actor.actor_id)
        # As in the reference API, the first window shows as the ticket's tentative schedule
        # until one is confirmed.
        ticket.scheduled_start = iso_parse(cleaned[0]["start"])
        ticket.scheduled_end = iso_parse(cleaned[0]["end"])
        change.transition(TicketState.SCHEDULE_PROPOSED)
        change.audit_payload.update({"proposal_id": str(proposal.id), "superseded_proposals": superseded})
        # The customer is asked in the same transaction: a rolled-back proposal sends nothing.
        change.audit_payload["customer_notification"] = proposal_notify(ticket=ticket, proposal=proposal)
        change.result = {"proposal_id": str(proposal.id), "options": cleaned}
    return change.outcome


# --- schedule.suggest (read-only) ---------------------------------------------------------------


def window_visit_json(window: engine.Window) -> dict:
    """A crew or multi-day window's crew (lead first) and days; nothing for an ordinary window, so
    its JSON stays as it always was. schedule.propose keeps these keys in the options it is given,
    and schedule.confirm books that crew."""
    if not (window.crew or window.days):
        return {}
    return {
        "crew": [{"tech_id": str(tech_id), "tech_name": name} for tech_id, name in window.crew],
        "days": [window_json(start, end) for start, end in window.days],
    }


def suggestion_json(suggestion: engine.Suggestion) -> dict:
    """The engine's answer as plain JSON (what the tool, the board and the admin show)."""
    return {
        "ticket_id": str(suggestion.ticket_id),
        "windows": [
            {
                "tech_id": str(window.technician_id),
                "tech_name": window.technician_name,
                "start": iso(window.start),
                "end": iso(window.end),
                "arrival_window": window_json(window.arrival_start, window.arrival_end),
                "score": window.score,
                "reason": window.reason,
                "travel_minutes": window.travel_minutes,
                "added_travel_minutes": window.added_travel_minutes,
                "skill_level": window.skill_level,
                **window_visit_json(window),
            }
            for window in suggestion.windows
        ],
        "explanation": suggestion.explanation,
        "excluded": suggestion.excluded,
        "duration_minutes": suggestion.duration_minutes,
        "sla_due": iso(suggestion.sla_due),
        "horizon": window_json(suggestion.horizon_start, suggestion.horizon_end),
        "customer_preferences": [window_json(a, b) for a, b in suggestion.preferences]
        if suggestion.preferences is not None
        else None,
    }


def schedule_suggest(
    *,
    actor: Actor,
    ticket_id: Any,
    horizon_days: Any = engine.DEFAULT_HORIZON_DAYS,
    limit: Any = engine.DEFAULT_LIMIT,
) -> dict:
    """The slot engine's best windows for a schedulable ticket, with reasons (reads only; no audit event)."""
    role_check(SCHEDULE_SUGGEST, actor)
    horizon = bounded_int(horizon_days, "horizon_days", 1, SUGGEST_MAX_HORIZON_DAYS, engine.DEFAULT_HORIZON_DAYS)
    count = bounded_int(limit, "limit", 1, SUGGEST_MAX_LIMIT, engine.DEFAULT_LIMIT)
    key = uuid_parse(ticket_id, "ticket_id")
    # A read: no lock is taken while the engine runs, and nothing is written.
    ticket = ticket_get_for_actor(actor=actor, ticket_id=key, related=("site",))
    refusal = policy.state_refusal(SCHEDULE_SUGGEST, ticket)
    if refusal:
        raise refusal
    return suggestion_json(engine.slots_suggest(ticket=ticket, horizon_days=horizon, limit=count))


# --- schedule.confirm ------------------------------------------------------------------------


def _option_match(proposal: ScheduleProposal, start: datetime, end: datetime, tech_id: uuid.UUID | None) -> int | None:
    """Index of the proposed option with exactly this window (preferring one naming `tech_id`)."""
    matches = [
        index
        for index, option in enumerate(proposal.options)
        if iso_parse(option.get("start")) == start and iso_parse(option.get("end")) == end
    ]
    if tech_id is not None:
        for index in matches:
            if proposal.options[index].get("tech_id") == str(tech_id):
                return index
    return matches[0] if matches else None


def _option_crew(option: dict) -> list[uuid.UUID]:
    """The crew a proposed option named (as suggestions list it), lead first; what cannot be read
    is ignored, as the option's other extras are (the booking checks the crew it books)."""
    crew = option.get("crew")
    if not isinstance(crew, list):
        return []
    found = []
    for item in crew[:8]:
        key = technician_key(item.get("tech_id") if isinstance(item, dict) else item)
        if key is not None and key not in found:
            found.append(key)
    return found


def schedule_confirm(
    *,
    actor: Actor,
    ticket_id: Any,
    start: Any,
    end: Any,
    tech_id: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Book one of the open proposal's windows as a CONFIRMED appointment; the ticket becomes SCHEDULED."""
    role_check(SCHEDULE_CONFIRM, actor)
    start_at, end_at = window_parse(start, end, "")
    tech_key = uuid_parse(tech_id, "tech_id", required=False)
    asked = {"start": iso(start_at), "end": iso(end_at), **({"tech_id": str(tech_key)} if tech_key else {})}
    with ticket_change(
        actor=actor,
        command=SCHEDULE_CONFIRM,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=asked,
    ) as change:
        ticket = change.ticket
        proposal = proposal_open_for_ticket(ticket_id=ticket.id)
        if proposal is None:
            raise scheduling_error(
                "SCHEDULE_WINDOW_NOT_PROPOSED", "This ticket has no open proposal; propose windows first."
            )
        index = _option_match(proposal, start_at, end_at, tech_key)
        if index is None:
            raise scheduling_error(
                "SCHEDULE_WINDOW_NOT_PROPOSED",
                "That window is not one of the proposed options.",
                requested_window=window_json(start_at, end_at),
                proposed_windows=[{k: o.get(k) for k in ("start", "end", "tech_id")} for o in proposal.options],
            )
        if start_at <= timezone.now():
            # Proposed while it was ahead, but the customer (or the dispatcher) answered too late:
            # booking it would confirm a visit that should already have begun.
            raise window_passed_error(start_at, end_at, proposal_id=str(proposal.id))
        # The caller's technician wins over the one the option suggested.
        chosen = tech_key or technician_key(proposal.options[index].get("tech_id"))
        now = timezone.now()
        # A confirmation replaces whatever booking the ticket still had (a reschedule): every
        # part of a crew or multi-day visit.
        replaced = list(appointments_booked_for_ticket(ticket_id=ticket.id))
        for old in replaced:
            appointment_cancel(old, "Replaced by a newly confirmed window.")
        need = crew_need(ticket.incident_type)
        visit = None
        if need.together:
            named = [chosen] if chosen else []
            named += [pk for pk in _option_crew(proposal.options[index]) if pk not in named]
            crew_ids = crew_complete(
                ticket=ticket, need=need, named=named[: need.size], start=start_at, end=end_at, now=now
            )
            # The customer chose this window from the proposal: their stated preferences were
            # applied when it was offered.
            visit = visit_book(
                ticket=ticket,
                actor=actor,
                need=need,
                crew_ids=crew_ids,
                start=start_at,
                end=end_at,
                now=now,
                proposal=proposal,
                use_ticket_preferences=False,
            )
            appointment = visit.first
            chosen = visit.lead.pk
            ticket.assigned_tech = visit.lead
        else:
            appointment = appointment_confirmed(
                ticket=ticket, start=start_at, end=end_at, actor=actor, technician_id=chosen, proposal=proposal
            )
        proposal.status = ScheduleProposal.Status.ACCEPTED
        proposal.accepted_option = index
        proposal.decided_at = now
        proposal.save(update_fields=["status", "accepted_option", "decided_at"])
        ticket.scheduled_start, ticket.scheduled_end = start_at, visit.run[-1][1] if visit else end_at
        # The booked window's technician (a crew's lead) is the job's technician from here on: the
        # ticket list, the dispatch form and the technician's phone read the assignment, not the
        # booking. A window booked without a technician leaves whoever is assigned (a job back from
        # a hold keeps its technician).
        previous_tech_id = ticket.assigned_tech_id
        if chosen is not None:
            ticket.assigned_tech_id = chosen
        change.transition(TicketState.SCHEDULED)
        result = {
            "appointment_id": str(appointment.id),
            "proposal_id": str(proposal.id),
            "option_index": index,
            "tech_id": str(chosen) if chosen else None,
            "window": window_json(start_at, end_at),
            **(visit.as_json() if visit else {}),
        }
        change.audit_payload.update({k: v for k, v in result.items() if k != "window"})
        if previous_tech_id is not None and str(previous_tech_id) != str(ticket.assigned_tech_id):
            change.audit_payload["previous_tech_id"] = str(previous_tech_id)
        if replaced:
            change.audit_payload["replaced_appointment_ids"] = [str(a.id) for a in replaced]
        change.audit_payload["customer_notification"] = booking_notify(ticket=ticket, appointment=appointment)
        change.result = result
    return change.outcome


# --- schedule.hold / release / rollback ------------------------------------------------------


def schedule_hold(
    *,
    actor: Actor,
    ticket_id: Any,
    hold_reason: Any,
    confirmation_window: Any,
    request: dict | None = None,
    facts: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Park a proposed or scheduled ticket until the customer confirms, keeping a snapshot of what it was.

    `facts` are what a calling service adds to the audit event (the stale-proposal wake-up: why it held).
    """
    role_check(SCHEDULE_HOLD, actor)
    reason = hold_reason.strip().upper() if isinstance(hold_reason, str) else ""
    if reason not in ScheduleHold.Reason.values:
        raise invalid_request(
            f"hold_reason must be one of {', '.join(ScheduleHold.Reason.values)}.", field="hold_reason"
        )
    window_start, window_end = window_object_parse(confirmation_window, "confirmation_window")
    audit = {"hold_reason": reason, "confirmation_window": window_json(window_start, window_end), **(facts or {})}
    with ticket_change(
        actor=actor,
        command=SCHEDULE_HOLD,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        ticket = change.ticket
        active = hold_active_for_ticket(ticket_id=ticket.id)
        if active is not None:
            raise scheduling_error(
                "SCHEDULE_HOLD_STATE_CONFLICT",
                "The ticket already has an active hold; release or roll it back first.",
                confirmation_id=str(active.id),
            )
        booked = list(appointments_booked_for_ticket(ticket_id=ticket.id))
        snapshot = {
            "state": ticket.state,
            "scheduled_start": iso(ticket.scheduled_start),
            "scheduled_end": iso(ticket.scheduled_end),
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
        Appointment.objects.filter(pk__in=[a.id for a in booked if a.status == AppointmentStatus.CONFIRMED]).update(
            status=AppointmentStatus.HELD, updated_at=timezone.now()
        )
        change.transition(TicketState.PENDING_CUSTOMER_CONFIRMATION)
        change.audit_payload.update({"confirmation_id": str(hold.id), "hold_state": snapshot["state"]})
        change.result = {
            "confirmation_id": str(hold.id),
            "hold_id": str(hold.id),
            "snapshot_id": str(hold.id),
            "hold_reason": reason,
            "hold_state": snapshot["state"],
            "confirmation_window": window_json(window_start, window_end),
        }
    return change.outcome


def _hold_for_restore(change: TicketChange, confirmation_id: uuid.UUID, *, mismatch_code: str) -> ScheduleHold:
    hold = hold_active_for_ticket(ticket_id=change.ticket.id)
    if hold is None:
        raise scheduling_error("HOLD_SNAPSHOT_MISSING", "This ticket has no active hold to return from.")
    if hold.id != confirmation_id:
        raise scheduling_error(
            mismatch_code,
            "That confirmation id does not match the ticket's active hold.",
            confirmation_id=str(confirmation_id),
        )
    return hold


def _snapshot_restore(change: TicketChange, hold: ScheduleHold) -> dict:
    """Put the ticket and its bookings back exactly as the hold's snapshot recorded them."""
    ticket = change.ticket
    snapshot = hold.snapshot
    ticket.scheduled_start = iso_parse(snapshot.get("scheduled_start"))
    ticket.scheduled_end = iso_parse(snapshot.get("scheduled_end"))
    ticket.assigned_tech_id = technician_key(snapshot.get("assigned_tech_id"))
    recorded = {item["id"]: item["status"] for item in snapshot.get("appointments", [])}
    appointments = list(Appointment.objects.filter(pk__in=list(recorded)).order_by("start", "id"))
    # Their technicians locked in one order (by id), as a crew booking takes them, so a restore
    # and a booking that share technicians queue rather than deadlock.
    for technician_id in sorted({a.technician_id for a in appointments if a.technician_id}, key=str):
        technician_lock_for_booking(technician_id=technician_id)
    for appointment in appointments:
        wanted = recorded[str(appointment.id)]
        if appointment.status != wanted:
            appointment.status = wanted
            appointment_save(appointment)
    change.transition(snapshot["state"])
    change.audit_payload.update({"confirmation_id": str(hold.id), "restored_state": snapshot["state"]})
    return {
        "confirmation_id": str(hold.id),
        "hold_id": str(hold.id),
        "snapshot_id": str(hold.id),
        "restored_state": snapshot["state"],
        "restored_window": {"start": snapshot.get("scheduled_start"), "end": snapshot.get("scheduled_end")},
        "restored_appointments": snapshot.get("appointments", []),
    }


def schedule_release(
    *,
    actor: Actor,
    ticket_id: Any,
    customer_confirmation_id: Any,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """The customer confirmed: return the ticket exactly to its state and booking before the hold."""
    role_check(SCHEDULE_RELEASE, actor)
    confirmation_key = uuid_parse(customer_confirmation_id, "customer_confirmation_id")
    with ticket_change(
        actor=actor,
        command=SCHEDULE_RELEASE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"customer_confirmation_id": str(confirmation_key)},
    ) as change:
        hold = _hold_for_restore(change, confirmation_key, mismatch_code="HOLD_CONFIRMATION_MISSING")
        now = timezone.now()
        if now > hold.confirmation_end:
            # A confirmation arriving after the window it was asked for is not one (as upstream).
            raise scheduling_error(
                "CUSTOMER_CONFIRMATION_STALE",
                "The customer's confirmation window has passed; roll the hold back or propose again.",
                confirmation_id=str(hold.id),
                confirmation_window=window_json(hold.confirmation_start, hold.confirmation_end),
            )
        change.result = _snapshot_restore(change, hold)
        hold.status = ScheduleHold.Status.RELEASED
        hold.released_at, hold.released_by = now, actor.actor_id
        hold.save(update_fields=["status", "released_at", "released_by"])
    return change.outcome


def schedule_rollback(
    *,
    actor: Actor,
    ticket_id: Any,
    confirmation_id: Any,
    reason: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Undo a hold: return the ticket exactly to its snapshot, recording why."""
    # Upstream restores the same snapshot on rollback as on release; a rollback differs in
    # recording a reason, answering SCHEDULE_HOLD_STATE_CONFLICT for a wrong id, and (unlike
    # upstream) working after the confirmation window passed: undoing a stale hold is its point.
    role_check(SCHEDULE_ROLLBACK, actor)
    confirmation_key = uuid_parse(confirmation_id, "confirmation_id")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    with ticket_change(
        actor=actor,
        command=SCHEDULE_ROLLBACK,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"confirmation_id": str(confirmation_key), **({"reason": reason} if reason else {})},
    ) as change:
        hold = _hold_for_restore(change, confirmation_key, mismatch_code="SCHEDULE_HOLD_STATE_CONFLICT")
        restored = _snapshot_restore(change, hold)
        hold.status = ScheduleHold.Status.ROLLED_BACK
        hold.released_at, hold.released_by, hold.release_reason = timezone.now(), actor.actor_id, reason
        hold.save(update_fields=["status", "released_at", "released_by", "release_reason"])
        change.result = {**restored, "reason": reason or None}
    return change.outcome
