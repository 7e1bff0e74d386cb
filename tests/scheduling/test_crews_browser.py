"""A crew job and a multi-day job on the board in headless Chromium: in each technician's lane,
labelled, linked (selecting one part outlines the others), a dragged part refused with the reason;
and the crew member's phone lists the job as theirs."""

from __future__ import annotations

import os
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.closeout.models import IncidentTemplate
from dispatch.common.roles import role_groups_sync
from dispatch.scheduling.booking import appointment_book
from dispatch.scheduling.models import Appointment
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    UserFactory,
    actor_for,
    shifts_every_day,
    ticket_ready_to_schedule,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LA = ZoneInfo("America/Los_Angeles")
# Set BOARD_SCREENSHOTS=/some/dir to keep the screenshots this test takes.
SCREENSHOTS = os.environ.get("BOARD_SCREENSHOTS", "")
SKILLS = ["HEAVY_DOOR_INSTALL", "STOREFRONT_REPLACEMENT"]


def day_after(days: int):
    return timezone.now().astimezone(LA).date() + timedelta(days=days)


def at(hour: int, *, days: int = 1) -> datetime:
    return datetime.combine(day_after(days), time(hour), tzinfo=LA)


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def technician(name: str):
    tech = TechnicianFactory(display_name=name, skills=SKILLS, region_codes=["EAST_BAY"])
    shifts_every_day(tech, start="07:00", end="17:00")
    return tech


def crew_day() -> dict:
    IncidentTemplate.objects.update_or_create(
        incident_type="HEAVY_DOOR_INSTALL",
        defaults={"name": "Heavy door install", "crew_size": 2, "default_duration_minutes": 180},
    )
    IncidentTemplate.objects.update_or_create(
        incident_type="STOREFRONT_REPLACEMENT",
        defaults={"name": "Storefront replacement", "crew_size": 2, "days": 3, "default_duration_minutes": 300},
    )
    techs = {
        key: technician(name)
        for key, name in (("luis", "Luis Ortega"), ("ana", "Ana Ruiz"), ("kim", "Kim Lee"), ("sam", "Sam Okafor"))
    }
    dispatcher = actor_for("dispatcher")
    door = ticket_ready_to_schedule(
        incident_type="HEAVY_DOOR_INSTALL",
        site=SiteFactory(name="Harbor Lofts", city="Oakland"),
        summary="Replace 300 lb steel fire door",
        customer_name="Morgan Lee",
    )
    appointment_book(
        actor=dispatcher,
        ticket_id=door.id,
        technician_id=techs["luis"].id,
        crew=[techs["ana"].id],
        start=at(9),
        end=at(12),
    )
    storefront = ticket_ready_to_schedule(
        incident_type="STOREFRONT_REPLACEMENT",
        site=SiteFactory(name="Webster Market", city="Alameda", lat="37.771200", lng="-122.276400"),
        summary="Storefront glazing and entrance replacement",
    )
    appointment_book(
        actor=dispatcher,
        ticket_id=storefront.id,
        technician_id=techs["kim"].id,
        crew=[techs["sam"].id],
        start=at(8),
        end=at(13),
    )
    queued = ticket_ready_to_schedule(
        incident_type="STOREFRONT_REPLACEMENT",
        site=SiteFactory(name="Fruitvale Pharmacy", city="Oakland"),
        summary="Replace shattered storefront and entrance",
    )
    return {"techs": techs, "door": door, "storefront": storefront, "queued": queued}


def log_in(live_server, page) -> None:
    role_groups_sync()
    UserFactory(username="riley", role="dispatcher")
    page.goto(live_server.url + "/admin/login/?next=/board/")
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")


def test_crew_job_shows_in_each_technicians_lane_linked(live_server, page):
    day = crew_day()
    door, storefront = day["door"], day["storefront"]
    log_in(live_server, page)
    page.goto(f"{live_server.url}/board/?day={day_after(1).isoformat()}")
    page.wait_for_selector(".bd-lane")

    door_blocks = page.locator(f'.bd-block[data-ticket-id="{door.id}"]')
    assert door_blocks.count() == 2
    visits = {door_blocks.nth(i).get_attribute("data-visit") for i in range(2)}
    assert len(visits) == 1 and visits != {None}
    texts = sorted(door_blocks.nth(i).inner_text() for i in range(2))
    assert "Crew of 2 with Ana Ruiz" in texts[0] + texts[1]
    assert "Crew of 2 with Luis Ortega" in texts[0] + texts[1]
    store_blocks = page.locator(f'.bd-block[data-ticket-id="{storefront.id}"]')
    assert store_blocks.count() == 2
    assert "Day 1 of 3" in store_blocks.first.inner_text()

    # Selecting Luis's part outlines Ana's as the same visit.
    luis_part = Appointment.objects.get(ticket=door, technician=day["techs"]["luis"])
    ana_part = Appointment.objects.get(ticket=door, technician=day["techs"]["ana"])
    page.click(f'.bd-block[data-appointment-id="{luis_part.id}"]')
    page.wait_for_selector("#bd-panel .bd-facts")
    ana_block = page.locator(f'.bd-block[data-appointment-id="{ana_part.id}"]')
    assert "bd-block--linked" in ana_block.get_attribute("class")
    assert "bd-block--focus" in page.locator(f'.bd-block[data-appointment-id="{luis_part.id}"]').get_attribute("class")
    assert "Crew of 2 with Ana Ruiz" in page.locator("#bd-panel").inner_text()
    shot(page, "board-crew-job-selected")

    # Dragging Ana's part alone is refused, with the reason.
    box = ana_block.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 8, box["y"] + box["height"] / 2 + 2, steps=3)
    page.mouse.move(box["x"] + box["width"] / 2 + 160, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    notice = page.locator(".bd-notice")
    notice.wait_for(state="visible")
    assert "one part cannot move alone" in notice.inner_text()
    assert Appointment.objects.filter(ticket=door, status="CONFIRMED", start=at(9)).count() == 2
    shot(page, "board-crew-part-drag-refused")

    # The second day of the run, in both lanes.
    page.goto(f"{live_server.url}/board/?day={day_after(2).isoformat()}")
    page.wait_for_selector(".bd-lane")
    store_blocks = page.locator(f'.bd-block[data-ticket-id="{storefront.id}"]')
    assert store_blocks.count() == 2
    assert all("Day 2 of 3" in store_blocks.nth(i).inner_text() for i in range(2))
    shot(page, "board-multi-day-job-day-2")

    # A queued storefront job: each window the panel offers is a crew over three days.
    page.click(f'.bd-qitem[data-ticket-id="{day["queued"].id}"]')
    page.wait_for_selector("#bd-panel .bd-window")
    first = page.locator("#bd-panel .bd-window").first
    assert "3 days, to" in first.inner_text() and "with " in first.inner_text()
    shot(page, "board-panel-crew-windows")
    first.locator("button.bd-book").click()
    page.wait_for_selector("#bd-panel .bd-outcome--ok")
    assert "3 days" in page.locator("#bd-panel .bd-outcome--ok").inner_text()
    assert Appointment.objects.filter(ticket=day["queued"], status="CONFIRMED").count() == 6
    shot(page, "board-panel-crew-booked")


def test_a_crew_member_sees_the_crew_job_on_their_phone(live_server, browser):
    day = crew_day()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone = context.new_page()
    ana = day["techs"]["ana"]
    phone.goto(f"{live_server.url}/tech/")
    phone.fill("#id_username", ana.user.username)
    phone.fill("#id_password", "correct-horse-battery")
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{live_server.url}/tech/")

    card = phone.locator(".job-card", has_text="Heavy door install")
    assert "Crew of 2 with Luis Ortega" in card.inner_text()
    shot(phone, "phone-crew-member-job-list")
    card.click()
    phone.wait_for_url(f"{live_server.url}/tech/jobs/{day['door'].id}/")
    assert "Morgan" in phone.content()
    shot(phone, "phone-crew-member-job-page")
    context.close()
