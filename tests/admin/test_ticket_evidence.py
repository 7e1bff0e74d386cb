"""Evidence on the ticket page, as QA and dispatch see it: the technician's photos as thumbnails,
their originals as downloads the browser must save and not sniff, and nothing for anyone the one
policy does not let see the ticket. The evidence page used to link the stored file's own address
(/media/...), which answered 404."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from dispatch.closeout import evidence_files
from dispatch.closeout.services import evidence_add
from dispatch.common import files as common_files
from dispatch.common.roles import Role
from tests.admin.conftest import logged_in
from tests.closeout.test_evidence_photos import phone_jpeg
from tests.factories import TechnicianFactory, UserFactory, actor_for, ticket_at

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def technician():
    return TechnicianFactory(display_name="Luis Ortega")


@pytest.fixture
def job(technician):
    return ticket_at("IN_PROGRESS", technician=technician)


@pytest.fixture
def photo(job, technician):
    """A photo the technician took with their phone (EXIF orientation 6: it shows upright 240x480)."""
    return evidence_add(
        actor=actor_for(Role.TECHNICIAN, technician=technician),
        ticket_id=job.id,
        kind="PHOTO",
        upload=SimpleUploadedFile("IMG_0001.jpg", phone_jpeg()),
        evidence_key="photo_before_door_edge_and_strike",
    ).result


def ticket_page(client, ticket) -> str:
    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert response.status_code == 200
    return response.content.decode()


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def thumbnail_url(item) -> str:
    return reverse("admin:closeout_evidence_thumbnail", args=[item.pk])


def file_url(item) -> str:
    return reverse("admin:closeout_evidence_file", args=[item.pk])


def test_the_evidence_page_no_longer_links_to_a_file_address_that_answers_404(client, photo):
    qa = logged_in(client, "qa")
    page = qa.get(reverse("admin:closeout_evidence_change", args=[photo.pk])).content.decode()
    assert not re.search(r'(?:href|src)="[^"]*/media/', page)
    links = set(re.findall(r'(?:href|src)="(/admin/closeout/evidence/[^"]+)"', page))
    assert {file_url(photo), thumbnail_url(photo)} <= links
    for link in links:
        assert qa.get(link).status_code == 200, link


def test_qa_sees_the_technicians_photos_on_the_ticket_page(client, job, photo):
    qa = logged_in(client, "qa")
    html = ticket_page(qa, job)
    section = html.split('id="evidence-h"')[1].split("</section>")[0]
    assert f'src="{thumbnail_url(photo)}"' in section
    assert f'href="{file_url(photo)}"' in section
    assert "Photo before door edge and strike" in section

    shown = qa.get(thumbnail_url(photo))
    assert shown.status_code == 200
    assert shown["Content-Type"] == "image/jpeg"
    assert shown["Content-Disposition"].startswith("inline;")
    assert shown["X-Content-Type-Options"] == "nosniff"
    # The page shows the same pictures on every visit: the browser keeps them, for this user only.
    assert shown["Cache-Control"] == "private, max-age=3600"
    picture = Image.open(io.BytesIO(body(shown)))
    # The phone's landscape pixels, turned as its EXIF says, with none of its metadata (no GPS).
    assert (picture.format, picture.size) == ("JPEG", (240, 480))
    assert not picture.getexif()


def test_original_photo_downloads_as_attachment_with_nosniff(dispatcher_client, photo):
    response = dispatcher_client.get(file_url(photo))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="evidence-{photo.pk}.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "image/jpeg"
    assert "sandbox" in response["Content-Security-Policy"]
    assert {"private", "no-store"} <= {part.strip() for part in response["Cache-Control"].split(",")}
    assert body(response) == phone_jpeg()


def test_a_signed_document_downloads_and_has_no_thumbnail(dispatcher_client, job, technician):
    document = evidence_add(
        actor=actor_for(Role.TECHNICIAN, technician=technician),
        ticket_id=job.id,
        kind="DOCUMENT",
        upload=SimpleUploadedFile("quote.pdf", PDF),
    ).result
    section = ticket_page(dispatcher_client, job).split('id="evidence-h"')[1].split("</section>")[0]
    assert f'href="{file_url(document)}"' in section and thumbnail_url(document) not in section
    download = dispatcher_client.get(file_url(document))
    assert download["Content-Disposition"] == f'attachment; filename="evidence-{document.pk}.pdf"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert dispatcher_client.get(thumbnail_url(document)).status_code == 404


def test_someone_not_signed_in_gets_no_photo(photo):
    anonymous = Client()
    for url in (file_url(photo), thumbnail_url(photo)):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
        assert b"JFIF" not in response.content


def test_a_technician_gets_no_photo_from_the_back_office_even_their_own(photo, technician):
    other = TechnicianFactory()
    for user in (technician.user, other.user):
        # Even flagged staff by mistake: the back office is not theirs, the technician pages are.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        browser = Client()
        browser.force_login(user)
        for url in (file_url(photo), thumbnail_url(photo)):
            response = browser.get(url)
            assert response.status_code == 302 and "/login/" in response["Location"]
    # Their own job's photo is on their own page; another technician's answers 404 there.
    own = Client()
    own.force_login(technician.user)
    assert own.get(reverse("field:thumbnail", args=[photo.ticket_id, photo.pk])).status_code == 200
    stranger = Client()
    stranger.force_login(other.user)
    assert stranger.get(reverse("field:thumbnail", args=[photo.ticket_id, photo.pk])).status_code == 404


@pytest.mark.parametrize(
    "object_id",
    [
        "5f0c8a1e-2b7d-4c39-9e61-0a4d2f8b7c15",
        "not-a-uuid",
        "..%2F..%2Fconfig%2Fsettings%2Fbase.py",
        "../../evidence",
        "%00",
    ],
)
def test_a_forged_or_guessed_evidence_address_answers_404_with_nothing_in_it(dispatcher_client, photo, object_id):
    for route in ("file", "thumbnail"):
        response = dispatcher_client.get(f"/admin/closeout/evidence/{object_id}/{route}/")
        assert response.status_code == 404, (route, object_id)
        assert b"JFIF" not in response.content and str(photo.pk).encode() not in response.content


def test_a_photo_whose_stored_thumbnail_was_lost_is_shown_from_its_original_decoded_once(
    dispatcher_client, photo, monkeypatch
):
    default_storage.delete(photo.metadata["thumbnail"])
    decoded = []
    real = evidence_files.raster_thumbnail
    monkeypatch.setattr(evidence_files, "raster_thumbnail", lambda data: decoded.append(1) or real(data))

    for _ in range(3):
        shown = dispatcher_client.get(thumbnail_url(photo))
        assert shown.status_code == 200 and shown["X-Content-Type-Options"] == "nosniff"
        assert Image.open(io.BytesIO(body(shown))).size == (240, 480)
    assert decoded == [1]


def test_a_picture_with_too_many_pixels_gets_no_thumbnail_rather_than_a_decoded_bomb(
    dispatcher_client, photo, monkeypatch
):
    default_storage.delete(photo.metadata["thumbnail"])
    # The same guard as on upload: more pixels than the cap is refused before decoding.
    monkeypatch.setattr(common_files, "MAX_IMAGE_PIXELS", 1000)
    assert dispatcher_client.get(thumbnail_url(photo)).status_code == 404


def test_a_picture_that_cannot_be_shrunk_is_read_once_not_on_every_view(dispatcher_client, photo, monkeypatch):
    default_storage.delete(photo.metadata["thumbnail"])
    monkeypatch.setattr(common_files, "MAX_IMAGE_PIXELS", 1000)
    tried = []
    real = evidence_files.raster_thumbnail
    monkeypatch.setattr(evidence_files, "raster_thumbnail", lambda data: tried.append(1) or real(data))

    for _ in range(3):
        assert dispatcher_client.get(thumbnail_url(photo)).status_code == 404
    assert tried == [1]


def test_showing_the_ticket_page_decodes_no_photo(dispatcher_client, job, photo, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a page view decoded a photo")

    monkeypatch.setattr(evidence_files, "raster_thumbnail", refuse)
    html = ticket_page(dispatcher_client, job)
    assert thumbnail_url(photo) in html
    # The stored thumbnail is served as it is.
    assert dispatcher_client.get(thumbnail_url(photo)).status_code == 200


def test_finance_and_audit_see_the_photos_too(client, job, photo):
    for role in ("finance", "audit", "approver"):
        browser = Client()
        browser.force_login(UserFactory(role=role))
        assert thumbnail_url(photo) in ticket_page(browser, job), role
        assert browser.get(file_url(photo)).status_code == 200, role
