"""tech.complete and closeout.candidate behind the evidence gate: refusals name exactly what is missing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.closeout.gate import closeout_requirements
from dispatch.closeout.models import ChecklistResult, EvidenceException
from dispatch.closeout.services import closeout_candidate, evidence_add, evidence_exception_grant, tech_complete
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from tests.factories import DOOR_CHECKLIST, DOOR_EVIDENCE_KEYS, actor_for, door_evidence_add, ticket_at

pytestmark = pytest.mark.django_db

ALL_DOOR_KEYS = sorted([*DOOR_EVIDENCE_KEYS, "signature_or_no_signature_reason"])


def refusal(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def snapshot(ticket) -> tuple:
    fresh = Ticket.objects.get(pk=ticket.pk)
    return (
        fresh.state,
        fresh.version,
        AuditEvent.objects.filter(ticket=ticket).count(),
        StateTransition.objects.filter(ticket=ticket).count(),
        ChecklistResult.objects.filter(ticket=ticket).count(),
    )


def assert_incomplete(error: DispatchError, code: str, evidence: list[str], checklist: list[str]) -> None:
    assert (error.code, error.status, error.dimension) == ("CLOSEOUT_REQUIREMENTS_INCOMPLETE", 409, "evidence")
    assert error.details["requirement_code"] == code
    assert error.details["missing_evidence_keys"] == evidence
    assert error.details["missing_checklist_keys"] == checklist


def test_nothing_done_is_refused_for_the_signature_first_listing_everything_missing(job, tech_actor):
    before = snapshot(job)
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status={}))
    assert_incomplete(error, "MISSING_SIGNATURE_CONFIRMATION", ALL_DOOR_KEYS, sorted(DOOR_CHECKLIST))
    assert error.details["incident_type"] == "DOOR_WONT_LATCH"
    assert snapshot(job) == before


def test_a_no_signature_reason_satisfies_the_signature_rule(job, tech_actor):
    error = refusal(
        lambda: tech_complete(
            actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST, no_signature_reason="Tenant not home"
        )
    )
    assert_incomplete(error, "MISSING_EVIDENCE", sorted(DOOR_EVIDENCE_KEYS), [])


def test_signature_evidence_without_a_key_satisfies_the_signature_rule(job, tech_actor):
    door_evidence_add(job, signature=False)
    evidence_add(actor=tech_actor, ticket_id=job.id, kind="signature", uri="s3://b/sig.png")
    outcome = tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"


def test_missing_checklist_answers_are_listed_exactly(job, tech_actor):
    door_evidence_add(job)
    status = {**DOOR_CHECKLIST, "resolution_status": False, "billing_authorization": "yes"}
    del status["onsite_photos_after"]
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=status))
    assert_incomplete(
        error, "MISSING_CHECKLIST", [], ["billing_authorization", "onsite_photos_after", "resolution_status"]
    )


def test_missing_evidence_and_checklist_together(job, tech_actor):
    door_evidence_add(job, keys=DOOR_EVIDENCE_KEYS[:2])
    error = refusal(
        lambda: tech_complete(
            actor=tech_actor, ticket_id=job.id, checklist_status={**DOOR_CHECKLIST, "work_performed": False}
        )
    )
    assert_incomplete(error, "MISSING_REQUIREMENTS", [DOOR_EVIDENCE_KEYS[2]], ["work_performed"])


def test_evidence_refs_that_name_nothing_on_the_ticket_are_invalid(job, tech_actor):
    items = door_evidence_add(job)
    ghost = str(uuid.uuid4())
    error = refusal(
        lambda: tech_complete(
            actor=tech_actor,
            ticket_id=job.id,
            checklist_status=DOOR_CHECKLIST,
            evidence_refs=[str(items[0].id), items[1].uri, ghost, "s3://elsewhere/x.jpg"],
        )
    )
    assert_incomplete(error, "INVALID_EVIDENCE_REFERENCE", [], [])
    assert error.details["invalid_evidence_refs"] == sorted([ghost, "s3://elsewhere/x.jpg"])


def test_evidence_refs_by_id_and_uri_resolve(job, tech_actor):
    items = door_evidence_add(job)
    outcome = tech_complete(
        actor=tech_actor,
        ticket_id=job.id,
        checklist_status=DOOR_CHECKLIST,
        evidence_refs=[str(items[0].id).upper(), items[1].uri],
    )
    assert outcome.result.evidence_refs == [str(items[0].id).upper(), items[1].uri]


def test_an_unknown_incident_type_has_no_template():
    ticket = ticket_at("IN_PROGRESS", incident_type="ELEVATOR_STUCK")
    error = refusal(
        lambda: tech_complete(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST)
    )
    assert_incomplete(error, "TEMPLATE_NOT_FOUND", [], [])


def test_completion_moves_the_job_and_stores_the_submission_with_one_event(job, tech_actor):
    door_evidence_add(job)
    events = AuditEvent.objects.filter(ticket=job).count()
    outcome = tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    submission = ChecklistResult.objects.get(ticket=job)
    assert (submission.tool, submission.checklist_status, submission.submitted_by) == (
        "tech.complete",
        DOOR_CHECKLIST,
        tech_actor.actor_id,
    )
    assert submission.gate["ready"] is True
    assert AuditEvent.objects.filter(ticket=job).count() == events + 1
    event = AuditEvent.objects.filter(ticket=job).order_by("-seq").first()
    assert (event.before_state, event.after_state) == ("IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION")
    assert event.payload["closeout_check"]["code"] == "READY"


def test_an_evidence_exception_waives_the_keys_it_names_until_it_expires(job, tech_actor, dispatcher):
    door_evidence_add(job, keys=DOOR_EVIDENCE_KEYS[1:])
    granted = evidence_exception_grant(
        actor=dispatcher,
        ticket_id=job.id,
        exception_reason="Before-photo lost with the tech's phone",
        evidence_refs=[DOOR_EVIDENCE_KEYS[0]],
        expires_at=(timezone.now() + timedelta(days=1)).isoformat(),
    ).result
    gate = closeout_requirements(ticket=job, checklist_status=DOOR_CHECKLIST)
    assert gate.ready and gate.waived_evidence_keys == [DOOR_EVIDENCE_KEYS[0]]

    EvidenceException.objects.filter(pk=granted.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST))
    assert_incomplete(error, "MISSING_EVIDENCE", [DOOR_EVIDENCE_KEYS[0]], [])


def test_an_exception_naming_no_keys_waives_all_evidence_but_not_the_checklist(job, dispatcher):
    evidence_exception_grant(actor=dispatcher, ticket_id=job.id, exception_reason="Site inaccessible to cameras")
    gate = closeout_requirements(ticket=job, checklist_status={})
    assert gate.missing_evidence_keys == []
    assert gate.code == "MISSING_CHECKLIST"


def test_the_candidate_path_blocks_high_risk_incident_types_for_every_role(technician):
    ticket = ticket_at("IN_PROGRESS", incident_type="CANNOT_SECURE_ENTRY", technician=technician)
    keys = [
        "photo_before_security_risk",
        "photo_after_temporary_or_permanent_securement",
        "note_risk_mitigation_and_customer_handoff",
    ]
    door_evidence_add(ticket, keys=keys)
    before = snapshot(ticket)
    for role in (Role.DISPATCHER, Role.AGENT):
        error = refusal(
            lambda role=role: closeout_candidate(
                actor=actor_for(role), ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST
            )
        )
        assert (error.code, error.status, error.dimension) == ("MANUAL_REVIEW_REQUIRED", 409, "policy")
        assert error.details["risk_profile"]["level"] == "high"
    assert snapshot(ticket) == before
    # A person completes it through tech.complete.
    tech = actor_for(Role.TECHNICIAN, technician=technician)
    assert tech_complete(actor=tech, ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST).ticket.state == (
        "COMPLETED_PENDING_VERIFICATION"
    )


def test_the_candidate_path_completes_low_risk_work_for_an_agent(job):
    door_evidence_add(job)
    outcome = closeout_candidate(actor=actor_for(Role.AGENT), ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert outcome.result.tool == "closeout.candidate"


def test_the_candidate_path_still_enforces_the_gate(job):
    error = refusal(lambda: closeout_candidate(actor=actor_for(Role.AGENT), ticket_id=job.id, checklist_status={}))
    assert error.details["requirement_code"] == "MISSING_SIGNATURE_CONFIRMATION"


def test_tech_complete_is_not_an_agent_tool(job):
    error = refusal(
        lambda: tech_complete(actor=actor_for(Role.AGENT), ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    )
    assert (error.code, error.status) == ("TOOL_ROLE_FORBIDDEN", 403)


def test_completion_from_the_wrong_state_is_refused(dispatcher):
    ticket = ticket_at("ON_SITE")
    error = refusal(lambda: tech_complete(actor=dispatcher, ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST))
    assert (error.code, error.status) == ("INVALID_STATE_TRANSITION", 409)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"checklist_status": ["work_performed"]},
        {"checklist_status": {}, "evidence_refs": "abc"},
        {"checklist_status": {}, "no_signature_reason": 7},
    ],
)
def test_malformed_submissions_are_bad_requests(job, tech_actor, kwargs):
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id, **kwargs))
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
