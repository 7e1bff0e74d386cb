"""The dispatch board in headless Chromium: a busy day renders with lanes and blocks, a ticket is
booked from the queue, and a drag onto an occupied slot is refused with the reason shown."""

from __future__ import annotations

import os
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.common.roles import role_groups_sync
from dispatch.scheduling.booking import appointment_book
from dispatch.scheduling.models import Appointment, Escalation
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    TimeOffFactory,
    UserFactory,
    actor_for,
    shifts_every_day,
    ticket_dispatched,
    ticket_proposed,
    ticket_ready_to_schedule,
    ticket_scheduled,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LA = ZoneInfo("America/Los_Angeles")
# Set BOARD_SCREENSHOTS=/some/dir to keep the screenshots this test takes.
SCREENSHOTS = os.environ.get("BOARD_SCREENSHOTS", "")


def tomorrow():
    return timezone.now().astimezone(LA).date() + timedelta(days=1)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(tomorrow(), time(hour, minute), tzinfo=LA)


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def busy_day() -> dict:
    """A door company's day: five technicians, jobs in every state, a queue and an escalation."""
    sites = {
        "oakland": SiteFactory(name="Harbor Lofts", city="Oakland", lat="37.804400", lng="-122.271100"),
        "berkeley": SiteFactory(name="Shattuck Dental", city="Berkeley", lat="37.871590", lng="-122.272750"),
        "alameda": SiteFactory(name="Webster Market", city="Alameda", lat="37.771200", lng="-122.276400"),
        "emeryville": SiteFactory(name="Bay Street Mall", city="Emeryville", lat="37.834000", lng="-122.293400"),
        "hayward": SiteFactory(name="Foothill Clinic", city="Hayward", lat="37.668820", lng="-122.080800"),
    }
    skills = ["DOOR_WONT_LATCH", "AUTO_OPERATOR_FAULT", "CLOSER_LEAKING_OR_SLAMMING"]
    techs = {}
    for key, name, start, end in (
        ("dana", "Dana Whitfield", "07:00", "15:30"),
        ("marcus", "Marcus Reyes", "08:00", "17:00"),
        ("priya", "Priya Raman", "09:00", "18:00"),
        ("sam", "Sam Okafor", "07:00", "15:30"),
        ("luis", "Luis Ortega", "10:00", "19:00"),
    ):
        techs[key] = TechnicianFactory(display_name=name, skills=skills, region_codes=["EAST_BAY"])
        shifts_every_day(techs[key], start=start, end=end)
    jobs = {
        "dana_1": ticket_dispatched(
            technician=techs["dana"],
            site=sites["oakland"],
            start=at(7, 30),
            end=at(9),
            summary="Front entrance door won't latch",
        ),
        "dana_2": ticket_scheduled(
            technician=techs["dana"],
            site=sites["berkeley"],
            start=at(10),
            end=at(11, 30),
            summary="Exam room door drags on the floor",
        ),
        "marcus_1": ticket_scheduled(
            technician=techs["marcus"],
            site=sites["alameda"],
            start=at(8, 30),
            end=at(10),
            incident_type="AUTO_OPERATOR_FAULT",
            summary="Sliding door stops halfway",
        ),
        "marcus_2": ticket_scheduled(
            technician=techs["marcus"],
            site=sites["emeryville"],
            start=at(13),
            end=at(14, 30),
            summary="Mall side door slams",
            incident_type="CLOSER_LEAKING_OR_SLAMMING",
        ),
        "priya_1": ticket_dispatched(
            technician=techs["priya"],
            site=sites["hayward"],
            start=at(9, 30),
            end=at(11),
            summary="Clinic door won't lock",
            priority="URGENT",
        ),
        "sam_1": ticket_scheduled(
            technician=techs["sam"],
            site=sites["oakland"],
            start=at(12),
            end=at(13, 30),
            summary="Garage pedestrian door rubs",
        ),
        "luis_1": ticket_scheduled(
            technician=techs["luis"],
            site=sites["emeryville"],
            start=at(15),
            end=at(16, 30),
            summary="Store room closer leaking",
            incident_type="CLOSER_LEAKING_OR_SLAMMING",
        ),
    }
    TimeOffFactory(technician=techs["sam"], start=at(8), end=at(10), reason="Dentist")
    queue = {
        "urgent": ticket_ready_to_schedule(site=sites["berkeley"], priority="URGENT", summary="Back gate won't close"),
        "routine": ticket_ready_to_schedule(site=sites["alameda"], summary="Office door latch sticky"),
        "proposed": ticket_proposed(
            site=sites["emeryville"],
            options=[{"start": at(16).isoformat(), "end": at(17).isoformat()}],
            summary="Restroom door closer adjustment",
        ),
    }
    Escalation.objects.create(
        ticket=jobs["priya_1"],
        kind="UNACKNOWLEDGED_DISPATCH",
        trigger_key="dispatch:test",
        details={"reason": "Priya Raman has not acknowledged the dispatch for 25 min."},
    )
    return {"techs": techs, "jobs": jobs, "queue": queue}


def log_in(live_server, page) -> None:
    role_groups_sync()
    UserFactory(username="riley", role="dispatcher")
    page.goto(live_server.url + "/admin/login/?next=/board/")
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")


def block_center(page, ticket) -> tuple[float, float]:
    box = page.locator(f'.bd-block[data-ticket-id="{ticket.id}"]').bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def x_at(page, track_box: dict, moment: datetime) -> float:
    """The x coordinate of `moment` on a lane, from the axis the page was drawn with."""
    axis = page.locator("#bd-live")
    axis_start = datetime.fromisoformat(axis.get_attribute("data-axis-start"))
    minutes = int(axis.get_attribute("data-axis-minutes"))
    return track_box["x"] + track_box["width"] * (moment - axis_start).total_seconds() / 60 / minutes


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 8, start[1] + 4, steps=3)
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def test_a_dispatcher_books_from_the_queue_and_a_clashing_drag_is_refused(live_server, page):
    day = busy_day()
    log_in(live_server, page)
    page.goto(f"{live_server.url}/board/?day={tomorrow().isoformat()}")

    # The day renders: a lane per technician, a block per job, the queue and the escalation.
    page.wait_for_selector(".bd-lane")
    assert page.locator(".bd-lane").count() == 5
    assert page.locator(".bd-block").count() == 7
    assert page.locator(".bd-qitem").count() == 3
    assert "not acknowledged" in page.locator(".bd-escalations").inner_text()
    assert "Dentist" in page.locator(".bd-shade--timeoff").inner_text()
    # The urgent ticket heads the queue.
    assert day["queue"]["urgent"].short_ref in page.locator(".bd-qitem").first.inner_text()
    # Blocks wear the back office's state colours (dispatched = the admin's violet bar).
    dispatched = page.locator(f'.bd-block[data-ticket-id="{day["jobs"]["dana_1"].id}"]')
    assert "rgb(128, 89, 214)" in dispatched.evaluate("el => getComputedStyle(el).boxShadow")
    shot(page, "board-day")

    # Booking from the queue: the panel lists the engine's windows with reasons; Book books the first.
    urgent = day["queue"]["urgent"]
    page.click(f'.bd-qitem[data-ticket-id="{urgent.id}"]')
    page.wait_for_selector("#bd-panel .bd-window, #bd-panel .bd-outcome")
    first_window = page.locator("#bd-panel .bd-window").first.inner_text()
    assert "arrive" in first_window
    shot(page, "board-panel")
    page.locator("#bd-panel .bd-book").first.click()
    page.wait_for_selector("#bd-panel .bd-outcome--ok")
    assert "Booked" in page.locator("#bd-panel").inner_text()
    urgent.refresh_from_db()
    assert urgent.state == "SCHEDULED"
    assert AuditEvent.objects.filter(ticket=urgent, tool_name="schedule.book").count() == 1
    # The board refreshed itself: the ticket left the queue.
    # A function: Playwright would eval a bare expression in the page, and the CSP refuses eval.
    page.wait_for_function(f"() => !document.querySelector('.bd-qitem[data-ticket-id=\"{urgent.id}\"]')")
    assert page.locator(".bd-qitem").count() == 2

    # Dragging Dana's 10:00 job onto Marcus's 13:00 job is refused, with the reason, and snaps back.
    mine = day["jobs"]["dana_2"]
    before = Appointment.objects.get(ticket=mine, status="CONFIRMED")
    occupied = block_center(page, day["jobs"]["marcus_2"])
    grab = block_center(page, mine)
    box = page.locator(f'.bd-block[data-ticket-id="{mine.id}"]').bounding_box()
    target_box = page.locator(f'.bd-block[data-ticket-id="{day["jobs"]["marcus_2"].id}"]').bounding_box()
    # Keep the grab point: the block's left edge lands on the left edge of Marcus's block.
    drag(page, grab, (target_box["x"] + (grab[0] - box["x"]), occupied[1]))
    page.wait_for_selector("#bd-notice.bd-notice--refused")
    notice = page.locator("#bd-notice").inner_text()
    assert "Not moved" in notice and "Overlaps Marcus Reyes's job" in notice
    shot(page, "board-refused-drag")
    after = Appointment.objects.get(ticket=mine, status="CONFIRMED")
    assert (after.pk, after.technician_id, after.start) == (before.pk, before.technician_id, before.start)
    page.wait_for_function(
        f"""() => {{ const el = document.querySelector('.bd-block[data-ticket-id="{mine.id}"]');
                     return el && !el.style.transform; }}"""
    )

    # A drag to a free slot of another technician moves the job, and the lanes follow.
    box = page.locator(f'.bd-block[data-ticket-id="{mine.id}"]').bounding_box()
    grab = (box["x"] + 6, box["y"] + box["height"] / 2)
    luis_track = page.locator(f'.bd-track[data-technician-id="{day["techs"]["luis"].id}"]').bounding_box()
    target_x = x_at(page, luis_track, at(11)) + 6
    drag(page, grab, (target_x, luis_track["y"] + luis_track["height"] / 2))
    page.wait_for_selector("#bd-notice.bd-notice--ok")
    assert "moved to Luis Ortega" in page.locator("#bd-notice").inner_text()
    moved = Appointment.objects.get(ticket=mine, status="CONFIRMED")
    assert moved.technician == day["techs"]["luis"]
    assert moved.start.astimezone(LA).time() == time(11, 0)
    assert Ticket.objects.get(pk=mine.pk).scheduled_start == moved.start
    page.wait_for_selector(
        f'.bd-track[data-technician-id="{day["techs"]["luis"].id}"] .bd-block[data-ticket-id="{mine.id}"]'
    )
    shot(page, "board-after-move")

    # Another dispatcher books the next ticket elsewhere: this board shows it by itself.
    routine = day["queue"]["routine"]
    appointment_book(
        actor=actor_for("dispatcher"),
        ticket_id=routine.id,
        technician_id=day["techs"]["sam"].id,
        start=at(14),
        end=at(15),
    )
    page.wait_for_selector(
        f'.bd-track[data-technician-id="{day["techs"]["sam"].id}"] .bd-block[data-ticket-id="{routine.id}"]',
        timeout=15000,
    )
    assert page.locator(f'.bd-qitem[data-ticket-id="{routine.id}"]').count() == 0
