"""On site: the contract's tech.check_in (the technician's arrival)."""

from __future__ import annotations

from typing import Any

from dispatch.common.actors import Actor
from dispatch.common.errors import invalid_request
from dispatch.tickets.commands import command
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from .inputs import iso, moment_parse, role_check
from .models import CheckIn
from .selectors import appointments_booked_for_ticket

TECH_CHECK_IN = command(
    "tech.check_in", ["technician", "dispatcher"], ["DISPATCHED"], "IN_PROGRESS", "Check in on site"
)


def tech_check_in(
    *,
    actor: Actor,
    ticket_id: Any,
    timestamp: Any,
    location: Any = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record the technician's arrival: DISPATCHED → ON_SITE → IN_PROGRESS in one call, with time and place."""
    role_check(TECH_CHECK_IN, actor)
    arrived_at = moment_parse(timestamp, "timestamp")
    if location is not None and not isinstance(location, dict):
        raise invalid_request('location must be an object, e.g. {"lat": 37.8, "lng": -122.27}.', field="location")
    with ticket_change(
        actor=actor,
        command=TECH_CHECK_IN,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"timestamp": iso(arrived_at), **({"location": location} if location is not None else {})},
    ) as change:
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
        change.transition(TicketState.ON_SITE)
        change.transition(TicketState.IN_PROGRESS)
        change.audit_payload.update({"check_in_id": str(check_in.id), "arrived_at": iso(arrived_at)})
        change.result = {"check_in_id": str(check_in.id), "arrived_at": iso(arrived_at), "location": location or {}}
    return change.outcome
