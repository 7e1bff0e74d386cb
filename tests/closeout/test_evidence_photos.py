"""Photos as a phone sends them: JPEG with EXIF orientation and GPS, HEIC from an iPhone. The original
is stored byte for byte, a small upright JPEG thumbnail beside it; what is not a photo, or is a
photo with something behind it or too many pixels, is refused with nothing stored."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from dispatch.closeout.evidence_files import evidence_thumbnail_response
from dispatch.closeout.models import Evidence
from dispatch.closeout.services import evidence_add
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent
from tests.factories import TechnicianFactory, actor_for

pytestmark = pytest.mark.django_db


def phone_jpeg(size=(640, 320), *, orientation=6, gps=True) -> bytes:
    """A photo as a phone held upright writes it: landscape pixels, EXIF orientation 6 (turn
    90° clockwise to view), the capture time and where it was taken (37.8044 N, 122.2711 W)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[36867] = "2026:03:02 09:15:00"
    if gps:
        exif.get_ifd(0x8825).update(
            {
                1: "N",
                2: (IFDRational(37), IFDRational(48), IFDRational(1584, 100)),
                3: "W",
                4: (IFDRational(122), IFDRational(16), IFDRational(16)),
            }
        )
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="JPEG", exif=exif, quality=90)
    return buffer.getvalue()


def iphone_heic(size=(64, 48)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="HEIF", quality=50)
    return buffer.getvalue()


def png(size=(32, 24), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []


def add_photo(actor, job, data: bytes, name: str = "IMG_0001.jpg", **kwargs):
    return evidence_add(actor=actor, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile(name, data), **kwargs)


def test_a_phone_photo_is_stored_as_sent_with_an_upright_thumbnail_and_its_gps(job, tech_actor, settings):
    data = phone_jpeg()
    item = add_photo(tech_actor, job, data).result

    item = Evidence.objects.get(pk=item.pk)
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    with item.file.open("rb") as original:
        assert original.read() == data
    assert (item.metadata["width"], item.metadata["height"]) == (640, 320)
    assert item.metadata["exif_taken_at"] == "2026-03-02T09:15:00"
    assert item.metadata["gps"] == {"lat": 37.8044, "lng": -122.271111}
    assert item.metadata["thumbnail"] == f"evidence/{job.id}/{item.id}.thumb.jpg"
    assert stored_files(settings) == sorted([f"evidence/{job.id}/{item.id}.jpg", item.metadata["thumbnail"]])

    with default_storage.open(item.metadata["thumbnail"], "rb") as stored:
        thumbnail = Image.open(io.BytesIO(stored.read()))
    # Orientation 6 is applied: the landscape pixels become a portrait thumbnail, 480 at most.
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (240, 480))
    # Re-encoded by us: no EXIF (so no GPS) travels with the thumbnail.
    assert not thumbnail.getexif()


def test_a_large_photo_gets_a_thumbnail_480_pixels_on_its_longer_side(job, tech_actor):
    item = add_photo(tech_actor, job, phone_jpeg((4000, 3000), orientation=1, gps=False)).result
    assert "gps" not in item.metadata
    with default_storage.open(item.metadata["thumbnail"], "rb") as stored:
        assert Image.open(io.BytesIO(stored.read())).size == (480, 360)


def test_a_heic_from_an_iphone_is_accepted_with_its_size_and_a_jpeg_thumbnail(job, tech_actor):
    data = iphone_heic((64, 48))
    item = add_photo(tech_actor, job, data, name="IMG_0002.HEIC").result
    assert (item.content_type, item.file.name) == ("image/heic", f"evidence/{job.id}/{item.id}.heic")
    assert (item.metadata["width"], item.metadata["height"]) == (64, 48)
    with item.file.open("rb") as original:
        assert original.read() == data
    with default_storage.open(item.metadata["thumbnail"], "rb") as stored:
        thumbnail = Image.open(io.BytesIO(stored.read()))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (64, 48))


def test_a_transparent_png_gets_a_thumbnail_on_white(job, tech_actor):
    item = add_photo(tech_actor, job, png((50, 40), mode="RGBA"), name="sketch.png").result
    with default_storage.open(item.metadata["thumbnail"], "rb") as stored:
        thumbnail = Image.open(io.BytesIO(stored.read()))
    assert thumbnail.convert("RGB").getpixel((25, 20)) == pytest.approx((255, 255, 255), abs=2)


def bomb(pixels_side: int) -> bytes:
    """A tiny PNG file that decodes to pixels_side² pixels."""
    buffer = io.BytesIO()
    Image.new("1", (pixels_side, pixels_side)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", b"<script>alert(1)</script>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "label, data, name",
    [
        ("over the pixel limit (Pillow warns)", bomb(8000), "bomb.png"),
        ("over twice the pixel limit (Pillow refuses)", bomb(11000), "bomb.png"),
        ("a PNG with a ZIP behind it", png() + zip_archive(), "door.png"),
        ("a text file named .jpg", b"#!/bin/sh\necho not a photo\n", "door.jpg"),
        ("a JPEG header on garbage", b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9", "door.jpg"),
        ("a HEIC header on garbage", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "IMG.HEIC"),
    ],
)
def test_what_is_not_a_sound_photo_is_refused_and_nothing_is_stored(job, tech_actor, settings, label, data, name):
    add_photo(tech_actor, job, png(), name="kept.png")
    files, rows, events = stored_files(settings), Evidence.objects.count(), AuditEvent.objects.count()
    with pytest.raises(DispatchError) as refused:
        add_photo(tech_actor, job, data, name=name)
    assert (refused.value.code, refused.value.status) == ("INVALID_EVIDENCE_FILE", 400), label
    assert stored_files(settings) == files, label
    assert (Evidence.objects.count(), AuditEvent.objects.count()) == (rows, events), label


def test_a_photo_refused_by_the_change_leaves_neither_original_nor_thumbnail(job, settings):
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    with pytest.raises(DispatchError) as refused:
        add_photo(stranger, job, phone_jpeg())
    assert refused.value.code == "FORBIDDEN_SCOPE"
    assert stored_files(settings) == []
    assert not Evidence.objects.exists()


def test_the_thumbnail_is_served_inline_as_a_jpeg_the_browser_must_not_sniff(job, tech_actor):
    item = add_photo(tech_actor, job, phone_jpeg()).result
    response = evidence_thumbnail_response(item)
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    body = b"".join(response.streaming_content)
    with default_storage.open(item.metadata["thumbnail"], "rb") as stored:
        assert body == stored.read()


def test_there_is_no_thumbnail_for_a_document_or_one_a_client_names(job, tech_actor):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    document = evidence_add(
        actor=tech_actor, ticket_id=job.id, kind="DOCUMENT", upload=SimpleUploadedFile("quote.pdf", pdf)
    ).result
    assert "thumbnail" not in document.metadata
    photo = add_photo(tech_actor, job, phone_jpeg()).result
    claimed = evidence_add(
        actor=tech_actor,
        ticket_id=job.id,
        kind="PHOTO",
        uri="s3://b/p.jpg",
        metadata={"thumbnail": photo.metadata["thumbnail"]},
    ).result
    assert "thumbnail" not in claimed.metadata
    for item in (document, claimed):
        with pytest.raises(Http404):
            evidence_thumbnail_response(item)
