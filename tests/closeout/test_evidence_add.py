"""closeout.add_evidence: object-store URIs and uploaded files, sniffed, hashed, stored; never on a closed job."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dispatch.closeout.models import Evidence, EvidenceLocked
from dispatch.closeout.selectors import evidence_list
from dispatch.closeout.services import evidence_add
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import TechnicianFactory, actor_for, ticket_at

pytestmark = pytest.mark.django_db


def image_bytes(fmt: str, size=(64, 48), exif_time: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    kwargs = {}
    if exif_time:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = exif_time
        kwargs["exif"] = exif
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def refused(call, code: str, status: int) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.as_dict()
    return caught.value


def test_uri_evidence_is_recorded_with_its_key_and_one_audit_event(job, tech_actor):
    events = AuditEvent.objects.filter(ticket=job).count()
    outcome = evidence_add(
        actor=tech_actor,
        ticket_id=job.id,
        kind="photo",
        uri="s3://door-evidence/jobs/before.jpg",
        evidence_key="photo_before_door_edge_and_strike",
        checksum="sha256:abc",
        metadata={"caption": "strike plate"},
    )
    item = outcome.result
    assert (item.kind, item.evidence_key, item.uri, item.checksum) == (
        "PHOTO",
        "photo_before_door_edge_and_strike",
        "s3://door-evidence/jobs/before.jpg",
        "sha256:abc",
    )
    assert item.metadata == {"caption": "strike plate", "evidence_key": "photo_before_door_edge_and_strike"}
    assert outcome.ticket.state == "IN_PROGRESS"
    assert AuditEvent.objects.filter(ticket=job).count() == events + 1
    event = AuditEvent.objects.filter(ticket=job).order_by("-seq").first()
    assert event.tool_name == "closeout.add_evidence"
    assert event.payload["evidence_item_id"] == str(item.id)


def test_the_evidence_key_may_come_inside_metadata(job, dispatcher):
    item = evidence_add(
        actor=dispatcher,
        ticket_id=job.id,
        kind="NOTE",
        uri="minio://notes/job/adjustments.txt",
        metadata={"evidence_key": "note_adjustments_and_test_cycles"},
    ).result
    assert item.evidence_key == "note_adjustments_and_test_cycles"


def test_upstream_style_kinds_map_onto_the_known_kinds(job, dispatcher):
    first = evidence_add(actor=dispatcher, ticket_id=job.id, kind="photo_0", uri="s3://b/k/0.jpg").result
    other = evidence_add(actor=dispatcher, ticket_id=job.id, kind="thermal scan", uri="s3://b/k/1.bin").result
    assert (first.kind, first.metadata["kind_label"]) == ("PHOTO", "photo_0")
    assert (other.kind, other.metadata["kind_label"]) == ("OTHER", "thermal scan")


@pytest.mark.parametrize(
    "uri", ["https://example.com/photo.jpg", "file:///etc/passwd", "s3://", "s3://bucket/", "not a uri", ""]
)
def test_a_uri_outside_object_storage_is_refused_and_nothing_is_written(job, dispatcher, uri):
    events = AuditEvent.objects.count()
    error = refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", uri=uri),
        "INVALID_EVIDENCE_REFERENCE" if uri else "INVALID_REQUEST",
        400,
    )
    if uri:
        assert error.details["allowed_schemes"] == ["s3", "minio"]
    assert Evidence.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_the_allowed_schemes_come_from_settings(job, dispatcher, settings):
    settings.DISPATCH_EVIDENCE_URI_SCHEMES = ["gs"]
    evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", uri="gs://bucket/photo.jpg")
    refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", uri="s3://b/p.jpg"),
        "INVALID_EVIDENCE_REFERENCE",
        400,
    )


def test_a_technician_adds_evidence_only_to_their_own_job(job):
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    refused(
        lambda: evidence_add(actor=stranger, ticket_id=job.id, kind="PHOTO", uri="s3://b/p.jpg"), "FORBIDDEN_SCOPE", 403
    )


def test_roles_outside_the_contract_are_refused(job):
    refused(
        lambda: evidence_add(actor=actor_for(Role.FINANCE), ticket_id=job.id, kind="PHOTO", uri="s3://b/p.jpg"),
        "TOOL_ROLE_FORBIDDEN",
        403,
    )


def test_closed_and_cancelled_tickets_take_no_evidence(dispatcher):
    closed = ticket_at("CLOSED")
    cancelled = ticket_at("CANCELLED")
    refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=closed.id, kind="PHOTO", uri="s3://b/p.jpg"),
        "EVIDENCE_LOCKED",
        409,
    )
    refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=cancelled.id, kind="PHOTO", uri="s3://b/p.jpg"),
        "INVALID_STATE_TRANSITION",
        409,
    )
    assert Evidence.objects.count() == 0


def test_an_uploaded_png_is_sniffed_hashed_and_stored(job, tech_actor):
    data = image_bytes("PNG")
    upload = SimpleUploadedFile("door.png", data, content_type="image/png")
    item = evidence_add(
        actor=tech_actor, ticket_id=job.id, kind="PHOTO", upload=upload, evidence_key="photo_after_latched_alignment"
    ).result
    item.refresh_from_db()
    assert item.content_type == "image/png"
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert item.checksum == f"sha256:{item.sha256}"
    assert item.size == len(data)
    assert item.file.name == f"evidence/{job.id}/{item.id}.png"
    assert item.uri == f"file://media/evidence/{job.id}/{item.id}.png"
    assert (item.metadata["width"], item.metadata["height"], item.metadata["original_filename"]) == (64, 48, "door.png")
    with default_storage.open(item.file.name, "rb") as stored:
        assert stored.read() == data


def test_a_jpeg_named_png_is_stored_as_the_jpeg_it_is_with_its_exif_time(job, dispatcher):
    data = image_bytes("JPEG", exif_time="2026:03:14 09:26:53")
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile("door.png", data, "image/png")
    ).result
    assert item.content_type == "image/jpeg"
    assert item.file.name.endswith(".jpg")
    assert item.metadata["exif_taken_at"] == "2026-03-14T09:26:53"
    assert item.sha256 == hashlib.sha256(data).hexdigest()


def test_a_pdf_document_is_accepted(job, dispatcher):
    data = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="DOCUMENT", upload=SimpleUploadedFile("quote.pdf", data)
    ).result
    assert (item.content_type, item.kind) == ("application/pdf", "DOCUMENT")


def test_a_fake_png_that_is_really_text_is_refused_and_not_stored(job, dispatcher, settings):
    upload = SimpleUploadedFile("door.png", b"this is not an image at all", content_type="image/png")
    error = refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=upload),
        "INVALID_EVIDENCE_FILE",
        400,
    )
    assert error.details["declared_content_type"] == "image/png"
    assert Evidence.objects.count() == 0
    assert not (settings.MEDIA_ROOT / "evidence").exists()


def test_a_png_header_with_garbage_behind_it_is_refused(job, dispatcher):
    upload = SimpleUploadedFile("door.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=upload),
        "INVALID_EVIDENCE_FILE",
        400,
    )


def test_an_upload_over_the_size_cap_is_refused(job, dispatcher, settings):
    settings.DISPATCH_EVIDENCE_MAX_BYTES = 100
    upload = SimpleUploadedFile("door.png", image_bytes("PNG", size=(200, 200)))
    error = refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=upload),
        "INVALID_EVIDENCE_FILE",
        400,
    )
    assert error.details["max_bytes"] == 100


def test_a_checksum_that_does_not_match_the_file_is_refused(job, dispatcher):
    upload = SimpleUploadedFile("door.png", image_bytes("PNG"))
    refused(
        lambda: evidence_add(
            actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=upload, checksum="sha256:" + "0" * 64
        ),
        "EVIDENCE_CHECKSUM_MISMATCH",
        400,
    )


def test_a_matching_checksum_is_kept(job, dispatcher):
    data = image_bytes("PNG")
    digest = hashlib.sha256(data).hexdigest()
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile("a.png", data), checksum=digest
    ).result
    assert (item.checksum, item.sha256) == (digest, digest)


def test_an_upload_refused_after_storing_leaves_no_file_behind(dispatcher, settings):
    closed = ticket_at("CLOSED")
    upload = SimpleUploadedFile("door.png", image_bytes("PNG"))
    refused(
        lambda: evidence_add(actor=dispatcher, ticket_id=closed.id, kind="PHOTO", upload=upload), "EVIDENCE_LOCKED", 409
    )
    stored = list((settings.MEDIA_ROOT / "evidence").rglob("*")) if (settings.MEDIA_ROOT / "evidence").exists() else []
    assert [p for p in stored if p.is_file()] == []


def test_a_uri_and_a_file_together_are_refused(job, dispatcher):
    refused(
        lambda: evidence_add(
            actor=dispatcher,
            ticket_id=job.id,
            kind="PHOTO",
            uri="s3://b/k.jpg",
            upload=SimpleUploadedFile("a.png", image_bytes("PNG")),
        ),
        "INVALID_REQUEST",
        400,
    )


def test_evidence_list_orders_by_time_then_id_and_carries_metadata(job, dispatcher):
    first = evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", uri="s3://b/1.jpg", metadata={"n": 1}).result
    second = evidence_add(actor=dispatcher, ticket_id=job.id, kind="NOTE", uri="s3://b/2.txt", evidence_key="k2").result
    # Same timestamp on both: the id breaks the tie, deterministically.
    Evidence.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=first.created_at)
    listing = evidence_list(Ticket.objects.get(pk=job.pk))
    assert listing["ticket_id"] == str(job.id)
    assert [e["id"] for e in listing["evidence"]] == sorted([str(first.id), str(second.id)])
    by_id = {e["id"]: e for e in listing["evidence"]}
    assert by_id[str(first.id)]["metadata"] == {"n": 1}
    assert by_id[str(second.id)]["evidence_key"] == "k2"
    assert set(by_id[str(first.id)]) >= {
        "id",
        "kind",
        "evidence_key",
        "uri",
        "checksum",
        "metadata",
        "created_at",
        "created_by",
    }
    assert by_id[str(first.id)]["created_at"].endswith("Z")


def test_a_listed_item_shows_its_ticket_and_names_its_key_in_metadata(job, tech_actor):
    # A row recorded with its key only in the column (as older rows were) still shows it in metadata.
    item = Evidence.objects.create(
        ticket=job,
        kind="PHOTO",
        evidence_key="photo_before_door_edge_and_strike",
        uri="s3://b/before.jpg",
        checksum="sha256:abc",
        created_by=tech_actor.actor_id,
    )
    [shown] = evidence_list(job)["evidence"]
    assert (shown["id"], shown["ticket_id"], shown["kind"], shown["uri"], shown["checksum"]) == (
        str(item.id),
        str(job.id),
        "PHOTO",
        "s3://b/before.jpg",
        "sha256:abc",
    )
    assert shown["metadata"]["evidence_key"] == "photo_before_door_edge_and_strike"
    assert shown["created_by"] == tech_actor.actor_id and shown["created_at"].endswith("Z")
    assert shown["is_locked"] is False


def test_a_copy_read_before_the_close_cannot_overwrite_locked_evidence(job, tech_actor):
    item = evidence_add(actor=tech_actor, ticket_id=job.id, kind="PHOTO", uri="s3://b/before.jpg").result
    stale = Evidence.objects.get(pk=item.pk)
    Evidence.objects.filter(ticket=job).update(is_locked=True)

    stale.uri = "s3://elsewhere/forged.jpg"
    with pytest.raises(EvidenceLocked):
        stale.save()
    with pytest.raises(EvidenceLocked):
        stale.delete()
    assert Evidence.objects.get(pk=item.pk).uri == "s3://b/before.jpg"
