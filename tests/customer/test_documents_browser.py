"""The customer's side in a real browser: the status link offers the approved invoice and the
closeout packet, and the packet they downloaded checks out on the verification page (its form
posts back to itself, which a referrer policy of no-referrer once broke with "Origin: null")."""

from __future__ import annotations

import pytest

from dispatch.closeout.models import CloseoutPacket
from dispatch.closeout.services import invoice_approve, invoice_generate
from dispatch.common.roles import Role
from dispatch.intake.status_links import status_token
from tests.factories import actor_for, door_evidence_add, ticket_at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


def test_a_customer_downloads_their_documents_and_the_packet_verifies(
    live_server, phone, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.DISPATCH_PUBLIC_URL = live_server.url
    ticket = ticket_at("VERIFIED")
    door_evidence_add(ticket)
    finance = actor_for(Role.FINANCE)
    invoice_generate(actor=finance, ticket_id=ticket.id)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_approve(actor=finance, ticket_id=ticket.id).result.invoice
    packet = CloseoutPacket.objects.get(ticket=ticket)

    phone.goto(f"{live_server.url}/s/{status_token(ticket)}/")
    assert phone.get_by_test_id("invoice-link").inner_text() == f"Invoice {invoice.number}"
    link = phone.get_by_test_id("packet-link").get_attribute("href")
    downloaded = phone.request.get(live_server.url + link)
    assert downloaded.status == 200 and downloaded.headers["content-type"] == "application/pdf"
    saved = tmp_path / "packet.pdf"
    saved.write_bytes(downloaded.body())

    phone.goto(f"{live_server.url}/verify/{packet.sha256}/")
    assert ticket.short_ref in phone.get_by_test_id("reference").inner_text()
    phone.set_input_files("input[type=file]", str(saved))
    with phone.expect_navigation():
        phone.get_by_role("button", name="Check file").tap()
    assert "is this packet, unchanged" in phone.get_by_test_id("check-result").inner_text()

    changed = tmp_path / "changed.pdf"
    changed.write_bytes(saved.read_bytes() + b"\n% edited")
    phone.set_input_files("input[type=file]", str(changed))
    with phone.expect_navigation():
        phone.get_by_role("button", name="Check file").tap()
    assert "does not match this packet" in phone.get_by_test_id("check-result").inner_text()
