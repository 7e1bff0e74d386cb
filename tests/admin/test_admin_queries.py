"""Lists cost the same number of queries for 5 rows as for 50: no query per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import SiteFactory, TechnicianFactory, ticket_at, ticket_new

pytestmark = pytest.mark.django_db


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def add_tickets(count: int, technicians) -> None:
    """Tickets with their own site and account each, most assigned to a technician and scheduled."""
    for n in range(count):
        if n % 5 == 4:
            ticket_new(site=SiteFactory())
        else:
            ticket_at("DISPATCHED", technician=technicians[n % len(technicians)], site=SiteFactory())


def test_the_ticket_list_costs_the_same_for_5_and_50_tickets(dispatcher_client):
    technicians = [TechnicianFactory() for _ in range(3)]
    url = reverse("admin:tickets_ticket_changelist")
    add_tickets(5, technicians)
    queries_for(dispatcher_client, url)  # warm per-process caches (content types)
    five = queries_for(dispatcher_client, url)
    add_tickets(45, technicians)
    fifty = queries_for(dispatcher_client, url)
    assert five == fifty, (five, fifty)


@pytest.mark.parametrize(
    "page",
    [
        "admin:tickets_auditevent_changelist",
        "admin:tickets_statetransition_changelist",
        "admin:technicians_technician_changelist",
        "admin:tickets_account_changelist",
    ],
)
def test_other_lists_cost_the_same_for_few_and_many_rows(dispatcher_client, page):
    url = reverse(page)
    technicians = [
        TechnicianFactory(skills=["DOOR_WONT_LATCH", "AUTO_OPERATOR_FAULT"], region_codes=["EAST_BAY", "SF"])
    ]
    add_tickets(3, technicians)
    queries_for(dispatcher_client, url)
    few = queries_for(dispatcher_client, url)
    technicians += [TechnicianFactory(skills=["DOOR_WONT_LATCH"], region_codes=["SF"]) for _ in range(6)]
    add_tickets(12, technicians)
    many = queries_for(dispatcher_client, url)
    assert few == many, (few, many)
