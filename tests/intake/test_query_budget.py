"""What one inbound SMS costs the database: a fixed number of statements, the same for the first
customer and the ten-thousandth, for a short conversation and a long one. A query per earlier
message, ticket or conversation (an N+1) fails here before it slows the webhook down."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.intake.models import Conversation
from dispatch.intake.services import message_receive
from dispatch.tickets.models import Ticket
from dispatch.tickets.services import ticket_cancel
from dispatch.tickets.states import TicketState
from tests.factories import actor_for, ticket_new

pytestmark = pytest.mark.django_db


# Upper bounds on the data statements of one message, with room to spare: what they catch is a
# count that grows with the data (each test also compares a small history with a large one).
NEW_MESSAGE_BUDGET = 24  # a new sender, the address missing: ticket opened, one question asked
REPLY_BUDGET = 18  # the reply with the address: ticket completed and triaged
DUPLICATE_BUDGET = 3  # the same MessageSid again: one failed insert, one read

FIRST = "hello, door wont close all the way"
ADDRESS = "1420 Harbor Way, Oakland CA 94607"
_numbers = itertools.count(1000)


def _phone() -> str:
    return f"+1510555{next(_numbers):04d}"


def _sms(body: str, *, phone: str, sid: str | None = None):
    return message_receive(
        channel="SMS", provider_message_id=sid or f"SM-{next(_numbers)}", sender_phone=phone, body=body
    )


def _counted(body: str, *, phone: str, sid: str | None = None):
    """The message's result and the data statements it sent (savepoints and their releases are
    transaction control, not work, and are left out)."""
    with CaptureQueriesContext(connection) as queries:
        result = _sms(body, phone=phone, sid=sid)
    statements = [q["sql"].lstrip().upper() for q in queries.captured_queries]
    return result, len([sql for sql in statements if not sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))])


def _history(*, customers: int) -> None:
    """Other customers' tickets, each with a question asked and answered."""
    for _ in range(customers):
        phone = _phone()
        _sms(FIRST, phone=phone)
        _sms(ADDRESS, phone=phone)


def test_a_new_message_costs_the_same_few_queries_however_much_history_there_is():
    _sms(FIRST, phone=_phone())  # the first message of a process reads nothing it keeps, but warm up anyway
    result, fresh = _counted(FIRST, phone=_phone())
    assert result.created_ticket and result.asked == ["address"]
    assert Ticket.objects.get(pk=result.ticket.pk).state == TicketState.NEEDS_INFO
    assert fresh <= NEW_MESSAGE_BUDGET

    _history(customers=25)
    result, later = _counted(FIRST, phone=_phone())
    assert result.created_ticket and later == fresh


def test_a_sender_with_many_finished_tickets_costs_one_statement_more_not_one_per_ticket():
    few, many = _phone(), _phone()
    for phone, tickets in ((few, 1), (many, 12)):
        for _ in range(tickets):
            # Conversations of tickets closed since (intake closes them when a new ticket opens).
            ticket = ticket_new(customer_phone=phone)
            ticket_cancel(actor=actor_for("dispatcher"), ticket_id=ticket.pk, reason="Customer fixed it")
            Conversation.objects.create(
                ticket=ticket, channel="SMS", customer_phone=phone, last_message_at=timezone.now()
            )

    _, after_one = _counted(FIRST, phone=few)
    result, after_twelve = _counted(FIRST, phone=many)
    assert result.created_ticket
    still_open = Conversation.objects.filter(customer_phone=many, status=Conversation.Status.OPEN)
    assert list(still_open.values_list("ticket_id", flat=True)) == [result.ticket.pk]
    # The finished conversations are closed by one UPDATE, however many there are.
    assert after_one == after_twelve <= NEW_MESSAGE_BUDGET + 1


def test_a_threaded_reply_costs_the_same_few_queries_however_long_the_conversation():
    short, long = _phone(), _phone()
    _sms(FIRST, phone=short)
    first = _sms(FIRST, phone=long)
    # A long conversation: the question asked twice, then many messages that add nothing.
    for _ in range(30):
        _sms("ok thanks", phone=long)
    _history(customers=10)

    result, short_reply = _counted(ADDRESS, phone=short)
    assert result.ticket.state == TicketState.READY_TO_SCHEDULE and not result.created_ticket
    assert short_reply <= REPLY_BUDGET
    result, long_reply = _counted(ADDRESS, phone=long)
    assert result.ticket.pk == first.ticket.pk and result.ticket.state == TicketState.READY_TO_SCHEDULE
    assert long_reply == short_reply


def test_a_redelivered_message_costs_two_queries():
    phone = _phone()
    first = _sms(FIRST, phone=phone, sid="SM-again")
    _history(customers=5)
    result, count = _counted(FIRST, phone=phone, sid="SM-again")
    assert result.duplicate and result.message.pk == first.message.pk
    assert count <= DUPLICATE_BUDGET
