"""Idempotency-Key: one effect per key, replayed answers, refusals that are not remembered."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from django.db import connection

from dispatch.tickets.models import AuditEvent, IdempotencyRecord, Ticket
from tests.factories import SiteFactory, jwt_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db

TRIAGE = {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}


@pytest.fixture
def token():
    return jwt_for("planner", "agent")


def post(client, path: str, body: dict, token: str, key: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, data=body, content_type="application/json", **headers)


def test_a_replay_returns_the_same_answer_and_does_nothing_again(client, token):
    ticket = ticket_new()
    key = str(uuid.uuid4())
    path = f"/api/v1/tickets/{ticket.id}/triage"
    first = post(client, path, TRIAGE, token, key)
    events = AuditEvent.objects.count()
    second = post(client, path, TRIAGE, token, key)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first
    assert second["X-Request-Id"] == key
    assert AuditEvent.objects.count() == events
    ticket.refresh_from_db()
    assert ticket.version == 2


def test_a_replayed_create_opens_one_ticket(client, token):
    site = SiteFactory()
    body = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Gate stuck open"}
    key = str(uuid.uuid4())
    answers = [post(client, "/api/v1/tickets", body, token, key) for _ in range(3)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert Ticket.objects.filter(site=site).count() == 1


def test_the_same_key_with_another_body_is_a_mismatch(client, token):
    ticket = ticket_new()
    key = str(uuid.uuid4())
    path = f"/api/v1/tickets/{ticket.id}/triage"
    assert post(client, path, TRIAGE, token, key).status_code == 200
    response = post(client, path, {**TRIAGE, "priority": "EMERGENCY"}, token, key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "IDEMPOTENCY_PAYLOAD_MISMATCH"
    ticket.refresh_from_db()
    assert ticket.priority == "URGENT"


def test_key_order_and_whitespace_do_not_change_the_request(client, token):
    ticket = ticket_new()
    key = str(uuid.uuid4())
    path = f"/api/v1/tickets/{ticket.id}/triage"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_IDEMPOTENCY_KEY": key}
    first = client.post(
        path, data='{"priority":"URGENT","incident_type":"DOOR_WONT_LATCH"}', content_type="application/json", **headers
    )
    second = client.post(
        path,
        data='{ "incident_type" : "DOOR_WONT_LATCH",\n "priority": "URGENT" }',
        content_type="application/json",
        **headers,
    )
    assert second.status_code == 200 and second["Idempotency-Replayed"] == "true"
    assert second.json() == first.json()


def test_keys_are_per_actor_and_per_endpoint(client, token):
    first, second = ticket_new(), ticket_new()
    key = str(uuid.uuid4())
    assert post(client, f"/api/v1/tickets/{first.id}/triage", TRIAGE, token, key).status_code == 200
    # The same key on another ticket is another request, not a replay.
    response = post(client, f"/api/v1/tickets/{second.id}/triage", TRIAGE, token, key)
    assert response.status_code == 200 and "Idempotency-Replayed" not in response
    # And another caller's key never replays this caller's answer.
    third = ticket_new()
    assert post(client, f"/api/v1/tickets/{third.id}/triage", TRIAGE, token, key).status_code == 200
    other = post(client, f"/api/v1/tickets/{third.id}/triage", TRIAGE, jwt_for("someone-else", "agent"), key)
    assert other.status_code == 200 and "Idempotency-Replayed" not in other
    assert IdempotencyRecord.objects.filter(key=key).count() == 4


def test_a_command_without_a_key_is_refused(client, token):
    ticket = ticket_new()
    response = post(client, f"/api/v1/tickets/{ticket.id}/triage", TRIAGE, token, None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MISSING_IDEMPOTENCY_KEY"


@pytest.mark.parametrize(
    "key",
    [
        "not-a-uuid",
        "12345",
        "{" + str(uuid.UUID(int=7)) + "}",
        pytest.param(str(uuid.uuid4()).replace("-", ""), id="a-random-uuid-without-hyphens"),
    ],
)
def test_a_key_that_is_not_a_uuid_is_refused(client, token, key):
    ticket = ticket_new()
    response = post(client, f"/api/v1/tickets/{ticket.id}/triage", TRIAGE, token, key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    ticket.refresh_from_db()
    assert ticket.state == "NEW"


def test_reads_need_no_key(client, token):
    ticket = ticket_new()
    assert client.get(f"/api/v1/tickets/{ticket.id}", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_a_refused_command_is_not_remembered_and_the_key_works_once_fixed(client, token):
    site, elsewhere = SiteFactory(), SiteFactory()
    key = str(uuid.uuid4())
    wrong = {"account_id": str(elsewhere.account_id), "site_id": str(site.id), "summary": "Door stuck"}
    refused = post(client, "/api/v1/tickets", wrong, token, key)
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    fixed = {**wrong, "account_id": str(site.account_id)}
    created = post(client, "/api/v1/tickets", fixed, token, key)
    assert created.status_code == 201
    assert IdempotencyRecord.objects.get().status_code == 201


def test_a_command_refused_for_its_state_can_be_retried_with_the_same_key_later(client, token):
    ticket = ticket_at("READY_TO_SCHEDULE")
    key = str(uuid.uuid4())
    path = f"/api/v1/tickets/{ticket.id}/schedule/propose"
    body = {"options": [{"start": "2030-03-04T17:00:00Z", "end": "2030-03-04T19:00:00Z"}]}
    cancelled = ticket_at("CANCELLED")
    refused = post(client, f"/api/v1/tickets/{cancelled.id}/schedule/propose", body, token, key)
    assert refused.status_code == 409
    assert post(client, path, body, token, key).status_code == 200
    replay = post(client, path, body, token, key)
    assert replay.status_code == 200 and replay["Idempotency-Replayed"] == "true"


# --- two identical requests at the same moment ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_concurrent_requests_have_one_effect(live_server):
    site = SiteFactory()
    token = jwt_for("planner", "agent")
    key = str(uuid.uuid4())
    body = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Roll-up door jammed"}
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = requests.post(
            f"{live_server.url}/api/v1/tickets",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=60,
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert sorted(a.headers.get("Idempotency-Replayed", "") for a in answers) == ["", "true"]
    assert Ticket.objects.filter(site=site).count() == 1
    assert AuditEvent.objects.filter(tool_name="ticket.create", ticket__site=site).count() == 1
    assert IdempotencyRecord.objects.filter(key=key).count() == 1
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_concurrent_transitions_have_one_effect(live_server):
    ticket = ticket_new()
    token = jwt_for("planner", "agent")
    key = str(uuid.uuid4())
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = requests.post(
            f"{live_server.url}/api/v1/tickets/{ticket.id}/triage",
            json=TRIAGE,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=60,
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert AuditEvent.objects.filter(ticket=ticket, tool_name="ticket.triage").count() == 1
    ticket.refresh_from_db()
    assert ticket.version == 2
