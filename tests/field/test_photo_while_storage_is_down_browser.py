"""The technician's phone in headless Chromium while the file store (S3) cannot be reached: the
server refuses the photo with a 503 STORAGE_UNAVAILABLE, the page keeps it queued on the phone and
says so, its own 15 s retry sends it again, and once S3 answers it is stored exactly once.

S3 is moto's server (tests/s3.py); "down" is the same storage pointed at a closed port, as in
tests/closeout/test_storage_unavailable.py. field.js has no hook to shorten its retry interval
(RETRY_MS), so the page's clock is Playwright's: paused, and run 15 s forward to fire the retry.
"""

from __future__ import annotations

import os
import re

import pytest

from dispatch.closeout.models import Evidence
from dispatch.tickets.models import AuditEvent, IdempotencyRecord
from tests.closeout.test_storage_unavailable import NOT_SAVED, PHOTO_KEY, s3_down  # noqa: F401  (S3 out of reach)
from tests.factories import TechnicianFactory, ticket_at
from tests.field.test_tech_browser import SCREENSHOTS, phone, photo_file, sign_in  # noqa: F401  (the phone fixture)
from tests.s3 import moto_s3_server, s3_bucket  # noqa: F401  (the moto_s3 and s3 fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RETRY_MS = 15_000  # field.js
# The Retry-After of a store out of reach (60 s), and the page's next tick after it.
MINUTE_AND_A_TICK = 60_000 + RETRY_MS
QUEUE_COUNT = """() => new Promise(resolve => {
    const open = indexedDB.open('real-dispatch-field', 1);
    open.onsuccess = () => open.result.transaction('posts').objectStore('posts').count().onsuccess =
        event => resolve(event.target.result);
})"""


def is_photo_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/photo/")


def test_a_photo_taken_while_s3_is_down_waits_on_the_phone_and_is_stored_once_when_it_is_back(
    live_server,
    phone,  # noqa: F811
    s3,
    s3_down,  # noqa: F811
    tmp_path,
):
    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    page = phone
    posts = []
    page.on("response", lambda response: posts.append(response) if is_photo_post(response) else None)
    page.clock.install()
    # The page's check for changes made elsewhere shares the retry's tick; kept out of the way.
    page.add_init_script("window.FIELD_POLL_MS = 3600000")
    sign_in(page, live_server.url, technician.user.username, "correct-horse-battery")
    page.goto(f"{live_server.url}/tech/jobs/{ticket.id}/")
    # From here the page's timers run only when the test moves its clock.
    page.clock.pause_at(page.evaluate("() => Date.now()") + 1000)
    evidence_before = AuditEvent.objects.filter(ticket=ticket, tool_name="closeout.add_evidence").count()
    answers_before = IdempotencyRecord.objects.count()

    label = page.locator(f"#photo-key option[value={PHOTO_KEY}]").inner_text().strip()
    page.select_option("#photo-key", PHOTO_KEY)
    path = photo_file(tmp_path, "strike.jpg", (200, 140, 30))
    page.set_input_files("#photos input[type=file]", path)
    with page.expect_response(is_photo_post) as refused:
        page.get_by_role("button", name="Save photos", exact=True).click()
    assert refused.value.status == 503
    assert refused.value.json() == {"ok": False, "code": "STORAGE_UNAVAILABLE", "message": NOT_SAVED, "missing": []}

    # What the technician sees: the photo is waiting, not refused, and the form is ready again.
    badge = page.locator("[data-queue-badge]")
    badge.filter(has_text="1 update waiting").wait_for()
    assert page.locator("[data-not-sent]").is_hidden()
    assert page.input_value("#photos input[type=file]") == ""
    assert page.evaluate(QUEUE_COUNT) == 1
    # Told why, once, and the upload bar (full once the bytes went up) taken back.
    waiting_notice = page.locator(".notice", has_text="not saved yet")
    waiting_notice.wait_for()
    assert waiting_notice.inner_text() == (
        "Photo strike.jpg: not saved yet, the server could not store it right now. "
        "It stays on this phone and is sent again by itself."
    )
    assert page.evaluate("document.querySelector('[data-uploads] progress').value") == 0
    assert page.locator("[data-uploads] .upload-state").inner_text() == "Not saved yet, sent again by itself"
    assert not Evidence.objects.filter(ticket=ticket).exists()
    assert s3.keys() == []
    # The phone's screen as the technician holds it (a full-page shot would draw the sticky bar,
    # and its badge, in the middle of the page).
    page.locator("#photos").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "photo-waiting.png"))
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "07-photo-waiting-for-storage.png"))

    # The store asked for a minute (Retry-After): the page's next tick, 15 s on, sends nothing...
    assert refused.value.headers["retry-after"] == "60"
    page.clock.run_for(RETRY_MS)
    page.wait_for_timeout(300)
    assert len(posts) == 1
    # ... the first tick after the minute does, while S3 is still down: refused again, waiting.
    with page.expect_response(is_photo_post) as again:
        page.clock.run_for(MINUTE_AND_A_TICK - RETRY_MS)
    assert again.value.status == 503
    assert badge.inner_text() == "1 update waiting"
    assert page.evaluate(QUEUE_COUNT) == 1

    # S3 is back: the next retry stores the photo, and the page reloads to show it saved.
    s3_down()
    with page.expect_response(is_photo_post) as delivered:
        page.clock.run_for(MINUTE_AND_A_TICK)
    assert delivered.value.status == 200
    page.locator(".notice", has_text="Photo saved.").wait_for()
    badge.wait_for(state="hidden")
    with page.expect_navigation():
        page.clock.run_for(1000)  # field.js reloads the job page 600 ms after its queue empties
    page.wait_for_load_state()
    assert badge.is_hidden()
    assert "is-done" in page.locator("#photos .checks li", has_text=label).get_attribute("class")
    thumbnail = page.locator("#photos .thumbs img")
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert page.evaluate(QUEUE_COUNT) == 0

    # Nothing more goes out on the next tick: the queue is empty.
    page.clock.run_for(RETRY_MS)
    page.wait_for_load_state("networkidle")
    assert [post.status for post in posts] == [503, 503, 200]
    keys = {post.request.headers["idempotency-key"] for post in posts}
    assert len(keys) == 1 and re.fullmatch(r"[0-9a-f-]{36}", keys.pop())

    item = Evidence.objects.get(ticket=ticket)
    assert (item.kind, item.evidence_key) == ("PHOTO", PHOTO_KEY)
    assert s3.keys() == sorted([item.file.name, item.metadata["thumbnail"]])
    with open(path, "rb") as sent:
        assert s3.read(item.file.name) == sent.read()
    assert AuditEvent.objects.filter(ticket=ticket, tool_name="closeout.add_evidence").count() == evidence_before + 1
    assert IdempotencyRecord.objects.count() == answers_before + 1
