"""A stored evidence file is only ever the photo or document it claims to be, and it is only ever
handed out as a download: a photo with a web page or an archive behind it is refused on the way
in, and the back office serves files as attachments the browser must not sniff or render."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dispatch.closeout.models import Evidence
from dispatch.closeout.services import evidence_add
from dispatch.common.errors import DispatchError

pytestmark = pytest.mark.django_db

HTML = b"<html><body><script>fetch('/admin/').then(r => r.text()).then(alert)</script></body></html>"


def image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", HTML)
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.mark.parametrize(
    "name, data",
    [
        ("png with html", image("PNG") + HTML),
        ("png with a zip", image("PNG") + zip_archive()),
        ("jpeg with a zip", image("JPEG") + zip_archive()),
        ("webp with html", image("WEBP") + HTML),
        ("pdf with html", PDF + HTML),
    ],
)
def test_a_photo_or_document_with_another_file_behind_it_is_refused_and_not_stored(
    job, dispatcher, settings, name, data
):
    upload = SimpleUploadedFile("door.png", data)
    with pytest.raises(DispatchError) as refused:
        evidence_add(actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=upload)
    assert (refused.value.code, refused.value.status) == ("INVALID_EVIDENCE_FILE", 400), name
    assert refused.value.details["trailing_bytes"] > 0
    assert Evidence.objects.count() == 0
    assert not (settings.MEDIA_ROOT / "evidence").exists()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_plain_photo_is_still_accepted(job, dispatcher, fmt):
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile("d", image(fmt))
    ).result
    assert item.file


def test_the_back_office_hands_out_a_stored_file_only_as_a_download(job, dispatcher, admin_client):
    data = image("PNG")
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile("door.png", data)
    ).result
    page = admin_client.get(f"/admin/closeout/evidence/{item.pk}/change/")
    assert f"/admin/closeout/evidence/{item.pk}/file/" in page.content.decode()
    response = admin_client.get(f"/admin/closeout/evidence/{item.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="evidence-{item.pk}.png"'
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == data


def test_a_stored_file_is_not_handed_to_someone_not_signed_in(job, dispatcher, client):
    item = evidence_add(
        actor=dispatcher, ticket_id=job.id, kind="PHOTO", upload=SimpleUploadedFile("d", image("PNG"))
    ).result
    response = client.get(f"/admin/closeout/evidence/{item.pk}/file/")
    assert response.status_code == 302 and "/login/" in response["Location"]
