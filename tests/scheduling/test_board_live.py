"""The board's live refresh: a poll carries the version of what the page shows and is answered
204 No Content, for a handful of small queries, while nothing on it changed; any change the live
part shows makes the next poll render the day again."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dispatch.scheduling.board import board_version
from dispatch.scheduling.booking import appointment_move
from dispatch.scheduling.models import Appointment, Escalation, Shift
from dispatch.scheduling.services import assignment_dispatch, schedule_hold, schedule_propose
from dispatch.tickets.models import Site
from dispatch.tickets.services import ticket_cancel
from tests.factories import (
    SiteFactory,
    TimeOffFactory,
    actor_for,
    ticket_ready_to_schedule,
    ticket_scheduled,
)
from tests.scheduling.board_desk import at, desk_fixture, role_groups_fixture, technician, tomorrow  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

VERSION = "X-Board-Version"
# What a poll that finds nothing changed may cost: the session, its user and the user's groups
# (the board's door), then the version's six reads, and one per catalog flag with a digest (the
# autopilot's open suggestions, which change nothing on the tickets). None of them grows with the day.
UNCHANGED_POLL_QUERIES = 10


def live_url(**params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"day": tomorrow().isoformat(), **params}.items())
    return f"{reverse('board:live')}?{query}"


def poll(desk, version: str | None = None, **params):
    headers = {"HX-Request": "true", "X-Dispatch-Poll": "1"}
    if version is not None:
        headers[VERSION] = version
    return desk.get(live_url(**params), headers=headers)


@pytest.fixture(name="day")
def day_fixture():
    dana, sam = technician("Dana Whitfield"), technician("Sam Okafor")
    site = SiteFactory(name="Harbor Lofts", city="Oakland")
    booked = ticket_scheduled(technician=dana, site=site, start=at(9), end=at(10), summary="Back door sticks")
    waiting = ticket_ready_to_schedule(priority="URGENT", summary="Garage door slams")
    escalated = ticket_scheduled(technician=sam, start=at(11), end=at(12), summary="Closer leaking")
    Escalation.objects.create(
        ticket=escalated, kind="SLA_RISK", trigger_key="sla:1", details={"reason": "Running late", "due": "11:00"}
    )
    return {"dana": dana, "sam": sam, "site": site, "booked": booked, "waiting": waiting, "escalated": escalated}


def current(desk) -> str:
    first = poll(desk)
    assert first.status_code == 200
    return first[VERSION]


# --- nothing changed ----------------------------------------------------------------------------


def test_a_poll_with_the_current_version_is_answered_204_for_a_few_queries(desk, day):
    first = poll(desk)
    assert first.status_code == 200
    version = first[VERSION]
    html = first.content.decode()
    # The partial carries its version, and sends it with its next poll.
    assert f'data-version="{version}"' in html
    assert f'"X-Board-Version": "{version}"' in html

    with CaptureQueriesContext(connection) as queries:
        again = poll(desk, version)
    assert again.status_code == 204
    assert again.content == b""
    assert again[VERSION] == version
    assert len(queries) <= UNCHANGED_POLL_QUERIES
    # The day itself (the bookings with their tickets and sites, for the lanes) is never read.
    assert not any('"tickets_account"' in query["sql"] for query in queries.captured_queries)

    # A busier day costs the same.
    for hour in (13, 14, 15):
        ticket_scheduled(technician=day["dana"], start=at(hour), end=at(hour, 45))
        ticket_ready_to_schedule()
    version = current(desk)
    with CaptureQueriesContext(connection) as busy:
        assert poll(desk, version).status_code == 204
    assert len(busy) == len(queries)


def test_a_poll_without_the_version_or_with_an_old_one_renders_the_day(desk, day):
    # What a board-changed refresh sends (no version), or a page from before a change.
    assert poll(desk).status_code == 200
    stale = poll(desk, "0" * 24)
    assert stale.status_code == 200 and day["booked"].short_ref in stale.content.decode()
    assert poll(desk, "").status_code == 200


def test_the_page_and_the_partial_carry_the_same_version(desk, day):
    page = desk.get(reverse("board:day") + f"?day={tomorrow().isoformat()}")
    version = board_version(day=tomorrow())
    assert f'data-version="{version}"' in page.content.decode()
    assert poll(desk, version).status_code == 204


def test_the_version_follows_the_technician_filter(desk, day):
    dana, sam = str(day["dana"].id), str(day["sam"].id)
    both = current(desk)
    only_sam = poll(desk, tech=sam)[VERSION]
    assert only_sam != both
    assert poll(desk, only_sam, tech=sam).status_code == 204
    # Dana's lane is not on Sam's board: a change to it leaves Sam's version as it was.
    TimeOffFactory(technician=day["dana"], start=at(15), end=at(16), reason="Dentist")
    assert poll(desk, only_sam, tech=sam).status_code == 204
    assert poll(desk, both).status_code == 200
    # The filter is a set: its order does not matter.
    assert board_version(day=tomorrow(), technician_ids=[dana, sam]) == board_version(
        day=tomorrow(), technician_ids=[sam, dana]
    )


# --- each kind of change ------------------------------------------------------------------------


def _ticket_state(day):
    dispatched = assignment_dispatch(actor=actor_for("dispatcher"), ticket_id=day["booked"].id, tech_id=day["dana"].id)
    assert dispatched.ticket.state == "DISPATCHED"
    return "bd-block rd-state-dispatched"


def _ticket_cancelled(day):
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=day["booked"].id, reason="Customer fixed it")
    return None  # the block is gone


def _appointment_moved(day):
    booking = Appointment.objects.get(ticket=day["booked"], status="CONFIRMED")
    appointment_move(
        actor=actor_for("dispatcher"), appointment_id=booking.id, technician_id=day["sam"].id, start=at(14)
    )
    return '14:00<span class="bd-block__end">–15:00'


def _held(day):
    window = {"start": timezone.now().isoformat(), "end": (timezone.now() + timedelta(hours=48)).isoformat()}
    schedule_hold(
        actor=actor_for("dispatcher"),
        ticket_id=day["booked"].id,
        hold_reason="CUSTOMER_PENDING",
        confirmation_window=window,
    )
    return "bd-block--held"


def _proposed(day):
    options = [{"start": at(16).isoformat(), "end": at(17).isoformat()}]
    schedule_propose(actor=actor_for("dispatcher"), ticket_id=day["waiting"].id, options=options)
    return "Proposed to the customer"


def _new_in_queue(day):
    ticket_ready_to_schedule(summary="Brand new leak at the back")
    return "Brand new leak at the back"


def _time_off(day):
    TimeOffFactory(technician=day["sam"], start=at(15), end=at(16), reason="Forklift training")
    return "Forklift training"


def _shift(day):
    Shift.objects.filter(technician=day["sam"]).update(end_time="15:30")
    return "07:00–15:30"


def _technician_renamed(day):
    day["sam"].display_name = "Samuel Okafor"
    day["sam"].save()
    return "Samuel Okafor"


def _site_renamed(day):
    # Sites keep no updated_at: the lanes' fields of the site are in the version themselves.
    Site.objects.filter(pk=day["site"].pk).update(name="Harbour Lofts")
    return "Harbour Lofts"


def _site_readdressed(day):
    # The phone's list of a technician's day shows the street address.
    Site.objects.filter(pk=day["site"].pk).update(address_line1="18 Embarcadero West")
    return "18 Embarcadero West"


def _escalation(day):
    Escalation.objects.create(
        ticket=day["booked"], kind="UNACKNOWLEDGED_DISPATCH", trigger_key="dispatch:2", details={"reason": "No answer"}
    )
    return "No answer"


def _escalation_resolved(day):
    Escalation.objects.filter(ticket=day["escalated"]).update(resolved_at=timezone.now())
    return None  # the escalations block is gone


def _escalation_reworded(day):
    Escalation.objects.filter(ticket=day["escalated"]).update(details={"reason": "Running very late"})
    return "Running very late"


@pytest.mark.parametrize(
    "change",
    [
        _ticket_state,
        _ticket_cancelled,
        _appointment_moved,
        _held,
        _proposed,
        _new_in_queue,
        _time_off,
        _shift,
        _technician_renamed,
        _site_renamed,
        _site_readdressed,
        _escalation,
        _escalation_resolved,
        _escalation_reworded,
    ],
    ids=lambda change: change.__name__.strip("_"),
)
def test_each_change_the_live_part_shows_makes_the_next_poll_render(desk, day, change):
    version = current(desk)
    before = poll(desk).content.decode()

    shown = change(day)

    refreshed = poll(desk, version)
    assert refreshed.status_code == 200
    assert refreshed[VERSION] != version
    html = refreshed.content.decode()
    assert html != before
    if shown is not None:
        assert shown in html and shown not in before
    # And the new version is the one the next poll finds unchanged.
    assert poll(desk, refreshed[VERSION]).status_code == 204


def test_a_change_to_the_ticket_cancelled_drops_its_block_and_a_resolution_its_escalation(desk, day):
    version = current(desk)
    _ticket_cancelled(day)
    _escalation_resolved(day)
    html = poll(desk, version).content.decode()
    assert f'data-ticket-id="{day["booked"].id}"' not in html
    assert "Running late" not in html


# --- what does not change it ----------------------------------------------------------------------


def test_the_version_does_not_depend_on_dict_order_or_on_the_clock(day):
    escalation = Escalation.objects.get(ticket=day["escalated"])
    now = timezone.now()
    version = board_version(day=tomorrow(), now=now)
    # The same details written with their keys the other way round.
    Escalation.objects.filter(pk=escalation.pk).update(details={"due": "11:00", "reason": "Running late"})
    assert board_version(day=tomorrow(), now=now) == version
    # Time passing moves the page's clocks, not the version (the page moves them itself).
    assert board_version(day=tomorrow(), now=now + timedelta(minutes=7)) == version
    assert re.fullmatch(r"[0-9a-f]{24}", version)


def test_the_version_changes_when_the_day_becomes_today(day):
    today = timezone.now()
    assert board_version(day=tomorrow(), now=today) != board_version(day=tomorrow(), now=today + timedelta(days=1))


def test_the_partial_gives_the_page_what_its_clocks_need(desk, day):
    html = poll(desk).content.decode()
    live = re.search(r'<div id="bd-live"[^>]*>', html).group(0)
    assert 'data-generated="' in live and 'data-sla-warning-minutes="45"' in live and 'data-today="false"' in live
    # The queue's ages and SLA badges (hidden while healthy) count from these moments.
    assert re.search(r'class="bd-qitem__age"[^>]*data-since="\d{4}-\d\d-\d\dT[^"]+Z"', html)
    assert re.search(r'<span class="bd-sla bd-sla--healthy" data-sla-deadline="[^"]+Z" hidden>', html)
    assert re.search(r'class="bd-esc__age" data-since="[^"]+Z"', html)
