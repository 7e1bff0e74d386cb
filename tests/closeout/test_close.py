"""ticket.close and ticket.force_close: evidence that never changes again, and the closeout packet
the worker compiles once the close has committed, with its hash chained into the audit trail."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dispatch.closeout.models import CloseoutPacket, Closure, Evidence, EvidenceLocked, LaborEntry
from dispatch.closeout.services import (
    closeout_packet_build,
    closeout_packets_sweep,
    evidence_add,
    evidence_exception_grant,
    invoice_generate,
    qa_verify,
    tech_complete,
    ticket_close,
    ticket_force_close,
)
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.audit import audit_chain_verify
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from tests.factories import DOOR_CHECKLIST, actor_for, door_evidence_add, ticket_at

pytestmark = pytest.mark.django_db


def recomputed_hash(packet: dict) -> str:
    return hashlib.sha256(
        json.dumps(packet, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()


@pytest.fixture
def completed(job, tech_actor):
    door_evidence_add(job, actor=tech_actor)
    tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST, no_signature_reason=None)
    return job


@pytest.fixture
def invoiced(completed, technician):
    qa_verify(actor=actor_for(Role.QA), ticket_id=completed.id, timestamp="2026-02-25T17:10:00Z", result="PASS")
    LaborEntry.objects.create(ticket=completed, technician=technician, minutes=60)
    invoice_generate(actor=actor_for(Role.FINANCE), ticket_id=completed.id)
    return completed


@pytest.fixture
def closing(django_capture_on_commit_callbacks):
    """Run a close as in production: the packet is compiled by the (synchronous, in tests)
    worker task the close hands over on commit."""

    def close(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            outcome = service(**kwargs)
        return outcome, CloseoutPacket.objects.filter(ticket_id=outcome.ticket.id).first()

    return close


def test_close_compiles_a_packet_whose_hash_anyone_can_recompute(invoiced, dispatcher, closing):
    outcome, row = closing(ticket_close, actor=dispatcher, ticket_id=invoiced.id, reason="Work complete and paid")
    assert outcome.ticket.state == "CLOSED"
    assert row is not None and row.id == outcome.result.packet_id and not row.forced
    assert row.sha256 == recomputed_hash(row.packet)

    packet = row.packet
    assert packet["header"]["state"] == "CLOSED"
    assert packet["header"]["close_reason"] == "Work complete and paid"
    assert packet["header"]["closed_by"]["actor_id"] == dispatcher.actor_id
    evidence = list(Evidence.objects.filter(ticket=invoiced).order_by("created_at", "id"))
    assert [e["id"] for e in packet["evidence"]] == [str(e.id) for e in evidence]
    assert {e["evidence_key"] for e in packet["evidence"]} >= {"signature_or_no_signature_reason"}
    assert all(e["checksum"] is None or isinstance(e["checksum"], str) for e in packet["evidence"])
    assert packet["signature"]["captured"] is True
    assert packet["checklist"]["checklist_status"] == DOOR_CHECKLIST
    assert packet["invoice"]["total_cents"] == 12500
    assert packet["qa_reviews"][0]["result"] == "PASS"
    history = [(t["from_state"], t["to_state"]) for t in packet["state_history"]]
    assert history == [(t.from_state or None, t.to_state) for t in StateTransition.objects.filter(ticket=invoiced)]
    assert history[-1] == ("INVOICED", "CLOSED")
    assert [e["tool_name"] for e in packet["timeline"]][-3:] == [
        "qa.verify",
        "billing.generate_invoice",
        "ticket.close",
    ]
    roles = {a["actor_role"] for a in packet["actors"]}
    assert roles >= {"dispatcher", "technician", "qa", "finance"}
    assert packet["overrides"] == []

    close_event, compiled = AuditEvent.objects.filter(ticket=invoiced).order_by("-seq")[:2][::-1]
    assert (close_event.tool_name, close_event.after_state) == ("ticket.close", "CLOSED")
    assert close_event.payload["closeout_packet_id"] == str(row.id)
    assert (compiled.tool_name, compiled.before_state, compiled.after_state) == (
        "closeout.packet_compiled",
        "CLOSED",
        "CLOSED",
    )
    assert compiled.payload["packet_sha256"] == row.sha256
    assert audit_chain_verify().ok


def test_the_packet_is_compiled_once_however_often_it_is_asked_for(invoiced, dispatcher, closing):
    _, row = closing(ticket_close, actor=dispatcher, ticket_id=invoiced.id)
    events = AuditEvent.objects.filter(ticket=invoiced).count()

    assert closeout_packet_build(ticket_id=invoiced.id) == row
    assert closeout_packets_sweep() == 0
    assert CloseoutPacket.objects.filter(ticket=invoiced).count() == 1
    assert AuditEvent.objects.filter(ticket=invoiced).count() == events


def test_the_sweep_compiles_a_packet_whose_hand_off_was_lost(invoiced, dispatcher):
    # No on-commit hand-off runs here: as if the worker queue lost it.
    outcome = ticket_close(actor=dispatcher, ticket_id=invoiced.id, reason="Paid")
    assert not CloseoutPacket.objects.filter(ticket=invoiced).exists()

    assert closeout_packets_sweep() == 1

    row = CloseoutPacket.objects.get(ticket=invoiced)
    assert row.id == outcome.result.packet_id
    assert row.packet["header"]["close_reason"] == "Paid"
    assert row.sha256 == recomputed_hash(row.packet)


def test_the_sweep_reads_only_pending_closures_however_many_tickets_were_closed(dispatcher):
    """The sweep claims pending closures (an outbox), not a scan of closed tickets or close events:
    its cost does not grow with the closes whose packets are compiled."""

    def close_one():
        ticket = ticket_at("VERIFIED")
        ticket_close(actor=dispatcher, ticket_id=ticket.id, reason="Warranty work, not billed")
        return ticket

    close_one()
    assert closeout_packets_sweep() == 1
    with CaptureQueriesContext(connection) as few:
        assert closeout_packets_sweep() == 0
    for _ in range(3):
        close_one()
    assert closeout_packets_sweep() == 3
    with CaptureQueriesContext(connection) as many:
        assert closeout_packets_sweep() == 0
    assert len(many.captured_queries) <= len(few.captured_queries)


def test_the_close_stores_its_packet_id_and_reason_in_a_table(completed, dispatcher):
    evidence_exception_grant(actor=dispatcher, ticket_id=completed.id, exception_reason="Customer refused photos")
    outcome = ticket_force_close(
        actor=actor_for(Role.APPROVER),
        ticket_id=completed.id,
        override_code="FORCE",
        override_reason="Escalation required for safety follow-up",
        approver_role="approver",
    )
    closure = Closure.objects.get(ticket=completed)
    assert closure == outcome.result and closure.packet_compiled_at is None
    assert (closure.forced, closure.reason) == (True, "Escalation required for safety follow-up")
    assert closure.overrides[0]["override_code"] == "FORCE"
    # The audit event still tells the same story, for the chain.
    assert outcome.event.payload["closeout_packet_id"] == str(closure.packet_id)

    packet = closeout_packet_build(ticket_id=completed.id)
    closure.refresh_from_db()
    assert (packet.id, packet.forced) == (closure.packet_id, True) and closure.packet_compiled_at is not None
    assert packet.packet["header"]["close_reason"] == "Escalation required for safety follow-up"


def test_no_packet_is_compiled_for_a_ticket_that_is_not_closed(invoiced):
    assert closeout_packet_build(ticket_id=invoiced.id) is None
    assert not CloseoutPacket.objects.exists()


def test_any_edit_to_the_packet_changes_its_hash(invoiced, dispatcher, closing):
    _, row = closing(ticket_close, actor=dispatcher, ticket_id=invoiced.id)
    tampered = json.loads(json.dumps(row.packet))
    tampered["invoice"]["total_cents"] -= 1
    assert recomputed_hash(tampered) != row.sha256


def test_closing_locks_the_evidence_for_good(invoiced, dispatcher, tech_actor):
    ticket_close(actor=dispatcher, ticket_id=invoiced.id)
    items = list(Evidence.objects.filter(ticket=invoiced))
    assert items and all(item.is_locked for item in items)

    item = items[0]
    item.uri = "s3://elsewhere/forged.jpg"
    with pytest.raises(EvidenceLocked):
        item.save()
    with pytest.raises(EvidenceLocked):
        Evidence.objects.filter(pk=item.pk).update(uri="s3://elsewhere/forged.jpg")
    with pytest.raises(EvidenceLocked):
        Evidence.objects.filter(pk=item.pk).update(is_locked=False)
    with pytest.raises(EvidenceLocked):
        item.delete()
    with pytest.raises(EvidenceLocked):
        Evidence.objects.filter(ticket=invoiced).delete()
    assert Evidence.objects.get(pk=item.pk).uri != "s3://elsewhere/forged.jpg"

    with pytest.raises(DispatchError) as caught:
        evidence_add(actor=dispatcher, ticket_id=invoiced.id, kind="PHOTO", uri="s3://late/photo.jpg")
    assert (caught.value.code, caught.value.status) == ("EVIDENCE_LOCKED", 409)


def test_close_from_verified_records_an_override_code(completed, dispatcher, closing):
    qa_verify(actor=dispatcher, ticket_id=completed.id, timestamp="2026-02-25T17:10:00Z", result="PASS")
    _, row = closing(
        ticket_close,
        actor=actor_for(Role.APPROVER),
        ticket_id=completed.id,
        reason="Warranty job, no invoice",
        closeout_override_code="WARRANTY",
    )
    assert row.packet["invoice"] is None
    assert row.packet["overrides"][0]["kind"] == "closeout_override_code"
    assert row.packet["overrides"][0]["code"] == "WARRANTY"


def test_close_is_refused_before_verification(completed, dispatcher):
    with pytest.raises(DispatchError) as caught:
        ticket_close(actor=dispatcher, ticket_id=completed.id)
    assert (caught.value.code, caught.value.status) == ("INVALID_STATE_TRANSITION", 409)
    assert CloseoutPacket.objects.count() == 0
    assert not Evidence.objects.filter(is_locked=True).exists()


def test_force_close_closes_completed_work_with_the_override_in_the_packet(completed, dispatcher, closing):
    evidence_exception_grant(actor=dispatcher, ticket_id=completed.id, exception_reason="Customer refused photos")
    outcome, row = closing(
        ticket_force_close,
        actor=actor_for(Role.APPROVER),
        ticket_id=completed.id,
        override_code="FORCE",
        override_reason="Escalation required for safety follow-up",
        approver_role="dispatcher_admin",
    )
    assert outcome.ticket.state == "CLOSED"
    assert row.forced and row.sha256 == recomputed_hash(row.packet)
    override = row.packet["overrides"][0]
    assert (override["kind"], override["override_code"], override["approver_role"]) == (
        "force_close",
        "FORCE",
        "dispatcher",
    )
    assert row.packet["header"]["close_tool"] == "ticket.force_close"
    assert row.packet["evidence_exceptions"][0]["reason"] == "Customer refused photos"
    assert all(Evidence.objects.filter(ticket=completed).values_list("is_locked", flat=True))


@pytest.mark.parametrize(
    "code,reason,approver,field",
    [
        ("FRC1", "Escalation required for safety follow-up", "approver", "override_code"),
        ("FORCE", "Too short a reason", "approver", "override_reason"),
        ("FORCE", "Escalation required for safety follow-up", "technician", "approver_role"),
        ("FORCE", "Escalation required for safety follow-up", "nobody", "approver_role"),
        ("FORCE", "Escalation required for safety follow-up", "", "approver_role"),
    ],
)
def test_force_close_needs_a_code_a_reason_and_an_approver(completed, dispatcher, code, reason, approver, field):
    before = (Ticket.objects.get(pk=completed.pk).version, AuditEvent.objects.count())
    with pytest.raises(DispatchError) as caught:
        ticket_force_close(
            actor=dispatcher, ticket_id=completed.id, override_code=code, override_reason=reason, approver_role=approver
        )
    assert (caught.value.code, caught.value.status, caught.value.details["field"]) == ("INVALID_REQUEST", 400, field)
    assert (Ticket.objects.get(pk=completed.pk).version, AuditEvent.objects.count()) == before


def test_force_close_only_from_completed_and_only_by_dispatcher_or_approver(dispatcher):
    args = {
        "override_code": "FORCE",
        "override_reason": "Escalation required for safety follow-up",
        "approver_role": "approver",
    }
    verified = ticket_at("VERIFIED")
    with pytest.raises(DispatchError) as caught:
        ticket_force_close(actor=dispatcher, ticket_id=verified.id, **args)
    assert caught.value.code == "INVALID_STATE_TRANSITION"
    completed = ticket_at("COMPLETED_PENDING_VERIFICATION")
    with pytest.raises(DispatchError) as caught:
        ticket_force_close(actor=actor_for(Role.FINANCE), ticket_id=completed.id, **args)
    assert caught.value.code == "TOOL_ROLE_FORBIDDEN"


def test_closes_made_before_closures_existed_are_carried_forward_from_their_audit_events(dispatcher):
    from importlib import import_module

    from django.apps import apps

    compiled = ticket_at("VERIFIED")
    ticket_close(actor=dispatcher, ticket_id=compiled.id, reason="Paid", closeout_override_code="WARRANTY")
    packet = closeout_packet_build(ticket_id=compiled.id)
    pending = ticket_at("COMPLETED_PENDING_VERIFICATION")
    forced = ticket_force_close(
        actor=dispatcher,
        ticket_id=pending.id,
        override_code="FORCE",
        override_reason="Escalation required for safety follow-up",
        approver_role="approver",
    ).result
    Closure.objects.all().delete()  # as the database stood before the migration

    import_module("dispatch.closeout.migrations.0006_closures").closures_from_audit(apps, None)

    done = Closure.objects.get(ticket=compiled)
    assert (done.packet_id, done.forced, done.reason) == (packet.id, False, "Paid")
    assert done.overrides[0]["code"] == "WARRANTY" and done.packet_compiled_at == packet.created_at
    waiting = Closure.objects.get(ticket=pending)
    assert (waiting.packet_id, waiting.forced, waiting.packet_compiled_at) == (forced.packet_id, True, None)
    assert waiting.reason == "Escalation required for safety follow-up"
    assert closeout_packets_sweep() == 1
    assert CloseoutPacket.objects.get(ticket=pending).id == forced.packet_id
