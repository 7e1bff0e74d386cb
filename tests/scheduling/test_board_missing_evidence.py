"""The dispatch board marks jobs whose evidence is incomplete, from the same reader as the ticket
list's "missing evidence" column, in a number of queries that does not grow with the jobs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import (
    door_evidence_add,
    ticket_in_progress,
    ticket_scheduled,
)
from tests.scheduling.board_desk import LA, at, desk_fixture, role_groups_fixture, technician, tomorrow  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def day_params() -> dict:
    return {"day": tomorrow().isoformat()}


def marks_by_ticket(response) -> dict:
    return {
        block.ticket_id: [mark.text for _flag, mark in block.marks]
        for lane in response.context["board"].lanes
        for block in lane.blocks
    }


def test_jobs_missing_evidence_carry_a_mark_on_their_block(desk):
    dana = technician("Dana Whitfield")
    bare = ticket_in_progress(technician=dana, start=at(8), end=at(9), summary="Strike plate loose")
    done = ticket_in_progress(technician=technician("Sam Okafor"), start=at(10), end=at(11))
    door_evidence_add(done)
    later = ticket_scheduled(technician=dana, start=at(13), end=at(14))

    response = desk.get(reverse("board:day"), day_params())

    assert marks_by_ticket(response) == {
        bare.id: ["2 photos · note · signature"],
        done.id: [],
        later.id: [],  # not on site yet: nothing to ask for
    }
    html = response.content.decode()
    block = html[html.index(f'data-ticket-id="{bare.id}"') :]
    block = block[: block.index("</a>")]
    assert '<span class="bd-mark bd-mark--missing_evidence"' in block
    assert '<span class="bd-mark__text">2 photos · note · signature</span>' in block
    assert "Missing evidence: 2 photos · note · signature" in block  # in the block's tooltip too
    assert html.count('class="bd-mark bd-mark--missing_evidence"') == 1
    assert "Missing evidence</span>" in html  # the legend


def test_the_live_refresh_and_the_panel_show_the_same_mark(desk):
    dana = technician("Dana Whitfield")
    job = ticket_in_progress(technician=dana, start=at(8), end=at(9))
    door_evidence_add(job, keys=["photo_before_door_edge_and_strike", "photo_after_latched_alignment"], signature=False)

    live = desk.get(reverse("board:live"), day_params())
    panel = desk.get(reverse("board:ticket", args=[job.id]), day_params())

    assert marks_by_ticket(live) == {job.id: ["note · signature"]}
    assert "Missing evidence: note · signature" in panel.content.decode()

    door_evidence_add(job, keys=["note_adjustments_and_test_cycles"])
    assert marks_by_ticket(desk.get(reverse("board:live"), day_params())) == {job.id: []}
    assert "Missing evidence" not in desk.get(reverse("board:ticket", args=[job.id]), day_params()).content.decode()


def test_the_board_and_the_ticket_list_give_the_same_answer(desk):
    dana = technician("Dana Whitfield")
    job = ticket_in_progress(technician=dana, start=at(8), end=at(9))
    door_evidence_add(job, keys=["photo_before_door_edge_and_strike"], signature=False)

    board = marks_by_ticket(desk.get(reverse("board:day"), day_params()))[job.id]
    listed = desk.get(reverse("admin:tickets_ticket_changelist"), {"missing_evidence": "yes"}).context["cl"]

    assert list(listed.result_list) == [job]
    assert board == [mark.text for _flag, mark in listed.result_list[0].flag_marks]


def board_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("board:day"), day_params())
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_marks_cost_the_same_queries_for_2_and_8_marked_jobs(desk):
    techs = [technician(f"Tech {n}") for n in range(8)]
    for tech in techs[:2]:
        ticket_in_progress(technician=tech, start=at(8), end=at(9))
    board_queries(desk)  # warm per-process caches
    few = board_queries(desk)
    for index, tech in enumerate(techs[2:]):
        job = ticket_in_progress(technician=tech, start=at(10), end=at(11))
        if index % 2:
            door_evidence_add(job, keys=["photo_after_latched_alignment"])

    many = board_queries(desk)

    assert few == many, (few, many)
