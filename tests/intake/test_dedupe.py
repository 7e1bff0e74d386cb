"""A retried delivery is the same message: the (channel, provider id) unique constraint decides,
also when the retries arrive at the same moment."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from dispatch.intake.models import Conversation, InboundMessage
from dispatch.intake.services import message_receive
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import AuditEvent, Ticket

PHONE = "+15105550142"


def sms(body="my door won't latch", *, sid="SM-1", phone=PHONE):
    return message_receive(channel="SMS", provider_message_id=sid, sender_phone=phone, body=body)


@pytest.mark.django_db
def test_the_same_provider_id_twice_is_one_message_and_one_ticket():
    first = sms()
    again = sms()
    assert not first.duplicate and again.duplicate
    assert again.message.pk == first.message.pk and again.ticket.pk == first.ticket.pk
    assert not again.created_ticket and again.asked == []
    assert InboundMessage.objects.count() == 1 and Ticket.objects.count() == 1
    assert OutboundMessage.objects.count() == 2  # one confirmation, one question: not sent again


@pytest.mark.django_db
def test_a_retry_with_a_different_body_is_still_the_first_message():
    first = sms("my door won't latch")
    again = sms("something else entirely at 1 Main St, Oakland")
    assert again.duplicate and again.message.body == "my door won't latch"
    assert Ticket.objects.get(pk=first.ticket.pk).site.address_line1 == ""


@pytest.mark.django_db
def test_the_same_id_on_another_channel_is_another_message():
    sms(sid="abc")
    other = message_receive(
        channel="EMAIL", provider_message_id="abc", sender_email="pat@example.com", body="door closer leaking"
    )
    assert not other.duplicate and InboundMessage.objects.count() == 2


@pytest.mark.django_db
def test_a_duplicate_of_spam_is_reported_as_spam():
    sms("WIN a free cruise, click here http://bit.ly/x", sid="SM-spam")
    again = sms("WIN a free cruise, click here http://bit.ly/x", sid="SM-spam")
    assert again.duplicate and again.spam and again.ticket is None


def _all_at_once(work, count: int) -> tuple[list, list]:
    barrier = threading.Barrier(count)
    results, errors = [], []
    lock = threading.Lock()

    def run(index):
        try:
            barrier.wait()
            outcome = work(index)
            with lock:
                results.append(outcome)
        except Exception as exc:  # collected and asserted on below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_make_one_message_and_one_ticket():
    assert connection.vendor == "postgresql"
    results, errors = _all_at_once(lambda _i: sms(sid="SM-race"), 8)
    assert errors == []
    assert sum(not r.duplicate for r in results) == 1 and sum(r.duplicate for r in results) == 7
    assert len({r.message.pk for r in results}) == 1 and len({r.ticket.pk for r in results}) == 1
    assert InboundMessage.objects.count() == 1 and Ticket.objects.count() == 1
    assert AuditEvent.objects.filter(tool_name="intake.receive").count() == 1
    assert OutboundMessage.objects.filter(template="customer_confirmation").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_different_messages_from_one_new_customer_open_one_ticket():
    assert connection.vendor == "postgresql"
    results, errors = _all_at_once(lambda i: sms(f"door won't latch, message {i}", sid=f"SM-{i}"), 6)
    assert errors == []
    assert InboundMessage.objects.count() == 6
    assert Ticket.objects.count() == 1 and Conversation.objects.count() == 1
    assert sum(r.created_ticket for r in results) == 1
