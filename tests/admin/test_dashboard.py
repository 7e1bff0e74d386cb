"""The admin index shows ticket counts per state, from one grouped query, linking to the filtered list."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import ticket_at, ticket_new

pytestmark = pytest.mark.django_db


def tile(response, state):
    for phase in response.context["state_tiles"]:
        for item in phase["states"]:
            if item["state"] == state:
                return item
    raise AssertionError(state)


def test_the_index_counts_tickets_per_state(dispatcher_client):
    ticket_new(), ticket_new(), ticket_new(priority="EMERGENCY")
    ticket_at("ON_HOLD")

    with CaptureQueriesContext(connection) as queries:
        response = dispatcher_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert (tile(response, "NEW")["count"], tile(response, "NEW")["emergencies"]) == (3, 1)
    assert tile(response, "ON_HOLD")["count"] == 1
    assert tile(response, "CLOSED")["count"] == 0
    phases = [phase["phase"] for phase in response.context["state_tiles"]]
    assert phases == ["Intake", "Scheduling", "In the field", "Closeout", "Done"]
    assert sum(len(phase["states"]) for phase in response.context["state_tiles"]) == 17
    ticket_queries = [q["sql"] for q in queries.captured_queries if '"tickets_ticket"' in q["sql"]]
    # Open tickets, and those done lately: two grouped queries over index ranges, at any size.
    assert len(ticket_queries) == 2 and all("GROUP BY" in sql for sql in ticket_queries)

    html = response.content.decode()
    new_url = reverse("admin:tickets_ticket_changelist") + "?state__exact=NEW"
    assert f'href="{new_url}"' in html
    assert "1 emergency" in html
    # The tiles sit above the app list.
    assert html.index("rd-board") < html.index("app-tickets")


def test_the_done_tiles_count_the_last_thirty_days(dispatcher_client, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.tickets.services import ticket_cancel
    from tests.factories import actor_for

    long_ago = ticket_new()
    time_machine.move_to(timezone.now() - timedelta(days=45), tick=False)
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=long_ago.id, reason="Customer moved away")
    time_machine.move_to(timezone.now() + timedelta(days=45), tick=False)
    lately = ticket_new()
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=lately.id, reason="Duplicate request")

    response = dispatcher_client.get(reverse("admin:index"))

    assert tile(response, "CANCELLED")["count"] == 1
    assert "last 30 days" in response.content.decode()
    # The tile opens what it counts, not every cancellation ever.
    listed = dispatcher_client.get(tile(response, "CANCELLED")["url"]).context["cl"].result_list
    assert [t.pk for t in listed] == [lately.pk]


def test_an_old_closed_job_touched_today_is_not_done_lately(dispatcher_client, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.tickets.models import Ticket

    time_machine.move_to(timezone.now() - timedelta(days=90), tick=False)
    closed = ticket_at("CLOSED")
    time_machine.move_to(timezone.now() + timedelta(days=90), tick=False)
    # Touched today (an invoice approved months after the job, say): only updated_at moves.
    Ticket.objects.filter(pk=closed.pk).update(updated_at=timezone.now())

    response = dispatcher_client.get(reverse("admin:index"))

    assert tile(response, "CLOSED")["count"] == 0


def test_a_tile_opens_the_list_of_its_state(dispatcher_client):
    ticket_new(), ticket_at("ON_HOLD")
    response = dispatcher_client.get(reverse("admin:tickets_ticket_changelist"), {"state__exact": "ON_HOLD"})
    assert [t.state for t in response.context["cl"].result_list] == ["ON_HOLD"]
