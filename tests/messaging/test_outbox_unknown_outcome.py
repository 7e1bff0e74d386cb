"""A message whose last attempt may have reached the provider is never sent twice.

A worker can die (SIGKILL, OOM) after Twilio took the POST and before it recorded the sid, or
the answer can be lost after the request went out (a read timeout, a dropped connection). The
row is then flagged outcome_unknown, and the next attempt asks Twilio's message list before
sending again. Twilio here is the local one of tests/twilio_local.py, over real HTTP; what a
customer would have received is what it accepted (POSTs that created a message).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from dispatch.messaging import adapters
from dispatch.messaging.checks import LEASE_CHECK_ID, TIMEOUT_CHECK_ID, outbox_timing_check
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import (
    LEASE_EXPIRED_ERROR,
    MAX_ATTEMPTS,
    claim_lease,
    outbox_deliver,
    outbox_enqueue,
    outbox_replay,
    outbox_sweep,
)
from tests.factories import actor_for

Status = OutboundMessage.Status
TEXT = "Your technician is on the way."


def queued(**kwargs) -> OutboundMessage:
    defaults = {"channel": "SMS", "recipient": "+15105550142", "body": TEXT}
    return outbox_enqueue(**{**defaults, **kwargs})


def reload(message: OutboundMessage) -> OutboundMessage:
    return OutboundMessage.objects.get(pk=message.pk)


def left_by_a_killed_worker(message: OutboundMessage, clock) -> None:
    """The row as a worker killed mid-send leaves it: claimed, SENDING, no provider id recorded."""
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_at=clock.now, claim_token=uuid.uuid4()
    )


def methods(twilio) -> list[str]:
    return [request.method for request in twilio.requests]


@pytest.fixture
def queue_held(monkeypatch):
    """Hand-offs stay in the broker, so the test runs each delivery itself, in order."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


# --- A worker killed mid-send --------------------------------------------------------------


@pytest.mark.django_db
def test_a_claim_that_expired_after_twilio_took_the_post_is_recorded_with_twilios_sid(live_sms, clock, queue_held):
    message = queued()
    # The worker's POST reached Twilio; the worker was killed before it recorded the sid.
    sid = adapters.adapter_for("SMS").send(message)
    left_by_a_killed_worker(message, clock)

    clock.advance(seconds=claim_lease().total_seconds() + 1)
    assert outbox_sweep()["reclaimed"] == 1
    message = reload(message)
    assert (message.status, message.outcome_unknown, message.last_error) == (Status.FAILED, True, LEASE_EXPIRED_ERROR)

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.provider_message_id == sid
    assert message.outcome_unknown is False
    assert methods(live_sms) == ["POST", "GET"]
    assert [request.sid for request in live_sms.sent] == [sid]

    # Later sweeps and redelivered tasks leave it alone.
    clock.advance(hours=1)
    outbox_sweep()
    assert outbox_deliver(message_id=message.pk) is None
    assert len(live_sms.sent) == 1


@pytest.mark.django_db
def test_a_claim_that_expired_before_twilio_got_anything_is_sent_once(live_sms, clock, queue_held):
    message = queued()
    left_by_a_killed_worker(message, clock)  # killed before its POST went out

    clock.advance(seconds=claim_lease().total_seconds() + 1)
    outbox_sweep()
    assert reload(message).outcome_unknown is True
    message = outbox_deliver(message_id=message.pk)

    assert message.status == Status.SENT
    assert message.outcome_unknown is False
    assert methods(live_sms) == ["GET", "POST"]
    [sent] = live_sms.sent
    assert sent.form["Body"] == TEXT
    assert message.provider_message_id == sent.sid


@pytest.mark.django_db
def test_a_stuck_claim_on_its_last_attempt_is_dead_lettered_and_a_replay_asks_before_sending(live_sms, clock):
    message = queued()
    sid = adapters.adapter_for("SMS").send(message)
    left_by_a_killed_worker(message, clock)
    OutboundMessage.objects.filter(pk=message.pk).update(attempts=MAX_ATTEMPTS - 1)
    clock.advance(seconds=claim_lease().total_seconds() + 1)
    assert outbox_sweep()["dead_lettered"] == 1
    assert reload(message).outcome_unknown is True

    outbox_replay(actor=actor_for("admin"), outbox_id=str(message.pk))
    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.provider_message_id == sid
    assert methods(live_sms) == ["POST", "GET"]


# --- The answer lost after the request went out ------------------------------------------


@pytest.mark.django_db
def test_a_send_that_timed_out_waiting_for_twilio_is_found_by_the_retry_and_not_posted_again(live_sms, clock, settings):
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 1
    live_sms.delay = 1.5  # Twilio takes the message, then answers too late
    message = queued()

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.FAILED
    assert message.outcome_unknown is True
    assert "answer was lost" in message.last_error and "TimeoutError" in message.last_error
    [accepted] = live_sms.sent

    live_sms.delay = 0
    clock.advance(seconds=30)
    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.provider_message_id == accepted.sid
    assert message.outcome_unknown is False
    assert message.attempts == 1
    assert methods(live_sms) == ["POST", "GET"]


class DroppingServer:
    """Reads one whole HTTP request, then closes the connection without a word of answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += connection.recv(65536)
            self.received.append(head + b"\r\n\r\n" + body)

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.mark.django_db
def test_a_connection_dropped_after_the_request_was_written_is_an_unknown_outcome(live_sms, clock, settings):
    dropping = DroppingServer()
    settings.TWILIO_API_BASE = dropping.url
    message = queued()
    try:
        message = outbox_deliver(message_id=message.pk)
    finally:
        dropping.close()
    assert b"Body=Your+technician+is+on+the+way." in dropping.received[0]
    assert message.status == Status.FAILED
    assert message.outcome_unknown is True
    assert "RemoteDisconnected" in message.last_error

    settings.TWILIO_API_BASE = live_sms.base_url
    clock.advance(seconds=30)
    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert methods(live_sms) == ["GET", "POST"]


@pytest.mark.django_db
def test_a_refused_connection_is_a_plain_failure_and_the_retry_just_sends(live_sms, clock, settings):
    from tests.messaging.conftest import free_port

    settings.TWILIO_API_BASE = f"http://127.0.0.1:{free_port()}"
    message = outbox_deliver(message_id=queued().pk)
    assert message.status == Status.FAILED
    assert message.outcome_unknown is False
    assert "unreachable" in message.last_error

    settings.TWILIO_API_BASE = live_sms.base_url
    clock.advance(seconds=30)
    assert outbox_deliver(message_id=message.pk).status == Status.SENT
    assert methods(live_sms) == ["POST"]


@pytest.mark.django_db
def test_a_definite_refusal_after_a_lookup_clears_the_unknown_outcome(live_sms, clock, monkeypatch):
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)
    answer = live_sms._answer

    def refusing_posts(request):  # Twilio lists as usual but turns every new message away
        if request.method == "POST":
            return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}
        return answer(request)

    monkeypatch.setattr(live_sms, "_answer", refusing_posts)
    message = outbox_deliver(message_id=message.pk)
    # The lookup found nothing and the POST was refused outright: Twilio has no copy.
    assert message.status == Status.FAILED
    assert message.outcome_unknown is False
    assert "429" in message.last_error
    assert methods(live_sms) == ["GET", "POST"]
    assert live_sms.sent == []


# --- The lookup ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_lookup_sends_nothing_and_keeps_the_outcome_unknown(live_sms, clock, queue_held):
    message = queued()
    left_by_a_killed_worker(message, clock)
    clock.advance(seconds=claim_lease().total_seconds() + 1)
    outbox_sweep()
    live_sms.fail_with(500)

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.FAILED
    assert message.outcome_unknown is True
    assert "message list answered 500" in message.last_error
    assert methods(live_sms) == ["GET"]  # no POST: not knowing is no reason to send

    assert message.attempts == 2  # the lost claim, then the failed lookup

    live_sms.recover()
    clock.advance(minutes=1)
    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert methods(live_sms) == ["GET", "GET", "POST"]


@pytest.mark.django_db
def test_the_lookup_sends_twilios_list_query_with_basic_auth(live_sms, clock):
    from tests.messaging.conftest import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN

    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)
    outbox_deliver(message_id=message.pk)
    lookup = live_sms.requests[0]
    assert (lookup.method, lookup.path) == ("GET", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    assert lookup.basic_auth == (TWILIO_SID, TWILIO_TOKEN)
    assert lookup.query == {"To": "+15105550142", "From": TWILIO_FROM, "PageSize": "50"}


@pytest.mark.django_db
def test_an_identical_text_sent_before_this_message_existed_is_not_taken_for_it(live_sms, clock):
    # The same words went to the same customer an hour ago (an earlier visit's message).
    earlier = adapters.adapter_for("SMS").send(OutboundMessage(channel="SMS", recipient="+15105550142", body=TEXT))
    clock.advance(hours=1)
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.provider_message_id != earlier
    assert methods(live_sms) == ["POST", "GET", "POST"]


@pytest.mark.django_db
def test_a_sid_another_message_already_recorded_is_not_taken_for_this_one(live_sms, clock):
    first = outbox_deliver(message_id=queued().pk)
    second = queued()  # the same text to the same customer, a moment later
    OutboundMessage.objects.filter(pk=second.pk).update(outcome_unknown=True)

    second = outbox_deliver(message_id=second.pk)
    assert second.status == Status.SENT
    assert second.provider_message_id not in ("", first.provider_message_id)
    assert len(live_sms.sent) == 2


@pytest.mark.django_db
def test_a_message_found_on_a_later_page_of_twilios_list_is_recorded_not_sent_again(live_sms, clock, monkeypatch):
    monkeypatch.setattr(adapters, "LOOKUP_PAGE_SIZE", 5)
    message = queued()
    twilio = adapters.adapter_for("SMS")
    sid = twilio.send(OutboundMessage(channel="SMS", recipient="+15105550142", body=TEXT))  # ours, answer lost
    for number in range(12):  # a busy conversation since: ours is on the third page
        twilio.send(OutboundMessage(channel="SMS", recipient="+15105550142", body=f"Update {number}"))
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    assert (message.status, message.provider_message_id) == (Status.SENT, sid)
    assert methods(live_sms)[-3:] == ["GET", "GET", "GET"]
    assert [request.query.get("Page") for request in live_sms.requests[-3:]] == [None, "1", "2"]
    assert len(live_sms.sent) == 13


@pytest.mark.django_db
def test_more_newer_messages_than_the_lookup_reads_is_no_answer_and_nothing_is_sent(live_sms, clock, monkeypatch):
    monkeypatch.setattr(adapters, "LOOKUP_PAGE_SIZE", 5)
    message = queued()
    twilio = adapters.adapter_for("SMS")
    for number in range(adapters.LOOKUP_MAX_PAGES * 5 + 1):  # a very busy day for this customer since
        twilio.send(OutboundMessage(channel="SMS", recipient="+15105550142", body=f"Update {number}"))
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    # Ours could be further down the list: not knowing is no reason to send.
    assert message.status == Status.FAILED
    assert message.outcome_unknown is True
    assert "cannot tell whether it was sent" in message.last_error
    assert "+15105550142" not in message.last_error
    assert methods(live_sms)[-adapters.LOOKUP_MAX_PAGES :] == ["GET"] * adapters.LOOKUP_MAX_PAGES
    assert len(live_sms.sent) == adapters.LOOKUP_MAX_PAGES * 5 + 1


@pytest.mark.django_db
def test_a_text_twilio_lists_smart_encoded_or_with_the_trial_prefix_is_still_found(live_sms, clock):
    words = "Luis is on the way \u2014 he\u2019ll call when he\u2019s 10 minutes out."
    message = queued(body=words)
    # As Twilio lists it: Smart Encoding swapped the long dash and curly quotes, a trial account
    # put its prefix in front.
    listed = "Sent from your Twilio trial account - Luis is on the way - he'll call when he's 10 minutes out."
    sid = adapters.adapter_for("SMS").send(OutboundMessage(channel="SMS", recipient="+15105550142", body=listed))
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    assert (message.status, message.provider_message_id) == (Status.SENT, sid)
    assert methods(live_sms) == ["POST", "GET"]


@pytest.mark.django_db
def test_a_twins_send_not_yet_recorded_is_not_taken_for_this_messages_own(live_sms, clock):
    # Two identical texts to one customer: the first is being sent (Twilio has it, its worker has
    # not recorded the sid yet) when the second, whose last attempt was lost, asks Twilio.
    first, second = queued(), queued()
    sid = adapters.adapter_for("SMS").send(OutboundMessage(channel="SMS", recipient="+15105550142", body=TEXT))
    left_by_a_killed_worker(first, clock)
    OutboundMessage.objects.filter(pk=second.pk).update(outcome_unknown=True)

    second = outbox_deliver(message_id=second.pk)
    assert second.status == Status.FAILED and second.outcome_unknown is True
    assert "identical message" in second.last_error
    assert second.provider_message_id == ""
    assert methods(live_sms) == ["POST", "GET"]
    # The first records its own send; the second, asked again, then finds nothing of its own.
    OutboundMessage.objects.filter(pk=first.pk).update(status=Status.SENT, provider_message_id=sid)
    clock.advance(minutes=5)
    second = outbox_deliver(message_id=second.pk)
    assert second.status == Status.SENT and second.provider_message_id not in ("", sid)


@pytest.mark.django_db
def test_two_messages_never_record_the_same_provider_id(live_sms):
    from django.db import IntegrityError, transaction

    first, second = queued(), queued()
    OutboundMessage.objects.filter(pk=first.pk).update(provider_message_id="SM" + "7" * 32)
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundMessage.objects.filter(pk=second.pk).update(provider_message_id="SM" + "7" * 32)


@pytest.mark.django_db
def test_a_lookup_that_eats_the_lease_defers_the_send_instead_of_risking_a_second_one(
    live_sms, clock, settings, monkeypatch
):
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 2
    settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = 5
    listed = live_sms._listed

    def slow_list(query):
        time.sleep(1.5)  # Twilio's list is slow today, though within the timeout
        return listed(query)

    monkeypatch.setattr(live_sms, "_listed", slow_list)
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    # 1.5 s spent, and a send may take 2 x 2 s more: it could end after the 5 s lease expired.
    assert message.status == Status.FAILED
    assert message.outcome_unknown is True
    assert "too few to send in" in message.last_error
    assert methods(live_sms) == ["GET"]


# --- The other adapters --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_file_adapter_finds_the_line_a_killed_worker_wrote(settings, tmp_path, clock):
    settings.DISPATCH_MESSAGE_DELIVERY = "file"
    outbox_file = tmp_path / "outbox.jsonl"
    settings.DISPATCH_MESSAGE_FILE_PATH = str(outbox_file)
    message = queued()
    provider_id = adapters.FileAdapter().send(message)  # written, then the worker was killed
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.provider_message_id == provider_id
    lines = [json.loads(line) for line in outbox_file.read_text(encoding="utf-8").splitlines()]
    assert [line["message_id"] for line in lines] == [str(message.pk)]


@pytest.mark.django_db
def test_the_file_adapter_writes_a_message_it_does_not_hold_yet(settings, tmp_path, clock):
    settings.DISPATCH_MESSAGE_DELIVERY = "file"
    outbox_file = tmp_path / "outbox.jsonl"
    settings.DISPATCH_MESSAGE_FILE_PATH = str(outbox_file)
    other = queued(body="Another message")
    adapters.FileAdapter().send(other)
    message = queued()
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)

    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    lines = [json.loads(line) for line in outbox_file.read_text(encoding="utf-8").splitlines()]
    assert [line["message_id"] for line in lines] == [str(other.pk), str(message.pk)]
    assert message.provider_message_id == lines[1]["provider_message_id"]


@pytest.mark.django_db
def test_an_email_whose_last_attempt_is_unknown_is_sent_again_smtp_cannot_be_asked(smtp_server, clock):
    message = queued(channel="EMAIL", recipient="pat@example.com", body="Booked for Tuesday.")
    OutboundMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)
    message = outbox_deliver(message_id=message.pk)
    assert message.status == Status.SENT
    assert message.outcome_unknown is False
    assert len(smtp_server.envelopes) == 1


# --- Settings ------------------------------------------------------------------------------


def test_a_lease_not_longer_than_twice_the_send_timeout_is_refused_by_the_system_check(settings):
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 30
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 10}
    for lease in (45, 60):
        settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = lease
        [error] = outbox_timing_check()
        assert error.id == LEASE_CHECK_ID
        assert error.is_serious()
        with pytest.raises(SystemCheckError, match=LEASE_CHECK_ID):
            call_command("check")

    settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = 61
    assert outbox_timing_check() == []
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 0
    assert [error.id for error in outbox_timing_check()] == [TIMEOUT_CHECK_ID]


def test_a_lease_not_longer_than_the_task_queues_timeout_is_refused_too(settings):
    # The task queue kills a delivery only after its timeout: until then the worker may still be
    # sending, however short each of its socket waits.
    settings.DISPATCH_SEND_TIMEOUT_SECONDS = 5
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 60}
    settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = 60
    [error] = outbox_timing_check()
    assert error.id == LEASE_CHECK_ID and "timeout (60)" in error.msg
    settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = 61
    assert outbox_timing_check() == []


def test_the_default_timing_passes_the_check(settings):
    longest = max(2 * settings.DISPATCH_SEND_TIMEOUT_SECONDS, settings.Q_CLUSTER["timeout"])
    assert longest + 30 == settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS
    assert outbox_timing_check() == []
