"""Optimize day on the board, in headless Chromium: the dispatcher sees the proposal (minutes
saved in total and per technician, each change with its reason), nothing moves until they apply
it, and applying moves the blocks between lanes with every customer's window kept."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from dispatch.common.roles import role_groups_sync
from dispatch.scheduling.models import Appointment
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, UserFactory, ticket_scheduled
from tests.scheduling.board_desk import at, technician, tomorrow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("BOARD_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def crossed_day() -> dict:
    """Ana lives in Berkeley and Ben in Hayward, and each is booked on the other's side of the bay."""
    role_groups_sync()
    ana, ben = technician("Ana Whitfield"), technician("Ben Okafor")
    for tech, lat, lng in ((ana, "37.871590", "-122.272750"), (ben, "37.668820", "-122.080800")):
        tech.home_lat, tech.home_lng = lat, lng
        tech.save(update_fields=["home_lat", "home_lng"])
    jobs = {}
    for tech, (lat, lng), side, names in (
        (ana, (37.6688, -122.0808), "hayward", ("Foothill Clinic", "Mission Dental")),
        (ben, (37.8716, -122.2728), "berkeley", ("Shattuck Deli", "Telegraph Books")),
    ):
        for n, (hour, name) in enumerate(zip((9, 11), names, strict=True)):
            site = SiteFactory(name=name, lat=f"{lat + n * 0.004:.6f}", lng=f"{lng:.6f}")
            jobs[f"{side}_{hour}"] = ticket_scheduled(
                technician=tech, site=site, start=at(hour), end=at(hour + 1, 30), summary=f"Door at {name}"
            )
    return {"ana": ana, "ben": ben, "jobs": jobs}


def log_in(live_server, page) -> None:
    UserFactory(username="riley", role="dispatcher")
    page.goto(live_server.url + "/admin/login/?next=/board/")
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")


def test_a_dispatcher_previews_the_day_plan_then_applies_it(live_server, page):
    day = crossed_day()
    log_in(live_server, page)
    page.goto(f"{live_server.url}/board/?day={tomorrow().isoformat()}")
    hayward_9 = day["jobs"]["hayward_9"]
    ana_lane = page.locator(f'.bd-track[data-technician-id="{day["ana"].id}"]')
    expect(ana_lane.locator(f'.bd-block[data-ticket-id="{hayward_9.id}"]')).to_be_visible()

    page.get_by_role("button", name="Optimize day").click()

    panel = page.locator("[data-day-plan]")
    expect(panel.locator(".bd-plan__headline")).to_contain_text("min")
    expect(panel.locator(".bd-plan__headline")).to_contain_text("less driving")
    expect(panel.locator(".bd-plan__techs tbody tr")).to_have_count(2)
    expect(panel.locator(".bd-plan__moves li")).to_have_count(4)
    expect(panel.locator(".bd-plan__moves")).to_contain_text("min of driving")
    shot(page, "day-plan-preview")
    # A preview changes nothing.
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 0
    assert Appointment.objects.get(ticket=hayward_9, status="CONFIRMED").technician_id == day["ana"].id

    panel.get_by_role("button", name="Apply 4 changes").click()

    expect(panel.locator(".bd-outcome--ok")).to_contain_text("Applied")
    ben_lane = page.locator(f'.bd-track[data-technician-id="{day["ben"].id}"]')
    # The lanes reload: the Hayward job is now in Ben's lane.
    expect(ben_lane.locator(f'.bd-block[data-ticket-id="{hayward_9.id}"]')).to_be_visible()
    shot(page, "day-plan-applied")
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 4
    moved = Appointment.objects.get(ticket=hayward_9, status="CONFIRMED")
    assert moved.technician_id == day["ben"].id and at(9) <= moved.start <= at(11)


def test_a_plan_that_went_stale_is_refused_and_can_be_made_again(live_server, page):
    day = crossed_day()
    log_in(live_server, page)
    page.goto(f"{live_server.url}/board/?day={tomorrow().isoformat()}")
    page.get_by_role("button", name="Optimize day").click()
    panel = page.locator("[data-day-plan]")
    expect(panel.locator(".bd-plan__moves li")).to_have_count(4)
    # Meanwhile another dispatcher applies the same plan through the toolset.
    from dispatch.scheduling.day_planner import schedule_optimize_day
    from tests.factories import actor_for

    schedule_optimize_day(actor=actor_for("dispatcher"), day=tomorrow().isoformat(), apply=True)

    panel.get_by_role("button", name="Apply 4 changes").click()

    expect(panel.locator(".bd-outcome--refused")).to_contain_text("changed since the plan was made")
    expect(panel.locator(".bd-outcome__code")).to_have_text("PLAN_STALE")
    panel.get_by_role("button", name="Plan again").click()
    expect(panel.locator(".bd-outcome--none")).to_contain_text("already the best")
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 4
    assert day["ana"] and day["ben"]
