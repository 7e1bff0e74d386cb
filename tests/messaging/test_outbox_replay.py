"""outbox.replay: a person puts a dead letter back in the queue, with one audit event."""

from __future__ import annotations

import uuid

import pytest

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import MAX_ATTEMPTS, outbox_deliver, outbox_enqueue, outbox_replay
from dispatch.tickets.audit import audit_chain_verify
from dispatch.tickets.models import AuditEvent
from tests.factories import actor_for, ticket_new

Status = OutboundMessage.Status


def dead_letter(live_sms, clock, ticket=None) -> OutboundMessage:
    live_sms.fail_with(503)
    message = outbox_enqueue(
        channel="SMS", recipient="+15105550142", body="Your technician is on the way.", ticket=ticket
    )
    for _ in range(MAX_ATTEMPTS):
        outbox_deliver(message_id=message.pk)
        clock.advance(hours=1)
    message.refresh_from_db()
    assert message.status == Status.DEAD_LETTER
    return message


@pytest.mark.django_db
def test_replay_sends_a_dead_letter_again_and_records_who_did_it(
    live_sms, clock, sync_queue, django_capture_on_commit_callbacks
):
    ticket = ticket_new()
    message = dead_letter(live_sms, clock, ticket=ticket)
    live_sms.recover()
    finance = actor_for("finance")
    events_before = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        replayed = outbox_replay(actor=finance, outbox_id=str(message.pk), request={"outbox_id": str(message.pk)})

    assert replayed.pk == message.pk
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 0
    assert len(live_sms.sent) == 1
    assert len(live_sms.requests) == MAX_ATTEMPTS + 1
    assert AuditEvent.objects.count() == events_before + 1
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert event.tool_name == "outbox.replay"
    assert event.ticket_id == ticket.pk
    assert event.actor_id == finance.actor_id
    assert event.actor_role == "finance"
    assert event.before_state == event.after_state == ticket.state
    assert event.payload["outbox_id"] == str(message.pk)
    assert event.payload["previous_status"] == Status.DEAD_LETTER
    assert event.payload["previous_attempts"] == MAX_ATTEMPTS
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_replay_of_a_message_without_a_ticket_is_audited_without_one(live_sms, clock):
    message = dead_letter(live_sms, clock)
    outbox_replay(actor=actor_for("admin"), outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == Status.PENDING
    assert message.last_error == ""
    assert message.next_attempt_at == clock.now
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert event.tool_name == "outbox.replay"
    assert event.ticket_id is None


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["dispatcher", "technician", "agent", "qa", "audit", "customer"])
def test_only_finance_and_admin_may_replay(live_sms, clock, role):
    message = dead_letter(live_sms, clock)
    events_before = AuditEvent.objects.count()
    with pytest.raises(DispatchError) as refused:
        outbox_replay(actor=actor_for(role), outbox_id=message.pk)
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    assert refused.value.status == 403
    message.refresh_from_db()
    assert message.status == Status.DEAD_LETTER
    assert AuditEvent.objects.count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize("outbox_id", [pytest.param(str(uuid.uuid4()), id="a-random-uuid"), "not-a-uuid"])
def test_replay_of_an_unknown_message_is_404(outbox_id):
    with pytest.raises(DispatchError) as refused:
        outbox_replay(actor=actor_for("admin"), outbox_id=outbox_id)
    assert refused.value.code == "OUTBOX_MESSAGE_NOT_FOUND"
    assert refused.value.status == 404


@pytest.mark.django_db
def test_replay_of_a_sent_message_is_refused_and_changes_nothing(live_sms, clock):
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    outbox_deliver(message_id=message.pk)
    events_before = AuditEvent.objects.count()
    with pytest.raises(DispatchError) as refused:
        outbox_replay(actor=actor_for("admin"), outbox_id=message.pk)
    assert refused.value.code == "OUTBOX_MESSAGE_NOT_REPLAYABLE"
    assert refused.value.status == 409
    assert refused.value.details["status"] == Status.SENT
    assert AuditEvent.objects.count() == events_before
    assert len(live_sms.sent) == 1


@pytest.mark.django_db
def test_a_failing_message_can_be_replayed_before_it_dead_letters(live_sms, clock):
    live_sms.fail_with(503)
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == Status.FAILED
    outbox_replay(actor=actor_for("finance"), outbox_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.PENDING, 0)
