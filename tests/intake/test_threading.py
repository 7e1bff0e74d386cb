"""Which ticket a message joins when the sender's conversations point at several tickets."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dispatch.intake.conversations import CONVERSATION_SCAN_LIMIT
from dispatch.intake.models import Conversation
from dispatch.intake.services import message_receive
from dispatch.tickets.models import Ticket
from dispatch.tickets.services import ticket_cancel
from tests.factories import actor_for, ticket_new

pytestmark = pytest.mark.django_db

PHONE = "+15105550177"


def _conversation(ticket: Ticket, *, channel: str = "SMS") -> Conversation:
    return Conversation.objects.create(
        ticket=ticket, channel=channel, customer_phone=PHONE, last_message_at=timezone.now()
    )


def _cancelled_with_conversation() -> Ticket:
    ticket = ticket_new(customer_phone=PHONE)
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=ticket.pk, reason="Customer fixed it")
    _conversation(ticket)
    return ticket


def test_a_message_joins_the_ticket_its_conversation_belongs_to_even_under_another_number():
    # A dispatcher opened the job under the office number; the customer texts from their mobile.
    ticket = ticket_new(customer_phone="+15105550100")
    conversation = _conversation(ticket)

    result = message_receive(
        channel="SMS", provider_message_id="SM-1", sender_phone=PHONE, body="any news on the door?"
    )

    assert result.ticket.pk == ticket.pk and not result.created_ticket
    assert result.message.conversation_id == conversation.pk
    assert Conversation.objects.filter(ticket=ticket).count() == 1


def test_an_open_ticket_behind_many_finished_conversations_is_still_found():
    ticket = ticket_new(customer_phone="+15105550100")
    _conversation(ticket)
    for _ in range(CONVERSATION_SCAN_LIMIT + 5):
        _cancelled_with_conversation()

    result = message_receive(
        channel="SMS", provider_message_id="SM-1", sender_phone=PHONE, body="any news on the door?"
    )

    assert result.ticket.pk == ticket.pk and not result.created_ticket


def test_many_finished_conversations_are_all_closed_when_a_new_ticket_opens():
    for _ in range(CONVERSATION_SCAN_LIMIT + 5):
        _cancelled_with_conversation()

    result = message_receive(
        channel="SMS", provider_message_id="SM-1", sender_phone=PHONE, body="the door won't latch again"
    )

    assert result.created_ticket
    open_conversations = Conversation.objects.filter(customer_phone=PHONE, status=Conversation.Status.OPEN)
    assert list(open_conversations.values_list("ticket_id", flat=True)) == [result.ticket.pk]


def test_a_second_channel_gets_its_own_conversation_on_the_same_ticket():
    first = message_receive(channel="SMS", provider_message_id="SM-1", sender_phone=PHONE, body="the door won't latch")
    second = message_receive(
        channel="WEB",
        provider_message_id="form-1",
        sender_phone=PHONE,
        body="Sending photos",
        extra={"address": "1450 Park St, Alameda CA 94501"},
    )

    assert second.ticket.pk == first.ticket.pk
    channels = set(Conversation.objects.filter(ticket=first.ticket).values_list("channel", flat=True))
    assert channels == {"SMS", "WEB"}
    again = message_receive(channel="SMS", provider_message_id="SM-2", sender_phone=PHONE, body="thanks")
    assert again.message.conversation_id == first.message.conversation_id
