"""The dispatch board page: who may see it, what a dispatcher sees on it, booking and moving
through it, and a query count that does not grow with the day's appointments."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dispatch.scheduling.board import board_day
from dispatch.scheduling.models import Appointment, Escalation
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import (
    SiteFactory,
    TimeOffFactory,
    UserFactory,
    ticket_dispatched,
    ticket_ready_to_schedule,
    ticket_scheduled,
)
from tests.scheduling.board_desk import LA, at, desk_fixture, role_groups_fixture, technician, tomorrow  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def board_url(**params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"day": tomorrow().isoformat(), **params}.items())
    return f"{reverse('board:day')}?{query}"


# --- access ---------------------------------------------------------------------------------------


def test_the_board_opens_for_a_dispatcher_with_lanes_blocks_and_the_queue(desk):
    dana = technician("Dana Whitfield")
    technician("Sam Okafor")
    booked = ticket_scheduled(technician=dana, start=at(9), end=at(10, 30), summary="Back door sticks")
    waiting = ticket_ready_to_schedule(priority="URGENT", summary="Garage door slams")

    page = desk.get(board_url())

    assert page.status_code == 200
    html = page.content.decode()
    assert "Dana Whitfield" in html and "Sam Okafor" in html
    assert booked.short_ref in html and "09:00–10:30" in html
    assert waiting.short_ref in html and "Garage door slams" in html
    # Links back to the back office's ticket page, and the back office's header links here.
    assert reverse("admin:tickets_ticket_change", args=[booked.id]) in html
    assert f'href="{reverse("board:day")}"' in html
    assert "htmx-2.min.js" in html and "js/board.js" in html


def test_an_admin_may_use_the_board(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("board:day")).status_code == 200


@pytest.mark.parametrize("role", ["technician", "qa", "finance", "agent"])
def test_other_roles_are_refused(client, role):
    client.force_login(UserFactory(role=role))
    assert client.get(reverse("board:day")).status_code == 403
    assert client.get(reverse("board:live")).status_code == 403
    assert client.post(reverse("board:move"), {}).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    page = client.get(reverse("board:day"))
    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/?next=/board/")


# --- what the day shows ---------------------------------------------------------------------------


def test_the_day_model_places_blocks_travel_shifts_and_time_off():
    dana = technician("Dana Whitfield")
    far = SiteFactory(lat="37.871590", lng="-122.272750", city="Berkeley")
    first = ticket_scheduled(technician=dana, start=at(8), end=at(9))
    second = ticket_scheduled(technician=dana, site=far, start=at(10), end=at(11, 30))
    TimeOffFactory(technician=dana, start=at(13), end=at(15), reason="Dentist")

    day = board_day(day=tomorrow(), now=timezone.now())

    lane = day.lanes[0]
    assert lane.name == "Dana Whitfield"
    assert lane.shift_label == "07:00–17:00"
    blocks = {b.ticket_id: b for b in lane.blocks}
    # The axis spans the shift, 07:00–17:00 (10 h): 08:00 is a tenth of the way, one hour a tenth wide.
    assert blocks[first.id].left == "10.000" and blocks[first.id].width == "10.000"
    assert blocks[second.id].time_label == "10:00–11:30"
    # From Oakland to Berkeley: a short drive drawn before the second job, none from home to the first.
    assert blocks[first.id].travel_minutes == 0
    assert 5 <= blocks[second.id].travel_minutes <= 15 and blocks[second.id].travel_from == first.site.name
    assert not blocks[second.id].travel_tight
    assert [(shade.kind, shade.reason) for shade in lane.shades] == [("timeoff", "Dentist")]
    assert [tick.label for tick in day.ticks][:2] == ["07", "08"] and day.ticks[-1].label == "17"


def test_time_off_says_which_part_of_the_day_it_takes_and_a_job_its_full_address():
    dana, sam, luis, priya = (technician(name) for name in ("Dana", "Sam", "Luis", "Priya"))
    site = SiteFactory(address_line1="18 Embarcadero West", city="Oakland", region="CA", postal_code="94607")
    booked = ticket_scheduled(technician=dana, site=site, start=at(8), end=at(9))
    TimeOffFactory(technician=dana, start=at(13), end=at(15), reason="Dentist")
    # Leave that began the day before and ends at noon; a trip that starts at 15:00 and runs on.
    TimeOffFactory(technician=sam, start=at(12) - timedelta(days=1), end=at(12))
    TimeOffFactory(technician=luis, start=at(15), end=at(9) + timedelta(days=2))
    TimeOffFactory(technician=priya, start=at(0) - timedelta(days=1), end=at(0) + timedelta(days=3))

    day = board_day(day=tomorrow(), now=timezone.now())

    said = {lane.name: [s.time_label for s in lane.shades if s.kind == "timeoff"] for lane in day.lanes}
    assert said == {"Dana": ["13:00–15:00"], "Sam": ["Until 12:00"], "Luis": ["From 15:00"], "Priya": ["All day"]}
    dana_lane = next(lane for lane in day.lanes if lane.name == "Dana")
    assert dana_lane.blocks[0].ticket_id == booked.id
    assert dana_lane.blocks[0].address == "18 Embarcadero West, Oakland, CA 94607"


def test_the_axis_widens_to_a_job_outside_the_shifts_and_shades_off_shift_time():
    dana = technician("Dana Whitfield")
    late = ticket_scheduled(technician=dana, start=at(18, 30), end=at(19, 15))

    day = board_day(day=tomorrow(), now=timezone.now())

    assert (day.ticks[0].label, day.ticks[-1].label) == ("07", "20")
    lane = day.lanes[0]
    assert [(s.kind, s.left, s.width) for s in lane.shades] == [("off", "76.923", "23.077")]
    assert lane.blocks[0].ticket_id == late.id and lane.blocks[0].time_label == "18:30–19:15"


def test_an_empty_day_shows_06_to_20():
    day = board_day(day=tomorrow(), now=timezone.now())
    assert (day.ticks[0].label, day.ticks[-1].label, day.lanes) == ("06", "20", [])


def test_the_queue_lists_unbooked_tickets_by_priority_then_age():
    routine = ticket_ready_to_schedule(priority="ROUTINE", summary="Old routine")
    emergency = ticket_ready_to_schedule(priority="EMERGENCY", summary="Store can't lock")
    urgent = ticket_ready_to_schedule(priority="URGENT", summary="Closer leaking")
    ticket_scheduled(technician=technician("Dana Whitfield"), start=at(9), end=at(10))

    day = board_day(day=tomorrow(), now=timezone.now())

    assert [item.ticket_id for item in day.queue] == [emergency.id, urgent.id, routine.id]


def test_open_escalations_are_on_top():
    ticket = ticket_dispatched(technician=technician("Dana Whitfield"), start=at(9), end=at(10))
    Escalation.objects.create(
        ticket=ticket,
        kind="UNACKNOWLEDGED_DISPATCH",
        trigger_key="dispatch:1",
        details={"reason": "Dana has not acknowledged the job for 25 min."},
    )
    Escalation.objects.create(
        ticket=ticket, kind="SLA_RISK", trigger_key="sla:1", details={"reason": "Old news"}, resolved_at=timezone.now()
    )

    day = board_day(day=tomorrow(), now=timezone.now())

    assert [(e.ref, e.kind_label, e.reason) for e in day.escalations] == [
        (ticket.short_ref, "Dispatch not acknowledged", "Dana has not acknowledged the job for 25 min.")
    ]


def test_the_technician_filter_narrows_the_lanes(desk):
    _dana, sam = technician("Dana Whitfield"), technician("Sam Okafor")

    day = board_day(day=tomorrow(), technician_ids=[str(sam.id)])

    assert [lane.name for lane in day.lanes] == ["Sam Okafor"]
    assert day.filtered and day.selected_ids == [str(sam.id)]
    page = desk.get(board_url(tech=sam.id))
    assert b"Technicians: 1 of 2" in page.content


def test_only_scheduled_jobs_can_be_dragged():
    dana = technician("Dana Whitfield")
    scheduled = ticket_scheduled(technician=dana, start=at(9), end=at(10))
    dispatched = ticket_dispatched(technician=dana, start=at(11), end=at(12))

    lane = board_day(day=tomorrow()).lanes[0]

    movable = {b.ticket_id: b.movable for b in lane.blocks}
    assert movable == {scheduled.id: True, dispatched.id: False}


def _day_with(appointments: int) -> None:
    techs = [technician(f"Tech {n}") for n in range(max(1, appointments // 3))]
    for n in range(appointments):
        tech = techs[n % len(techs)]
        hour = 7 + 3 * (n // len(techs))
        ticket = ticket_scheduled(technician=tech, start=at(hour), end=at(hour + 1))
        if n % 4 == 0:
            Escalation.objects.create(
                ticket=ticket, kind="SLA_RISK", trigger_key=f"sla:{n}", details={"reason": "late"}
            )
    for tech in techs:
        TimeOffFactory(technician=tech, start=at(15), end=at(16))
    for _ in range(appointments // 2):
        ticket_ready_to_schedule()


def test_the_board_costs_the_same_queries_for_a_quiet_and_a_busy_day(desk):
    _day_with(1)
    with CaptureQueriesContext(connection) as quiet:
        board_day(day=tomorrow(), now=timezone.now())
    with CaptureQueriesContext(connection) as quiet_page:
        assert desk.get(board_url()).status_code == 200

    _day_with(12)
    assert Appointment.objects.filter(status="CONFIRMED").count() == 13
    with CaptureQueriesContext(connection) as busy:
        day = board_day(day=tomorrow(), now=timezone.now())
    with CaptureQueriesContext(connection) as busy_page:
        assert desk.get(board_url()).status_code == 200

    assert sum(len(lane.blocks) for lane in day.lanes) == 13
    assert len(busy) == len(quiet) == 7
    assert len(busy_page) == len(quiet_page)


# --- booking and moving through the page -----------------------------------------------------------


def test_the_panel_shows_the_engines_windows_with_reasons(desk):
    technician("Dana Whitfield")
    ticket = ticket_ready_to_schedule()

    panel = desk.get(reverse("board:ticket", args=[ticket.id]))

    assert panel.status_code == 200
    html = panel.content.decode()
    assert "Best windows" in html and "Dana Whitfield" in html
    assert 'name="technician_id"' in html and ">Book</button>" in html


def test_booking_from_the_panel_schedules_the_ticket_and_refreshes_the_board(desk):
    dana = technician("Dana Whitfield")
    ticket = ticket_ready_to_schedule()

    answer = desk.post(
        reverse("board:book"),
        {"ticket_id": ticket.id, "technician_id": dana.id, "start": at(10).isoformat(), "end": at(11, 30).isoformat()},
    )

    assert answer.status_code == 200
    assert answer["HX-Trigger"] == "board-changed"
    assert "Booked" in answer.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    event = AuditEvent.objects.get(ticket=ticket, tool_name="schedule.book")
    assert event.actor_role == "dispatcher" and event.actor_id == str(answer.wsgi_request.user.pk)


def test_a_refused_booking_shows_the_reason_in_the_panel(desk):
    dana = technician("Dana Whitfield")
    ticket = ticket_ready_to_schedule()

    answer = desk.post(
        reverse("board:book"),
        {"ticket_id": ticket.id, "technician_id": dana.id, "start": at(18).isoformat(), "end": at(19).isoformat()},
    )

    assert answer.status_code == 409
    html = answer.content.decode()
    assert "Not booked" in html and "not on shift" in html and "SLOT_RULE_VIOLATION" in html
    assert Ticket.objects.get(pk=ticket.pk).state == "READY_TO_SCHEDULE"


def test_a_drag_is_moved_or_refused_with_the_reason(desk):
    dana, sam = technician("Dana Whitfield"), technician("Sam Okafor")
    mine = ticket_scheduled(technician=dana, start=at(9), end=at(10))
    ticket_scheduled(technician=sam, start=at(13), end=at(14))
    booking = Appointment.objects.get(ticket=mine)

    refused = desk.post(
        reverse("board:move"), {"appointment_id": booking.id, "technician_id": sam.id, "start": at(13).isoformat()}
    )
    assert refused.status_code == 409
    body = json.loads(refused.content)
    assert body["ok"] is False and body["code"] == "SLOT_RULE_VIOLATION"
    assert "Overlaps Sam Okafor's job" in body["message"]

    moved = desk.post(
        reverse("board:move"), {"appointment_id": booking.id, "technician_id": sam.id, "start": at(15).isoformat()}
    )
    assert moved.status_code == 200
    assert json.loads(moved.content)["message"].startswith(f"{mine.short_ref} moved to Sam Okafor")
    assert Appointment.objects.get(ticket=mine, status="CONFIRMED").technician == sam


def test_a_move_without_a_usable_time_is_bad_input(desk):
    answer = desk.post(reverse("board:move"), {"appointment_id": "x", "technician_id": "y", "start": "tomorrow"})
    assert answer.status_code == 400
    assert json.loads(answer.content)["code"] == "INVALID_REQUEST"


def test_an_ended_session_sends_the_whole_page_to_the_login(client):
    poll = client.get(reverse("board:live"), headers={"HX-Request": "true"})
    assert poll.status_code == 200 and poll["HX-Redirect"] == "/admin/login/?next=/board/"
    move = client.post(reverse("board:move"), {})
    assert move.status_code == 401 and json.loads(move.content)["code"] == "AUTH_REQUIRED"
