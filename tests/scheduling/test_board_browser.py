"""The dispatch board in headless Chromium: a busy day renders with lanes and blocks, a ticket is
booked from the queue, and a drag onto an occupied slot is refused with the reason shown; a poll
that finds nothing changed leaves the page alone, and another dispatcher's move shows at the next."""

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


def log_in(live_server, page, username: str = "riley") -> None:
    role_groups_sync()
    UserFactory(username=username, role="dispatcher")
    page.goto(live_server.url + "/admin/login/?next=/board/")
    page.fill("#id_username", username)
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


# --- the live refresh: nothing changed, nothing moves ----------------------------------------------

# Every change under the lanes, but for the page's own clocks (ages, SLA countdowns, the now line),
# which may tick between two polls, and htmx's htmx-request class while a request is out.
WATCH = """() => {
  const clocks = "[data-since], [data-sla-deadline], [data-checked], .bd-now";
  // htmx's own passing classes (htmx-request while a poll is out, htmx-settling and htmx-swapping
  // just after a render) say nothing about what the dispatcher sees.
  const classes = (value) => (value || "").split(/\\s+/).filter((name) => name && !name.startsWith("htmx-")).join(" ");
  window.__live = document.getElementById("bd-live");
  window.__mutations = [];
  if (window.__observer) window.__observer.disconnect();
  window.__observer = new MutationObserver((records) => records.forEach((record) => {
    const el = record.target.nodeType === 1 ? record.target : record.target.parentElement;
    if (el && el.closest(clocks)) return;
    if (record.attributeName === "class" && classes(record.oldValue) === classes(el.getAttribute("class"))) return;
    window.__mutations.push(record.type + " " + (record.attributeName || "") + " " + (el ? el.className : ""));
  }));
  window.__observer.observe(document.querySelector(".bd-grid"), {
    subtree: true, childList: true, attributes: true, attributeOldValue: true, characterData: true,
  });
  if (!window.__polls) {
    window.__polls = [];
    // beforeSwap: the answer to #bd-live's request, 204 included, while the element is still in the page.
    document.addEventListener("htmx:beforeSwap", (event) => {
      if (event.detail.elt && event.detail.elt.id === "bd-live") window.__polls.push(event.detail.xhr.status);
    });
  }
}"""
BLOCK_BOXES = """() => Array.from(document.querySelectorAll(".bd-block"), (block) => {
  const box = block.getBoundingClientRect();
  return [block.dataset.appointmentId, box.x, box.y, box.width, box.height];
})"""


def poll_now(page) -> int:
    """Ask #bd-live to poll now (as its timer does, with its version) and wait for the answer."""
    count = page.evaluate("() => window.__polls.length")
    page.evaluate("() => htmx.trigger(document.body, 'board-poll')")
    page.wait_for_function(f"() => window.__polls.length > {count}")
    return page.evaluate("() => window.__polls[window.__polls.length - 1]")


def poll_until_rendered(page) -> None:
    """Poll until one answer is the day rendered again (200). A timer's poll sent just before the
    change may answer 204 first; htmx drops a trigger while the element's request is out."""
    count = page.evaluate("() => window.__polls.length")
    for _ in range(3):
        poll_now(page)
        if 200 in page.evaluate(f"() => window.__polls.slice({count})"):
            return
    raise AssertionError(f"no poll rendered the day: {page.evaluate('() => window.__polls')}")


def assert_untouched(page, boxes) -> None:
    assert page.evaluate("() => document.getElementById('bd-live') === window.__live")
    assert page.evaluate("() => window.__mutations") == []
    assert page.evaluate(BLOCK_BOXES) == boxes


def test_a_quiet_poll_leaves_the_page_alone_and_another_dispatchers_move_shows_at_the_next(live_server, browser, page):
    day = busy_day()
    log_in(live_server, page)
    board_url = f"{live_server.url}/board/?day={tomorrow().isoformat()}"
    page.goto(board_url)
    page.wait_for_selector(".bd-lane")
    version = page.locator("#bd-live").get_attribute("data-version")
    page.evaluate(WATCH)
    boxes = page.evaluate(BLOCK_BOXES)
    assert len(boxes) == 7

    # Nothing changed: the poll is answered 204, nothing is swapped, no block moves.
    assert poll_now(page) == 204
    assert_untouched(page, boxes)

    # A second dispatcher, in another browser, drags Dana's 10:00 job to Luis at 11:00.
    other_context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = other_context.new_page()
        log_in(live_server, other, username="morgan")
        other.goto(board_url)
        other.wait_for_selector(".bd-lane")
        mine = day["jobs"]["dana_2"]
        box = other.locator(f'.bd-block[data-ticket-id="{mine.id}"]').bounding_box()
        luis_track = other.locator(f'.bd-track[data-technician-id="{day["techs"]["luis"].id}"]').bounding_box()
        drag(
            other,
            (box["x"] + 6, box["y"] + box["height"] / 2),
            (x_at(other, luis_track, at(11)) + 6, luis_track["y"] + luis_track["height"] / 2),
        )
        other.wait_for_selector("#bd-notice.bd-notice--ok")
    finally:
        other_context.close()
    assert Appointment.objects.get(ticket=mine, status="CONFIRMED").technician == day["techs"]["luis"]

    # This board sees it at its next poll: a new version, the lanes rendered again.
    luis_block = f'.bd-track[data-technician-id="{day["techs"]["luis"].id}"] .bd-block[data-ticket-id="{mine.id}"]'
    poll_until_rendered(page)
    page.wait_for_selector(luis_block)
    assert page.locator("#bd-live").get_attribute("data-version") != version
    shot(page, "board-after-another-dispatchers-move")

    # A change made elsewhere than on a board (time off entered in the back office) shows the same way.
    TimeOffFactory(technician=day["techs"]["marcus"], start=at(15), end=at(16), reason="Forklift training")
    poll_until_rendered(page)
    page.wait_for_selector(".bd-shade--timeoff:has-text('Forklift training')")

    # Quiet again: the new version is the current one, and the next poll changes nothing.
    page.evaluate(WATCH)
    boxes = page.evaluate(BLOCK_BOXES)
    assert poll_now(page) == 204
    assert_untouched(page, boxes)

    # A booking or a move made on this page (board-changed) asks without the version: the day as it is.
    count = page.evaluate("() => window.__polls.length")
    page.evaluate("() => htmx.trigger(document.body, 'board-changed')")
    page.wait_for_function(f"() => window.__polls.slice({count}).includes(200)")


def test_the_page_moves_its_clocks_between_refreshes(live_server, page, time_machine):
    day = busy_day()
    log_in(live_server, page)
    # Both clocks under the test's hand, moved together: the browser's (Playwright) and the
    # server's (time-machine), whose time every refresh answer carries and the page follows.
    start = datetime.now(tz=LA)
    time_machine.move_to(start, tick=True)
    page.clock.install(time=start)
    page.goto(f"{live_server.url}/board/?day={tomorrow().isoformat()}")
    page.wait_for_selector(".bd-lane")
    urgent = page.locator(f'.bd-qitem[data-ticket-id="{day["queue"]["urgent"].id}"]')
    # An urgent ticket has 4 h: healthy, so no badge yet, and just opened.
    assert urgent.locator(".bd-sla").is_hidden()
    assert urgent.locator(".bd-qitem__age").inner_text() == "now"
    first_checked = page.inner_text("[data-checked]")

    # 3 h 30 min later (the polls meanwhile answer 204: nothing changed), half an hour is left.
    time_machine.shift(timedelta(hours=3, minutes=30))
    page.clock.fast_forward("03:30:00")
    page.wait_for_function(
        f"""() => {{ const el = document.querySelector('.bd-qitem[data-ticket-id="{day["queue"]["urgent"].id}"] .bd-sla');
                     return el && !el.hidden; }}"""
    )
    badge = urgent.locator(".bd-sla")
    assert "bd-sla--warning" in badge.get_attribute("class")
    assert badge.inner_text() in ("SLA 00:30 left", "SLA 00:29 left")
    assert urgent.locator(".bd-qitem__age").inner_text() == "3 h"
    # The polls find nothing new (204), and the page says it checked, at the server's time.
    page.wait_for_function(
        "(before) => document.querySelector('[data-checked]').textContent !== before", arg=first_checked
    )

    # An hour more and it is missed.
    time_machine.shift(timedelta(hours=1))
    page.clock.fast_forward("01:00:00")
    page.wait_for_function(
        f"""() => document.querySelector('.bd-qitem[data-ticket-id="{day["queue"]["urgent"].id}"] .bd-sla')
                     .classList.contains('bd-sla--breach')"""
    )
    assert urgent.locator(".bd-sla").inner_text() in ("SLA missed -00:30", "SLA missed -00:31")
