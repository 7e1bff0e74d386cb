"""The back office in a real browser: a dispatcher logs in, opens a ticket and moves it with a button."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import SiteFactory, UserFactory, ticket_new

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_dispatcher_moves_a_ticket_with_a_button(live_server, page):
    UserFactory(username="riley", role="dispatcher")
    ticket = ticket_new(
        site=SiteFactory(access_instructions="Side gate; dog in the yard."), summary="Deadbolt won't turn"
    )

    page.goto(live_server.url + reverse("admin:index"))
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_selector(".rd-board")
    assert page.locator(".rd-state-new .rd-tile__count").inner_text() == "1"

    page.click(".rd-state-new")
    page.click(f"text={ticket.short_ref}")
    page.wait_for_selector(".rd-ticket")
    assert "Side gate; dog in the yard." in page.locator(".rd-access").inner_text()
    # The stylesheet is served and applied: the header is the dispatch theme's slate, not Django's blue.
    assert page.eval_on_selector("#header", "el => getComputedStyle(el).backgroundColor") == "rgb(31, 47, 67)"

    page.click("summary:has-text('Ask customer for details')")
    page.fill("details[open] textarea[name=question]", "Is it the front or the back door?")
    page.click("details[open] button[type=submit]")

    page.wait_for_selector("ul.messagelist li.success")
    assert "NEW → NEEDS_INFO" in page.locator("ul.messagelist").inner_text()
    assert page.locator(".rd-ticket__chips .rd-badge").inner_text() == "Needs info"
    assert "Is it the front or the back door?" in page.locator(".rd-timeline").inner_text()
    ticket.refresh_from_db()
    assert ticket.state == "NEEDS_INFO"
    assert AuditEvent.objects.filter(ticket=ticket, tool_name="ticket.request_info").count() == 1
    assert Ticket.objects.count() == 1


def _shot(page, name: str) -> None:
    folder = os.environ.get("ADMIN_SCREENSHOTS", "")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_a_form_that_cannot_be_sent_says_why_on_the_page(live_server, page):
    """The browser does not silently refuse a form with an empty required field: the server
    answers with the form, a note at its top and the reason beside the field."""
    from tests.factories import TechnicianFactory, ticket_at, ticket_scheduled

    UserFactory(username="riley", role="dispatcher")
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    TechnicianFactory(display_name="Ana Reyes", skills=["DOOR_WONT_LATCH"])
    scheduled = ticket_scheduled(technician=luis, summary="Storefront door won't latch")
    verified = ticket_at("VERIFIED")

    page.goto(live_server.url + reverse("admin:index"))
    page.fill("#id_username", "riley")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_selector(".rd-board")

    # The confirmed window's technician is the job's, and the dispatch form starts with them.
    page.goto(live_server.url + reverse("admin:tickets_ticket_change", args=[scheduled.pk]))
    assert "Tech: Luis Ortega" in page.locator(".rd-ticket__chips").inner_text()
    page.click("summary:has-text('Dispatch technician')")
    chosen = page.locator("details[open] select[name=technician] option:checked").inner_text()
    assert chosen.startswith("Luis Ortega")
    _shot(page, "dispatch-form-preselected")

    page.goto(live_server.url + reverse("admin:tickets_ticket_change", args=[verified.pk]))
    page.click("summary:has-text('Close ticket')")
    assert "no invoice draft" in page.locator("details[open] .rd-form-warning").inner_text()
    _shot(page, "close-form-asks-why")
    page.click("details[open] button[type=submit]")

    page.wait_for_selector(".rd-transition .errornote")
    assert "Not sent" in page.locator(".errornote").inner_text()
    assert "This field is required." in page.locator(".rd-transition .errorlist").first.inner_text()
    _shot(page, "close-refused-says-why")
    verified.refresh_from_db()
    assert verified.state == "VERIFIED"
