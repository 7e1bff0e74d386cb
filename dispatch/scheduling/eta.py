"""The technician's way to the job: acknowledge the dispatch, set off ("on my way") with an
arrival estimate, and keep that estimate current, telling the customer when it slips.

None of these change the ticket's state (it stays DISPATCHED until check-in); each is one
executor call with one audit event, and the customer's message is queued in the same
transaction. The travel estimate is the one the slot engine uses, so the ETA a customer hears
and the travel gaps on the board agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician
from dispatch.tickets.commands import command
from dispatch.tickets.models import StateTransition, Ticket
from dispatch.tickets.services import Outcome, TicketChange, ticket_change

from .engine import travel_minutes
from .inputs import iso, number_parse, role_check
from .models import Appointment, AppointmentStatus, Departure, DispatchAcknowledgement, Escalation, EscalationKind
from .notifications import delay_notify, departure_notify, site_zone
from .selectors import dispatch_transition_current

TECH_ACKNOWLEDGE = command(
    "tech.acknowledge", ["technician", "dispatcher"], ["DISPATCHED"], None, "Acknowledge the dispatch"
)
TECH_DEPART = command("tech.depart", ["technician", "dispatcher"], ["DISPATCHED"], None, "On my way")
TECH_ETA_UPDATE = command(
    "tech.eta_update", ["technician", "dispatcher"], ["DISPATCHED"], None, "Update the arrival estimate"
)

DEFAULT_DELAY_NOTICE_MINUTES = 15
MAX_ETA_MINUTES = 12 * 60


def delay_margin() -> timedelta:
    """How much later than the customer was told an arrival may run before they get a delay notice."""
    return timedelta(minutes=int(getattr(settings, "DISPATCH_DELAY_NOTICE_MINUTES", DEFAULT_DELAY_NOTICE_MINUTES)))


# --- input ----------------------------------------------------------------------------------------


def _location_clean(location: Any) -> dict[str, float] | None:
    if location is None:
        return None
    if not isinstance(location, dict):
        raise invalid_request('location must be an object, e.g. {"lat": 37.8, "lng": -122.27}.', field="location")
    return {
        "lat": number_parse(location.get("lat"), "location.lat", -90, 90),
        "lng": number_parse(location.get("lng"), "location.lng", -180, 180),
    }


def _eta_minutes_clean(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ETA_MINUTES:
        raise invalid_request(f"eta_minutes must be a whole number from 0 to {MAX_ETA_MINUTES}.", field="eta_minutes")
    return value


# --- what the estimate starts from ---------------------------------------------------------------


def _dispatch_transition(ticket: Ticket) -> StateTransition:
    """The ticket's current dispatch (it is DISPATCHED now, so there is one)."""
    return dispatch_transition_current(ticket.pk)


def _previous_site(technician: Technician, ticket: Ticket, now: datetime) -> tuple[float, float] | None:
    """Where the technician's last job today was, if it has coordinates."""
    zone = site_zone(ticket.site)
    day_start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    previous = (
        Appointment.objects.filter(
            technician=technician,
            status__in=(AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED),
            end__lte=now,
            end__gte=day_start,
            ticket__site__lat__isnull=False,
            ticket__site__lng__isnull=False,
        )
        .exclude(ticket=ticket)
        .order_by("-end")
        .values_list("ticket__site__lat", "ticket__site__lng")
        .first()
    )
    return (float(previous[0]), float(previous[1])) if previous else None


def _estimate(
    *, ticket: Ticket, technician: Technician | None, location: dict | None, eta_minutes: int | None, now: datetime
) -> tuple[datetime, dict, str, int | None]:
    """(eta_at, origin, origin source, travel minutes) from the best information there is.

    The technician's own minutes win (they know the traffic); otherwise the travel estimate from
    their reported location, their previous job's site today, or their home base.
    """
    site = ticket.site
    if eta_minutes is not None:
        return now + timedelta(minutes=eta_minutes), location or {}, Departure.OriginSource.REPORTED_ETA, None
    if site.lat is None or site.lng is None:
        raise invalid_request(
            "The site has no coordinates to estimate travel from; give eta_minutes.", field="eta_minutes"
        )
    origin, source = None, None
    if location is not None:
        origin, source = (location["lat"], location["lng"]), Departure.OriginSource.DEVICE
    elif technician is not None:
        origin = _previous_site(technician, ticket, now)
        source = Departure.OriginSource.PREVIOUS_SITE
        if origin is None and technician.home_lat is not None and technician.home_lng is not None:
            origin, source = (float(technician.home_lat), float(technician.home_lng)), Departure.OriginSource.HOME_BASE
    if origin is None:
        raise invalid_request(
            "There is no location to estimate travel from; give location {lat, lng} or eta_minutes.", field="location"
        )
    # The slot engine's estimate, so the ETA and the travel gaps on the board agree.
    minutes = travel_minutes(origin, (float(site.lat), float(site.lng)))
    return now + timedelta(minutes=minutes), {"lat": origin[0], "lng": origin[1]}, source, minutes


def _escalations_resolve(ticket: Ticket, trigger_key: str, *, actor: Actor, now: datetime, why: str) -> list[str]:
    """Close the open unacknowledged-dispatch escalation of this dispatch (the board stops showing it)."""
    open_ids = list(
        Escalation.objects.filter(
            ticket=ticket,
            kind=EscalationKind.UNACKNOWLEDGED_DISPATCH,
            trigger_key=trigger_key,
            resolved_at__isnull=True,
        ).values_list("id", flat=True)
    )
    if open_ids:
        Escalation.objects.filter(pk__in=open_ids).update(resolved_at=now, resolved_by=actor.actor_id, resolution=why)
    return [str(pk) for pk in open_ids]


def _acknowledge(change: TicketChange, transition: StateTransition, now: datetime) -> DispatchAcknowledgement:
    ticket = change.ticket
    acknowledgement = DispatchAcknowledgement.objects.create(
        ticket=ticket,
        technician_id=ticket.assigned_tech_id,
        dispatch_transition=transition,
        acknowledged_at=now,
        recorded_by=change.actor.actor_id,
    )
    resolved = _escalations_resolve(
        ticket, f"dispatch:{transition.pk}", actor=change.actor, now=now, why="The technician acknowledged the job."
    )
    change.audit_payload["acknowledgement_id"] = str(acknowledgement.id)
    if resolved:
        change.audit_payload["resolved_escalation_ids"] = resolved
    return acknowledgement


# --- tech.acknowledge --------------------------------------------------------------------------------


def dispatch_acknowledge(
    *, actor: Actor, ticket_id: Any, request: dict | None = None, expected_version: int | None = None
) -> Outcome:
    """The technician confirms they saw the dispatch and will take the job (stops the escalation clock)."""
    role_check(TECH_ACKNOWLEDGE, actor)
    with ticket_change(
        actor=actor, command=TECH_ACKNOWLEDGE, ticket_id=ticket_id, expected_version=expected_version, request=request
    ) as change:
        now = timezone.now()
        transition = _dispatch_transition(change.ticket)
        existing = DispatchAcknowledgement.objects.filter(dispatch_transition=transition).first()
        if existing is not None:
            raise DispatchError(
                "DISPATCH_ALREADY_ACKNOWLEDGED",
                "This dispatch was already acknowledged.",
                status=409,
                dimension="state",
                details={"acknowledged_at": iso(existing.acknowledged_at)},
            )
        acknowledgement = _acknowledge(change, transition, now)
        change.result = {"acknowledgement_id": str(acknowledgement.id), "acknowledged_at": iso(now)}
    return change.outcome


# --- tech.depart -----------------------------------------------------------------------------------------


def tech_depart(
    *,
    actor: Actor,
    ticket_id: Any,
    location: Any = None,
    eta_minutes: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """The technician sets off: record the departure and ETA and tell the customer "on my way"."""
    role_check(TECH_DEPART, actor)
    where = _location_clean(location)
    minutes = _eta_minutes_clean(eta_minutes)
    asked = {
        **({"location": where} if where is not None else {}),
        **({"eta_minutes": minutes} if minutes is not None else {}),
    }
    with ticket_change(
        actor=actor,
        command=TECH_DEPART,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=asked,
    ) as change:
        ticket = change.ticket
        now = timezone.now()
        transition = _dispatch_transition(ticket)
        if Departure.objects.filter(dispatch_transition=transition).exists():
            raise DispatchError(
                "TECH_ALREADY_DEPARTED",
                "The technician is already on the way; send a new estimate with tech.eta_update.",
                status=409,
                dimension="state",
            )
        technician = ticket.assigned_tech
        eta_at, origin, source, travel = _estimate(
            ticket=ticket, technician=technician, location=where, eta_minutes=minutes, now=now
        )
        if not DispatchAcknowledgement.objects.filter(dispatch_transition=transition).exists():
            # Setting off is the plainest acknowledgement there is.
            _acknowledge(change, transition, now)
        departure = Departure.objects.create(
            ticket=ticket,
            technician=technician,
            dispatch_transition=transition,
            departed_at=now,
            origin=origin,
            origin_source=source,
            eta_at=eta_at,
            notified_eta_at=eta_at,
            recorded_by=actor.actor_id,
        )
        notice = departure_notify(
            ticket=ticket, departure=departure, tech_first_name=technician.first_name if technician else "", now=now
        )
        result = {
            "departure_id": str(departure.id),
            "eta": iso(eta_at),
            "travel_minutes": travel,
            "origin_source": source,
            "customer_notification": notice,
        }
        change.audit_payload.update(result)
        change.result = result
    return change.outcome


# --- tech.eta_update ---------------------------------------------------------------------------------------


def tech_eta_update(
    *,
    actor: Actor,
    ticket_id: Any,
    location: Any = None,
    eta_minutes: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """A fresh arrival estimate on the way; the customer hears of it only when it slips past the margin."""
    role_check(TECH_ETA_UPDATE, actor)
    where = _location_clean(location)
    minutes = _eta_minutes_clean(eta_minutes)
    if where is None and minutes is None:
        raise invalid_request("Give location {lat, lng} or eta_minutes.", field="location")
    asked = {
        **({"location": where} if where is not None else {}),
        **({"eta_minutes": minutes} if minutes is not None else {}),
    }
    with ticket_change(
        actor=actor,
        command=TECH_ETA_UPDATE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=asked,
    ) as change:
        ticket = change.ticket
        now = timezone.now()
        departure = Departure.objects.filter(dispatch_transition=_dispatch_transition(ticket)).first()
        if departure is None:
            raise DispatchError(
                "TECH_NOT_DEPARTED",
                "The technician has not set off yet; use tech.depart first.",
                status=409,
                dimension="state",
            )
        eta_at, _origin, _source, travel = _estimate(
            ticket=ticket, technician=departure.technician, location=where, eta_minutes=minutes, now=now
        )
        previous_eta = departure.eta_at
        departure.eta_at = eta_at
        slip = eta_at - departure.notified_eta_at
        # Compared with what the customer was last told, not with the previous update: a
        # slow drift of small updates still adds up to one notice, and one slip is announced
        # once, not again with every update that repeats it.
        notice = None
        if slip > delay_margin():
            departure.delay_notices += 1
            departure.notified_eta_at = eta_at
            notice = delay_notify(ticket=ticket, departure=departure, now=now)
        departure.save(update_fields=["eta_at", "notified_eta_at", "delay_notices", "updated_at"])
        result = {
            "departure_id": str(departure.id),
            "eta": iso(eta_at),
            "previous_eta": iso(previous_eta),
            "travel_minutes": travel,
            "slip_minutes": round(slip.total_seconds() / 60),
            "delay_notice": notice,
        }
        change.audit_payload.update(result)
        change.result = result
    return change.outcome
