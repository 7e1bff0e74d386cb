"""qa.verify: PASS verifies (after re-checking the completion); FAIL is recorded and refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.closeout.models import EvidenceException, QaReview
from dispatch.closeout.services import QaVerificationFailed, evidence_exception_grant, qa_verify, tech_complete
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import DOOR_CHECKLIST, DOOR_EVIDENCE_KEYS, actor_for, door_evidence_add, ticket_at

pytestmark = pytest.mark.django_db

QA_TIME = "2026-02-25T17:10:00.000Z"


@pytest.fixture
def completed(job, tech_actor):
    door_evidence_add(job)
    return tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST).ticket


def test_pass_verifies_the_work_and_records_the_review(completed):
    qa = actor_for(Role.QA)
    outcome = qa_verify(actor=qa, ticket_id=completed.id, timestamp=QA_TIME, result="pass", notes="Latch holds")
    assert outcome.ticket.state == "VERIFIED"
    review = outcome.result
    assert (review.result, review.notes, review.reviewer) == ("PASS", "Latch holds", qa.actor_id)
    assert review.reviewed_at.isoformat().startswith("2026-02-25T17:10:00")
    event = AuditEvent.objects.filter(ticket=completed).order_by("-seq").first()
    assert (event.tool_name, event.after_state, event.payload["verification_result"]) == (
        "qa.verify",
        "VERIFIED",
        "PASS",
    )


def test_fail_is_refused_with_409_but_the_review_and_its_event_are_kept(completed):
    events = AuditEvent.objects.filter(ticket=completed).count()
    with pytest.raises(QaVerificationFailed) as caught:
        qa_verify(
            actor=actor_for(Role.QA),
            ticket_id=completed.id,
            timestamp=QA_TIME,
            result="FAIL",
            notes="Strike misaligned",
        )
    error = caught.value
    assert (error.code, error.status) == ("QA_VERIFICATION_FAILED", 409)
    assert error.details["notes"] == "Strike misaligned"
    review = QaReview.objects.get(ticket=completed)
    assert (review.result, review.notes, str(review.id)) == ("FAIL", "Strike misaligned", error.details["qa_review_id"])
    fresh = Ticket.objects.get(pk=completed.pk)
    assert fresh.state == "COMPLETED_PENDING_VERIFICATION"
    assert AuditEvent.objects.filter(ticket=completed).count() == events + 1
    event = AuditEvent.objects.filter(ticket=completed).order_by("-seq").first()
    assert (event.before_state, event.after_state, event.payload["notes"]) == (
        "COMPLETED_PENDING_VERIFICATION",
        "COMPLETED_PENDING_VERIFICATION",
        "Strike misaligned",
    )
    # QA can look again once the work is corrected.
    assert (
        qa_verify(actor=actor_for(Role.QA), ticket_id=completed.id, timestamp=QA_TIME, result="PASS").ticket.state
        == "VERIFIED"
    )


@pytest.mark.django_db(transaction=True)
def test_a_fail_record_is_committed_before_the_refusal(technician):
    # Outside any test transaction: what QA recorded must be in the database for real.
    job = ticket_at("IN_PROGRESS", technician=technician)
    door_evidence_add(job)
    tech_complete(
        actor=actor_for(Role.TECHNICIAN, technician=technician), ticket_id=job.id, checklist_status=DOOR_CHECKLIST
    )
    with pytest.raises(QaVerificationFailed):
        qa_verify(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, timestamp=QA_TIME, result="FAIL", notes="Redo")
    assert list(QaReview.objects.filter(ticket=job).values_list("result", "notes")) == [("FAIL", "Redo")]


def test_pass_rechecks_the_completion_and_refuses_when_an_exception_has_expired(job, tech_actor, dispatcher):
    door_evidence_add(job, keys=DOOR_EVIDENCE_KEYS[1:])
    granted = evidence_exception_grant(
        actor=dispatcher,
        ticket_id=job.id,
        exception_reason="Photo pending upload",
        evidence_refs=[DOOR_EVIDENCE_KEYS[0]],
    ).result
    tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    EvidenceException.objects.filter(pk=granted.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DispatchError) as caught:
        qa_verify(actor=actor_for(Role.QA), ticket_id=job.id, timestamp=QA_TIME, result="PASS")
    assert caught.value.details["requirement_code"] == "MISSING_EVIDENCE"
    assert caught.value.details["missing_evidence_keys"] == [DOOR_EVIDENCE_KEYS[0]]
    assert QaReview.objects.filter(ticket=job).count() == 0  # a refused PASS leaves nothing
    assert Ticket.objects.get(pk=job.pk).state == "COMPLETED_PENDING_VERIFICATION"


def test_pass_without_any_completion_on_record_is_refused():
    ticket = ticket_at("COMPLETED_PENDING_VERIFICATION")
    with pytest.raises(DispatchError) as caught:
        qa_verify(actor=actor_for(Role.QA), ticket_id=ticket.id, timestamp=QA_TIME, result="PASS")
    assert caught.value.details["requirement_code"] == "MISSING_COMPLETION_CONTEXT"


@pytest.mark.parametrize(
    "timestamp,result", [("yesterday", "PASS"), ("2026-02-25T17:10:00", "PASS"), (QA_TIME, "MAYBE"), (None, "PASS")]
)
def test_bad_input_is_refused_before_anything_happens(completed, timestamp, result):
    with pytest.raises(DispatchError) as caught:
        qa_verify(actor=actor_for(Role.QA), ticket_id=completed.id, timestamp=timestamp, result=result)
    assert (caught.value.code, caught.value.status) == ("INVALID_REQUEST", 400)
    assert QaReview.objects.count() == 0


def test_only_qa_and_dispatchers_verify(completed, tech_actor):
    with pytest.raises(DispatchError) as caught:
        qa_verify(actor=tech_actor, ticket_id=completed.id, timestamp=QA_TIME, result="PASS")
    assert caught.value.code == "TOOL_ROLE_FORBIDDEN"
