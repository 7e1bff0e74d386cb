"""Reads of the outbox."""

from __future__ import annotations

import json

import pytest

from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.selectors import outbox_message_summary, outbox_messages, outbox_status_counts
from dispatch.messaging.services import outbox_deliver, outbox_enqueue
from tests.factories import ticket_new


@pytest.mark.django_db
def test_counts_list_every_status_and_lists_filter_by_ticket(settings):
    settings.DISPATCH_MESSAGE_DELIVERY = "console"
    ticket = ticket_new()
    mine = outbox_enqueue(channel="SMS", recipient="+15105550142", body="One", ticket=ticket)
    other = outbox_enqueue(channel="SMS", recipient="+15105550143", body="Two")
    outbox_deliver(message_id=other.pk)
    assert outbox_status_counts() == {"PENDING": 1, "SENDING": 0, "SENT": 1, "FAILED": 0, "DEAD_LETTER": 0}
    assert list(outbox_messages(ticket_id=ticket.pk)) == [mine]
    assert list(outbox_messages(status=OutboundMessage.Status.SENT)) == [OutboundMessage.objects.get(pk=other.pk)]


@pytest.mark.django_db
def test_the_summary_is_json_and_leaves_out_the_recipient_and_body():
    ticket = ticket_new()
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Door code is KESTREL", ticket=ticket)
    summary = outbox_message_summary(message)
    text = json.dumps(summary)
    assert summary["ticket_id"] == str(ticket.pk)
    assert summary["status"] == "PENDING" and summary["sent_at"] is None
    # Words no id or timestamp can hold by chance (upper case is not hex).
    assert "+15105550142" not in text and "KESTREL" not in text
