"""The back office's rules hold over the toolset too (the same services): an early check-in needs
a reason, a bypass is taken once, QA of a bypassed job needs someone else, and a close without an
invoice draft says why. Refusals use codes the toolset's clients already know or name the rule."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.scheduling.onsite import CHECK_IN_REASON_MAX
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import jwt_for, ticket_at, ticket_dispatched

pytestmark = pytest.mark.django_db(transaction=True)


def call(client, ticket, route, body, *, sub="riley", role="dispatcher"):
    return client.post(
        f"/api/v1/tickets/{ticket.id}/{route}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for(sub, role)}",
    )


def test_the_api_refuses_an_early_check_in_with_invalid_request_and_takes_the_optional_reason(client):
    visit = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    ticket = ticket_dispatched(start=visit, end=visit + timedelta(hours=2))

    refused = call(client, ticket, "tech/check-in", {"timestamp": timezone.now().isoformat()})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"], error["requirement"]) == (
        "INVALID_REQUEST",
        "reason",
        "EARLY_CHECK_IN_REASON",
    )
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"

    body = {"timestamp": timezone.now().isoformat(), "reason": "Manager asked for today"}
    done = call(client, ticket, "tech/check-in", body)
    assert done.status_code == 200, done.content
    event = AuditEvent.objects.filter(ticket=ticket, tool_name="tech.check_in").get()
    assert event.payload["reason"] == "Manager asked for today"


def test_the_check_in_reason_is_published_in_the_tool_list_and_the_openapi_document(client):
    # An agent developer finds `reason` where they look for a tool's parameters, not only in prose
    # (MCP lists the same parameters: tests/mcp/test_http.py compares the two listings).
    auth = {"HTTP_AUTHORIZATION": f"Bearer {jwt_for('riley', 'dispatcher')}"}
    listing = {tool["name"]: tool for tool in client.get("/api/v1/tools", **auth).json()["tools"]}
    parameters = listing["tech_check_in"]["parameters"]
    assert parameters["properties"]["reason"]["type"] == ["string", "null"]
    assert f"at most {CHECK_IN_REASON_MAX} characters" in parameters["properties"]["reason"]["description"]
    assert "reason" not in parameters["required"] and "timestamp" in parameters["required"]
    openapi = client.get("/api/v1/schema", **auth).json()
    body = openapi["paths"]["/tickets/{ticketId}/tech/check-in"]["post"]["requestBody"]
    assert "reason" in body["content"]["application/json"]["schema"]["properties"]


def test_a_check_in_reason_the_service_took_before_it_was_published_is_still_taken(client):
    # Publishing the field did not tighten it: null is no reason, and a reason is measured trimmed.
    visit = timezone.now() + timedelta(minutes=30)
    ticket = ticket_dispatched(start=visit, end=visit + timedelta(hours=2))
    done = call(client, ticket, "tech/check-in", {"timestamp": timezone.now().isoformat(), "reason": None})
    assert done.status_code == 200, done.content

    early = timezone.now() + timedelta(days=2)
    ticket = ticket_dispatched(start=early, end=early + timedelta(hours=2))
    padded = "  " + "x" * CHECK_IN_REASON_MAX + "  "
    done = call(client, ticket, "tech/check-in", {"timestamp": timezone.now().isoformat(), "reason": padded})
    assert done.status_code == 200, done.content
    event = AuditEvent.objects.get(ticket=ticket, tool_name="tech.check_in")
    assert event.payload["reason"] == "x" * CHECK_IN_REASON_MAX


def test_over_the_api_a_bypass_is_taken_once_and_its_author_cannot_verify_it(client):
    ticket = ticket_at("IN_PROGRESS")

    first = call(client, ticket, "dispatch/manual-bypass", {"bypass_rationale": "Photos lost"})
    assert first.status_code == 200, first.content
    again = call(client, ticket, "dispatch/manual-bypass", {"bypass_rationale": "Again"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "MANUAL_BYPASS_ALREADY_USED")

    verdict = {"timestamp": timezone.now().isoformat(), "result": "PASS"}
    own = call(client, ticket, "qa/verify", verdict)
    assert (own.status_code, own.json()["error"]["code"]) == (403, "SEPARATION_OF_DUTIES")
    assert own.json()["error"]["policy_error"]["dimension"] == "policy"
    assert Ticket.objects.get(pk=ticket.pk).state == "COMPLETED_PENDING_VERIFICATION"

    other = call(client, ticket, "qa/verify", verdict, sub="qa-lead", role="qa")
    assert other.status_code == 200, other.content
    assert Ticket.objects.get(pk=ticket.pk).state == "VERIFIED"


def test_over_the_api_a_close_without_an_invoice_draft_needs_the_contracts_reason_field(client):
    ticket = ticket_at("VERIFIED")

    refused = call(client, ticket, "close", {})
    assert refused.status_code == 400
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == ("INVALID_REQUEST", "reason")

    closed = call(client, ticket, "close", {"reason": "Goodwill repair, not billed"})
    assert closed.status_code == 200, closed.content
    event = AuditEvent.objects.get(ticket=ticket, tool_name="ticket.close")
    assert (event.payload["reason"], event.payload["invoice_draft"]) == ("Goodwill repair, not billed", False)
