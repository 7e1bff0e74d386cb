"""Every answer under /api/ is JSON; every refusal is the contract's error envelope."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dispatch.intake import services as intake_services
from dispatch.tickets import selectors as ticket_selectors
from dispatch.tickets.models import AuditEvent, IdempotencyRecord
from tests.factories import api_token_for, jwt_for, ticket_new

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {jwt_for('desk', 'dispatcher')}"}


def command(client, path: str, body, headers: dict, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(
        path, data=data, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers, **extra
    )


def assert_envelope(response, status: int, code: str, dimension: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response["X-Request-Id"]
    assert error["policy_error"]["code"] == code
    if dimension:
        assert error["policy_error"]["dimension"] == dimension
    return error


def test_malformed_json_is_invalid_json(client, headers):
    ticket = ticket_new()
    for body in (
        '{"priority": "URGENT",',
        "{'single': 'quotes'}",
        '{"nte_cents": NaN, "priority": "URGENT"}',
        b"\xff\xfe",
    ):
        assert_envelope(command(client, f"/api/v1/tickets/{ticket.id}/triage", body, headers), 400, "INVALID_JSON")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""])
def test_json_sent_under_another_content_type_is_refused_with_415_and_changes_nothing(client, headers, content_type):
    ticket = ticket_new()
    events = AuditEvent.objects.count()
    response = client.post(
        f"/api/v1/tickets/{ticket.id}/triage",
        data=json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}),
        content_type=content_type,
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE", "request")
    assert AuditEvent.objects.count() == events


def test_json_with_a_charset_and_an_empty_body_under_any_type_are_accepted(client, headers):
    ticket = ticket_new()
    body = json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"})
    response = client.post(
        f"/api/v1/tickets/{ticket.id}/triage",
        data=body,
        content_type="application/json; charset=utf-8",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )
    assert response.status_code == 200, response.content
    # Tools without required fields take no body at all, whatever type the client declares.
    response = client.post(
        "/api/v1/ops/autonomy/pause",
        data=b"",
        content_type="text/plain",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )
    assert response.status_code != 415, response.content


def test_a_body_that_is_not_an_object_is_refused(client, headers):
    response = command(client, "/api/v1/tickets", '["summary"]', headers)
    assert_envelope(response, 400, "INVALID_REQUEST")


def test_a_payload_outside_the_contract_schema_names_the_field(client, headers):
    ticket = ticket_new()
    error = assert_envelope(
        command(client, f"/api/v1/tickets/{ticket.id}/triage", {"priority": "SOMEDAY", "incident_type": "X"}, headers),
        400,
        "INVALID_REQUEST",
        "request",
    )
    assert error["field"] == "priority"
    error = assert_envelope(
        command(
            client,
            f"/api/v1/tickets/{ticket.id}/schedule/propose",
            {"options": [{"start": "2030-03-02T09:00:00Z", "end": "tomorrow at some point"}]},
            headers,
        ),
        400,
        "INVALID_REQUEST",
    )
    assert error["field"] == "options.0.end"
    assert AuditEvent.objects.filter(ticket=ticket).count() == 1


def test_an_oversize_body_is_refused_before_it_is_read(client, headers, settings):
    settings.DISPATCH_API_MAX_JSON_BYTES = 2048
    ticket = ticket_new()
    body = {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "notes": "x" * 4096}
    error = assert_envelope(
        command(client, f"/api/v1/tickets/{ticket.id}/triage", body, headers), 413, "PAYLOAD_TOO_LARGE"
    )
    assert error["max_bytes"] == 2048


def test_the_default_json_limit_is_one_megabyte(client, headers):
    ticket = ticket_new()
    body = {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "notes": "x" * (1024 * 1024)}
    assert_envelope(command(client, f"/api/v1/tickets/{ticket.id}/triage", body, headers), 413, "PAYLOAD_TOO_LARGE")


def test_an_unknown_route_is_a_json_404(client, headers):
    for path in ("/api/v1/nothing-here", "/api/v1/tickets/x/y/z", "/api/v2/tickets", "/api/"):
        assert_envelope(client.get(path, **headers), 404, "NOT_FOUND")


def test_a_non_uuid_ticket_id_is_ticket_not_found(client, headers):
    assert_envelope(client.get("/api/v1/tickets/not-a-ticket", **headers), 404, "TICKET_NOT_FOUND")
    assert_envelope(
        command(client, "/api/v1/tickets/12345/triage", {"priority": "URGENT", "incident_type": "X"}, headers),
        404,
        "TICKET_NOT_FOUND",
    )
    assert_envelope(client.get(f"/api/v1/tickets/{uuid.uuid4()}", **headers), 404, "TICKET_NOT_FOUND")


def test_a_method_the_route_does_not_serve_is_405_with_allow(client, headers):
    ticket = ticket_new()
    error = assert_envelope(client.delete(f"/api/v1/tickets/{ticket.id}", **headers), 405, "METHOD_NOT_ALLOWED")
    assert error["allowed_methods"] == ["GET"]
    response = client.get("/api/v1/tickets/intake", **headers)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"
    assert_envelope(client.options(f"/api/v1/tickets/{ticket.id}/evidence", **headers), 405, "METHOD_NOT_ALLOWED")


def test_one_route_serves_two_tools_by_method(client, headers):
    ticket = ticket_new()
    listed = client.get(f"/api/v1/tickets/{ticket.id}/evidence", **headers)
    assert listed.status_code == 200
    assert listed.json() == {"ticket_id": str(ticket.id), "evidence": []}


def test_a_crash_is_a_500_envelope_without_a_traceback(client, headers, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("secret internals: /srv/app/db.py line 12")

    # The ticket.get handler reads through this selector; make it fail the way a bug would.
    monkeypatch.setattr(ticket_selectors, "ticket_get_for_actor", broken)
    ticket = ticket_new()
    with caplog.at_level(logging.ERROR, logger="dispatch.api"):
        response = client.get(f"/api/v1/tickets/{ticket.id}", **headers)
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    body = response.content.decode()
    assert "Traceback" not in body and "secret internals" not in body and "RuntimeError" not in body
    assert error["message"] == "Internal server error."
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])
    assert error["request_id"] in logged[0].getMessage()


def test_a_crashing_command_leaves_nothing_behind(client, headers, monkeypatch):
    real_triage = intake_services.intake_triage

    def triage_then_crash(**kwargs):
        real_triage(**kwargs)
        raise RuntimeError("after the change")

    monkeypatch.setattr(intake_services, "intake_triage", triage_then_crash)
    ticket = ticket_new()
    response = command(
        client, f"/api/v1/tickets/{ticket.id}/triage", {"priority": "URGENT", "incident_type": "X"}, headers
    )
    assert_envelope(response, 500, "INTERNAL_ERROR")
    ticket.refresh_from_db()
    assert ticket.state == "NEW"
    assert AuditEvent.objects.filter(ticket=ticket).count() == 1
    assert not IdempotencyRecord.objects.exists()


def test_an_early_refusal_of_a_command_quotes_its_idempotency_key(client, settings):
    settings.DISPATCH_DEV_AUTH = False
    key = str(uuid.uuid4())
    response = client.post("/api/v1/tickets", data={}, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    error = assert_envelope(response, 401, "AUTH_REQUIRED")
    assert error["request_id"] == key


def test_a_role_refusal_names_the_allowed_roles(client):
    ticket = ticket_new()
    response = client.get(
        f"/api/v1/ux/technician/job-packet/{ticket.id}", HTTP_AUTHORIZATION=f"Bearer {jwt_for('f', 'finance')}"
    )
    error = assert_envelope(response, 403, "TOOL_ROLE_FORBIDDEN", "role")
    assert error["allowed_roles"] == ["dispatcher", "technician"]


def test_x_tool_name_must_name_the_tool_of_the_route(client, headers):
    ticket = ticket_new()
    assert client.get(f"/api/v1/tickets/{ticket.id}", HTTP_X_TOOL_NAME="ticket.get", **headers).status_code == 200
    response = client.get(f"/api/v1/tickets/{ticket.id}", HTTP_X_TOOL_NAME="ticket.cancel", **headers)
    assert_envelope(response, 403, "TOOL_NOT_ALLOWED", "tool")


@pytest.mark.django_db(transaction=True)
def test_a_mutating_tool_call_costs_at_most_twelve_queries(client):
    ticket = ticket_new()
    token = api_token_for("agent")
    client.get(f"/api/v1/tickets/{ticket.id}", HTTP_AUTHORIZATION=f"Bearer {token}")  # last_used_at is now fresh
    with CaptureQueriesContext(connection) as queries:
        response = command(
            client,
            f"/api/v1/tickets/{ticket.id}/triage",
            {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"},
            {"HTTP_AUTHORIZATION": f"Bearer {token}"},
        )
    assert response.status_code == 200
    # SQLite logs the BEGIN and COMMIT around the request's transaction; PostgreSQL sends the same
    # two through the driver without logging them. Count what both backends log alike.
    framing = ("BEGIN", "COMMIT")
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].upper().startswith(framing)]
    assert len(statements) <= 12, "\n".join(statements)
