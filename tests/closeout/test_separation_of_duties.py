"""Completion without the evidence gate, and what follows it: the bypass needs a reason and is
taken once, QA of a bypassed job needs someone other than who bypassed it, and closing a job that
has no invoice draft needs a reason, kept in the close's audit event."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dispatch.closeout.models import QaReview
from dispatch.closeout.services import (
    dispatch_manual_bypass,
    invoice_generate,
    qa_verify,
    tech_complete,
    ticket_close,
    ticket_force_close,
)
from dispatch.common.errors import DispatchError
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import (
    DOOR_CHECKLIST,
    TechnicianFactory,
    actor_for,
    door_evidence_add,
    ticket_at,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def riley():
    return actor_for("dispatcher", actor_id="riley")


def test_a_second_bypass_of_the_same_job_is_refused_with_a_stable_code(riley):
    job = ticket_at("IN_PROGRESS")
    first = dispatch_manual_bypass(actor=riley, ticket_id=job.id, bypass_rationale="Photos lost")
    assert first.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert first.event.payload["reason"] == "Photos lost"
    events = AuditEvent.objects.filter(ticket=job).count()

    with pytest.raises(DispatchError) as refused:
        dispatch_manual_bypass(
            actor=actor_for("dispatcher", actor_id="sam"), ticket_id=job.id, bypass_rationale="Again"
        )

    assert (refused.value.code, refused.value.status) == ("MANUAL_BYPASS_ALREADY_USED", 409)
    assert refused.value.details["bypassed_by"] == "riley"
    assert AuditEvent.objects.filter(ticket=job).count() == events


def test_whoever_bypassed_the_gate_cannot_qa_verify_the_job(riley):
    job = ticket_at("IN_PROGRESS")
    dispatch_manual_bypass(actor=riley, ticket_id=job.id, bypass_rationale="Customer signed on paper")

    for result in ("PASS", "FAIL"):
        with pytest.raises(DispatchError) as refused:
            qa_verify(actor=riley, ticket_id=job.id, timestamp=timezone.now(), result=result)
        assert (refused.value.code, refused.value.status, refused.value.dimension) == (
            "SEPARATION_OF_DUTIES",
            403,
            "policy",
        )
    assert not QaReview.objects.filter(ticket=job).exists()

    outcome = qa_verify(
        actor=actor_for("qa", actor_id="quinn"), ticket_id=job.id, timestamp=timezone.now(), result="PASS"
    )
    assert outcome.ticket.state == "VERIFIED"


def test_whoever_bypassed_the_gate_cannot_close_the_job_without_qa_either(riley):
    job = ticket_at("IN_PROGRESS")
    dispatch_manual_bypass(actor=riley, ticket_id=job.id, bypass_rationale="Customer signed on paper")
    events = AuditEvent.objects.filter(ticket=job).count()
    override = {
        "override_code": "OPS-2291",
        "override_reason": "Customer needs the job closed today",
        "approver_role": "admin",
    }

    with pytest.raises(DispatchError) as refused:
        ticket_force_close(actor=riley, ticket_id=job.id, **override)

    assert refused.value.code == "SEPARATION_OF_DUTIES"
    assert "someone else must close it without QA" in refused.value.message
    assert Ticket.objects.get(pk=job.pk).state == "COMPLETED_PENDING_VERIFICATION"
    assert AuditEvent.objects.filter(ticket=job).count() == events
    # Someone else may still take that responsibility.
    outcome = ticket_force_close(actor=actor_for("approver", actor_id="avery"), ticket_id=job.id, **override)
    assert outcome.ticket.state == "CLOSED"


def test_a_job_completed_through_the_gate_may_be_verified_by_the_dispatcher_who_completed_it(riley):
    technician = TechnicianFactory()
    job = ticket_at("IN_PROGRESS", technician=technician)
    door_evidence_add(job)
    tech_complete(actor=riley, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    outcome = qa_verify(actor=riley, ticket_id=job.id, timestamp=timezone.now(), result="PASS")
    assert outcome.ticket.state == "VERIFIED"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_closing_a_job_without_an_invoice_draft_needs_a_reason(riley, reason):
    job = ticket_at("VERIFIED")
    with pytest.raises(DispatchError) as refused:
        ticket_close(actor=riley, ticket_id=job.id, reason=reason)
    assert (refused.value.code, refused.value.details["field"]) == ("INVALID_REQUEST", "reason")
    assert Ticket.objects.get(pk=job.pk).state == "VERIFIED"


def test_the_reason_for_closing_without_an_invoice_is_in_the_closes_audit_event(riley):
    job = ticket_at("VERIFIED")
    outcome = ticket_close(actor=riley, ticket_id=job.id, reason="Warranty callback")
    assert outcome.ticket.state == "CLOSED"
    assert (outcome.event.payload["reason"], outcome.event.payload["invoice_draft"]) == ("Warranty callback", False)


def test_an_invoiced_job_closes_without_a_reason(riley):
    job = ticket_at("VERIFIED")
    invoice_generate(actor=actor_for("finance"), ticket_id=job.id)
    outcome = ticket_close(actor=riley, ticket_id=job.id)
    assert outcome.ticket.state == "CLOSED" and outcome.event.payload["invoice_draft"] is True
