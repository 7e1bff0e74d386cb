"""Finding a sender's tickets and contacts by email is served by an index on PostgreSQL, however
the sender capitalises the address: no sequential scan of the tickets or contacts tables.

The tables are seeded with a few thousand senders and analysed first, so the planner decides on
real statistics rather than on whatever an earlier test left in pg_statistic."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q, Value
from django.db.models.functions import Upper

from dispatch.tickets.models import Contact, Ticket
from dispatch.tickets.states import OPEN_STATES
from tests.factories import ticket_new

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SENDERS = 3000


@pytest.fixture
def many_senders():
    template = ticket_new()
    fields = {f.attname: getattr(template, f.attname) for f in Ticket._meta.concrete_fields if not f.primary_key}
    Ticket.objects.bulk_create(
        [
            Ticket(**{**fields, "customer_email": f"sender{i}@example.com", "customer_phone": f"+1510{i:07d}"})
            for i in range(SENDERS)
        ],
        batch_size=1000,
    )
    Contact.objects.bulk_create(
        [
            Contact(account_id=template.account_id, name=f"Sender {i}", email=f"sender{i}@example.com")
            for i in range(SENDERS)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
        cursor.execute("ANALYZE tickets_contact")
        # With sequential scans priced out, a plan still scans the table only when no index can serve.
        cursor.execute("SET LOCAL enable_seqscan = off")


def test_open_tickets_of_a_sender_are_found_by_index_whatever_the_case_of_the_email(many_senders):
    # The shape of intake's lookup of a sender's newest open ticket (conversations.py).
    query = (
        Ticket.objects.alias(email_upper=Upper("customer_email"))
        .filter(Q(customer_phone="+15105550142") | Q(email_upper=Upper(Value("Sender17@Example.com"))))
        .filter(state__in=list(OPEN_STATES))
        .order_by("-created_at")[:1]
    )
    plan = query.explain()
    assert "Seq Scan on tickets_ticket" not in plan, plan
    assert "ticket_email_upper_created" in plan, plan
    assert list(query.values_list("customer_email", flat=True)) == ["sender17@example.com"]


def test_a_contact_is_found_by_email_whatever_its_case(many_senders):
    query = Contact.objects.filter(email__iexact="Sender17@Example.com")
    plan = query.explain()
    assert "Seq Scan on tickets_contact" not in plan, plan
    assert "contact_email_upper" in plan, plan
    assert list(query.values_list("email", flat=True)) == ["sender17@example.com"]
