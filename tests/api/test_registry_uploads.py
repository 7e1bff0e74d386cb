"""closeout.add_evidence takes a JSON body with a URI, or a multipart upload with the file itself."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from dispatch.tickets.models import IdempotencyRecord
from tests.factories import TechnicianFactory, jwt_for, ticket_at

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, ticket, headers: dict, *, key: str | None = None, content: bytes | None = None, **fields):
    data = {"kind": "PHOTO", **fields}
    if content is not None:
        file = io.BytesIO(content)
        file.name = "door.png"
        data["file"] = file
    return client.post(
        f"/api/v1/tickets/{ticket.id}/evidence", data=data, HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()), **headers
    )


@pytest.fixture
def technician():
    return TechnicianFactory()


@pytest.fixture
def headers(technician):
    return {"HTTP_AUTHORIZATION": f"Bearer {jwt_for(technician.user.username, 'technician')}"}


def test_a_technician_uploads_a_photo_as_multipart(client, technician, headers):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    response = upload(
        client,
        ticket,
        headers,
        content=png_bytes(),
        evidence_key="photo_before_door_edge_and_strike",
        metadata=json.dumps({"note": "before"}),
    )
    assert response.status_code == 201, response.content
    item = response.json()
    assert item["ticket_id"] == str(ticket.id)
    assert item["kind"] == "PHOTO"
    assert item["metadata"]["note"] == "before"
    listed = client.get(f"/api/v1/tickets/{ticket.id}/evidence", **headers).json()
    assert [e["id"] for e in listed["evidence"]] == [item["id"]]


def test_an_upload_replays_by_file_content(client, technician, headers):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    key = str(uuid.uuid4())
    first = upload(client, ticket, headers, key=key, content=png_bytes(), evidence_key="photo_after_latched_alignment")
    again = upload(client, ticket, headers, key=key, content=png_bytes(), evidence_key="photo_after_latched_alignment")
    assert first.status_code == again.status_code == 201
    assert again["Idempotency-Replayed"] == "true" and again.json() == first.json()
    other_file = upload(
        client, ticket, headers, key=key, content=png_bytes() + b"\x00", evidence_key="photo_after_latched_alignment"
    )
    assert other_file.status_code == 409
    assert other_file.json()["error"]["code"] == "IDEMPOTENCY_PAYLOAD_MISMATCH"


def test_a_multipart_body_needs_a_file(client, technician, headers):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    response = upload(client, ticket, headers)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "file"


def test_a_file_that_is_not_a_photo_or_document_is_refused(client, technician, headers):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    response = upload(client, ticket, headers, content=b"#!/bin/sh\necho not a photo\n")
    assert response.status_code == 400
    assert not IdempotencyRecord.objects.exists()


def test_an_upload_over_the_limit_is_refused_before_it_is_read(client, technician, headers, settings):
    settings.DISPATCH_API_MAX_UPLOAD_BYTES = 4096
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    response = upload(client, ticket, headers, content=png_bytes() + b"\x00" * 8192)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_uploads_may_be_larger_than_json_bodies(client, technician, headers, settings):
    settings.DISPATCH_API_MAX_JSON_BYTES = 1024
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    big_png = io.BytesIO()
    Image.effect_noise((128, 128), 64).convert("RGB").save(big_png, format="PNG")
    assert len(big_png.getvalue()) > 1024
    response = upload(
        client, ticket, headers, content=big_png.getvalue(), evidence_key="photo_before_door_edge_and_strike"
    )
    assert response.status_code == 201, response.content


def test_a_json_evidence_item_needs_an_allowed_uri(client, technician, headers):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    path = f"/api/v1/tickets/{ticket.id}/evidence"
    good = client.post(
        path,
        data={
            "kind": "NOTE",
            "uri": "s3://evidence/note.txt",
            "metadata": {"evidence_key": "note_adjustments_and_test_cycles"},
        },
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )
    assert good.status_code == 201
    assert good.json()["metadata"]["evidence_key"] == "note_adjustments_and_test_cycles"
    missing_uri = client.post(
        path, data={"kind": "NOTE"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert missing_uri.status_code == 400
    assert missing_uri.json()["error"]["field"] == "uri"


@pytest.mark.parametrize(
    "credentials, status, code",
    [({"HTTP_AUTHORIZATION": "Bearer a.b.c"}, 401, "INVALID_AUTH_TOKEN"), ({}, 401, "AUTH_REQUIRED")],
)
def test_an_upload_from_a_caller_without_valid_credentials_is_refused_before_its_body_is_read(
    client, technician, credentials, status, code
):
    ticket = ticket_at("IN_PROGRESS", technician=technician)
    # A body no multipart parser can read: had the server read it, the answer would be a 400 about it.
    response = client.generic(
        "POST",
        f"/api/v1/tickets/{ticket.id}/evidence",
        b"--elsewhere\r\n" + b"\x00" * 4096,
        content_type="multipart/form-data; boundary=nowhere",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **credentials,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_an_upload_from_a_role_the_tool_refuses_is_403_before_its_body_is_read(client):
    ticket = ticket_at("IN_PROGRESS")
    response = client.generic(
        "POST",
        f"/api/v1/tickets/{ticket.id}/evidence",
        b"--elsewhere\r\n" + b"\x00" * 4096,
        content_type="multipart/form-data; boundary=nowhere",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for('someone', 'customer')}",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "TOOL_ROLE_FORBIDDEN")
