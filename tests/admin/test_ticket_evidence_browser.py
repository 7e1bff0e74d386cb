"""The ticket page's evidence in a real browser: QA sees the technician's photos, opens an original
(a download), and a dispatcher records what the technician reports by phone."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dispatch.closeout.models import Evidence, LaborEntry, PartUsage
from dispatch.closeout.services import evidence_add, labor_add
from dispatch.common.roles import Role, role_groups_sync
from dispatch.demo.services import demo_photo
from tests.factories import PriceBookItemFactory, TechnicianFactory, UserFactory, actor_for, ticket_at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set ADMIN_SCREENSHOTS=/some/dir to keep the screenshots these tests take.
SCREENSHOTS = os.environ.get("ADMIN_SCREENSHOTS", "")
PASSWORD = "correct-horse-battery"


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def sign_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def pictures_loaded(page, count: int) -> None:
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('.rd-photo img')];"
        " return imgs.length === n && imgs.every(img => img.complete && img.naturalWidth > 0); }",
        arg=count,
    )


@pytest.fixture
def job():
    role_groups_sync()
    technician = TechnicianFactory(display_name="Luis Ortega")
    job = ticket_at("IN_PROGRESS", technician=technician)
    tech = actor_for(Role.TECHNICIAN, technician=technician)
    taken = timezone.now() - timedelta(minutes=40)
    for key, title in (
        ("photo_before_door_edge_and_strike", "Before: door edge and strike"),
        ("photo_after_latched_alignment", "After: latched, aligned"),
    ):
        evidence_add(
            actor=tech,
            ticket_id=job.id,
            kind="PHOTO",
            evidence_key=key,
            upload=demo_photo(title=title, subtitle="Harbor Deli · Front door won't latch", taken=taken),
        )
    labor_add(actor=tech, ticket_id=job.id, minutes=35, description="Adjusted the strike plate")
    return job


def test_qa_sees_the_photos_and_downloads_an_original(live_server, page, job):
    UserFactory(username="quinn", first_name="Quinn", last_name="Avery", role="qa")
    sign_in(page, live_server, "quinn")
    page.goto(live_server.url + reverse("admin:tickets_ticket_change", args=[job.pk]))
    pictures_loaded(page, 2)
    done = page.locator(".rd-required__item--done").all_inner_texts()
    assert any(text.startswith("Photo before door edge and strike") for text in done)
    assert page.locator(".rd-record").count() == 0  # QA reads; it does not record
    shot(page, "admin-ticket-photos-qa")

    item = Evidence.objects.filter(ticket=job).order_by("created_at", "id").first()
    with page.expect_download() as download:
        page.locator(".rd-photo__download").first.click()
    assert download.value.suggested_filename == f"evidence-{item.pk}.jpg"


def test_a_dispatcher_records_a_phone_report_on_the_ticket_page(live_server, page, job, tmp_path):
    UserFactory(username="riley", first_name="Riley", last_name="Park", role="dispatcher")
    PriceBookItemFactory(sku="CLOSER-4040", name="LCN 4040 closer", unit_cents=28900)
    sign_in(page, live_server, "riley")
    page.goto(live_server.url + reverse("admin:tickets_ticket_change", args=[job.pk]))
    pictures_loaded(page, 2)
    shot(page, "admin-ticket-evidence-dispatcher")

    # Time: the form opens under its button, the job's technician chosen already.
    page.click("#record-labor summary")
    assert page.locator("#record-labor select[name=technician_id] option:checked").inner_text() == "Luis Ortega"
    page.fill("#record-labor input[name=hours]", "1")
    page.fill("#record-labor input[name=minutes]", "15")
    page.fill("#record-labor input[name=description]", "Replaced the closer arm")
    shot(page, "admin-ticket-record-labor-open")
    page.click("#record-labor button[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "1 h 15 min logged for Luis Ortega." in page.locator("ul.messagelist").inner_text()
    assert "Replaced the closer arm" in page.locator(".rd-worklog").inner_text()
    assert LaborEntry.objects.filter(ticket=job, minutes=75).exists()

    # A part with a negative quantity: the technician page's own refusal, in the form, kept open.
    page.click("#record-part summary")
    page.fill("#record-part input[name=description]", "Shims")
    page.fill("#record-part input[name=quantity]", "-2")
    page.fill("#record-part input[name=price]", "2.50")
    page.click("#record-part button[type=submit]")
    page.wait_for_selector("#record-part[open] .rd-record__error")
    assert "Field 'quantity' must be more than 0 and at most 10000." in page.locator(".rd-record__error").inner_text()
    assert page.locator("#record-part input[name=description]").input_value() == "Shims"
    assert not PartUsage.objects.filter(ticket=job).exists()
    shot(page, "admin-ticket-record-part-refused")
    page.fill("#record-part input[name=quantity]", "2")
    page.click("#record-part button[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "Shims × 2 added for Luis Ortega." in page.locator("ul.messagelist").inner_text()

    # The photo the technician texted in.
    photo = tmp_path / "from-luis.jpg"
    photo.write_bytes(demo_photo(title="Closer arm, replaced", subtitle="sent by text", taken=timezone.now()).read())
    page.click("#record-files summary")
    page.select_option("#record-files select[name=evidence_key]", "other")
    page.set_input_files("#record-files input[type=file]", str(photo))
    page.click("#record-files button[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    pictures_loaded(page, 3)
    assert "reported by Luis Ortega by phone" in page.locator(".rd-photos").inner_text()
    shot(page, "admin-ticket-after-phone-report")


def test_the_evidence_page_shows_the_picture_and_offers_the_original(live_server, page, job):
    UserFactory(username="riley", role="dispatcher")
    sign_in(page, live_server, "riley")
    item = Evidence.objects.filter(ticket=job).order_by("created_at", "id").first()
    page.goto(live_server.url + reverse("admin:closeout_evidence_change", args=[item.pk]))
    page.wait_for_function(
        "() => { const img = document.querySelector('img.rd-evidence-preview');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    shot(page, "admin-evidence-page")
    with page.expect_download() as download:
        page.click("text=Download the original")
    assert download.value.suggested_filename == f"evidence-{item.pk}.jpg"
