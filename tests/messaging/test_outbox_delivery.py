"""Delivery through the outbox against a local Twilio: retries, dead letters, crashes, races.

The clock is frozen and moved by hand, and outbox_deliver / outbox_sweep are called directly:
no sleeping. What a customer would have received is what the local Twilio accepted.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from dispatch.messaging import adapters, services
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import (
    MAX_ATTEMPTS,
    claim_lease,
    outbox_deliver,
    outbox_enqueue,
    outbox_sweep,
)

Status = OutboundMessage.Status


def queued(**kwargs) -> OutboundMessage:
    """A committed PENDING message whose on_commit hand-off is not run (the test delivers it)."""
    defaults = {"channel": "SMS", "recipient": "+15105550142", "body": "Your technician is on the way."}
    return outbox_enqueue(**{**defaults, **kwargs})


def reload(message: OutboundMessage) -> OutboundMessage:
    return OutboundMessage.objects.get(pk=message.pk)


@pytest.mark.django_db
def test_a_due_message_is_sent_through_twilio_and_its_sid_recorded(live_sms, clock):
    message = queued()
    outbox_deliver(message_id=message.pk)
    message = reload(message)
    assert message.status == Status.SENT
    assert [r.form["Body"] for r in live_sms.sent] == ["Your technician is on the way."]
    assert message.provider_message_id.startswith("SM")
    assert message.sent_at == clock.now
    assert message.claim_token is None


@pytest.mark.django_db
def test_a_failing_provider_is_retried_with_backoff_and_dead_lettered_after_six_attempts(live_sms, clock):
    live_sms.fail_with(503, message="Service Unavailable")
    message = queued()
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outbox_deliver(message_id=message.pk)
        message = reload(message)
        assert message.attempts == attempt
        assert len(live_sms.requests) == attempt
        assert "503" in message.last_error
        if attempt < MAX_ATTEMPTS:
            assert message.status == Status.FAILED
            wait = message.next_attempt_at - clock.now
            waits.append(wait.total_seconds())
            # Not due yet: a worker (or the sweep) asking early gets nothing and sends nothing.
            clock.advance(seconds=wait.total_seconds() - 1)
            assert outbox_deliver(message_id=message.pk) is None
            assert len(live_sms.requests) == attempt
            clock.advance(seconds=1)
    assert waits == [30, 60, 120, 240, 480]
    assert message.status == Status.DEAD_LETTER
    # Dead letters stay put: no worker, no sweep picks them up again.
    clock.advance(hours=2)
    assert outbox_deliver(message_id=message.pk) is None
    assert outbox_sweep()["queued"] == 0
    assert len(live_sms.requests) == MAX_ATTEMPTS
    assert live_sms.sent == []


@pytest.mark.django_db
def test_a_message_twilio_refuses_outright_is_dead_lettered_at_once(live_sms, clock):
    live_sms.fail_with(400, code=21211, message="The 'To' number is not a valid phone number.")
    message = queued()
    outbox_deliver(message_id=message.pk)
    message = reload(message)
    assert message.status == Status.DEAD_LETTER
    assert message.attempts == 1
    assert "21211" in message.last_error


@pytest.mark.django_db
def test_the_sweep_delivers_a_message_whose_hand_off_was_lost(live_sms, clock, sync_queue):
    message = queued()  # its on_commit hand-off never ran: the broker "lost" it
    assert outbox_sweep()["queued"] == 0  # still within the grace for its own hand-off
    clock.advance(seconds=31)
    report = outbox_sweep()
    assert report["queued"] == 1
    assert reload(message).status == Status.SENT
    assert len(live_sms.sent) == 1


@pytest.mark.django_db
def test_the_sweep_retries_failed_messages_when_they_fall_due(live_sms, clock, sync_queue):
    live_sms.fail_with(502)
    message = queued()
    outbox_deliver(message_id=message.pk)
    live_sms.recover()
    clock.advance(seconds=29)
    outbox_sweep()
    assert reload(message).status == Status.FAILED
    clock.advance(seconds=1)
    outbox_sweep()
    message = reload(message)
    assert message.status == Status.SENT
    assert message.attempts == 1
    assert len(live_sms.sent) == 1


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the worker gets to clean up."""


@pytest.mark.django_db
def test_a_worker_killed_between_claim_and_send_loses_nothing_and_sends_once(live_sms, clock, monkeypatch, sync_queue):
    message = queued()

    def killed(channel):
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setattr(adapters, "adapter_for", killed)
        with pytest.raises(WorkerKilled):
            outbox_deliver(message_id=message.pk)
    message = reload(message)
    assert message.status == Status.SENDING
    assert message.provider_message_id == ""

    # Another worker handed the same task (a broker redelivery) must not touch a live claim.
    assert outbox_deliver(message_id=message.pk) is None
    clock.advance(seconds=claim_lease().total_seconds() - 1)
    assert outbox_sweep()["reclaimed"] == 0
    assert reload(message).status == Status.SENDING

    clock.advance(seconds=2)
    report = outbox_sweep()
    assert report["reclaimed"] == 1
    message = reload(message)
    assert message.status == Status.SENT
    assert message.attempts == 1  # the lost claim counts as an attempt
    assert len(live_sms.sent) == 1

    clock.advance(minutes=10)
    outbox_sweep()
    assert len(live_sms.sent) == 1


@pytest.mark.django_db
def test_a_retry_after_a_recorded_send_does_not_send_again(live_sms, clock, sync_queue):
    message = queued()
    outbox_deliver(message_id=message.pk)
    # The broker redelivers the task (its acknowledgement was lost): nothing goes out twice.
    assert outbox_deliver(message_id=message.pk) is None
    clock.advance(hours=1)
    outbox_sweep()
    assert len(live_sms.sent) == 1
    assert reload(message).status == Status.SENT


@pytest.mark.django_db
def test_a_claim_that_expired_after_the_provider_took_the_message_is_closed_as_sent(live_sms, clock, sync_queue):
    message = queued()
    # A worker recorded Twilio's sid and died before marking the row SENT.
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_at=clock.now, provider_message_id="SM" + "1" * 32
    )
    clock.advance(seconds=claim_lease().total_seconds() + 1)
    report = outbox_sweep()
    assert report["recorded_sent"] == 1
    message = reload(message)
    assert message.status == Status.SENT
    assert message.provider_message_id == "SM" + "1" * 32
    assert live_sms.requests == []


@pytest.mark.django_db
def test_a_failed_row_that_already_has_a_provider_id_is_closed_without_sending(live_sms, clock):
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(status=Status.FAILED, provider_message_id="SM" + "2" * 32)
    outbox_deliver(message_id=message.pk)
    assert reload(message).status == Status.SENT
    assert live_sms.requests == []


@pytest.mark.django_db
def test_a_stuck_claim_on_the_last_attempt_becomes_a_dead_letter(live_sms, clock):
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_at=clock.now, attempts=MAX_ATTEMPTS - 1
    )
    clock.advance(seconds=claim_lease().total_seconds() + 1)
    assert outbox_sweep()["dead_lettered"] == 1
    message = reload(message)
    assert message.status == Status.DEAD_LETTER
    assert message.attempts == MAX_ATTEMPTS
    assert live_sms.requests == []


@pytest.mark.django_db
def test_a_misconfigured_delivery_mode_is_recorded_as_a_failure_not_lost(settings, clock):
    settings.DISPATCH_MESSAGE_DELIVERY = "carrier-pigeon"
    message = queued()
    outbox_deliver(message_id=message.pk)
    message = reload(message)
    assert message.status == Status.FAILED
    assert "carrier-pigeon" in message.last_error
    assert message.next_attempt_at == clock.now + timedelta(seconds=30)


@pytest.mark.django_db
def test_delivery_of_an_unknown_or_malformed_id_does_nothing(live_sms):
    assert outbox_deliver(message_id="not-a-uuid") is None
    assert outbox_deliver(message_id="00000000-0000-0000-0000-000000000000") is None
    assert live_sms.requests == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_one_message_at_once_send_it_once(live_sms, monkeypatch):
    # The hand-off goes nowhere, so the only deliveries are the racing workers below.
    monkeypatch.setattr(services, "_delivery_schedule", lambda message_id: None)
    with transaction.atomic():
        message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Your technician is on the way.")
    start = threading.Barrier(4)
    outcomes = []

    def worker():
        try:
            start.wait()
            outcomes.append(outbox_deliver(message_id=message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(live_sms.sent) == 1
    assert sum(1 for outcome in outcomes if outcome is not None) == 1
    assert reload(message).status == Status.SENT


@pytest.mark.django_db
def test_a_message_whose_worker_died_mid_send_goes_out_again_within_two_minutes(
    live_sms, clock, monkeypatch, sync_queue
):
    message = queued()

    def killed(channel):
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setattr(adapters, "adapter_for", killed)
        with pytest.raises(WorkerKilled):
            outbox_deliver(message_id=message.pk)
    # The sweep runs every minute; by its second run after the death the message is out.
    clock.advance(minutes=1)
    outbox_sweep()
    clock.advance(minutes=1)
    outbox_sweep()
    assert reload(message).status == Status.SENT
    assert len(live_sms.sent) == 1


def test_the_claim_lease_outlasts_any_send_a_live_worker_can_still_be_making(settings):
    # The task queue kills a delivery task at its timeout; the adapters stop waiting on the
    # provider after the send timeout for the connection and again for the answer.
    assert claim_lease().total_seconds() > settings.Q_CLUSTER["timeout"]
    assert claim_lease().total_seconds() > 2 * settings.DISPATCH_SEND_TIMEOUT_SECONDS
    assert adapters.longest_send_seconds() == 2 * settings.DISPATCH_SEND_TIMEOUT_SECONDS


def test_the_claim_lease_and_send_timeout_are_read_when_used(settings):
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 3
    settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = 8
    assert claim_lease() == timedelta(seconds=8)
    assert adapters.longest_send_seconds() == 6
