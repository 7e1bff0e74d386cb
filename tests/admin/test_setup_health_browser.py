"""Setup health in a real browser: the dashboard's panel leads to the fix, with the technician chosen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dispatch.closeout.models import IncidentTemplate
from dispatch.scheduling.models import Shift
from tests.factories import TechnicianFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_technician_without_shifts_is_one_click_from_a_shift_form(live_server, page):
    UserFactory(username="riley", role="dispatcher")
    every_type = list(IncidentTemplate.objects.values_list("incident_type", flat=True))
    luis = TechnicianFactory(display_name="Luis Ortega", skills=every_type)

    page.goto(live_server.url + reverse("admin:index"))
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    panel = page.locator(".rd-setup--problems")
    assert "Luis Ortega has no shifts." in panel.inner_text()
    # The panel is drawn by the back office's stylesheet: the warning edge, not an unstyled list.
    assert panel.evaluate("el => getComputedStyle(el).boxShadow").startswith("rgb(224, 160, 42)")

    panel.locator("text=Add a shift").click()
    page.wait_for_selector("#shift_form")
    assert page.locator("#id_technician option:checked").inner_text() == "Luis Ortega"
    page.select_option("#id_weekday", "0")
    page.fill("#id_start_time", "07:00")
    page.fill("#id_end_time", "15:00")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    assert Shift.objects.filter(technician=luis, weekday=0).exists()

    page.goto(live_server.url + reverse("admin:index"))
    assert "Setup is complete" in page.locator(".rd-setup").inner_text()
