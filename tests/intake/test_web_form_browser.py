"""The request form in headless Chromium on a phone-sized screen, end to end."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from PIL import Image

from dispatch.intake.models import InboundMessage
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _site(settings, live_server):
    settings.DISPATCH_COMPANY_NAME = "Harbor Door & Gate Co."
    settings.DISPATCH_PUBLIC_URL = live_server.url
    cache.clear()
    yield
    cache.clear()


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_customer_requests_a_visit_from_a_phone(live_server, page, tmp_path):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/request/")
    assert page.locator("h1").inner_text() == "Request a service visit"
    assert "Harbor Door & Gate Co." in page.locator(".brand-name").inner_text()
    assert _no_sideways_scroll(page)
    # Every control a thumb has to hit is at least 44 px tall.
    for selector in (
        "#id_name",
        "#id_phone",
        "#id_address",
        "#id_preferred_times",
        "button[type=submit]",
        "#id_photos",
    ):
        assert page.locator(selector).bounding_box()["height"] >= 44, selector

    photo = tmp_path / "door.jpg"
    Image.new("RGB", (120, 90), (120, 90, 60)).save(photo, format="JPEG")
    page.fill("#id_name", "Pat Rivera")
    page.fill("#id_phone", "510 555 0142")
    page.fill("#id_email", "pat.rivera@example.com")
    page.fill("#id_address", "1420 Harbor Way, Oakland, CA 94607")
    page.fill("#id_problem", "The front door won't latch, it swings open in the wind.")
    page.fill("#id_preferred_times", "tomorrow morning")
    page.set_input_files("#id_photos", str(photo))
    page.click("button[type=submit]")

    page.wait_for_url("**/request/thanks/**")
    assert "Thanks, we've got your request" in page.locator("h1").inner_text()
    ticket = Ticket.objects.get()
    assert page.get_by_test_id("reference").inner_text() == ticket.short_ref
    assert _no_sideways_scroll(page)

    assert ticket.customer_name == "Pat Rivera"
    assert ticket.customer_phone == "+15105550142"
    assert ticket.incident_type == "DOOR_WONT_LATCH"
    assert (ticket.site.address_line1, ticket.site.city, ticket.site.postal_code) == (
        "1420 Harbor Way",
        "Oakland",
        "94607",
    )
    assert {"address", "incident_type", "time_windows"} <= set(ticket.extracted_fields.values_list("name", flat=True))
    assert InboundMessage.objects.get().media[0]["content_type"] == "image/jpeg"
    assert OutboundMessage.objects.filter(ticket=ticket, channel="SMS", recipient="+15105550142").exists()

    # The status link on the confirmation opens the customer's status page.
    page.click("text=Track your request")
    page.wait_for_url("**/s/**")
    assert page.get_by_test_id("reference").inner_text() == ticket.short_ref
    assert page.get_by_test_id("headline").inner_text() in {
        "We've received your request",
        "We need a little more information",
        "Finding a time",
    }
    assert _no_sideways_scroll(page)


def test_the_form_fits_a_360_px_screen_and_shows_errors_in_place(live_server, page):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server.url + "/request/")
    assert _no_sideways_scroll(page)
    page.fill("#id_name", "Pat Rivera")
    page.fill("#id_address", "1420 Harbor Way, Oakland")
    page.fill("#id_problem", "Door won't lock")
    page.click("button[type=submit]")
    page.wait_for_selector(".field--error")
    assert "phone number or an email" in page.locator(".field--error .field__error").first.inner_text()
    assert page.input_value("#id_name") == "Pat Rivera"
    assert Ticket.objects.count() == 0
    assert _no_sideways_scroll(page)
