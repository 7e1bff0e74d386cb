"""The board on a manager's phone (390 × 844, touch): one technician's day at a time as a list,
picked with previous/next or a menu and kept across the live refresh; the queue as a list; a
tapped job opens as a sheet with the panel's actions. The desk's board keeps its lanes."""

from __future__ import annotations

import os
from datetime import timedelta
from itertools import pairwise

import pytest

from dispatch.scheduling.booking import appointment_book
from tests.factories import SiteFactory, actor_for, ticket_scheduled
from tests.scheduling.test_board_browser import WATCH, at, busy_day, log_in, poll_until_rendered, tomorrow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set BOARD_SCREENSHOTS=/some/dir to keep the screenshots these tests take.
SCREENSHOTS = os.environ.get("BOARD_SCREENSHOTS", "")
TAP = 44  # px: the smallest target a finger hits reliably

SHOWN_LANE = ".bd-lane.bd-lane--shown"
# Visible lanes, as the browser lays them out (not as the markup says).
VISIBLE_LANES = """() => Array.from(document.querySelectorAll(".bd-lane"))
  .filter((lane) => lane.getClientRects().length > 0)
  .map((lane) => lane.querySelector(".bd-who__name").textContent)"""
OVERFLOW = "() => document.scrollingElement.scrollWidth - window.innerWidth"


def shot(page, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=full_page)


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


def open_board(live_server, page) -> None:
    log_in(live_server, page)
    page.goto(f"{live_server.url}/board/?day={tomorrow().isoformat()}")
    page.wait_for_selector(".bd-lane")


def shown_technician(page) -> str:
    return page.locator(f"{SHOWN_LANE} .bd-who__name").inner_text()


def assert_tappable(locator) -> None:
    box = locator.bounding_box()
    assert box is not None and box["height"] >= TAP and box["width"] >= TAP, box


def test_manager_on_a_phone_sees_one_technicians_lane_at_a_time(live_server, phone):
    day = busy_day()
    # A job whose title is one long word and whose customer's name carries markup.
    odd = ticket_scheduled(
        technician=day["techs"]["dana"],
        site=SiteFactory(name="<b>Pier 39</b> & Co", city="Oakland"),
        start=at(12),
        end=at(13),
        summary="Door-" + "x" * 120,
    )
    open_board(live_server, phone)

    # One technician's day, the first in the list; the others are a tap away, not squeezed beside it.
    assert phone.evaluate(VISIBLE_LANES) == ["Dana Whitfield"]
    assert phone.locator(".bd-picker__select").input_value() == str(day["techs"]["dana"].id)
    assert phone.locator(".bd-picker__count").inner_text() == "1 of 5"
    # Nothing runs off the side of the screen, and the axis of the desk's lanes is gone.
    assert phone.evaluate(OVERFLOW) <= 0
    assert phone.locator(".bd-axis").is_hidden()

    # Her jobs one under the other, in the order of the day, each with its times, customer, address and state.
    first = phone.locator(f'.bd-block[data-ticket-id="{day["jobs"]["dana_1"].id}"]')
    second = phone.locator(f'.bd-block[data-ticket-id="{day["jobs"]["dana_2"].id}"]')
    one, two = first.bounding_box(), second.bounding_box()
    assert two["y"] >= one["y"] + one["height"]
    assert one["x"] == two["x"] and one["width"] == two["width"] and one["width"] > 300
    assert one["height"] >= TAP
    text = first.inner_text()
    for expected in ("07:30", "09:00", "Front entrance door won't latch", "Harbor Lofts", "Dispatched"):
        assert expected in text
    assert day["jobs"]["dana_1"].site.address_line1 in text
    assert "Scheduled" in second.inner_text() and "Shattuck Dental" in second.inner_text()
    # The long title wraps inside its job; the customer's name reads as typed.
    third = phone.locator(f'.bd-block[data-ticket-id="{odd.id}"]')
    assert third.bounding_box()["width"] == one["width"]
    assert "<b>Pier 39</b> & Co" in third.inner_text()
    # Text a phone can read without zooming.
    assert first.locator(".bd-block__what").evaluate("el => parseFloat(getComputedStyle(el).fontSize)") >= 14

    # The picker and the day's navigation are big enough for a thumb.
    for control in (".bd-picker__select", "[data-lane-step='1']", ".bd-daynav a[rel=next]", ".bd-datepick input"):
        assert_tappable(phone.locator(control))
    shot(phone, "phone-lane")

    # Tapping a job opens it as a sheet across the screen, with what the desk's panel offers.
    first.tap()
    sheet = phone.locator("#bd-panel .bd-card")
    sheet.wait_for()
    box = sheet.bounding_box()
    assert box["width"] == 390 and box["y"] + box["height"] == pytest.approx(844, abs=1)
    assert "Front entrance door won't latch" in sheet.inner_text()
    assert (
        phone.locator("#bd-panel .bd-card__links a")
        .get_attribute("href")
        .endswith(f"/tickets/ticket/{day['jobs']['dana_1'].id}/change/")
    )
    assert_tappable(phone.locator("#bd-panel [data-panel-close]"))
    shot(phone, "phone-sheet")
    # Closed with its ×, the lane is as it was.
    phone.locator("#bd-panel [data-panel-close]").tap()
    sheet.wait_for(state="detached")
    assert phone.locator("#bd-panel").is_hidden()
    assert phone.evaluate(VISIBLE_LANES) == ["Dana Whitfield"]

    # A job still to be dispatched: the sheet says moving it is for the desk, and Escape closes it.
    second.tap()
    sheet.wait_for()
    assert "drag its block on the board at a desk" in sheet.inner_text()
    assert "Drag its block on the board to move it." not in sheet.inner_text()
    phone.keyboard.press("Escape")
    sheet.wait_for(state="detached")


def test_phone_board_steps_to_the_next_technician(live_server, phone):
    day = busy_day()
    open_board(live_server, phone)
    previous, following = phone.locator("[data-lane-step='-1']"), phone.locator("[data-lane-step='1']")
    assert previous.is_disabled()

    following.tap()
    assert phone.evaluate(VISIBLE_LANES) == ["Luis Ortega"]
    assert phone.locator(".bd-picker__count").inner_text() == "2 of 5"
    assert phone.locator(".bd-picker__select").input_value() == str(day["techs"]["luis"].id)
    assert f'data-ticket-id="{day["jobs"]["luis_1"].id}"' in phone.locator(SHOWN_LANE).inner_html()
    assert "15:00" in phone.locator(f"{SHOWN_LANE} .bd-block").inner_text()
    assert previous.is_enabled()
    shot(phone, "phone-next-lane")

    # Straight to a technician from the menu; Sam's time off sits in his day, with its hours, before his job.
    phone.locator(".bd-picker__select").select_option(label="Sam Okafor · 1 job")
    assert phone.evaluate(VISIBLE_LANES) == ["Sam Okafor"]
    time_off = phone.locator(f"{SHOWN_LANE} .bd-shade--timeoff")
    assert "08:00–10:00" in time_off.inner_text() and "Dentist" in time_off.inner_text()
    assert time_off.bounding_box()["y"] < phone.locator(f"{SHOWN_LANE} .bd-block").bounding_box()["y"]
    assert following.is_disabled()  # the last of five
    shot(phone, "phone-time-off")

    # And back with the keyboard.
    previous.focus()
    phone.keyboard.press("Enter")
    assert phone.evaluate(VISIBLE_LANES) == ["Priya Raman"]
    # Dragging is the desk's: a swipe across a job does not move it (the server was never asked).
    block = phone.locator(f"{SHOWN_LANE} .bd-block")
    start = block.get_attribute("data-start")
    box = block.bounding_box()
    phone.mouse.move(box["x"] + 20, box["y"] + 20)
    phone.mouse.down()
    phone.mouse.move(box["x"] + 200, box["y"] + 20, steps=8)
    phone.mouse.up()
    assert phone.locator(".bd-block--dragging").count() == 0
    assert phone.locator("#bd-notice").is_hidden()
    assert block.get_attribute("data-start") == start


def test_phone_board_shows_the_queue_as_a_list(live_server, phone):
    day = busy_day()
    open_board(live_server, phone)
    items = phone.locator(".bd-qitem")
    assert items.count() == 3
    boxes = [items.nth(i).bounding_box() for i in range(3)]
    # One ticket a row, the full width of the screen's column, one under the other, urgent first.
    for above, below in pairwise(boxes):
        assert below["y"] >= above["y"] + above["height"]
        assert below["x"] == above["x"] and below["width"] == above["width"]
    assert boxes[0]["width"] > 330 and all(box["height"] >= TAP for box in boxes)
    assert day["queue"]["urgent"].short_ref in items.first.inner_text()
    # The page scrolls through it; it is not a box of its own to scroll inside.
    assert phone.locator(".bd-queue__list").evaluate("el => el.scrollHeight <= el.clientHeight")
    # Below the technician's day, never beside it.
    assert boxes[0]["y"] > phone.locator(SHOWN_LANE).bounding_box()["y"]
    assert phone.evaluate(OVERFLOW) <= 0
    phone.locator(".bd-queue").scroll_into_view_if_needed()
    shot(phone, "phone-queue")

    # Tapped, a queued ticket's sheet offers its windows to book, and booking works from the phone.
    urgent = day["queue"]["urgent"]
    items.first.tap()
    phone.wait_for_selector("#bd-panel .bd-window")
    book = phone.locator("#bd-panel .bd-book").first
    assert_tappable(book)
    shot(phone, "phone-queue-sheet")
    book.tap()
    phone.wait_for_selector("#bd-panel .bd-outcome--ok")
    urgent.refresh_from_db()
    assert urgent.state == "SCHEDULED"
    phone.wait_for_function(f"() => !document.querySelector('.bd-qitem[data-ticket-id=\"{urgent.id}\"]')")
    # A tap on the shaded page around the sheet closes it.
    phone.mouse.click(195, 20)
    phone.locator("#bd-panel .bd-card").wait_for(state="detached")


def test_phone_choice_survives_the_live_refresh(live_server, phone):
    day = busy_day()
    open_board(live_server, phone)
    phone.locator(".bd-picker__select").select_option(str(day["techs"]["priya"].id))
    assert phone.evaluate(VISIBLE_LANES) == ["Priya Raman"]
    phone.evaluate(WATCH)

    # Another dispatcher books a job for Sam: the board renders the day again by itself...
    routine = day["queue"]["routine"]
    appointment_book(
        actor=actor_for("dispatcher"),
        ticket_id=routine.id,
        technician_id=day["techs"]["sam"].id,
        start=at(14),
        end=at(15),
    )
    poll_until_rendered(phone)
    phone.wait_for_selector(f'.bd-block[data-ticket-id="{routine.id}"]', state="attached")
    assert phone.evaluate("() => document.getElementById('bd-live') !== window.__live")
    # ...and the manager still looks at Priya's day, with the picker saying so.
    assert phone.evaluate(VISIBLE_LANES) == ["Priya Raman"]
    assert phone.locator(".bd-picker__select").input_value() == str(day["techs"]["priya"].id)
    assert phone.locator(".bd-picker__count").inner_text() == "4 of 5"

    # The next day keeps her too, on this tab.
    phone.locator(".bd-daynav a[rel=next]").tap()
    phone.wait_for_url(f"**day={(tomorrow() + timedelta(days=1)).isoformat()}")
    phone.wait_for_selector(".bd-lane", state="attached")
    assert phone.evaluate(VISIBLE_LANES) == ["Priya Raman"]

    # A remembered technician no longer on the board (or garbage in the tab's storage) shows the first.
    phone.evaluate("() => sessionStorage.setItem('board.phone-lane', '\"><img src=x>')")
    phone.reload()
    phone.wait_for_selector(".bd-lane", state="attached")
    assert phone.evaluate(VISIBLE_LANES) == ["Dana Whitfield"]
    assert phone.locator("img[src=x]").count() == 0


def test_desktop_board_still_shows_every_technicians_lane_side_by_side(live_server, page):
    day = busy_day()
    open_board(live_server, page)
    # Every technician's lane on one time axis, the phone's picker and extra lines nowhere.
    assert page.evaluate(VISIBLE_LANES) == [
        "Dana Whitfield",
        "Luis Ortega",
        "Marcus Reyes",
        "Priya Raman",
        "Sam Okafor",
    ]
    assert page.locator(".bd-axis").is_visible()
    assert page.locator(".bd-picker").is_hidden()
    for extra in (".bd-block__state", ".bd-block__address", ".bd-block__drive", ".bd-shade__when"):
        assert page.locator(extra).first.is_hidden()
    # A lane's jobs sit beside each other along the axis; the side panel sits beside the lanes.
    first = page.locator(f'.bd-block[data-ticket-id="{day["jobs"]["dana_1"].id}"]').bounding_box()
    second = page.locator(f'.bd-block[data-ticket-id="{day["jobs"]["dana_2"].id}"]').bounding_box()
    assert first["y"] == second["y"] and second["x"] > first["x"] + first["width"]
    lanes, panel = page.locator(".bd-lanes").bounding_box(), page.locator("#bd-panel").bounding_box()
    assert panel["x"] >= lanes["x"] + lanes["width"]
    assert page.locator(".bd-legend").is_visible()
    shot(page, "desktop-board")
