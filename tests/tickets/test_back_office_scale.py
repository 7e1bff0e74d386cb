"""The back office's list, search and filters, built to stay fast as history grows.

The queue order is a column the executor keeps (ticket_queue_rank); a reference is a primary-key
range; words are matched against small tables first. On PostgreSQL, EXPLAIN shows each of these
served by an index (with sequential scans priced out, as on a table of 100,000 tickets).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from dispatch.tickets.models import Ticket, ticket_queue_rank
from dispatch.tickets.search import reference_range, tickets_search
from dispatch.tickets.services import ticket_cancel, ticket_triage
from tests.factories import AccountFactory, SiteFactory, actor_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db


def ranks_match() -> bool:
    return all(t.queue_rank == ticket_queue_rank(t.state, t.priority) for t in Ticket.objects.all())


def test_the_executor_keeps_every_tickets_queue_rank():
    plain = ticket_new()
    urgent = ticket_new()
    ticket_at("ON_HOLD"), ticket_at("INVOICED")
    ticket_triage(
        actor=actor_for("dispatcher"), ticket_id=urgent.id, priority="EMERGENCY", incident_type="DOOR_WONT_LATCH"
    )
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=plain.id, reason="Duplicate")

    assert ranks_match()
    urgent.refresh_from_db()
    plain.refresh_from_db()
    # ...and when it was done: set by the cancellation, null while open.
    assert plain.done_at is not None and urgent.done_at is None
    assert Ticket.objects.get(state="INVOICED").done_at is None
    assert urgent.queue_rank < Ticket.objects.get(state="ON_HOLD").queue_rank < plain.queue_rank


def test_the_list_is_the_dispatchers_queue(admin_client):
    done = ticket_new()
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=done.id, reason="Duplicate")
    routine_new = ticket_new()
    held = ticket_at("ON_HOLD")
    emergency = ticket_new()
    ticket_triage(
        actor=actor_for("dispatcher"), ticket_id=emergency.id, priority="EMERGENCY", incident_type="DOOR_WONT_LATCH"
    )
    newer_routine = ticket_new()

    rows = admin_client.get(reverse("admin:tickets_ticket_changelist")).context["cl"].result_list

    # Emergencies first, then along the pipeline (newest first within a stage), done last.
    assert [t.pk for t in rows] == [emergency.pk, newer_routine.pk, routine_new.pk, held.pk, done.pk]


def test_a_reference_or_an_id_prefix_is_a_key_range():
    ticket = ticket_new()
    other = ticket_new()
    for term in (ticket.short_ref, ticket.short_ref.lower(), str(ticket.id)[:13], str(ticket.id)):
        assert list(tickets_search(Ticket.objects.all(), term)) == [ticket], term
    assert other not in tickets_search(Ticket.objects.all(), ticket.short_ref)
    assert reference_range("RD-1234") is None  # too short to be a reference: searched as words
    assert reference_range("door") is None


def test_words_find_tickets_by_their_own_text_their_site_and_their_customer():
    harbor = AccountFactory(name="Harbor Door & Gate")
    at_pier = SiteFactory(account=harbor, name="Pier 39 Office", city="San Francisco")
    by_summary = ticket_new(summary="Sliding door stuck open in the rain")
    by_site = ticket_new(site=at_pier, summary="Closer leaking")
    by_caller = ticket_new(summary="Lock sticks", customer_name="Maria Lopez", customer_phone="+15105550199")

    def found(term):
        return set(tickets_search(Ticket.objects.all(), term))

    assert found("rain") == {by_summary}
    assert found("san francisco") == {by_site}
    assert found("HARBOR") >= {by_site}
    assert found("lopez") == {by_caller} and found("5550199") == {by_caller}
    # A whole number is the shape of a reference too: it still finds the caller.
    assert found("5105550199") == {by_caller} and found("+15105550199") == {by_caller}
    assert found('"stuck open" rain') == {by_summary}
    assert found("stuck pier") == set()  # every word must match
    assert found("100%") == set() and found("_") == set()  # LIKE's wildcards are plain characters


def test_a_pasted_paragraph_costs_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    ticket_new(summary="Door drags on the floor")
    paragraph = " ".join(["door"] * 500)
    with django_assert_max_num_queries(40):
        page = admin_client.get(reverse("admin:tickets_ticket_changelist"), {"q": paragraph})
    assert page.status_code == 200 and len(page.context["cl"].result_list) == 1


def test_the_list_searches_and_filters_with_bounded_queries(admin_client, django_assert_max_num_queries):
    for index in range(30):
        ticket_new(summary=f"Door {index} drags")
    url = reverse("admin:tickets_ticket_changelist")
    with django_assert_max_num_queries(25):
        page = admin_client.get(url, {"q": "door", "incident_type": "DOOR_WONT_LATCH"})
    assert page.status_code == 200
    with django_assert_max_num_queries(25):
        audit = admin_client.get(reverse("admin:tickets_auditevent_changelist"), {"tool_name": "ticket.create"})
    assert audit.status_code == 200 and len(audit.context["cl"].result_list) == 30


def test_the_filters_offer_fixed_choices_not_what_the_data_holds(admin_client):
    ticket_new()
    tickets = admin_client.get(reverse("admin:tickets_ticket_changelist")).content.decode()
    audit = admin_client.get(reverse("admin:tickets_auditevent_changelist")).content.decode()

    assert "?incident_type=DOOR_WONT_LATCH" in tickets
    assert "?tool_name=ticket.triage" in audit  # a tool no event here has used yet


# --- PostgreSQL: the plans -------------------------------------------------------------------


def plan_of(queryset, *, bitmap: bool = False, ordered: bool = False) -> str:
    with connection.cursor() as cursor:
        # As on a large table: a sequential scan is never the cheap way.
        cursor.execute("SET LOCAL enable_seqscan = off")
        if ordered:
            # ...nor is sorting every row to return the first 50 (wholly or in steps): the order
            # must come from an index.
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_incremental_sort = off")
        if bitmap:
            # A search's OR of LIKEs is served by a BitmapOr of indexes or by nothing: on a
            # handful of rows the queue index with a filter would look cheaper.
            cursor.execute("SET LOCAL enable_indexscan = off")
    return queryset.explain()


@pytest.mark.postgres
def test_the_list_page_reads_the_queue_index(admin_client):
    for _ in range(5):
        ticket_new()
    changelist = admin_client.get(reverse("admin:tickets_ticket_changelist")).context["cl"]

    plan = plan_of(changelist.queryset[:50], ordered=True)

    assert "ticket_queue_order" in plan, plan
    assert "Sort" not in plan.split("ticket_queue_order")[0], plan  # the index gives the order


@pytest.mark.postgres
def test_a_word_search_reads_trigram_indexes(admin_client):
    ticket_new(summary="Door drags")
    changelist = admin_client.get(reverse("admin:tickets_ticket_changelist"), {"q": "drags"}).context["cl"]

    plan = plan_of(changelist.queryset[:50], bitmap=True)

    assert "ticket_summary_trgm" in plan and "ticket_customer_name_trgm" in plan, plan
    assert "Seq Scan on tickets_ticket" not in plan, plan


@pytest.mark.postgres
def test_a_reference_search_reads_the_primary_key(admin_client):
    ticket = ticket_new()
    for _ in range(40):
        ticket_new()
    changelist = admin_client.get(reverse("admin:tickets_ticket_changelist"), {"q": ticket.short_ref}).context["cl"]
    assert [t.pk for t in changelist.result_list] == [ticket.pk]

    # The lookup itself, on the ticket table: on a handful of rows the planner may start the
    # page's joins from the tiny site table instead, which says nothing of 100,000 tickets. With
    # the table's size known, a key range is one lookup where another index would be read whole.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")
    plan = plan_of(tickets_search(Ticket.objects.order_by(), ticket.short_ref))

    assert "tickets_ticket_pkey" in plan and "Index Cond: ((id >=" in plan, plan


@pytest.mark.postgres
def test_the_audit_list_and_its_tool_filter_read_their_indexes(admin_client):
    ticket_new()
    url = reverse("admin:tickets_auditevent_changelist")
    listing = admin_client.get(url).context["cl"]
    filtered = admin_client.get(url, {"tool_name": "ticket.create"}).context["cl"]

    assert "audit_recent" in plan_of(listing.queryset[:50], ordered=True)
    assert "audit_tool_recent" in plan_of(filtered.queryset[:50], ordered=True)


def test_a_web_process_knows_every_command_the_code_defines(tmp_path):
    # A fresh interpreter, as a web server starts: settings, apps, URLs; no test has imported more.
    import re
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import django, json; django.setup(); import config.urls; "
        "from dispatch.tickets.commands import tool_names; print(json.dumps(tool_names()))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    known = set(__import__("json").loads(finished.stdout.strip().splitlines()[-1]))
    source = "\n".join(path.read_text() for path in (settings.BASE_DIR / "dispatch").rglob("*.py"))
    defined = set(re.findall(r'(?<![\w.])command\(\s*"([a-z_.]+)"', source))

    assert defined and defined <= known, sorted(defined - known)


def test_the_migration_backfills_the_rank_the_executor_keeps():
    import importlib

    from django.apps import apps

    from dispatch.tickets.models import Priority
    from dispatch.tickets.states import TicketState

    migration = importlib.import_module("dispatch.tickets.migrations.0012_ticket_queue_rank")
    for state in TicketState:
        for priority in Priority:
            assert migration.rank(state, priority) == ticket_queue_rank(state, priority), (state, priority)

    ticket_new(), ticket_at("ON_HOLD"), ticket_at("CLOSED")
    Ticket.objects.update(queue_rank=0)  # as a table before the column existed
    migration.queue_ranks_backfill(apps, None)
    assert ranks_match()


def test_the_migration_backfills_when_closed_tickets_were_done():
    import importlib

    from django.apps import apps

    from dispatch.tickets.models import StateTransition

    migration = importlib.import_module("dispatch.tickets.migrations.0014_back_office_indexes")
    closed, still_open = ticket_at("CLOSED"), ticket_new()
    Ticket.objects.update(done_at=None)  # as a table before the column existed

    migration.done_at_backfill(apps, None)

    closed.refresh_from_db()
    still_open.refresh_from_db()
    entered = StateTransition.objects.filter(ticket=closed, to_state="CLOSED").latest("seq").created_at
    assert closed.done_at == entered and still_open.done_at is None
