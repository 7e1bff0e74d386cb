"""What the toolset itself adds to a tool call in SQL: one read of the bearer token, and for a
command one stored answer. Everything else a call sends belongs to the service it runs.

Queries are the statements a request sends, without transaction control (BEGIN, SAVEPOINT,
RELEASE, COMMIT), which the backends log differently.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import TechnicianFactory, api_token_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(captured) -> list[str]:
    return [q["sql"] for q in captured if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)]


def touching(sql: list[str], table: str) -> list[str]:
    return [statement for statement in sql if f'"{table}"' in statement]


def used_token(client, role: str, **kwargs) -> dict:
    """Bearer headers of a token that has been used once (its first use records the time)."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_for(role, **kwargs)}"}
    assert client.get("/api/v1/tools", **headers).status_code == 200
    return headers


def test_listing_the_tools_costs_one_read_of_the_token(client):
    headers = used_token(client, "dispatcher")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/tools", **headers)
    assert response.status_code == 200
    sql = statements(queries.captured_queries)
    assert len(sql) == 1 and sql[0].lstrip().startswith("SELECT") and '"api_apitoken"' in sql[0]


def test_a_technicians_token_is_read_with_their_user_and_profile_in_one_query(client):
    technician = TechnicianFactory()
    ticket = ticket_at("DISPATCHED", technician=technician)
    headers = used_token(client, "technician", technician=technician)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/tickets/{ticket.id}", **headers)
    assert response.status_code == 200
    sql = statements(queries.captured_queries)
    token_reads = touching(sql, "api_apitoken")
    assert len(token_reads) == 1
    assert touching(sql, "auth_user") == token_reads


def test_a_command_adds_one_token_read_and_one_stored_answer_to_its_service(client):
    ticket = ticket_new()
    headers = used_token(client, "dispatcher")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/api/v1/tickets/{ticket.id}/triage",
            data=json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            **headers,
        )
    assert response.status_code == 200
    sql = statements(queries.captured_queries)
    assert len(touching(sql, "api_apitoken")) == 1
    stored = touching(sql, "tickets_idempotencyrecord")
    assert len(stored) == 1 and stored[0].lstrip().startswith("INSERT")
    # The answer is the ticket the service returned: no row is read again to render it.
    assert len([s for s in sql if s.lstrip().startswith("SELECT") and '"tickets_ticket"' in s]) <= 1
