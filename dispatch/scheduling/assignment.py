"""Who takes the job: the contract's assignment.recommend, assignment.dispatch and
dispatch.force_unassign.

A recommendation is a read: the slot engine runs without the ticket's lock and the ticket is not
changed; only the snapshot a dispatch may cite and its audit event are written. Dispatch and
unassign are `ticket_change`s that book or cancel the technician's time in the same transaction.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician
from dispatch.technicians.selectors import (
    technician_fit_annotations,
    technician_open_job_counts,
    technician_region_codes,
    technician_skill_level,
    technicians_active,
)
from dispatch.technicians.services import technician_lock_for_booking
from dispatch.tickets import policy
from dispatch.tickets.commands import command
from dispatch.tickets.models import Site, Ticket
from dispatch.tickets.selectors import ticket_get_for_actor
from dispatch.tickets.services import Outcome, audit_only, ticket_change
from dispatch.tickets.states import TicketState

from . import engine, ranking
from .appointments import appointment_cancel, appointment_confirmed, appointment_save
from .inputs import iso, role_check, uuid_parse, window_json, window_object_parse
from .models import AppointmentStatus, RecommendationSnapshot, ScheduleHold
from .notifications import emergency_dispatch_notify
from .selectors import appointments_booked_for_ticket, hold_active_for_ticket

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

RECOMMENDATION_DEFAULT_LIMIT = 5
RECOMMENDATION_MAX_LIMIT = 20
DISPATCH_MODES = ("STANDARD", "EMERGENCY_BYPASS")


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
    """Score every technician with the slot engine's weights and explain it in plain words (no queries)."""
    weight = ranking.weights()
    candidates = []
    for technician in technicians:
        reasons: list[str] = []
        skill = technician_skill_level(technician, incident_types)
        reasons.append(f"{skill[0]} level {skill[1]}" if skill else f"no {incident_types[0]} skill")
        if not region:
            covers = True
            reasons.append("site has no service region")
        else:
            covers = region in technician_region_codes(technician)
            reasons.append(f"covers {region}" if covers else f"does not cover {region}")
        available, phrase = availability.get(technician.pk, (False, "no free window found"))
        reasons.append(phrase)
        load = loads.get(technician.pk, 0)
        reasons.append(_jobs_phrase(load))
        # Each open job weighs as a typical job's hours of work already booked.
        parts = ranking.score_parts(
            weight, skill_level=skill[1] if skill else None, booked_minutes=load * engine.DEFAULT_JOB_MINUTES
        )
        score = ranking.score(parts)
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
    candidates.sort(
        key=lambda c: (
            ranking.candidate_order(
                has_skill=c["matches"]["capability"],
                available=c["available"],
                covers_region=c["matches"]["zone"],
                score_value=c["score"],
            ),
            c["matches"]["active_load"],
            c["name"],
            c["tech_id"],
        )
    )
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


def technicians_ranked(
    *, ticket: Ticket, service_type: str, start: datetime | None, end: datetime | None
) -> list[dict]:
    """Every active technician for this job, best first, each with its score and reasons (reads only).

    A constant number of queries whatever the number of technicians: technicians with skills and
    regions (3), one grouped count of open jobs, and the slot engine's fixed set.
    """
    region = (ticket.site.service_region or "").strip().upper()
    incident_types = [service_type] + (
        [ticket.incident_type.upper()] if ticket.incident_type and ticket.incident_type.upper() != service_type else []
    )
    technicians = list(technicians_active())
    loads = technician_open_job_counts(technician_ids=[t.pk for t in technicians])
    return _candidates_rank(
        technicians=technicians,
        incident_types=incident_types,
        region=region,
        availability=_availability(ticket, technicians, start, end),
        loads=loads,
    )


def assignment_recommend(
    *,
    actor: Actor,
    ticket_id: Any,
    service_type: Any,
    limit: Any = RECOMMENDATION_DEFAULT_LIMIT,
    preferred_window: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Rank active technicians for the job by skill, region, availability and load, with reasons.

    The ticket is read, not locked or changed (its version stays): the snapshot that
    assignment.dispatch may cite and one audit event on the ticket's chain are all it writes.
    """
    role_check(ASSIGNMENT_RECOMMEND, actor)
    wanted_type = service_type_normalize(service_type)
    if limit is None:
        limit = RECOMMENDATION_DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RECOMMENDATION_MAX_LIMIT:
        raise invalid_request(
            f"recommendation_limit must be an integer from 1 to {RECOMMENDATION_MAX_LIMIT}.",
            field="recommendation_limit",
        )
    window = window_object_parse(preferred_window, "preferred_window") if preferred_window is not None else None
    ticket = ticket_get_for_actor(actor=actor, ticket_id=ticket_id, related=("site",))
    refusal = policy.version_refusal(ticket, expected_version) or policy.state_refusal(ASSIGNMENT_RECOMMEND, ticket)
    if refusal:
        raise refusal
    start, end = window or (ticket.scheduled_start, ticket.scheduled_end)
    ranked = technicians_ranked(ticket=ticket, service_type=wanted_type, start=start, end=end)[:limit]
    recommended = ranked[0]["tech_id"] if ranked else None
    audit = {"service_type": wanted_type, "recommendation_limit": limit}
    if window:
        audit["preferred_window"] = window_json(*window)
    with transaction.atomic():
        snapshot = RecommendationSnapshot.objects.create(
            ticket=ticket,
            service_type=wanted_type,
            window_start=start,
            window_end=end,
            recommended_tech_id=uuid.UUID(recommended) if recommended else None,
            candidates=ranked,
            created_by=actor.actor_id,
        )
        # The event records the state the recommendation was computed in; appending it locks
        # the ticket row only for the chain head, after the engine has run.
        audit.update(
            {
                "recommendation_snapshot_id": str(snapshot.id),
                "candidate_count": len(ranked),
                "recommended_tech_id": recommended,
            }
        )
        event = audit_only(
            actor=actor,
            command=ASSIGNMENT_RECOMMEND,
            ticket=ticket,
            payload={**audit, **({"request": request} if request else {})},
        )
    result = {
        "recommendation_snapshot_id": str(snapshot.id),
        "snapshot_id": str(snapshot.id),
        "service_type": wanted_type,
        "window": window_json(start, end) if start and end else None,
        "evaluated_at": iso(snapshot.created_at),
        "candidates": ranked,
        # The reference API's name for the same list.
        "recommendations": ranked,
    }
    return Outcome(ticket=ticket, event=event, result=result)


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


# Without a technician's home or the site's coordinates, how long an emergency trip is assumed to take.
EMERGENCY_TRAVEL_FALLBACK_MINUTES = 30


def _travel_minutes(technician: Technician, site: Site) -> int:
    home = (technician.home_lat, technician.home_lng)
    start = (float(home[0]), float(home[1])) if None not in home else None
    end = (float(site.lat), float(site.lng)) if site.lat is not None and site.lng is not None else None
    if start is None or end is None:
        return EMERGENCY_TRAVEL_FALLBACK_MINUTES
    return engine.travel_minutes(start, end)


def _technician_notify(technician: Technician, ticket: Ticket, appointment) -> dict:
    """Queue the technician's dispatch message in this transaction: it goes out only if the dispatch commits."""
    from dispatch.messaging.services import outbox_enqueue

    site = ticket.site
    urgency = "EMERGENCY job" if ticket.priority == "EMERGENCY" else "New job"
    # No access code in an SMS: the technician reads it in the job packet, behind their login.
    body = (
        f"{settings.DISPATCH_COMPANY_NAME}: {urgency} {ticket.short_ref} - {ticket.summary[:90]}. "
        f"{site.name}, {site.address}. {_local_window(site, appointment.start, appointment.end)}. "
        # A "Y" back acknowledges the job (tech_replies.py).
        # The job's own page on the technician's phone (dispatch/field).
        f"Reply Y to acknowledge. Details: {settings.DISPATCH_PUBLIC_URL}/tech/jobs/{ticket.id}/"
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


def _snapshot_check(ticket: Ticket, snapshot_key: uuid.UUID, tech_key: uuid.UUID) -> None:
    """A cited recommendation must be this ticket's and must have named this technician."""
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


def assignment_dispatch(
    *,
    actor: Actor,
    ticket_id: Any,
    tech_id: Any,
    dispatch_mode: Any = "STANDARD",
    dispatch_rationale: Any = "",
    dispatch_confirmation: Any = False,
    recommendation_snapshot_id: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Send a technician to the job: assign, book their time, queue their notification, DISPATCHED."""
    role_check(ASSIGNMENT_DISPATCH, actor)
    tech_key = uuid_parse(tech_id, "tech_id")
    mode = (
        (dispatch_mode or "STANDARD").strip().upper() if isinstance(dispatch_mode, str) or dispatch_mode is None else ""
    )
    if mode not in DISPATCH_MODES:
        raise invalid_request("dispatch_mode must be STANDARD or EMERGENCY_BYPASS.", field="dispatch_mode")
    rationale = dispatch_rationale.strip() if isinstance(dispatch_rationale, str) else ""
    snapshot_key = uuid_parse(recommendation_snapshot_id, "recommendation_snapshot_id", required=False)
    asked: dict[str, Any] = {"tech_id": str(tech_key), "dispatch_mode": mode}
    if rationale:
        asked["dispatch_rationale"] = rationale
    if dispatch_confirmation is not False:
        asked["dispatch_confirmation"] = dispatch_confirmation
    if snapshot_key:
        asked["recommendation_snapshot_id"] = str(snapshot_key)
    with ticket_change(
        actor=actor,
        command=ASSIGNMENT_DISPATCH,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=asked,
    ) as change:
        ticket = change.ticket
        emergency = ticket.state == TicketState.TRIAGED
        if emergency:
            _bypass_check(actor, mode, rationale, dispatch_confirmation)
        if snapshot_key is not None:
            _snapshot_check(ticket, snapshot_key, tech_key)
        incident_type, region = _fit_wanted(ticket)
        technician = technician_lock_for_booking(
            technician_id=tech_key,
            annotations=technician_fit_annotations(incident_type=incident_type, region_code=region),
        )
        fit = _fit_check(technician, ticket)
        now = timezone.now()
        booked = [] if emergency else list(appointments_booked_for_ticket(ticket_id=ticket.id))
        appointment = booked[0] if booked else None
        if appointment is not None and appointment.visit is not None:
            # A crew or multi-day visit keeps the crew it was booked with: the dispatched
            # technician leads it from their own first part; nobody's part is rebooked.
            appointment = next((a for a in booked if a.technician_id == technician.pk), None)
            if appointment is None:
                raise _assignment_error(
                    "ASSIGNMENT_NOT_ON_CREW",
                    f"{technician.display_name} is not on this job's crew; dispatch one of its crew, "
                    "or book the job again with another crew.",
                    tech_id=str(technician.pk),
                    crew=sorted({str(a.technician_id) for a in booked if a.technician_id}),
                )
        elif appointment is not None:
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
        change.transition(TicketState.DISPATCHED)
        notification = _technician_notify(technician, ticket, appointment)
        # A crew job: every other crew member hears of it too, with their own first part's time.
        crew_firsts: dict = {}
        if appointment.visit is not None:
            for part in sorted(booked, key=lambda a: a.start):
                if part.technician_id not in (None, technician.pk):
                    crew_firsts.setdefault(part.technician_id, part)
        if crew_firsts:
            change.audit_payload["crew_notifications"] = {
                str(tech_id): _technician_notify(part.technician, ticket, part) for tech_id, part in crew_firsts.items()
            }
        if emergency:
            # Someone waiting on an emergency hears who is coming and when, as the technician does.
            arrival = now + timedelta(minutes=_travel_minutes(technician, ticket.site))
            change.audit_payload["customer_notification"] = emergency_dispatch_notify(
                ticket=ticket, appointment=appointment, technician=technician, arrival=arrival
            )
        change.audit_payload.update(
            {
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
        change.result = {
            "tech_id": str(technician.pk),
            "dispatch_mode": mode,
            "appointment_id": str(appointment.id),
            "window": window_json(appointment.start, appointment.end),
            "notification_outbox_id": notification["outbox_id"],
        }
    return change.outcome


# --- dispatch.force_unassign -----------------------------------------------------------------


def dispatch_force_unassign(
    *,
    actor: Actor,
    ticket_id: Any,
    reason: Any = "",
    reassign_type: Any = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Take the technician off the job: cancel their booking (kept as history), clear the assignment, SCHEDULED."""
    role_check(DISPATCH_FORCE_UNASSIGN, actor)
    reason = reason.strip() if isinstance(reason, str) else ""
    reassign_type = reassign_type.strip() if isinstance(reassign_type, str) else ""
    with ticket_change(
        actor=actor,
        command=DISPATCH_FORCE_UNASSIGN,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={k: v for k, v in {"reason": reason, "reassign_type": reassign_type}.items() if v},
    ) as change:
        ticket = change.ticket
        previous_tech = ticket.assigned_tech_id
        if ticket.state != TicketState.SCHEDULED:
            # The graph has no edge back to SCHEDULED from some of the contract's from-states
            # (READY_TO_SCHEDULE, completed work): those are refused here with 409.
            change.transition(TicketState.SCHEDULED)
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
        change.result = result
    return change.outcome
