"""What a hostile or broken client sends is refused with a clear 4xx, never a 500, and changes nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from dispatch.tickets.models import AuditEvent, IdempotencyRecord, Ticket
from tests.factories import jwt_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db

DISPATCHER = {"HTTP_AUTHORIZATION": f"Bearer {jwt_for('desk', 'dispatcher')}"}


def post(client, path: str, body: str | dict, headers: dict = DISPATCHER):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        "/api/v1" + path, data=data, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )


def unchanged(ticket: Ticket, events: int, records: int) -> bool:
    fresh = Ticket.objects.get(pk=ticket.pk)
    return (fresh.state, fresh.version, AuditEvent.objects.count(), IdempotencyRecord.objects.count()) == (
        ticket.state,
        ticket.version,
        events,
        records,
    )


@pytest.mark.parametrize(
    "body, code",
    [
        ('{"priority": "URGENT", "incident_type": "\\ud800"}', "INVALID_JSON"),  # lone surrogate
        ('{"priority": "URGENT", "incident_type": "DOOR", "m": ' + "[" * 5000 + "]" * 5000 + "}", "INVALID_REQUEST"),
        (
            '{"priority": "URGENT", "incident_type": "DOOR", "m": ' + '{"a":' * 40 + "1" + "}" * 40 + "}",
            "INVALID_REQUEST",
        ),
        ('{"priority": "URGENT", "incident_type": "DOOR\\u0000_WONT"}', "INVALID_REQUEST"),
        (json.dumps({"priority": "URGENT", "incident_type": "X" * 30_000}), "INVALID_REQUEST"),
        (json.dumps({"priority": "URGENT", "incident_type": "X" * 65}), "INVALID_REQUEST"),
        (
            json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "nte_cents": 10**30}),
            "INVALID_REQUEST",
        ),
        ('{"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "nte_cents": 1e400}', "INVALID_REQUEST"),
        (json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "nte_cents": 1.5}), "INVALID_REQUEST"),
    ],
)
def test_triage_refuses_hostile_payloads_with_a_clear_error_and_changes_nothing(client, body, code):
    ticket = ticket_new()
    events, records = AuditEvent.objects.count(), IdempotencyRecord.objects.count()
    response = post(client, f"/tickets/{ticket.id}/triage", body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == code
    assert unchanged(ticket, events, records)


def test_ticket_create_refuses_an_amount_no_column_can_hold(client):
    ticket = ticket_new()
    before = Ticket.objects.count()
    response = post(
        client,
        "/tickets",
        {"account_id": str(ticket.account_id), "site_id": str(ticket.site_id), "summary": "Door", "nte_cents": 1e308},
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "nte_cents"
    assert Ticket.objects.count() == before


def test_a_summary_longer_than_the_ticket_keeps_is_refused_not_cut(client):
    site = ticket_new().site
    before = Ticket.objects.count()
    body = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Door sticks. " * 40}
    response = post(client, "/tickets", body)
    assert response.status_code == 400 and response.json()["error"]["field"] == "summary"
    assert Ticket.objects.count() == before
    body["summary"] = "x" * 500
    response = post(client, "/tickets", body)
    assert response.status_code == 201 and response.json()["summary"] == "x" * 500


def test_a_window_at_the_edge_of_the_calendar_is_refused(client):
    ticket = ticket_at("READY_TO_SCHEDULE")
    events, records = AuditEvent.objects.count(), IdempotencyRecord.objects.count()
    response = post(
        client,
        f"/tickets/{ticket.id}/schedule/propose",
        {"options": [{"start": "9999-12-31T23:00:00-05:00", "end": "9999-12-31T23:30:00-05:00"}]},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_REQUEST"
    assert unchanged(ticket, events, records)


def test_evidence_metadata_nested_too_deep_is_refused(client):
    ticket = ticket_at("IN_PROGRESS")
    metadata: dict = {}
    cursor = metadata
    for _ in range(500):
        cursor["a"] = {}
        cursor = cursor["a"]
    events = AuditEvent.objects.count()
    response = post(
        client, f"/tickets/{ticket.id}/evidence", {"kind": "PHOTO", "uri": "s3://b/k.jpg", "metadata": metadata}
    )
    assert response.status_code == 400
    assert AuditEvent.objects.count() == events


def test_an_unscoped_customer_credential_reads_no_ticket(client):
    ticket = ticket_new()
    unscoped = client.get(f"/api/v1/tickets/{ticket.id}", HTTP_AUTHORIZATION=f"Bearer {jwt_for('c1', 'customer')}")
    assert unscoped.status_code == 403 and unscoped.json()["error"]["code"] == "FORBIDDEN_SCOPE"
    own = jwt_for("c1", "customer", account_ids=[str(ticket.account_id)])
    assert client.get(f"/api/v1/tickets/{ticket.id}", HTTP_AUTHORIZATION=f"Bearer {own}").status_code == 200


def test_any_method_on_an_unknown_route_gets_the_json_404(client):
    csrf_client = client.__class__(enforce_csrf_checks=True)
    for response in (
        csrf_client.post("/api/v1/nonexistent", data="{}", content_type="application/json", **DISPATCHER),
        csrf_client.delete("/api/v1/tickets", **DISPATCHER),
    ):
        assert response.status_code in (404, 405)
        assert response["Content-Type"].startswith("application/json")
