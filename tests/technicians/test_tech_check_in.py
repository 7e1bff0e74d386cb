"""tech.check_in: DISPATCHED → ON_SITE → IN_PROGRESS in one call, with the time and place of arrival."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import Appointment, CheckIn
from dispatch.scheduling.services import tech_check_in
from dispatch.tickets.models import AuditEvent, StateTransition
from tests.factories import TechnicianFactory, actor_for, ticket_dispatched, ticket_scheduled, window_soon

pytestmark = pytest.mark.django_db


def test_the_assigned_technician_checks_in_with_two_ordered_transitions_under_one_event():
    tech = TechnicianFactory()
    ticket = ticket_dispatched(technician=tech, **window_soon())
    arrived = timezone.now() - timedelta(minutes=2)
    events_before = AuditEvent.objects.filter(ticket=ticket).count()

    outcome = tech_check_in(
        actor=actor_for("technician", technician=tech),
        ticket_id=ticket.id,
        timestamp=arrived.isoformat(),
        location={"lat": 37.8044, "lng": -122.2711, "accuracy_m": 12},
    )

    ticket.refresh_from_db()
    assert ticket.state == "IN_PROGRESS"
    assert AuditEvent.objects.filter(ticket=ticket).count() == events_before + 1
    event = outcome.event
    assert (event.tool_name, event.before_state, event.after_state) == ("tech.check_in", "DISPATCHED", "IN_PROGRESS")
    rows = list(StateTransition.objects.filter(audit_event=event).order_by("seq"))
    assert [(r.from_state, r.to_state) for r in rows] == [("DISPATCHED", "ON_SITE"), ("ON_SITE", "IN_PROGRESS")]
    assert rows[1].seq == rows[0].seq + 1
    check_in = CheckIn.objects.get(ticket=ticket)
    assert check_in.arrived_at == arrived
    assert check_in.location == {"lat": 37.8044, "lng": -122.2711, "accuracy_m": 12}
    assert check_in.technician == tech
    assert check_in.appointment == Appointment.objects.get(ticket=ticket)
    assert check_in.recorded_by == str(tech.user_id)
    assert outcome.result["check_in_id"] == str(check_in.id)


def test_a_dispatcher_may_check_in_for_the_technician(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_dispatched(technician=tech, **window_soon())
    outcome = tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())
    assert outcome.ticket.state == "IN_PROGRESS"
    assert CheckIn.objects.get(ticket=ticket).location == {}
    assert CheckIn.objects.get(ticket=ticket).technician == tech


def test_another_technician_cannot_check_in():
    ticket = ticket_dispatched(**window_soon())
    stranger = TechnicianFactory()
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=actor_for("technician", technician=stranger), ticket_id=ticket.id, timestamp=timezone.now())
    assert (refused.value.code, refused.value.status) == ("FORBIDDEN_SCOPE", 403)
    ticket.refresh_from_db()
    assert ticket.state == "DISPATCHED"
    assert not CheckIn.objects.exists()


def test_check_in_before_dispatch_is_409(dispatcher):
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert not CheckIn.objects.exists()


def test_checking_in_twice_is_409(dispatcher):
    ticket = ticket_dispatched(**window_soon())
    tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert CheckIn.objects.filter(ticket=ticket).count() == 1


@pytest.mark.parametrize(
    "timestamp, location, field",
    [
        ("", None, "timestamp"),
        ("2030-01-01T10:00:00", None, "timestamp"),
        ("half past ten", None, "timestamp"),
        ("2030-01-01T10:00:00Z", "37.8,-122.2", "location"),
    ],
)
def test_check_in_refuses_bad_input(dispatcher, timestamp, location, field):
    ticket = ticket_dispatched(**window_soon())
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timestamp, location=location)
    assert (refused.value.code, refused.value.details["field"]) == ("INVALID_REQUEST", field)


@pytest.mark.parametrize("role", ["agent", "customer", "qa"])
def test_check_in_is_for_technicians_and_dispatchers(role):
    ticket = ticket_dispatched(**window_soon())
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=actor_for(role), ticket_id=ticket.id, timestamp=timezone.now())
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
