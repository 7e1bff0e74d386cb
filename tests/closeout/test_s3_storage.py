"""The S3 storage path for real: moto's S3 server on a local port, Django's default storage
configured by the DISPATCH_S3_* block of config/settings/base.py (see tests/s3.py). Evidence
photos uploaded through the toolset, the closeout packet (JSON and PDF, its photos read back from
the bucket by the renderer), the approved invoice's PDF and the customer's email all go through
the bucket, and the file routes serve them back from it; nothing lands in the local MEDIA_ROOT."""

from __future__ import annotations

import hashlib
import io
import socket
import uuid

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader
from storages.backends.s3 import S3Storage

from dispatch.closeout.models import CloseoutPacket, Evidence, Invoice, LaborEntry
from dispatch.closeout.services import (
    evidence_add,
    invoice_approve,
    invoice_generate,
    qa_verify,
    tech_complete,
    ticket_close,
)
from dispatch.common.roles import Role, role_groups_sync
from dispatch.intake.status_links import status_token
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import outbox_deliver
from tests.closeout.test_evidence_photos import phone_jpeg
from tests.factories import DOOR_CHECKLIST, UserFactory, actor_for, jwt_for
from tests.s3 import moto_s3_server, s3_bucket, s3_storages  # noqa: F401  (the moto_s3 and s3 fixtures)

pytestmark = pytest.mark.django_db

BILLING_EMAIL = "ap@harbor.example"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signature_png() -> bytes:
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    for x in range(10, 290):
        image.putpixel((x, 50 + (x % 30) - 15), (16, 32, 47, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bearer(sub: str, role: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {jwt_for(sub, role)}"}


def api_upload(client, ticket, technician, data: bytes, *, name: str, kind: str, evidence_key: str) -> dict:
    file = io.BytesIO(data)
    file.name = name
    response = client.post(
        f"/api/v1/tickets/{ticket.id}/evidence",
        data={"kind": kind, "evidence_key": evidence_key, "file": file},
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **bearer(technician.user.username, "technician"),
    )
    assert response.status_code == 201, response.content
    return response.json()


def media_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def assert_plain_s3_requests(bucket) -> None:
    """Every request went to the test's bucket on the moto server, path-style, and no upload
    carried the CRC checksums botocore adds by default since 1.36 (which S3-compatible stores
    such as older MinIO or Ceph refuse): request_checksum_calculation="when_required" is in effect."""
    assert bucket.requests
    for request in bucket.requests:
        assert request.url.startswith(f"{default_storage.endpoint_url}/{bucket.name}/"), request.url
        checksums = {name for name in request.headers if name.startswith(("x-amz-checksum", "x-amz-sdk-checksum"))}
        assert not checksums, (request.method, request.url, checksums)
        assert request.headers.get("content-encoding") != "aws-chunked"
    assert any(request.method == "PUT" for request in bucket.requests)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def pdf_images(data: bytes) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(data)).pages)


def test_the_default_storage_is_s3_on_the_test_bucket_as_the_settings_configure_it(s3, settings):
    storage = storages["default"]
    # default_storage, which every FileField holds, follows STORAGES.
    assert isinstance(default_storage, S3Storage) and default_storage.bucket_name == s3.name
    for model, name in (
        (Evidence, "file"),
        (CloseoutPacket, "json_file"),
        (CloseoutPacket, "pdf_file"),
        (Invoice, "pdf"),
    ):
        field_storage = model._meta.get_field(name).storage
        assert isinstance(field_storage, S3Storage) and field_storage.bucket_name == s3.name
    # The options of config/settings/base.py, as the storage holds them.
    assert storage.file_overwrite is False and storage.default_acl is None and storage.querystring_auth
    assert storage.endpoint_url.startswith("http://127.0.0.1:") and storage.region_name == "us-east-1"
    config = storage.client_config
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == config.response_checksum_validation == "when_required"

    # No overwrite: the same name saved twice is two objects, the first one unchanged.
    first = default_storage.save("probe/same.txt", ContentFile(b"first"))
    second = default_storage.save("probe/same.txt", ContentFile(b"second"))
    assert first == "probe/same.txt" and second != first
    assert s3.keys() == sorted([first, second])
    assert s3.read(first) == b"first" and s3.read(second) == b"second"
    assert_plain_s3_requests(s3)
    assert media_files(settings) == []


def test_a_phone_photo_uploaded_through_the_toolset_is_stored_in_the_bucket_and_served_back(
    s3, settings, job, technician, admin_client
):
    data = phone_jpeg()  # landscape pixels, EXIF orientation 6, GPS
    answer = api_upload(
        Client(),
        job,
        technician,
        data,
        name="IMG_0001.jpg",
        kind="PHOTO",
        evidence_key="photo_before_door_edge_and_strike",
    )
    item = Evidence.objects.get(pk=answer["id"])
    original = f"evidence/{job.id}/{item.id}.jpg"
    thumbnail = f"evidence/{job.id}/{item.id}.thumb.jpg"
    assert item.file.name == original and item.metadata["thumbnail"] == thumbnail
    assert item.uri == f"s3://{s3.name}/{original}"
    assert s3.keys() == sorted([original, thumbnail])
    # The bucket holds the bytes as sent; the recorded hash is theirs.
    assert s3.read(original) == data
    assert item.sha256 == answer["sha256"] == sha256(data) == sha256(s3.read(original))
    # The thumbnail, re-encoded upright (orientation 6 turns 640x320 into 240x480).
    stored_thumbnail = Image.open(io.BytesIO(s3.read(thumbnail)))
    assert (stored_thumbnail.format, stored_thumbnail.size) == ("JPEG", (240, 480))

    # The back office's download (evidence_file_response) streams the original from the bucket.
    download = admin_client.get(f"/admin/closeout/evidence/{item.pk}/file/")
    assert download.status_code == 200, download.content
    assert download["Content-Disposition"] == f'attachment; filename="evidence-{item.pk}.jpg"'
    assert download["Content-Type"] == "image/jpeg"
    assert download["Content-Length"] == str(len(data))
    assert b"".join(download.streaming_content) == data
    # The technician's page shows the thumbnail (evidence_thumbnail_response) from the bucket.
    phone = Client()
    phone.force_login(technician.user)
    shown = phone.get(f"/tech/jobs/{job.id}/evidence/{item.id}/thumbnail/")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/jpeg"
    assert b"".join(shown.streaming_content) == s3.read(thumbnail)

    assert_plain_s3_requests(s3)
    assert media_files(settings) == []


@pytest.fixture
def delivery(settings):
    settings.DISPATCH_MESSAGE_DELIVERY = "live"  # Django's email backend: locmem in the tests
    mail.outbox = []


def test_the_closeout_documents_of_a_job_with_photos_are_in_the_bucket_and_served_from_it(
    s3, settings, job, technician, tech_actor, delivery, django_capture_on_commit_callbacks
):
    job.account.billing_email = BILLING_EMAIL
    job.account.save(update_fields=["billing_email"])
    client = Client()
    before = phone_jpeg()
    after = phone_jpeg((800, 600), orientation=3, gps=False)
    signature = signature_png()
    photos = [
        api_upload(
            client,
            job,
            technician,
            before,
            name="before.jpg",
            kind="PHOTO",
            evidence_key="photo_before_door_edge_and_strike",
        ),
        api_upload(
            client, job, technician, after, name="after.jpg", kind="PHOTO", evidence_key="photo_after_latched_alignment"
        ),
    ]
    api_upload(
        client,
        job,
        technician,
        signature,
        name="signature.png",
        kind="SIGNATURE",
        evidence_key="signature_or_no_signature_reason",
    )
    evidence_add(
        actor=tech_actor,
        ticket_id=job.id,
        kind="NOTE",
        evidence_key="note_adjustments_and_test_cycles",
        text="Re-shimmed the strike plate; 20 cycles, latches every time.",
    )
    tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST, no_signature_reason=None)
    qa_verify(actor=actor_for(Role.QA), ticket_id=job.id, timestamp="2026-02-25T17:10:00Z", result="PASS")
    LaborEntry.objects.create(ticket=job, technician=technician, minutes=60)
    finance = actor_for(Role.FINANCE)
    draft = invoice_generate(actor=finance, ticket_id=job.id).result.invoice
    # The approval's email is left queued (its hand-off is not run): delivered by hand below.
    invoice = invoice_approve(
        actor=finance, ticket_id=job.id, invoice_id=draft.id, nte_override_reason="Customer agreed by phone"
    ).result.invoice
    with django_capture_on_commit_callbacks(execute=True):  # the worker compiles and renders the close's packet
        ticket_close(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, reason="Work complete")
    job.refresh_from_db()
    assert job.state == "CLOSED"

    # Every packet version (the approval's, the close's): JSON and PDF are objects in the bucket,
    # the JSON's bytes are what the packet's hash is over, the PDF's hash is recorded.
    versions = list(CloseoutPacket.objects.filter(ticket=job).order_by("version"))
    # The renderer read the originals of the photos and the signature from the bucket.
    signature_item = Evidence.objects.get(ticket=job, kind="SIGNATURE")
    read = {request.url.split(f"/{s3.name}/", 1)[1] for request in s3.requests if request.method == "GET"}
    assert read >= {f"evidence/{job.id}/{photo['id']}.jpg" for photo in photos} | {signature_item.file.name}
    assert [(row.version, row.pdf_status) for row in versions] == [(1, "READY"), (2, "READY")]
    keys = s3.keys()
    for row in versions:
        assert row.json_file.name in keys and row.pdf_file.name in keys
        assert sha256(s3.read(row.json_file.name)) == row.sha256
        pdf = s3.read(row.pdf_file.name)
        assert sha256(pdf) == row.pdf_sha256
        text = pdf_text(pdf)
        assert job.short_ref in text and row.sha256 in text
        assert "could not be shown" not in text
        # The two photos and the signature, each read from the bucket by the renderer.
        assert pdf_images(pdf) == 3
    packet = versions[-1]
    assert [photo["file"] for photo in packet.packet["photos"]] == [
        f"evidence/{job.id}/{photo['id']}.jpg" for photo in photos
    ]

    # The approved invoice's PDF, as stored at approval.
    invoice.refresh_from_db()
    assert invoice.pdf.name == f"invoices/{job.id}/{invoice.number}.pdf" and invoice.pdf.name in keys
    invoice_pdf = s3.read(invoice.pdf.name)
    assert sha256(invoice_pdf) == invoice.pdf_sha256
    assert invoice.number in pdf_text(invoice_pdf)

    # The customer's email carries both files by their names in the bucket; delivering it reads them from there.
    message = OutboundMessage.objects.get(ticket=job, channel="EMAIL")
    assert message.recipient == BILLING_EMAIL and message.status == "PENDING"
    first = versions[0]
    assert [(item["name"], item["storage_name"]) for item in message.attachments] == [
        (f"{invoice.number}.pdf", invoice.pdf.name),
        (f"closeout-{job.short_ref}-v1.pdf", first.pdf_file.name),
    ]
    assert all(item["storage_name"] in keys for item in message.attachments)
    delivered = outbox_deliver(message_id=message.id)
    assert delivered.status == "SENT", delivered.last_error
    (sent,) = mail.outbox
    assert sent.to == [BILLING_EMAIL]
    assert {name: data for name, data, _ in sent.attachments} == {
        f"{invoice.number}.pdf": invoice_pdf,
        f"closeout-{job.short_ref}-v1.pdf": s3.read(first.pdf_file.name),
    }

    # The toolset's file routes answer with the bucket's bytes.
    packet_pdf = client.get(f"/api/v1/tickets/{job.id}/closeout/packet.pdf", **bearer("desk-1", "dispatcher"))
    assert packet_pdf.status_code == 200, packet_pdf.content
    assert packet_pdf["Content-Type"] == "application/pdf"
    assert packet_pdf.content == s3.read(packet.pdf_file.name)
    first_pdf = client.get(f"/api/v1/tickets/{job.id}/closeout/packet.pdf?version=1", **bearer("desk-1", "dispatcher"))
    assert first_pdf.status_code == 200 and first_pdf.content == s3.read(first.pdf_file.name)
    packet_json = client.get(f"/api/v1/tickets/{job.id}/closeout/packet.json", **bearer("desk-1", "dispatcher"))
    assert packet_json.status_code == 200 and packet_json.content == s3.read(packet.json_file.name)
    invoice_file = client.get(f"/api/v1/tickets/{job.id}/invoice.pdf", **bearer("ledger-1", "finance"))
    assert invoice_file.status_code == 200, invoice_file.content
    assert invoice_file["Content-Type"] == "application/pdf"
    assert invoice_file.content == invoice_pdf
    # And so do the customer's downloads behind the status link.
    token = status_token(job)
    assert client.get(f"/s/{token}/packet.pdf").content == s3.read(packet.pdf_file.name)
    assert client.get(f"/s/{token}/invoice.pdf").content == invoice_pdf

    # A photo refused after it was written (the job is closed) is removed from the bucket again.
    refused = client.post(
        f"/api/v1/tickets/{job.id}/evidence",
        data={"kind": "PHOTO", "file": SimpleUploadedFile("late.jpg", phone_jpeg(orientation=1, gps=False))},
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **bearer(technician.user.username, "technician"),
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "EVIDENCE_LOCKED", refused.content
    assert s3.keys() == keys
    assert any(request.method == "DELETE" for request in s3.requests)

    assert_plain_s3_requests(s3)
    assert media_files(settings) == []

    # A stored document gone from the bucket (removed by hand) is a 404 on every download.
    for name in (invoice.pdf.name, packet.pdf_file.name):
        s3.client.delete_object(Bucket=s3.name, Key=name)
    for path in (f"/s/{token}/packet.pdf", f"/s/{token}/invoice.pdf"):
        assert client.get(path).status_code == 404, path
    for path, who in (
        (f"/api/v1/tickets/{job.id}/invoice.pdf", ("ledger-1", "finance")),
        (f"/api/v1/tickets/{job.id}/closeout/packet.pdf", ("desk-1", "dispatcher")),
    ):
        answer = client.get(path, **bearer(*who))
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "FILE_MISSING", path

    # With the bucket out of reach, every download of a stored document says so: a 503 to ask
    # again after, never a 500.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings.STORAGES = s3_storages(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{closed}")
    for path in (f"/s/{token}/packet.pdf", f"/s/{token}/invoice.pdf"):
        answer = client.get(path)
        assert (answer.status_code, answer["Retry-After"]) == (503, "60"), path
    for path, who in (
        (f"/api/v1/tickets/{job.id}/invoice.pdf", ("ledger-1", "finance")),
        (f"/api/v1/tickets/{job.id}/closeout/packet.pdf", ("desk-1", "dispatcher")),
    ):
        answer = client.get(path, **bearer(*who))
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "STORAGE_UNAVAILABLE", path


def test_qa_sees_the_photos_in_the_bucket_on_the_ticket_page_and_a_phone_report_is_stored_there_too(
    s3, settings, job, technician
):
    role_groups_sync()
    data = phone_jpeg()
    answer = api_upload(
        Client(),
        job,
        technician,
        data,
        name="IMG_0001.jpg",
        kind="PHOTO",
        evidence_key="photo_before_door_edge_and_strike",
    )
    item = Evidence.objects.get(pk=answer["id"])
    qa = Client()
    qa.force_login(UserFactory(role="qa"))
    thumbnail_url = reverse("admin:closeout_evidence_thumbnail", args=[item.pk])
    file_url = reverse("admin:closeout_evidence_file", args=[item.pk])
    page = qa.get(reverse("admin:tickets_ticket_change", args=[job.pk])).content.decode()
    assert f'src="{thumbnail_url}"' in page and f'href="{file_url}"' in page

    shown = qa.get(thumbnail_url)
    assert shown.status_code == 200 and shown["Content-Type"] == "image/jpeg"
    assert shown["X-Content-Type-Options"] == "nosniff"
    assert b"".join(shown.streaming_content) == s3.read(item.metadata["thumbnail"])
    original = qa.get(file_url)
    assert original["Content-Disposition"] == f'attachment; filename="evidence-{item.pk}.jpg"'
    assert original["X-Content-Type-Options"] == "nosniff"
    assert b"".join(original.streaming_content) == data

    # A thumbnail taken out of the bucket by hand: made again from the original in the bucket.
    s3.client.delete_object(Bucket=s3.name, Key=item.metadata["thumbnail"])
    remade = qa.get(thumbnail_url)
    assert remade.status_code == 200
    assert Image.open(io.BytesIO(remade.content)).size == (240, 480)
    # An original gone from the bucket is a 404 with a line of text, not a server error.
    s3.client.delete_object(Bucket=s3.name, Key=item.file.name)
    lost = qa.get(file_url)
    assert lost.status_code == 404 and lost["Content-Type"].startswith("text/plain")

    # The dispatcher records the photos the technician sent by text: into the bucket as well.
    dispatcher = Client()
    dispatcher.force_login(UserFactory(role="dispatcher"))
    job.refresh_from_db()
    posted = dispatcher.post(
        reverse("admin:closeout_evidence_record", args=[job.pk, "files"]),
        {
            "expected_version": job.version,
            "technician_id": technician.pk,
            "evidence_key": "photo_after_latched_alignment",
            "kind": "PHOTO",
            "file": SimpleUploadedFile("after.jpg", phone_jpeg((800, 600), orientation=1, gps=False)),
        },
    )
    assert posted.status_code == 302
    reported = Evidence.objects.get(ticket=job, evidence_key="photo_after_latched_alignment")
    assert reported.uri == f"s3://{s3.name}/{reported.file.name}"
    assert {reported.file.name, reported.metadata["thumbnail"]} <= set(s3.keys())
    assert reported.metadata["reported_by"]["name"] == technician.display_name
    again = dispatcher.get(reverse("admin:closeout_evidence_thumbnail", args=[reported.pk]))
    assert b"".join(again.streaming_content) == s3.read(reported.metadata["thumbnail"])

    assert_plain_s3_requests(s3)
    assert media_files(settings) == []


def test_after_an_s3_test_the_default_storage_is_the_local_one_again(settings):
    # Runs after the tests above: the `settings` fixture put STORAGES back and Django dropped the
    # S3 storage, so the rest of the suite writes to its tmp MEDIA_ROOT as before.
    assert not isinstance(storages["default"], S3Storage)
    assert default_storage.save("probe.txt", ContentFile(b"local")) == "probe.txt"
    assert media_files(settings) == ["probe.txt"]
