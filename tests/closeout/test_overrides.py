"""closeout.evidence_exception and dispatch.manual_bypass: the recorded ways around the gate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.closeout.models import ChecklistResult, EvidenceException
from dispatch.closeout.services import (
    closeout_packet_build,
    dispatch_manual_bypass,
    evidence_exception_grant,
    qa_verify,
    tech_complete,
    ticket_close,
)
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import DOOR_CHECKLIST, DOOR_EVIDENCE_KEYS, actor_for, door_evidence_add

pytestmark = pytest.mark.django_db


def test_an_exception_is_granted_without_moving_the_ticket(job):
    qa = actor_for(Role.QA)
    version = Ticket.objects.get(pk=job.pk).version
    outcome = evidence_exception_grant(
        actor=qa,
        ticket_id=job.id,
        exception_reason="Pending signature documentation",
        evidence_refs=["signature_or_no_signature_reason"],
        expires_at="2099-02-27T12:00:00.000Z",
    )
    exception = outcome.result
    assert (exception.evidence_refs, exception.granted_by, exception.expires_at.year) == (
        ["signature_or_no_signature_reason"],
        qa.actor_id,
        2099,
    )
    fresh = Ticket.objects.get(pk=job.pk)
    assert (fresh.state, fresh.version) == ("IN_PROGRESS", version + 1)
    event = AuditEvent.objects.filter(ticket=job).order_by("-seq").first()
    assert (event.tool_name, event.payload["evidence_exception_id"]) == (
        "closeout.evidence_exception",
        str(exception.id),
    )


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"exception_reason": ""}, "exception_reason"),
        ({"exception_reason": "ok", "evidence_refs": ["photo_of_the_moon"]}, "evidence_refs"),
        ({"exception_reason": "ok", "evidence_refs": "photo_before_door_edge_and_strike"}, "evidence_refs"),
        ({"exception_reason": "ok", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"exception_reason": "ok", "expires_at": "soon"}, "expires_at"),
    ],
)
def test_bad_exceptions_are_refused(job, dispatcher, kwargs, field):
    with pytest.raises(DispatchError) as caught:
        evidence_exception_grant(actor=dispatcher, ticket_id=job.id, **kwargs)
    assert (caught.value.status, caught.value.details["field"]) == (400, field)
    assert EvidenceException.objects.count() == 0


def test_manual_bypass_completes_without_the_gate_and_records_what_was_missing(job, dispatcher):
    door_evidence_add(job, keys=DOOR_EVIDENCE_KEYS[:1], signature=False)
    outcome = dispatch_manual_bypass(
        actor=dispatcher, ticket_id=job.id, bypass_rationale="Escalation override applied", target_tool="tech.complete"
    )
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    record = outcome.result
    assert record.is_bypass and record.tool == "dispatch.manual_bypass"
    assert record.gate["target_tool"] == "tech.complete"
    assert record.gate["missing_evidence_keys"] == sorted([*DOOR_EVIDENCE_KEYS[1:], "signature_or_no_signature_reason"])
    assert record.gate["ready"] is False

    # QA verifies a bypassed completion without re-running the gate; the close packet shows the bypass.
    qa_verify(actor=actor_for(Role.QA), ticket_id=job.id, timestamp="2026-03-01T10:00:00Z", result="PASS")
    ticket_close(actor=dispatcher, ticket_id=job.id, reason="Billed with the annual contract")
    packet = closeout_packet_build(ticket_id=job.id).packet
    bypass = packet["overrides"][0]
    assert (bypass["kind"], bypass["bypass_rationale"]) == ("manual_bypass", "Escalation override applied")


def test_manual_bypass_of_completed_work_waves_it_through_the_qa_recheck(job, tech_actor, dispatcher):
    door_evidence_add(job, keys=DOOR_EVIDENCE_KEYS[1:])
    granted = evidence_exception_grant(
        actor=dispatcher, ticket_id=job.id, exception_reason="Photo pending", evidence_refs=[DOOR_EVIDENCE_KEYS[0]]
    ).result
    tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    EvidenceException.objects.filter(pk=granted.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DispatchError):
        qa_verify(actor=dispatcher, ticket_id=job.id, timestamp="2026-03-01T10:00:00Z", result="PASS")

    outcome = dispatch_manual_bypass(actor=dispatcher, ticket_id=job.id, bypass_rationale="Customer confirmed by phone")
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert outcome.result.checklist_status == DOOR_CHECKLIST  # carried over from the submission it bypasses
    # Someone other than the dispatcher who bypassed the gate verifies it.
    assert (
        qa_verify(
            actor=actor_for(Role.QA), ticket_id=job.id, timestamp="2026-03-01T10:00:00Z", result="PASS"
        ).ticket.state
        == "VERIFIED"
    )
    assert ChecklistResult.objects.filter(ticket=job).count() == 2


def test_only_dispatchers_bypass_and_they_must_say_why(job, tech_actor, dispatcher):
    with pytest.raises(DispatchError) as caught:
        dispatch_manual_bypass(actor=tech_actor, ticket_id=job.id, bypass_rationale="I am sure")
    assert caught.value.code == "TOOL_ROLE_FORBIDDEN"
    with pytest.raises(DispatchError) as caught:
        dispatch_manual_bypass(actor=dispatcher, ticket_id=job.id, bypass_rationale="  ")
    assert (caught.value.code, caught.value.details["field"]) == ("INVALID_REQUEST", "bypass_rationale")
    assert Ticket.objects.get(pk=job.pk).state == "IN_PROGRESS"
