"""Every page under the strict Content-Security-Policy (CONTENT_SECURITY_POLICY in
config/settings/base.py: scripts and styles from 'self' only, nothing inline).

In headless Chromium each kind of page loads, and works, without the browser refusing anything:
the back office, the board through one of its live refreshes, the public pages and the
technician's phone. Without a browser: every page sends the policy, and no template carries the
inline style or script the policy would refuse.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from dispatch.closeout.services import invoice_generate, packet_render
from dispatch.common.roles import Role
from dispatch.intake.status_links import status_token
from dispatch.scheduling.booking import appointment_book
from tests.factories import (
    TechnicianFactory,
    actor_for,
    door_evidence_add,
    ticket_at,
    ticket_dispatched,
    ticket_new,
)
from tests.field.test_tech_browser import PHONE, sign_in
from tests.field.test_tech_pages import signed_in
from tests.scheduling.board_desk import at, desk_fixture, role_groups_fixture, tomorrow  # noqa: F401 (fixtures)
from tests.scheduling.test_board_browser import busy_day, log_in

# What Chromium says when the policy refuses something ("Refused to load the script ...",
# "Applying inline style violates the following Content Security Policy directive ...").
REFUSAL = re.compile(r"Content Security Policy|Refused to", re.IGNORECASE)
# The policy's own event, for what the console might word differently.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolation(`${event.violatedDirective} refused ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
});
"""


@pytest.fixture
def closed_job(django_capture_on_commit_callbacks):
    """A verified door job: its closeout packet issued and its invoice drafted."""
    ticket = ticket_at("VERIFIED")
    door_evidence_add(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        packet = packet_render(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id).result
        invoice = invoice_generate(actor=actor_for(Role.FINANCE), ticket_id=ticket.id).result.invoice
    packet.refresh_from_db()
    return {"ticket": ticket, "packet": packet, "invoice": invoice}


# --- in the browser ------------------------------------------------------------------------------


class Watched:
    """A page whose console, uncaught errors and policy violations are kept, page by page."""

    def __init__(self, page):
        self.page = page
        self.said: list[str] = []
        page.on("console", lambda message: self.said.append(f"console.{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.said.append(f"pageerror: {error}"))
        page.expose_function("cspViolation", lambda text: self.said.append(f"violation: {text}"))
        page.add_init_script(REPORT_VIOLATIONS)

    def open(self, url: str) -> None:
        self.said.clear()
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")

    def assert_nothing_refused(self) -> None:
        trouble = [line for line in self.said if REFUSAL.search(line) or line.startswith(("violation", "pageerror"))]
        assert not trouble, f"{self.page.url}:\n" + "\n".join(trouble)


def left_and_width(locator) -> list[tuple[float, float]]:
    return locator.evaluate_all(
        "els => els.map(el => [parseFloat(getComputedStyle(el).left), parseFloat(getComputedStyle(el).width)])"
    )


def assert_blocks_placed(page) -> None:
    """Each job block sits where its data-left/data-width put it on its lane, not stacked at 0."""
    blocks = page.locator(".bd-block")
    for block in blocks.all():
        left, width = left_and_width(block)[0]
        track = block.evaluate("el => el.parentElement.getBoundingClientRect().width")
        assert left > 0 and width > 0, block.get_attribute("data-ticket-id")
        assert left == pytest.approx(track * float(block.get_attribute("data-left")) / 100, abs=1)
        assert width == pytest.approx(track * float(block.get_attribute("data-width")) / 100, abs=1)
    # The hour ticks spread along the axis.
    ticks = [left for left, _ in left_and_width(page.locator(".bd-tick"))]
    assert len(ticks) > 2 and ticks == sorted(ticks) and len(set(ticks)) == len(ticks)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_back_office_runs_under_the_policy(live_server, page, closed_job):
    base = live_server.url
    ticket = ticket_new(summary="Deadbolt won't turn")
    ticket_new(summary="Closer leaking oil")
    watched = Watched(page)
    log_in(live_server, page)
    page.wait_for_selector("#bd")

    watched.open(f"{base}/admin/")
    assert page.locator(".rd-board").is_visible()
    # The dispatch stylesheet is applied: the header is its slate, not Django's blue.
    assert page.eval_on_selector("#header", "el => getComputedStyle(el).backgroundColor") == "rgb(31, 47, 67)"
    watched.assert_nothing_refused()

    # A changelist, filtered and searched; Django's action script runs (select all counts the row).
    watched.open(f"{base}/admin/tickets/ticket/?state__exact=NEW&q=deadbolt")
    assert page.locator("#changelist-filter").is_visible()
    assert page.locator("#result_list tbody tr").count() == 1
    assert ticket.short_ref in page.locator("#result_list").inner_text()
    page.click("#action-toggle")
    assert page.locator(".action-counter").inner_text() == "1 of 1 selected"
    watched.assert_nothing_refused()

    # The ticket page of a closed job, with its closeout documents, and its invoice's review page.
    job = closed_job["ticket"]
    watched.open(f"{base}/admin/tickets/ticket/{job.pk}/change/")
    assert page.locator(".rd-ticket").is_visible()
    assert page.locator(".rd-docs").is_visible()
    page.click(".rd-docs__issue summary")
    assert page.locator(".rd-docs__issue form").is_visible()
    watched.assert_nothing_refused()
    watched.open(f"{base}/admin/closeout/invoice/{closed_job['invoice'].pk}/change/")
    assert page.locator(".rd-invoice-page .rd-ticket").is_visible()
    watched.assert_nothing_refused()

    watched.open(f"{base}/admin/tickets/auditevent/")
    assert page.locator("#result_list tbody tr").count() >= 1
    watched.assert_nothing_refused()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_board_places_its_blocks_and_refreshes_under_the_policy(live_server, page):
    day = busy_day()
    watched = Watched(page)
    log_in(live_server, page)
    page.wait_for_selector("#bd")

    watched.open(f"{live_server.url}/board/?day={tomorrow().isoformat()}")
    watched.assert_nothing_refused()
    assert page.locator(".bd-block").count() == 7
    assert_blocks_placed(page)
    # htmx was told not to insert its own <style>; board.css carries the indicator rules instead.
    assert page.locator("head style").count() == 0
    indicator = page.evaluate(
        """() => {
            const probe = document.body.appendChild(document.createElement("i"));
            probe.className = "htmx-indicator";
            const seen = [getComputedStyle(probe).opacity, getComputedStyle(probe).visibility];
            probe.remove();
            return seen;
        }"""
    )
    assert indicator == ["0", "hidden"]

    # Another dispatcher books a job; the board's live refresh swaps the lanes and places it too.
    routine = day["queue"]["routine"]
    sam = day["techs"]["sam"]
    appointment_book(
        actor=actor_for("dispatcher"), ticket_id=routine.id, technician_id=sam.id, start=at(14), end=at(15)
    )
    watched.said.clear()
    page.evaluate("window.previousLanes = document.getElementById('bd-live')")
    page.evaluate("htmx.trigger(document.body, 'board-changed')")
    page.wait_for_function("() => document.getElementById('bd-live') !== window.previousLanes")
    page.wait_for_selector(f'.bd-track[data-technician-id="{sam.id}"] .bd-block[data-ticket-id="{routine.id}"]')
    page.wait_for_load_state("networkidle")
    watched.assert_nothing_refused()
    assert page.locator(".bd-block").count() == 8
    assert_blocks_placed(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_public_pages_run_under_the_policy(live_server, page, closed_job):
    base = live_server.url
    job, packet = closed_job["ticket"], closed_job["packet"]
    watched = Watched(page)

    watched.open(f"{base}/request/")
    assert page.locator("h1").inner_text() == "Request a service visit"
    assert page.locator("#id_photos").is_visible()
    watched.assert_nothing_refused()

    watched.open(f"{base}/s/{status_token(job)}/")
    assert page.get_by_test_id("reference").inner_text() == job.short_ref
    assert page.get_by_test_id("headline").is_visible()
    watched.assert_nothing_refused()

    watched.open(f"{base}/verify/{packet.sha256}/")
    assert job.short_ref in page.get_by_test_id("reference").inner_text()
    assert page.locator("input[type=file]").is_visible()
    watched.assert_nothing_refused()

    watched.open(f"{base}/api/v1/docs")
    assert page.locator(".docs-nav li").count() > 10
    watched.assert_nothing_refused()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_technicians_phone_pages_run_under_the_policy(live_server, browser):
    technician = TechnicianFactory(display_name="Dana Reyes")
    ticket = ticket_dispatched(technician=technician)
    base = live_server.url
    context = browser.new_context(**PHONE)
    page = context.new_page()
    watched = Watched(page)
    sign_in(page, base, technician.user.username, "correct-horse-battery")

    watched.open(f"{base}/tech/")
    assert page.locator(".job-card").first.is_visible()
    watched.assert_nothing_refused()

    watched.open(f"{base}/tech/jobs/{ticket.id}/")
    assert page.locator(".job-head").is_visible()
    assert page.get_by_role("button", name="Acknowledge job", exact=True).is_visible()
    # The service worker (/tech/sw.js) is allowed to install and take the page.
    assert page.evaluate("navigator.serviceWorker.ready.then(registration => registration.active.scriptURL)").endswith(
        "/tech/sw.js"
    )
    watched.assert_nothing_refused()
    context.close()


# --- without a browser ---------------------------------------------------------------------------


def csp_of(response) -> str:
    return response.headers.get("Content-Security-Policy", "")


@pytest.mark.django_db
def test_every_page_type_sends_the_policy(desk, closed_job):
    job, packet = closed_job["ticket"], closed_job["packet"]
    technician = TechnicianFactory(display_name="Dana Reyes")
    tech_job = ticket_dispatched(technician=technician)
    phone = signed_in(technician.user)
    public = Client()
    pages = {
        "admin sign-in": (public, "/admin/login/"),
        "dashboard": (desk, "/admin/"),
        "ticket list": (desk, "/admin/tickets/ticket/?state__exact=VERIFIED&q=door"),
        "ticket page": (desk, f"/admin/tickets/ticket/{job.pk}/change/"),
        "invoice page": (desk, f"/admin/closeout/invoice/{closed_job['invoice'].pk}/change/"),
        "audit trail": (desk, "/admin/tickets/auditevent/"),
        "board": (desk, f"/board/?day={tomorrow().isoformat()}"),
        "board refresh": (desk, f"/board/live/?day={tomorrow().isoformat()}"),
        "request form": (public, "/request/"),
        "status page": (public, f"/s/{status_token(job)}/"),
        "verification page": (public, f"/verify/{packet.sha256}/"),
        "api docs": (public, "/api/v1/docs"),
        "job list": (phone, "/tech/"),
        "job page": (phone, f"/tech/jobs/{tech_job.id}/"),
        "service worker": (phone, "/tech/sw.js"),
        "not found": (public, "/no-such-page/"),
    }
    for name, (client, url) in pages.items():
        response = client.get(url)
        expected = 404 if name == "not found" else 200
        assert response.status_code == expected, (name, response.status_code)
        policy = csp_of(response)
        assert "default-src 'self'" in policy, (name, policy)
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, (name, policy)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (name, policy)


# An element carrying a style attribute, a <style> element, an inline event handler, or a
# javascript: link: all refused by the policy.
INLINE_STYLE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.DOTALL)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.DOTALL)
JAVASCRIPT_URL = re.compile(r"""=\s*["']?\s*javascript:""", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
# A script element is allowed when it loads a file, or when it is data the browser does not run.
SCRIPT_SRC = re.compile(r"\ssrc\s*=", re.IGNORECASE)
DATA_SCRIPT = re.compile(r"""\stype\s*=\s*["']application/(ld\+)?json["']""", re.IGNORECASE)


def template_files() -> list[Path]:
    root = Path(settings.BASE_DIR)
    folders = [root / "templates", *sorted((root / "dispatch").glob("**/templates"))]
    return sorted(path for folder in folders for path in folder.rglob("*") if path.is_file())


def test_no_template_carries_inline_style_or_script():
    files = template_files()
    assert len(files) > 30  # the walk found the templates
    found = []
    for path in files:
        text = path.read_text()
        for pattern in (INLINE_STYLE, STYLE_ELEMENT, EVENT_HANDLER, JAVASCRIPT_URL):
            found += [f"{path}: {match.group(0)[:80]}" for match in pattern.finditer(text)]
        for match in SCRIPT_TAG.finditer(text):
            attributes = match.group(1)
            if not SCRIPT_SRC.search(attributes) and not DATA_SCRIPT.search(attributes):
                found.append(f"{path}: inline {match.group(0)}")
    assert not found, "\n".join(found)


def test_no_admin_builds_html_with_a_style_attribute():
    # format_html in the admins writes markup too (the intake admin once laid out its columns so).
    root = Path(settings.BASE_DIR) / "dispatch"
    found = [
        f"{path}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INLINE_STYLE.search(line)
    ]
    assert not found, found
