"""The technician's phone in headless Chromium (390×844, touch): a whole job on the demo data as
tech.dana, and the same pages with the network cut, where posts wait and arrive exactly once."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from PIL import Image

from dispatch.closeout.models import ChecklistResult, Evidence, LaborEntry, PartUsage
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import TechnicianFactory, ticket_dispatched, window_soon

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set FIELD_SCREENSHOTS=/some/dir to keep the screenshots these tests take.
SCREENSHOTS = os.environ.get("FIELD_SCREENSHOTS", "")
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "geolocation": {"latitude": 37.8044, "longitude": -122.2711, "accuracy": 15},
    "permissions": ["geolocation"],
}


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def photo_file(tmp_path, name: str, color, *, heic: bool = False) -> str:
    image = Image.new("RGB", (640, 480), color)
    path = tmp_path / name
    if heic:
        from pillow_heif import from_pillow

        from_pillow(image).save(str(path), quality=60)
    else:
        image.save(path, format="JPEG", quality=85)
    return str(path)


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/tech/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/tech/")


def press(page, label: str) -> None:
    """Press a button and wait until its update has been delivered and the page reloaded."""
    with page.expect_navigation():
        page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_load_state()


def draw_signature(page) -> None:
    """A finger signs the pad: touch events, as a phone sends them."""
    box = page.locator(".sigpad__canvas").bounding_box()
    cdp = page.context.new_cdp_session(page)
    y = box["y"] + box["height"] / 2
    points = [(box["x"] + 30 + i * 12, y + (18 if i % 2 else -18)) for i in range(20)]
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]}
    )
    for x, point_y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": point_y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_dana_does_a_whole_job_on_her_phone_with_the_demo_data(live_server, phone, tmp_path):
    call_command("load_demo", verbosity=0)
    base = live_server.url
    page = phone
    sign_in(page, base, "tech.dana", "technician-demo")
    shot(page, "01-my-jobs")
    assert page.locator(".job-card").count() >= 3
    assert page.locator(".job-card", has_text="Dispatched").count() >= 1

    page.locator(".job-card", has_text="Dispatched").first.click()
    page.wait_for_selector(".job-head")
    ticket = Ticket.objects.get(pk=page.url.rstrip("/").split("/")[-1])
    first_seq = AuditEvent.objects.filter(ticket=ticket).count()
    shot(page, "02-job-dispatched")

    press(page, "Acknowledge job")
    press(page, "On my way")
    # A demo loaded early in the morning has her on site hours before the booked visit: the page
    # asks why, and she says.
    if page.locator("#check-in-reason").count():
        shot(page, "02b-early-check-in")
        page.fill("#check-in-reason", "The customer asked me to come early.")
    press(page, "Check in")
    assert Ticket.objects.get(pk=ticket.pk).state == "IN_PROGRESS"
    shot(page, "03-job-in-progress")

    # A photo for each required key, one of them an iPhone's HEIC.
    keys = [
        option
        for option in page.locator("#photo-key option").evaluate_all("options => options.map(o => o.value)")
        if option != "other"
    ]
    assert keys
    for index, key in enumerate(keys):
        page.select_option("#photo-key", key)
        heic = index == 0
        path = photo_file(tmp_path, f"{key}.{'heic' if heic else 'jpg'}", (40 * index, 90, 160), heic=heic)
        page.set_input_files("#photos input[type=file]", path)
        press(page, "Save photos")

    for key in page.locator("#note-key option").evaluate_all("options => options.map(o => o.value)"):
        if not key:
            continue
        page.select_option("#note-key", key)
        page.fill("#note-text", "Adjusted the strike 2 mm, ran 20 open/close cycles.")
        press(page, "Save note")

    for box in page.locator("#checklist input[type=checkbox]").all():
        box.check()
    press(page, "Save checklist")

    page.fill("#labor-minutes", "50")
    page.fill("#labor-what", "Diagnosis and strike adjustment")
    press(page, "Log time")

    page.fill("#part-q", "strike")
    with page.expect_navigation():
        page.get_by_role("button", name="Search", exact=True).click()
    with page.expect_navigation():
        page.locator(".part-row").first.get_by_role("button", name="Add").click()
    page.wait_for_load_state()

    page.locator("#signature").scroll_into_view_if_needed()
    draw_signature(page)
    page.fill("#signer-name", "Pat Rivera")
    shot(page, "04-signature")
    press(page, "Save signature")

    press(page, "Complete job")
    shot(page, "05-done")
    ticket.refresh_from_db()
    assert ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert page.locator("#done").is_visible()

    tools = list(
        AuditEvent.objects.filter(ticket=ticket).order_by("seq").values_list("tool_name", flat=True)[first_seq:]
    )
    photos = len(keys)
    notes = Evidence.objects.filter(ticket=ticket, kind="NOTE").count()
    assert tools == [
        "tech.acknowledge",
        "tech.depart",
        "tech.check_in",
        *["closeout.add_evidence"] * (photos + notes),
        "closeout.save_checklist",
        "closeout.add_labor",
        "closeout.add_part",
        "closeout.add_evidence",
        "tech.complete",
    ]
    assert Evidence.objects.filter(ticket=ticket, content_type="image/heic").count() == 1
    signature = Evidence.objects.get(ticket=ticket, kind="SIGNATURE")
    assert signature.metadata["signer_name"] == "Pat Rivera" and signature.size > 500
    assert LaborEntry.objects.get(ticket=ticket).minutes == 50
    assert PartUsage.objects.filter(ticket=ticket).count() == 1
    check_in = ticket.check_ins.get()
    assert check_in.location["lat"] == pytest.approx(37.8044, abs=1e-3)


def test_updates_made_with_no_network_wait_on_the_phone_and_arrive_exactly_once(live_server, phone, tmp_path):
    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician, **window_soon())
    base = live_server.url
    page = phone
    sign_in(page, base, technician.user.username, "correct-horse-battery")
    page.goto(f"{base}/tech/jobs/{ticket.id}/")
    press(page, "Check in")
    page.evaluate("() => navigator.serviceWorker.ready")
    page.reload()  # now controlled by the worker, which keeps the page for offline use
    before = AuditEvent.objects.filter(ticket=ticket).count()

    page.context.set_offline(True)
    page.fill("#note-text", "Basement: no signal. Strike shimmed.")
    page.get_by_role("button", name="Save note", exact=True).click()
    page.locator("#checklist input[type=checkbox]").first.check()
    page.get_by_role("button", name="Save checklist", exact=True).click()
    page.set_input_files("#photos input[type=file]", photo_file(tmp_path, "before.jpg", (120, 60, 20)))
    page.get_by_role("button", name="Save photos", exact=True).click()
    badge = page.locator("[data-queue-badge]")
    badge.filter(has_text="3 updates waiting").wait_for()
    shot(page, "06-offline-queued")
    assert AuditEvent.objects.filter(ticket=ticket).count() == before

    # The queue, photo included, survives a reload with no network (the page comes from the worker).
    page.reload()
    page.locator("[data-queue-badge]", has_text="3 updates waiting").wait_for()

    page.context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => document.querySelector('[data-queue-badge]').hidden", timeout=20000)
    page.wait_for_load_state()

    tools = list(AuditEvent.objects.filter(ticket=ticket).order_by("seq").values_list("tool_name", flat=True))
    assert tools[before:] == ["closeout.add_evidence", "closeout.save_checklist", "closeout.add_evidence"]
    assert Evidence.objects.filter(ticket=ticket, kind="NOTE").get().metadata["text"].startswith("Basement")
    assert Evidence.objects.filter(ticket=ticket, kind="PHOTO").count() == 1
    assert ChecklistResult.objects.filter(ticket=ticket).count() == 1


def test_a_job_page_weighs_under_150_kb_photos_aside(live_server, browser):
    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician)
    # A fresh phone: nothing cached yet by the browser or the worker.
    context = browser.new_context(**PHONE)
    page = context.new_page()
    sign_in(page, live_server.url, technician.user.username, "correct-horse-battery")
    loaded = []
    page.on("response", lambda response: loaded.append(response))
    page.goto(f"{live_server.url}/tech/jobs/{ticket.id}/")
    page.wait_for_load_state("networkidle")
    weights = {
        response.url: len(response.body()) + sum(len(k) + len(v) + 4 for k, v in response.headers.items())
        for response in loaded
        # Images aside, the page's icons too: the browser fetches an icon on its own schedule (it
        # may still be the sign-in page's, whose body is gone once the job page opens).
        if response.request.resource_type != "image"
        and "/static/img/" not in response.url
        and not response.url.endswith("/favicon.ico")
        and response.status == 200
    }
    context.close()
    assert any(url.endswith("/field.js") for url in weights) and any(url.endswith("/field.css") for url in weights)
    print(f"job page weight: {sum(weights.values())} bytes over {len(weights)} requests")
    assert sum(weights.values()) < 150_000, weights


def test_a_post_queued_when_the_session_ended_waits_for_sign_in_and_arrives_once(live_server, phone):
    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician, **window_soon())
    base = live_server.url
    page = phone
    sign_in(page, base, technician.user.username, "correct-horse-battery")
    page.goto(f"{base}/tech/jobs/{ticket.id}/")
    press(page, "Check in")
    before = AuditEvent.objects.filter(ticket=ticket).count()

    page.context.clear_cookies()  # the session is gone (expired, or signed out elsewhere)
    page.fill("#note-text", "Written after the session ended.")
    page.get_by_role("button", name="Save note", exact=True).click()
    page.locator(".notice", has_text="Sign in again to send them.").wait_for()
    assert page.locator("[data-queue-badge]").inner_text() == "1 update waiting"
    assert AuditEvent.objects.filter(ticket=ticket).count() == before

    page.locator(".notice a", has_text="Sign in again").click()
    page.fill("#id_username", technician.user.username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/tech/jobs/{ticket.id}/")
    # The badge starts hidden on a fresh page, before the phone has even counted its queue: what
    # says the note arrived is the note's event on the ticket (waited for, up to 20 s).
    for _ in range(100):
        if AuditEvent.objects.filter(ticket=ticket).count() > before:
            break
        page.wait_for_timeout(200)
    page.wait_for_function("() => document.querySelector('[data-queue-badge]').hidden", timeout=20000)
    page.wait_for_timeout(500)  # time for a second delivery, were the queue to send it twice
    tools = list(AuditEvent.objects.filter(ticket=ticket).order_by("seq").values_list("tool_name", flat=True))
    assert tools[before:] == ["closeout.add_evidence"]

    # Signing out leaves nothing of this technician's jobs on the phone.
    page.evaluate("() => navigator.serviceWorker.ready")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/tech/login/")
    cached = page.evaluate(
        """async () => {
            const urls = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) urls.push(new URL(request.url).pathname);
            }
            return urls;
        }"""
    )
    assert not [url for url in cached if url.startswith("/tech/jobs/") or url == "/tech/"], cached
    assert (
        page.evaluate(
            "() => new Promise(r => { const q = indexedDB.open('real-dispatch-field', 1); q.onsuccess = () => q.result.transaction('posts').objectStore('posts').count().onsuccess = e => r(e.target.result); })"
        )
        == 0
    )


def test_an_approval_decided_in_the_office_shows_on_the_open_job_page(live_server, phone):
    from dispatch.tickets.approvals import approval_decide
    from dispatch.tickets.models import Approval
    from tests.factories import actor_for

    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician, **window_soon())
    base = live_server.url
    page = phone
    page.add_init_script("window.FIELD_POLL_MS = 500")
    sign_in(page, base, technician.user.username, "correct-horse-battery")
    page.goto(f"{base}/tech/jobs/{ticket.id}/")
    press(page, "Check in")
    page.get_by_text("Ask for more money or a change of scope").click()
    page.fill("#change-amount", "180")
    page.fill("#change-reason", "The closer arm is cracked; a new closer is needed.")
    press(page, "Send for approval")
    page.locator("#approval", has_text="Waiting for a decision").wait_for()

    approval = Approval.objects.get(ticket=ticket)
    with page.expect_navigation(timeout=10000):
        approval_decide(
            actor=actor_for("approver"),
            ticket_id=ticket.id,
            approval_id=approval.id,
            decision="APPROVED",
            notes="Go ahead.",
        )
    page.locator("#approval", has_text="Approved").wait_for()
    assert page.locator("#approval", has_text="Go ahead.").is_visible()
    assert page.get_by_role("button", name="Complete job").is_visible()


def test_a_change_made_elsewhere_does_not_wipe_what_the_technician_is_typing(live_server, phone):
    from dispatch.closeout.services import labor_add
    from tests.factories import actor_for

    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician, **window_soon())
    page = phone
    page.add_init_script("window.FIELD_POLL_MS = 500")
    sign_in(page, live_server.url, technician.user.username, "correct-horse-battery")
    page.goto(f"{live_server.url}/tech/jobs/{ticket.id}/")
    press(page, "Check in")
    page.fill("#note-text", "Half-written note about the strike")

    labor_add(actor=actor_for("dispatcher"), ticket_id=ticket.id, minutes=15, description="Office correction")
    page.get_by_role("button", name="This job was updated. Show the latest").wait_for()
    assert page.input_value("#note-text") == "Half-written note about the strike"

    with page.expect_navigation():
        page.get_by_role("button", name="This job was updated. Show the latest").click()
    assert page.locator("#labor", has_text="Office correction").is_visible()


def test_a_photo_the_office_refuses_stays_on_the_phone_to_be_saved(live_server, phone, tmp_path):
    from dispatch.tickets.services import ticket_cancel
    from tests.factories import actor_for

    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician, **window_soon())
    page = phone
    sign_in(page, live_server.url, technician.user.username, "correct-horse-battery")
    page.goto(f"{live_server.url}/tech/jobs/{ticket.id}/")
    press(page, "Check in")

    # The office cancels the job while the technician, offline, photographs the door.
    page.context.set_offline(True)
    page.set_input_files("#photos input[type=file]", photo_file(tmp_path, "door.jpg", (10, 120, 60)))
    page.get_by_role("button", name="Save photos", exact=True).click()
    page.locator("[data-queue-badge]", has_text="1 update waiting").wait_for()
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=ticket.id, reason="Customer fixed it themselves")
    page.context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")

    not_sent = page.locator("[data-not-sent]")
    not_sent.get_by_text("Save to this phone").wait_for()
    assert "door.jpg" in not_sent.inner_text()
    with page.expect_download() as download:
        not_sent.get_by_text("Save to this phone").click()
    assert download.value.suggested_filename == "door.jpg"
    assert not Evidence.objects.filter(ticket=ticket).exists()
    not_sent.get_by_role("button", name="Discard").click()
    not_sent.wait_for(state="hidden")
