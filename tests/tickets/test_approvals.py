"""tech.request_change and approval.decide: ask, then approve (back to work, NTE raised) or deny (back to triage)."""

from __future__ import annotations

import uuid

import pytest

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.approvals import approval_decide, change_request
from dispatch.tickets.models import Approval, AuditEvent, Ticket
from dispatch.tickets.services import ticket_triage
from tests.factories import TechnicianFactory, actor_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db


@pytest.fixture
def technician():
    return TechnicianFactory()


@pytest.fixture
def tech(technician):
    return actor_for(Role.TECHNICIAN, technician=technician)


@pytest.fixture
def job(technician):
    return ticket_at("IN_PROGRESS", technician=technician, nte_cents=20000)


def refused(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def test_a_technician_asks_for_an_nte_increase(job, tech):
    outcome = change_request(
        actor=tech,
        ticket_id=job.id,
        approval_type="nte_increase",
        reason="Closer body cracked, needs replacement",
        amount_delta_cents=15000,
        evidence_refs=["s3://b/cracked.jpg"],
    )
    assert outcome.ticket.state == "APPROVAL_REQUIRED"
    approval = outcome.result
    assert (approval.kind, approval.status, approval.return_state, approval.amount_cents) == (
        "NTE_INCREASE",
        "PENDING",
        "IN_PROGRESS",
        15000,
    )
    assert approval.details["evidence_refs"] == ["s3://b/cracked.jpg"]
    assert approval.requested_by == tech.actor_id
    event = AuditEvent.objects.filter(ticket=job).order_by("-seq").first()
    assert (event.tool_name, event.payload["approval_id"]) == ("tech.request_change", str(approval.id))


def test_approving_returns_the_job_to_work_and_raises_the_nte(job, tech):
    approval = change_request(
        actor=tech, ticket_id=job.id, approval_type="NTE_INCREASE", reason="More hardware", amount_delta_cents=5000
    ).result
    approver = actor_for(Role.APPROVER)
    outcome = approval_decide(
        actor=approver, ticket_id=job.id, approval_id=str(approval.id), decision="approved", notes="OK"
    )
    assert (outcome.ticket.state, outcome.ticket.nte_cents) == ("IN_PROGRESS", 20000 + 5000)
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.decision_notes) == ("APPROVED", approver.actor_id, "OK")
    assert approval.decided_at is not None


def test_approving_a_proposal_leaves_the_nte_alone(job, tech, dispatcher):
    approval = change_request(
        actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="Swap to a heavier closer"
    ).result
    outcome = approval_decide(actor=dispatcher, ticket_id=job.id, approval_id=approval.id, decision="APPROVED")
    assert (outcome.ticket.state, outcome.ticket.nte_cents) == ("IN_PROGRESS", 20000)


def test_denying_sends_the_job_back_to_triage(job, tech, dispatcher):
    approval = change_request(
        actor=tech, ticket_id=job.id, approval_type="NTE_INCREASE", reason="More hardware", amount_delta_cents=5000
    ).result
    outcome = approval_decide(
        actor=dispatcher, ticket_id=job.id, approval_id=approval.id, decision="DENIED", notes="Too much"
    )
    assert (outcome.ticket.state, outcome.ticket.nte_cents) == ("TRIAGED", 20000)
    approval.refresh_from_db()
    assert approval.status == "DENIED"


def test_a_decided_approval_cannot_be_decided_again(job, tech, dispatcher):
    first = change_request(actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="a").result
    approval_decide(actor=dispatcher, ticket_id=job.id, approval_id=first.id, decision="APPROVED")
    change_request(actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="b")
    error = refused(
        lambda: approval_decide(actor=dispatcher, ticket_id=job.id, approval_id=first.id, decision="DENIED")
    )
    assert (error.code, error.status) == ("APPROVAL_NOT_PENDING", 409)
    first.refresh_from_db()
    assert first.status == "APPROVED"


def test_an_unknown_or_foreign_approval_is_not_found(job, tech, dispatcher, technician):
    change_request(actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="a")
    other = ticket_at("IN_PROGRESS", technician=technician)
    foreign = change_request(actor=tech, ticket_id=other.id, approval_type="PROPOSAL", reason="b").result
    for approval_id in (uuid.uuid4(), foreign.id):
        error = refused(
            lambda approval_id=approval_id: approval_decide(
                actor=dispatcher, ticket_id=job.id, approval_id=approval_id, decision="APPROVED"
            )
        )
        assert (error.code, error.status) == ("APPROVAL_NOT_FOUND", 404)
    assert Ticket.objects.get(pk=job.pk).state == "APPROVAL_REQUIRED"


def test_a_triage_approval_returns_to_ready_to_schedule(dispatcher):
    ticket = ticket_new(nte_cents=10000)
    ticket_triage(
        actor=dispatcher,
        ticket_id=ticket.id,
        priority="URGENT",
        incident_type="DOOR_WONT_LATCH",
        outcome="APPROVAL_REQUIRED",
        approval_amount_delta_cents=2500,
    )
    approval = Approval.objects.get(ticket=ticket)
    outcome = approval_decide(
        actor=actor_for(Role.APPROVER), ticket_id=ticket.id, approval_id=approval.id, decision="APPROVED"
    )
    assert (outcome.ticket.state, outcome.ticket.nte_cents) == ("READY_TO_SCHEDULE", 12500)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"approval_type": "DISCOUNT", "reason": "x"},
        {"approval_type": "PROPOSAL", "reason": " "},
        {"approval_type": "NTE_INCREASE", "reason": "x", "amount_delta_cents": -1},
        {"approval_type": "NTE_INCREASE", "reason": "x", "amount_delta_cents": True},
        {"approval_type": "PROPOSAL", "reason": "x", "evidence_refs": [""]},
    ],
)
def test_bad_requests_are_refused_and_change_nothing(job, tech, kwargs):
    error = refused(lambda: change_request(actor=tech, ticket_id=job.id, **kwargs))
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
    assert Ticket.objects.get(pk=job.pk).state == "IN_PROGRESS"
    assert Approval.objects.count() == 0


def test_bad_decisions_are_refused(job, tech, dispatcher):
    approval = change_request(actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="a").result
    for kwargs in ({"approval_id": "nope", "decision": "APPROVED"}, {"approval_id": approval.id, "decision": "MAYBE"}):
        error = refused(lambda kwargs=kwargs: approval_decide(actor=dispatcher, ticket_id=job.id, **kwargs))
        assert (error.code, error.status) == ("INVALID_REQUEST", 400)


def test_who_may_ask_and_who_may_decide(job, tech, technician):
    error = refused(
        lambda: change_request(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, approval_type="PROPOSAL", reason="a")
    )
    assert error.code == "TOOL_ROLE_FORBIDDEN"
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    error = refused(lambda: change_request(actor=stranger, ticket_id=job.id, approval_type="PROPOSAL", reason="a"))
    assert error.code == "FORBIDDEN_SCOPE"
    approval = change_request(actor=tech, ticket_id=job.id, approval_type="PROPOSAL", reason="a").result
    error = refused(lambda: approval_decide(actor=tech, ticket_id=job.id, approval_id=approval.id, decision="APPROVED"))
    assert error.code == "TOOL_ROLE_FORBIDDEN"


def test_asking_is_only_possible_while_work_is_in_progress(tech, technician):
    ticket = ticket_at("ON_SITE", technician=technician)
    error = refused(lambda: change_request(actor=tech, ticket_id=ticket.id, approval_type="PROPOSAL", reason="a"))
    assert (error.code, error.status) == ("INVALID_STATE_TRANSITION", 409)
