"""Closeout packet versions: issued at close, on invoice approval and on request; old versions stay;
the stored JSON is exactly what was hashed; the PDF carries the hash and a QR code to the public
verification page, which recognises the packet and nothing else."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pypdf import PdfReader

from dispatch.closeout.models import CloseoutPacket
from dispatch.closeout.services import (
    closeout_packet_build,
    evidence_add,
    invoice_approve,
    invoice_generate,
    invoice_revise,
    packet_pdfs_sweep,
    packet_render,
    ticket_close,
)
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.intake.status_links import status_token
from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import ticket_change, ticket_reopen
from tests.factories import FACTORY_MOVE, actor_for, door_evidence_add, ticket_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatcher():
    return actor_for(Role.DISPATCHER)


def jpeg(color=(180, 90, 40)) -> bytes:
    image = Image.new("RGB", (640, 480), color)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture
def verified(technician, tech_actor):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    door_evidence_add(ticket, actor=tech_actor)
    # A photo taken on site, stored as a file: the packet's PDF shows it.
    evidence_add(
        actor=tech_actor,
        ticket_id=ticket.id,
        kind="PHOTO",
        evidence_key="photo_after_latched_alignment",
        upload=SimpleUploadedFile("after.jpg", jpeg()),
    )
    with ticket_change(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    return ticket


def stored_bytes(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


def test_a_packet_is_issued_on_request_with_its_json_stored_as_hashed_and_a_pdf(
    verified, dispatcher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = packet_render(actor=dispatcher, ticket_id=verified.id, reason="Customer asked for the report").result
    row.refresh_from_db()
    data = stored_bytes(row.json_file)
    assert hashlib.sha256(data).hexdigest() == row.sha256
    assert json.loads(data) == row.packet
    assert row.version == 1 and row.reason == "Issued on request: Customer asked for the report"
    event = AuditEvent.objects.get(ticket=verified, tool_name="closeout.render_packet")
    assert event.payload["packet_sha256"] == row.sha256 and event.before_state == event.after_state == "VERIFIED"

    assert row.pdf_status == "READY" and row.pdf_pages >= 2
    pdf = stored_bytes(row.pdf_file)
    assert hashlib.sha256(pdf).hexdigest() == row.pdf_sha256
    reader = PdfReader(pdf_path(row))
    assert len(reader.pages) == row.pdf_pages
    for page in reader.pages:
        assert row.sha256 in page.extract_text().replace("\n", "")
    first = reader.pages[0].extract_text()
    assert verified.short_ref in first and f"/verify/{row.sha256}/" in first.replace("\n", "")
    assert any(page.images for page in reader.pages)  # the photo taken on site


def pdf_path(row):
    return io.BytesIO(stored_bytes(row.pdf_file))


def test_reopened_work_gets_a_new_version_and_the_old_ones_stay(
    verified, dispatcher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = packet_render(actor=dispatcher, ticket_id=verified.id).result
    first_json = stored_bytes(CloseoutPacket.objects.get(pk=first.pk).json_file)
    ticket_reopen(actor=dispatcher, ticket_id=verified.id, reason="Door drags again after a day")
    with ticket_change(actor=dispatcher, ticket_id=verified.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_close(actor=dispatcher, ticket_id=verified.id, reason="Fixed for good")
    rows = list(CloseoutPacket.objects.filter(ticket=verified).order_by("version"))
    assert [(row.version, row.reason) for row in rows] == [(1, "Issued on request"), (2, "Closed")]
    assert rows[1].packet["header"]["closed_at"] and rows[0].packet["header"]["closed_at"] is None
    assert rows[0].sha256 != rows[1].sha256
    assert stored_bytes(rows[0].json_file) == first_json  # an old version never changes
    reopened = [entry["text"] for entry in rows[1].packet["timeline_readable"]]
    assert any("reopened the job" in text for text in reopened)
    # The close's packet is the close's: compiling again returns it, no third version.
    assert closeout_packet_build(ticket_id=verified.id).pk == rows[1].pk
    assert CloseoutPacket.objects.filter(ticket=verified).count() == 2


def test_render_is_refused_before_the_work_is_complete_and_for_roles_without_access(dispatcher):
    open_job = ticket_at("IN_PROGRESS")
    with pytest.raises(DispatchError) as caught:
        packet_render(actor=dispatcher, ticket_id=open_job.id)
    assert caught.value.status == 409
    done = ticket_at("VERIFIED")
    with pytest.raises(DispatchError) as caught:
        packet_render(actor=actor_for(Role.TECHNICIAN), ticket_id=done.id)
    assert caught.value.status == 403
    assert not CloseoutPacket.objects.exists()


def test_a_lost_pdf_hand_off_is_rendered_by_the_sweep(verified, dispatcher):
    # No on-commit callbacks run: the worker never hears of the packet.
    row = packet_render(actor=dispatcher, ticket_id=verified.id).result
    assert CloseoutPacket.objects.get(pk=row.pk).pdf_status == "PENDING"
    assert packet_pdfs_sweep() == 1
    assert CloseoutPacket.objects.get(pk=row.pk).pdf_status == "READY"
    assert packet_pdfs_sweep() == 0


def test_the_verification_page_names_the_job_and_date_and_refuses_a_changed_packet(
    client, verified, dispatcher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = packet_render(actor=dispatcher, ticket_id=verified.id).result
    row.refresh_from_db()
    page = client.get(f"/verify/{row.sha256}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert verified.short_ref in body and "Issued by" in body
    assert verified.customer_name not in body or not verified.customer_name  # nothing more than job and date
    assert verified.site.address_line1 not in body

    changed = json.loads(stored_bytes(row.json_file))
    changed["ticket"]["nte_cents"] = 1
    forged = hashlib.sha256(json.dumps(changed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert client.get(f"/verify/{forged}/").status_code == 404
    assert client.get("/verify/not-a-hash/").status_code == 404

    pdf = stored_bytes(row.pdf_file)
    same = client.post(f"/verify/{row.sha256}/", {"file": SimpleUploadedFile("p.pdf", pdf)})
    assert "is this packet, unchanged" in same.content.decode()
    tampered = pdf.replace(verified.short_ref.encode(), b"RD-FFFFFFFF", 1) + b"\n%tampered"
    other = client.post(f"/verify/{row.sha256}/", {"file": SimpleUploadedFile("p.pdf", tampered)})
    assert "does not match this packet" in other.content.decode()
    raw = client.post(f"/verify/{row.sha256}/", {"file": SimpleUploadedFile("p.json", stored_bytes(row.json_file))})
    assert "is this packet, unchanged" in raw.content.decode()


def test_the_status_link_offers_the_approved_invoice_and_the_packet_and_nothing_before(
    client, verified, dispatcher, django_capture_on_commit_callbacks
):
    finance = actor_for(Role.FINANCE)
    token = status_token(verified)
    invoice_generate(actor=finance, ticket_id=verified.id)
    page = client.get(f"/s/{token}/").content.decode()
    assert "Your documents" not in page  # a draft is the office's
    assert client.get(f"/s/{token}/invoice.pdf").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        packet_render(actor=dispatcher, ticket_id=verified.id)  # a working copy: not the customer's yet
    assert client.get(f"/s/{token}/packet.pdf").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_approve(actor=finance, ticket_id=verified.id).result.invoice
    page = client.get(f"/s/{token}/").content.decode()
    assert f"Invoice {invoice.number}" in page and "Closeout report" in page
    pdf = client.get(f"/s/{token}/invoice.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["X-Content-Type-Options"] == "nosniff" and pdf.content == stored_bytes(invoice.pdf)
    packet = client.get(f"/s/{token}/packet.pdf")
    newest = CloseoutPacket.objects.filter(ticket=verified).order_by("-version").first()
    assert packet.status_code == 200 and packet.content == stored_bytes(newest.pdf_file)
    # Another ticket's token, or a forged one, opens nothing.
    assert client.get(f"/s/{status_token(ticket_at('VERIFIED'))}/invoice.pdf").status_code == 404
    assert client.get(f"/s/{token[:-2]}xx/packet.pdf").status_code == 404


def test_a_storage_outage_leaves_the_pdf_to_render_again_instead_of_printing_photos_as_missing(
    verified, dispatcher, monkeypatch
):
    from django.core.files.storage import default_storage

    import dispatch.closeout.services.packet_versions as packet_versions
    from dispatch.closeout.models import Invoice
    from dispatch.closeout.services import invoice_generate

    row = packet_render(actor=dispatcher, ticket_id=verified.id).result

    class Down(Exception):
        response = {"Error": {"Code": "ServiceUnavailable"}}

    class Unreachable:
        """The object store answers nothing for evidence (it is down), as boto3 would raise."""

        def open(self, name, mode="rb"):
            if name.startswith("evidence/"):
                raise Down("object store down")
            return default_storage.open(name, mode)

        def __getattr__(self, name):
            return getattr(default_storage, name)

    monkeypatch.setattr(packet_versions, "default_storage", Unreachable())
    assert packet_pdfs_sweep() == 0
    pending = CloseoutPacket.objects.get(pk=row.pk)
    assert (pending.pdf_status, pending.pdf_file.name) == ("PENDING", "")
    assert packet_pdfs_sweep() == 0  # not retried at once: its claim's lease has to run out first
    # An approval, whose email must carry the packet, is refused whole while storage is down.
    finance = actor_for(Role.FINANCE)
    invoice_generate(actor=finance, ticket_id=verified.id)
    with pytest.raises(DispatchError) as caught:
        invoice_approve(actor=finance, ticket_id=verified.id)
    assert caught.value.code == "STORAGE_UNAVAILABLE" and caught.value.status == 503
    assert Invoice.objects.get(ticket=verified).status == "DRAFT"

    monkeypatch.setattr(packet_versions, "default_storage", default_storage)
    CloseoutPacket.objects.filter(pk=row.pk).update(
        pdf_rendered_at=pending.pdf_rendered_at - packet_versions.PDF_RENDER_LEASE - timedelta(seconds=1)
    )
    assert packet_pdfs_sweep() == 1
    rendered = CloseoutPacket.objects.get(pk=row.pk)
    assert rendered.pdf_status == "READY"
    assert "could not be shown" not in "".join(p.extract_text() for p in PdfReader(pdf_path(rendered)).pages)


def test_the_customer_gets_the_packet_that_shows_their_approved_invoice_not_a_later_draft(
    client, verified, dispatcher, django_capture_on_commit_callbacks
):
    finance = actor_for(Role.FINANCE)
    token = status_token(verified)
    invoice_generate(actor=finance, ticket_id=verified.id)
    with django_capture_on_commit_callbacks(execute=True):
        approved = invoice_approve(actor=finance, ticket_id=verified.id).result.invoice
    sent = CloseoutPacket.objects.get(ticket=verified)
    invoice_revise(actor=finance, ticket_id=verified.id, reason="Trip charge missing")
    with django_capture_on_commit_callbacks(execute=True):
        packet_render(actor=dispatcher, ticket_id=verified.id, reason="Working copy")  # shows the draft v2
    assert CloseoutPacket.objects.filter(ticket=verified).count() == 2
    # The approved invoice was superseded by a draft: the customer keeps nothing newer than what
    # was approved, and a packet showing a draft is never theirs.
    assert client.get(f"/s/{token}/invoice.pdf").status_code == 404
    assert client.get(f"/s/{token}/packet.pdf").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        second = invoice_approve(actor=finance, ticket_id=verified.id).result.invoice
    newest = CloseoutPacket.objects.filter(ticket=verified).order_by("-version").first()
    assert newest.packet["invoice"]["id"] == str(second.id) and newest.pk != sent.pk
    assert client.get(f"/s/{token}/packet.pdf").content == stored_bytes(newest.pdf_file)
    assert approved.pk != second.pk


def test_verification_refuses_oversized_uploads_and_reads_none_for_an_unknown_hash(client, verified, dispatcher):
    row = packet_render(actor=dispatcher, ticket_id=verified.id).result
    unknown = client.post(f"/verify/{'0' * 64}/", {"file": SimpleUploadedFile("p.pdf", b"%PDF-1.7")})
    assert unknown.status_code == 404 and "Check a file" not in unknown.content.decode()
    big = client.post(
        f"/verify/{row.sha256}/",
        {"file": SimpleUploadedFile("p.pdf", b"x")},
        CONTENT_LENGTH=str(30 * 1024 * 1024),
    )
    assert "larger than any packet" in big.content.decode()


def test_a_packet_json_that_no_longer_hashes_the_same_is_not_served(verified, dispatcher):
    from dispatch.closeout.documents_read import packet_json

    row = packet_render(actor=dispatcher, ticket_id=verified.id).result
    assert hashlib.sha256(packet_json(row).data).hexdigest() == row.sha256
    CloseoutPacket.objects.filter(pk=row.pk).update(json_file="")
    row.refresh_from_db()
    row.packet["ticket"]["nte_cents"] = 1.0  # what a normalising store could hand back
    with pytest.raises(DispatchError) as caught:
        packet_json(row)
    assert caught.value.code == "PACKET_JSON_UNAVAILABLE"
