"""The cockpit's queue a page at a time: `limit` rows, the next page after the answer's opaque
`next_cursor` (keyset, on the queue's own order), the counts always for the whole queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.api.registry import TOOLS
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.readmodels.cockpit import COCKPIT_DEFAULT_ROWS, dispatcher_cockpit
from dispatch.tickets.models import Ticket
from tests.factories import SiteFactory, actor_for, jwt_for

pytestmark = pytest.mark.django_db

COCKPIT_URL = "/api/v1/ux/dispatcher/cockpit"
PRIORITIES = ("ROUTINE", "URGENT", "EMERGENCY")


@pytest.fixture(name="queue")
def queue_fixture() -> list[Ticket]:
    """120 open tickets, with ties on purpose: three priorities, created in batches of four at the
    same instant (so the id decides), some with a booked start that moves their SLA deadline."""
    sites = [SiteFactory(), SiteFactory()]
    tickets = Ticket.objects.bulk_create(
        Ticket(
            account=sites[n % 2].account,
            site=sites[n % 2],
            summary=f"Door {n}",
            priority=PRIORITIES[n % 3],
            incident_type="DOOR_WONT_LATCH",
        )
        for n in range(120)
    )
    start = timezone.now() - timedelta(hours=30)
    for n, ticket in enumerate(tickets):
        fields = {"created_at": start + timedelta(minutes=7 * (n // 4))}
        if n % 10 == 0:
            fields["scheduled_start"] = start + timedelta(hours=n // 10)
        Ticket.objects.filter(pk=ticket.pk).update(**fields)
    return tickets


def cockpit(**kwargs) -> dict:
    return dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=TOOLS, **kwargs)


def ids(answer: dict) -> list[str]:
    return [row["ticket_id"] for row in answer["queue"]]


def pages(limit: int, cursor: str | None = None, **kwargs) -> list[dict]:
    """Every page from the first (or from the one after `cursor`) to the last."""
    answers = [cockpit(limit=limit, cursor=cursor, **kwargs)]
    while answers[-1]["next_cursor"]:
        assert len(answers) < 50, "the cursor does not advance"
        answers.append(cockpit(limit=limit, cursor=answers[-1]["next_cursor"], **kwargs))
    return answers


# --- paging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["priority", "sla"])
def test_paging_returns_every_ticket_once_in_the_queues_order(queue, sort):
    whole = ids(cockpit(limit=200, sort=sort))
    assert sorted(whole) == sorted(str(ticket.id) for ticket in queue)

    answers = pages(25, sort=sort)

    assert [len(answer["queue"]) for answer in answers] == [25, 25, 25, 25, 20]
    assert [ticket for answer in answers for ticket in ids(answer)] == whole
    assert answers[-1]["next_cursor"] is None and answers[-1]["page"]["next_cursor"] is None
    # The counts and the total are the whole queue's on every page.
    for answer in answers:
        assert answer["counts"]["total_open"] == 120 and answer["page"]["total"] == 120
        assert answer["counts"]["by_priority"] == {"EMERGENCY": 40, "URGENT": 40, "ROUTINE": 40}
    # A cursor's page has no offset to tell.
    assert answers[1]["page"]["offset"] is None and answers[1]["page"]["next_offset"] is None


def test_a_page_holds_50_rows_unless_asked_otherwise_and_never_more_than_200(queue):
    first = cockpit()
    assert len(first["queue"]) == COCKPIT_DEFAULT_ROWS == 50
    assert first["page"]["limit"] == 50 and first["page"]["next_offset"] == 50 and first["next_cursor"]
    assert len(cockpit(limit=200)["queue"]) == 120
    assert cockpit(limit=200)["next_cursor"] is None


def test_paging_keeps_to_the_filters(queue):
    answers = pages(7, priority=["urgent"], sort="sla")
    paged = [ticket for answer in answers for ticket in ids(answer)]
    assert paged == ids(cockpit(limit=200, priority=["urgent"], sort="sla"))
    assert len(paged) == 40


@pytest.mark.parametrize("sort", ["priority", "sla"])
def test_tickets_changing_between_pages_neither_repeat_nor_hide_the_others(queue, sort):
    whole = ids(cockpit(limit=200, sort=sort))
    first = cockpit(limit=30, sort=sort)
    seen = ids(first)
    # Between two pages: a ticket already seen drops to the end of the queue, one not yet seen
    # jumps to its head, and another one is closed.
    dropped, jumped, closed = seen[3], whole[100], whole[60]
    Ticket.objects.filter(pk=dropped).update(priority="ROUTINE", created_at=timezone.now(), scheduled_start=None)
    Ticket.objects.filter(pk=jumped).update(
        priority="EMERGENCY", created_at=timezone.now() - timedelta(days=9), scheduled_start=None
    )
    Ticket.objects.filter(pk=closed).update(state="CLOSED")

    rest = pages(30, sort=sort, cursor=first["next_cursor"])
    paged = seen + [ticket for answer in rest for ticket in ids(answer)]

    unchanged = [ticket for ticket in whole if ticket not in (dropped, jumped, closed)]
    for ticket in unchanged:
        assert paged.count(ticket) == 1, ticket
    # The others keep their order; the moved ones appear where they stood when their page was read.
    assert [ticket for ticket in paged if ticket in unchanged] == unchanged
    assert closed not in paged
    assert paged.count(dropped) == 2  # seen on the first page, and again at the end where it went
    assert jumped not in paged  # it went ahead of the cursor: the next first page shows it


def test_offsets_would_skip_a_ticket_there_the_cursor_does_not(queue):
    """Why the cursor: with offsets, a ticket leaving the first page shifts the rest up by one."""
    whole = ids(cockpit(limit=200))
    first = cockpit(limit=30)
    Ticket.objects.filter(pk=ids(first)[0]).update(state="CLOSED")
    by_offset = ids(cockpit(limit=30, offset=30))
    by_cursor = ids(cockpit(limit=30, cursor=first["next_cursor"]))
    assert by_cursor == whole[30:60]
    assert whole[30] not in by_offset  # skipped


# --- refusals ------------------------------------------------------------------------------------


def _tampered(cursor: str) -> str:
    payload, _, signature = cursor.rpartition(":")
    return f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}:{signature}"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda cursor: "garbage", "is not a cursor of this queue"),
        (lambda cursor: "", None),  # an empty cursor is no cursor: the first page
        (_tampered, "is not a cursor of this queue"),
        (lambda cursor: cursor + "x", "is not a cursor of this queue"),
        (lambda cursor: "x" * 5000, "is not a cursor of this queue"),
        (lambda cursor: 12, "is not a cursor of this queue"),
        (lambda cursor: ["x"], "is not a cursor of this queue"),
        (lambda cursor: {"k": [0]}, "is not a cursor of this queue"),
    ],
)
def test_a_cursor_not_issued_here_is_refused(queue, make, message):
    cursor = make(cockpit(limit=10)["next_cursor"])
    if message is None:
        assert ids(cockpit(limit=10, cursor=cursor)) == ids(cockpit(limit=10))
        return
    with pytest.raises(DispatchError) as refused:
        cockpit(limit=10, cursor=cursor)
    assert (refused.value.code, refused.value.status) == ("INVALID_REQUEST", 400)
    assert refused.value.details["field"] == "cursor"
    assert message in refused.value.message and "next_cursor" in refused.value.message


@pytest.mark.parametrize(
    "other",
    [
        {"sort": "sla"},
        {"priority": ["urgent"]},
        {"state": ["new"]},
        {"site_id": ["00000000-0000-0000-0000-000000000001"]},
    ],
)
def test_a_cursor_is_refused_for_other_filters_or_another_sort(queue, other):
    cursor = cockpit(limit=10)["next_cursor"]
    with pytest.raises(DispatchError) as refused:
        cockpit(limit=10, cursor=cursor, **other)
    assert refused.value.code == "INVALID_REQUEST"
    assert "other filters or another sort" in refused.value.message
    # The same filters written otherwise are the same query.
    urgent = cockpit(limit=5, priority=["URGENT"])["next_cursor"]
    assert len(cockpit(limit=5, priority=["urgent"], cursor=urgent)["queue"]) == 5


def test_a_cursor_and_an_offset_together_are_refused(queue):
    cursor = cockpit(limit=10)["next_cursor"]
    with pytest.raises(DispatchError) as refused:
        cockpit(limit=10, cursor=cursor, offset=10)
    assert refused.value.code == "INVALID_REQUEST" and refused.value.details["field"] == "cursor"


@pytest.mark.parametrize("limit", [0, -1, 201, "ten", "1.5", [5]])
def test_a_limit_out_of_range_or_not_a_number_is_refused(limit):
    with pytest.raises(DispatchError) as refused:
        cockpit(limit=limit)
    assert (refused.value.code, refused.value.details["field"]) == ("INVALID_REQUEST", "limit")


# --- cost ------------------------------------------------------------------------------------------


def test_every_page_costs_the_same_few_queries(queue):
    def cost(**kwargs) -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            answer = cockpit(limit=20, **kwargs)
        return len(queries), answer

    first_cost, first = cost()
    second_cost, _ = cost(cursor=first["next_cursor"])
    sla_cost, sla = cost(sort="sla")
    later_cost, _ = cost(sort="sla", cursor=sla["next_cursor"])
    # The counts over the whole queue and the page's rows (with sites and technicians joined).
    assert first_cost == second_cost == sla_cost == later_cost <= 2


# --- over HTTP -------------------------------------------------------------------------------------


def test_the_api_pages_by_cursor_and_explains_a_bad_one(client, queue):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {jwt_for('desk', 'dispatcher')}"}
    first = client.get(f"{COCKPIT_URL}?limit=40&sort=sla", **auth)
    assert first.status_code == 200
    body = first.json()
    assert len(body["queue"]) == 40 and body["page"]["total"] == 120
    # The cursor goes back in a URL as it is (URL-safe characters only).
    second = client.get(f"{COCKPIT_URL}?limit=40&sort=sla&cursor={body['next_cursor']}", **auth).json()
    assert ids(second) == ids(cockpit(limit=200, sort="sla"))[40:80]

    default = client.get(COCKPIT_URL, **auth).json()
    assert len(default["queue"]) == 50 and default["next_cursor"]

    refused = client.get(f"{COCKPIT_URL}?cursor=not-a-cursor", **auth)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and error["field"] == "cursor"
    assert "next_cursor" in error["message"]
    wrong_sort = client.get(f"{COCKPIT_URL}?cursor={body['next_cursor']}", **auth)
    assert wrong_sort.status_code == 400 and "another sort" in wrong_sort.json()["error"]["message"]
    for limit in ("0", "201", "lots"):
        answer = client.get(f"{COCKPIT_URL}?limit={limit}", **auth)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "limit"
