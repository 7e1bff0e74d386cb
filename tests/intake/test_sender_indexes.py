"""Finding a sender's tickets and contacts by email is served by an index on PostgreSQL, however
the sender capitalises the address: no sequential scan of the tickets or contacts tables."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q

from dispatch.tickets.models import Contact, Ticket
from dispatch.tickets.states import OPEN_STATES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def no_seqscan():
    # With sequential scans priced out, a plan still scans the table only when no index can serve.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")


def test_open_tickets_of_a_sender_are_found_by_index_whatever_the_case_of_the_email(no_seqscan):
    query = (
        Ticket.objects.filter(Q(customer_phone="+15105550142") | Q(customer_email__iexact="Dana.Owner@Example.com"))
        .filter(state__in=list(OPEN_STATES))
        .order_by("-created_at")[:1]
    )
    plan = query.explain()
    assert "Seq Scan on tickets_ticket" not in plan, plan
    assert "ticket_email_upper_created" in plan, plan


def test_a_contact_is_found_by_email_whatever_its_case(no_seqscan):
    plan = Contact.objects.filter(email__iexact="Dana.Owner@Example.com").explain()
    assert "Seq Scan on tickets_contact" not in plan, plan
    assert "contact_email_upper" in plan, plan
