"""On site: the contract's tech.check_in (the technician's arrival), and the technician's own
pause and resume of the work (tech.pause, tech.resume)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.parsing import zone_or_default
from dispatch.common.roles import Role
from dispatch.tickets.commands import command
from dispatch.tickets.models import StateTransition
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from .inputs import iso, moment_parse, number_parse, role_check
from .models import Appointment, CheckIn
from .selectors import appointments_booked_for_ticket

TECH_CHECK_IN = command(
    "tech.check_in", ["technician", "dispatcher"], ["DISPATCHED"], "IN_PROGRESS", "Check in on site"
)
# Beyond the contract: the technician stops work for a while (waiting on a part, the customer
# away) and takes it up again. A technician acts only on their own job (the policy's assignment
# rule, as for check-in).
TECH_PAUSE = command("tech.pause", ["technician", "dispatcher"], ["IN_PROGRESS"], "ON_HOLD", "Pause work")
TECH_RESUME = command("tech.resume", ["technician", "dispatcher"], ["ON_HOLD"], "IN_PROGRESS", "Resume work")
PAUSE_REASON_MAX = 500


# A phone's position with its accuracy and a few more readings; anything bigger is not a position.
LOCATION_MAX_CHARS = 2000
MAX_ACCURACY_METRES = 100_000


def _location_check(location: Any) -> None:
    """A location is a small JSON object of finite values (NaN or Infinity cannot be stored)."""
    if location is None:
        return
    if not isinstance(location, dict):
        raise invalid_request('location must be an object, e.g. {"lat": 37.8, "lng": -122.27}.', field="location")
    # A position, when given, is on the map, and its accuracy a plausible radius.
    for name, low, high in (("lat", -90, 90), ("lng", -180, 180), ("accuracy_m", 0, MAX_ACCURACY_METRES)):
        if name in location:
            number_parse(location[name], f"location.{name}", low, high)
    try:
        size = len(json.dumps(location, allow_nan=False))
    except (TypeError, ValueError):
        raise invalid_request("location must hold finite numbers and text only.", field="location") from None
    if size > LOCATION_MAX_CHARS:
        raise invalid_request(f"location must be at most {LOCATION_MAX_CHARS} characters of JSON.", field="location")


# --- an arrival far ahead of the booked visit -------------------------------------------------


def early_check_in_margin() -> timedelta:
    """How long before the booked window a check-in still passes without a reason
    (DISPATCH_EARLY_CHECK_IN_MINUTES; see the setting for why that long)."""
    return timedelta(minutes=max(0, int(getattr(settings, "DISPATCH_EARLY_CHECK_IN_MINUTES", 240))))


def _booked_appointment(ticket) -> Appointment | None:
    return appointments_booked_for_ticket(ticket_id=ticket.id).filter(technician_id=ticket.assigned_tech_id).first()


def booked_visit_start(ticket, appointment: Appointment | None = None) -> datetime | None:
    """When the booked visit begins: the earlier of the booking's start and the arrival window the
    customer was told (a re-planned job keeps the told one), else the ticket's scheduled start."""
    appointment = appointment or _booked_appointment(ticket)
    if appointment is None:
        return ticket.scheduled_start
    starts = [moment for moment in (appointment.start, appointment.promised_start) if moment]
    return min(starts)


def span_text(span: timedelta) -> str:
    """A duration as a dispatcher says it: "2 days 3 h", "5 h 10 min", "45 min"."""
    minutes = int(span.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def early_check_in_warning(*, arrived_at: datetime, visit_start: datetime | None, site_timezone: str = "") -> str:
    """What to tell whoever records an arrival more than the margin before the booked visit ("" when
    it is not that early): the same words on the ticket page, the technician's phone and the API,
    with the visit's start in the site's time zone (where the technician stands)."""
    if visit_start is None or arrived_at >= visit_start - early_check_in_margin():
        return ""
    local = visit_start.astimezone(zone_or_default(site_timezone))
    return (
        f"The booked visit starts {local:%a %b} {local.day}, {local:%H:%M}: this arrival is "
        f"{span_text(visit_start - arrived_at)} before it. A check-in more than "
        f"{span_text(early_check_in_margin())} early needs a reason."
    )


def early_check_in_refusal(
    *, arrived_at: datetime, visit_start: datetime | None, reason: str, site_timezone: str = ""
) -> DispatchError | None:
    """400 INVALID_REQUEST (field `reason`) for an arrival far ahead of the booked visit given
    without a reason, else None. A code every client of the contract already handles: the
    request lacks one field, and sent again with `reason` it goes through."""
    warning = early_check_in_warning(arrived_at=arrived_at, visit_start=visit_start, site_timezone=site_timezone)
    if not warning or reason:
        return None
    return invalid_request(
        warning + " Send it as `reason`.",
        field="reason",
        requirement="EARLY_CHECK_IN_REASON",
        visit_start=iso(visit_start),
        arrived_at=iso(arrived_at),
        margin_minutes=int(early_check_in_margin().total_seconds() // 60),
    )


CHECK_IN_REASON_MAX = 1000


def tech_check_in(
    *,
    actor: Actor,
    ticket_id: Any,
    timestamp: Any,
    location: Any = None,
    reason: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record the technician's arrival: DISPATCHED → ON_SITE → IN_PROGRESS in one call, with time and place.

    An arrival more than the margin before the booked visit needs a `reason`, kept in the audit event."""
    role_check(TECH_CHECK_IN, actor)
    arrived_at = moment_parse(timestamp, "timestamp")
    _location_check(location)
    if reason is not None and not isinstance(reason, str):
        raise invalid_request("reason must be text.", field="reason")
    reason = (reason or "").strip()
    if len(reason) > CHECK_IN_REASON_MAX:
        raise invalid_request(f"The reason is longer than {CHECK_IN_REASON_MAX} characters.", field="reason")
    with ticket_change(
        actor=actor,
        command=TECH_CHECK_IN,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"timestamp": iso(arrived_at), **({"location": location} if location is not None else {})},
    ) as change:
        ticket = change.ticket
        appointment = _booked_appointment(ticket)
        # Decided under the ticket's lock, against the booking as it stands now.
        visit_start = booked_visit_start(ticket, appointment)
        site_timezone = ticket.site.timezone if ticket.site_id else ""
        refusal = early_check_in_refusal(
            arrived_at=arrived_at, visit_start=visit_start, reason=reason, site_timezone=site_timezone
        )
        if refusal is not None:
            raise refusal
        if early_check_in_warning(arrived_at=arrived_at, visit_start=visit_start):
            change.audit_payload.update(
                {
                    "reason": reason,
                    "visit_start": iso(visit_start),
                    "early_by_minutes": int((visit_start - arrived_at).total_seconds() // 60),
                }
            )
        elif reason:
            change.audit_payload["reason"] = reason
        check_in = CheckIn.objects.create(
            ticket=ticket,
            appointment=appointment,
            technician_id=ticket.assigned_tech_id,
            arrived_at=arrived_at,
            location=location or {},
            recorded_by=actor.actor_id,
        )
        # Two transitions, one audit event: the executor writes both rows in this order.
        change.transition(TicketState.ON_SITE)
        change.transition(TicketState.IN_PROGRESS)
        change.audit_payload.update({"check_in_id": str(check_in.id), "arrived_at": iso(arrived_at)})
        change.result = {"check_in_id": str(check_in.id), "arrived_at": iso(arrived_at), "location": location or {}}
    return change.outcome


def tech_pause(
    *,
    actor: Actor,
    ticket_id: Any,
    reason: str,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Stop work on a job in progress for a stated reason (IN_PROGRESS -> ON_HOLD)."""
    role_check(TECH_PAUSE, actor)
    if not isinstance(reason, str) or not reason.strip():
        raise invalid_request("Say why the work is paused.", field="reason")
    reason = reason.strip()
    if len(reason) > PAUSE_REASON_MAX:
        raise invalid_request(f"The reason is longer than {PAUSE_REASON_MAX} characters.", field="reason")
    with ticket_change(
        actor=actor,
        command=TECH_PAUSE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"reason": reason},
    ) as change:
        change.transition(TicketState.ON_HOLD)
    return change.outcome


def _held_by(ticket) -> str:
    """The tool that last put the ticket on hold (tech.pause, dispatch.force_hold, ...)."""
    last = (
        StateTransition.objects.filter(ticket=ticket, to_state=TicketState.ON_HOLD)
        .select_related("audit_event")
        .order_by("-seq")
        .first()
    )
    return last.audit_event.tool_name if last else ""


def _resume_refusal(actor: Actor, held_by: str) -> DispatchError | None:
    if actor.role == Role.TECHNICIAN and held_by != TECH_PAUSE.tool:
        return DispatchError(
            "HOLD_SET_BY_DISPATCH",
            "Dispatch put this job on hold: ask dispatch to release it.",
            status=409,
            dimension="policy",
            details={"held_by_tool": held_by or None},
        )
    return None


def resume_refusal(actor: Actor, ticket) -> DispatchError | None:
    """Why this actor may not resume this job on hold beyond the command's own rules (a page asks
    before it shows the button; tech_resume asks again under the lock)."""
    if ticket.state != TicketState.ON_HOLD:
        return None
    return _resume_refusal(actor, _held_by(ticket))


def tech_resume(
    *,
    actor: Actor,
    ticket_id: Any,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Take up paused work again (ON_HOLD -> IN_PROGRESS). A technician resumes only a pause made
    with tech.pause: a hold dispatch put on (dispatch.force_hold) is dispatch's to lift."""
    role_check(TECH_RESUME, actor)
    with ticket_change(
        actor=actor,
        command=TECH_RESUME,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
    ) as change:
        held_by = _held_by(change.ticket)
        refusal = _resume_refusal(actor, held_by)
        if refusal is not None:
            raise refusal
        change.transition(TicketState.IN_PROGRESS)
        change.audit_payload["held_by_tool"] = held_by or None
    return change.outcome
