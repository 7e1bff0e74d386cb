"""dispatch.force_unassign takes the technician off a job and keeps the booking as history."""

from __future__ import annotations

import pytest

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import Appointment
from dispatch.scheduling.services import assignment_dispatch, dispatch_force_unassign
from dispatch.tickets.models import AuditEvent, StateTransition
from tests.factories import (
    TechnicianFactory,
    actor_for,
    ticket_dispatched,
    ticket_in_progress,
    ticket_ready_to_schedule,
    ticket_scheduled,
)

pytestmark = pytest.mark.django_db


def test_unassign_a_dispatched_job_returns_it_to_scheduled_and_frees_the_technician(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_dispatched(technician=tech)
    appointment = Appointment.objects.get(ticket=ticket)

    outcome = dispatch_force_unassign(
        actor=dispatcher, ticket_id=ticket.id, reason="Van broke down", reassign_type="SAME_DAY"
    )

    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech) == ("SCHEDULED", None)
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_reason) == ("CANCELLED", "Van broke down")
    assert appointment.technician == tech  # history says who was booked
    assert outcome.result["previous_tech_id"] == str(tech.id)
    assert outcome.event.payload["cancelled_appointment_ids"] == [str(appointment.id)]
    assert outcome.event.payload["reassign_type"] == "SAME_DAY"
    # The freed technician (or another) can be dispatched again on the same window.
    again = assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)
    assert again.ticket.state == "DISPATCHED"
    live = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    assert (live.start, live.end) == (appointment.start, appointment.end)


def test_unassign_a_job_in_progress(dispatcher):
    ticket = ticket_in_progress()
    dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id, reason="Wrong parts")
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert list(StateTransition.objects.filter(ticket=ticket).values_list("to_state", flat=True))[-1] == "SCHEDULED"


def test_unassign_a_scheduled_job_stays_scheduled_without_a_transition(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)
    transitions = StateTransition.objects.filter(ticket=ticket).count()

    outcome = dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id)

    assert outcome.ticket.state == "SCHEDULED"
    assert StateTransition.objects.filter(ticket=ticket).count() == transitions
    assert Appointment.objects.get(ticket=ticket).status == "CANCELLED"
    assert (outcome.event.before_state, outcome.event.after_state) == ("SCHEDULED", "SCHEDULED")


def test_unassign_where_the_graph_has_no_way_back_is_refused(dispatcher):
    ticket = ticket_ready_to_schedule()
    events = AuditEvent.objects.count()
    with pytest.raises(DispatchError) as refused:
        dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id, reason="x")
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert refused.value.status == 409
    assert AuditEvent.objects.count() == events


def test_unassign_is_for_dispatchers(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_dispatched(technician=tech)
    for actor in (actor_for("agent"), actor_for("technician", technician=tech)):
        with pytest.raises(DispatchError) as refused:
            dispatch_force_unassign(actor=actor, ticket_id=ticket.id)
        assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
