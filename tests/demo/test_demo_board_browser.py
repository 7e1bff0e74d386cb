"""The board as a dispatcher opens it after `make run` on a Saturday morning: the technicians who
work Saturdays carry the day's jobs, the others are off and their lanes are empty."""

from __future__ import annotations

import os
from datetime import datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set DEMO_SCREENSHOTS=/some/dir to keep the screenshot this test takes.
SCREENSHOTS = os.environ.get("DEMO_SCREENSHOTS", "")
SATURDAY_MORNING = datetime(2026, 12, 12, 10, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_the_demo_board_on_a_saturday_has_no_jobs_in_lanes_of_technicians_off_today(live_server, page):
    with time_machine.travel(SATURDAY_MORNING, tick=True):
        call_command("load_demo", stdout=StringIO())
        page.goto(live_server.url + "/admin/login/?next=/board/")
        page.fill("#id_username", "dispatcher")
        page.fill("#id_password", "dispatcher-demo")
        page.click("input[type=submit]")
        page.wait_for_selector(".bd-lane")
        lanes = page.locator(".bd-lane")
        working, off = [], []
        for index in range(lanes.count()):
            lane = lanes.nth(index)
            who = lane.locator(".bd-who__meta").first.inner_text()
            blocks = lane.locator(".bd-block").count()
            (off if who == "Off today" else working).append((lane.inner_text().splitlines()[0], blocks))
        if SCREENSHOTS:
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.screenshot(path=os.path.join(SCREENSHOTS, "demo-board-saturday.png"), full_page=True)

    assert off and all(blocks == 0 for _name, blocks in off), off
    # Dana and Luis work Saturday mornings: the day's jobs are theirs.
    assert working and all(blocks >= 1 for _name, blocks in working), working
