"""tech.pause and tech.resume: the technician stops work on their job for a stated reason and takes
it up again; nobody else's job, and never a hold dispatch put on."""

from __future__ import annotations

import uuid

import pytest

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.scheduling.services import tech_pause, tech_resume
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import ticket_force_hold
from tests.factories import TechnicianFactory, actor_for, jwt_for, ticket_in_progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def technician():
    return TechnicianFactory()


@pytest.fixture
def tech_actor(technician):
    return actor_for(Role.TECHNICIAN, technician=technician)


@pytest.fixture
def job(technician):
    return ticket_in_progress(technician=technician)


def refusal(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def test_a_technician_pauses_and_resumes_their_job(job, tech_actor):
    paused = tech_pause(actor=tech_actor, ticket_id=job.id, reason="  Waiting on a closer from the supplier ")
    assert paused.ticket.state == "ON_HOLD"
    assert (paused.event.tool_name, paused.event.payload["reason"]) == (
        "tech.pause",
        "Waiting on a closer from the supplier",
    )
    resumed = tech_resume(actor=tech_actor, ticket_id=job.id)
    assert resumed.ticket.state == "IN_PROGRESS"
    assert resumed.event.tool_name == "tech.resume"
    assert resumed.event.payload["held_by_tool"] == "tech.pause"
    steps = list(StateTransition.objects.filter(ticket=job).order_by("seq").values_list("from_state", "to_state"))
    assert steps[-2:] == [("IN_PROGRESS", "ON_HOLD"), ("ON_HOLD", "IN_PROGRESS")]


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 501])
def test_a_pause_needs_a_reason(job, tech_actor, reason):
    events = AuditEvent.objects.count()
    error = refusal(lambda: tech_pause(actor=tech_actor, ticket_id=job.id, reason=reason))
    assert (error.code, error.status, error.details["field"]) == ("INVALID_REQUEST", 400, "reason")
    assert Ticket.objects.get(pk=job.pk).state == "IN_PROGRESS"
    assert AuditEvent.objects.count() == events


def test_another_technician_may_not_pause_or_resume_the_job(job, tech_actor):
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    error = refusal(lambda: tech_pause(actor=stranger, ticket_id=job.id, reason="Lunch"))
    assert (error.code, error.dimension) == ("FORBIDDEN_SCOPE", "assignment")
    tech_pause(actor=tech_actor, ticket_id=job.id, reason="Waiting on a part")
    error = refusal(lambda: tech_resume(actor=stranger, ticket_id=job.id))
    assert (error.code, error.dimension) == ("FORBIDDEN_SCOPE", "assignment")
    assert Ticket.objects.get(pk=job.pk).state == "ON_HOLD"


def test_pause_and_resume_start_only_from_their_states(job, tech_actor):
    error = refusal(lambda: tech_resume(actor=tech_actor, ticket_id=job.id))
    assert (error.code, error.details["from_state"]) == ("INVALID_STATE_TRANSITION", "IN_PROGRESS")
    tech_pause(actor=tech_actor, ticket_id=job.id, reason="Waiting on a part")
    error = refusal(lambda: tech_pause(actor=tech_actor, ticket_id=job.id, reason="Again"))
    assert (error.code, error.details["from_state"]) == ("INVALID_STATE_TRANSITION", "ON_HOLD")


def test_a_hold_dispatch_put_on_is_not_the_technicians_to_lift(job, tech_actor, dispatcher):
    ticket_force_hold(actor=dispatcher, ticket_id=job.id, reason="Customer disputes the quote")
    error = refusal(lambda: tech_resume(actor=tech_actor, ticket_id=job.id))
    assert (error.code, error.status, error.details["held_by_tool"]) == (
        "HOLD_SET_BY_DISPATCH",
        409,
        "dispatch.force_hold",
    )
    assert Ticket.objects.get(pk=job.pk).state == "ON_HOLD"
    assert tech_resume(actor=dispatcher, ticket_id=job.id).ticket.state == "IN_PROGRESS"


def test_the_toolset_pauses_and_resumes(client, job, technician):
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {jwt_for(technician.user.username, 'technician')}",
        "content_type": "application/json",
    }
    pause = f"/api/v1/tickets/{job.id}/tech/pause"
    missing = client.post(pause, data={}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers)
    assert (missing.status_code, missing.json()["error"]["field"]) == (400, "reason")
    paused = client.post(pause, data={"reason": "Waiting on a part"}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers)
    assert paused.status_code == 200, paused.content
    assert paused.json()["state"] == "ON_HOLD"
    resumed = client.post(
        f"/api/v1/tickets/{job.id}/tech/resume", data={}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["state"] == "IN_PROGRESS"
