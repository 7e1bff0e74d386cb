"""The toolset over MCP Streamable HTTP at /mcp, driven by the SDK's own client against a real server."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from django.utils import timezone
from mcp.shared.exceptions import MCPError

from dispatch.api.mcp.calls import TOOLS_BY_MCP_NAME
from dispatch.closeout.models import IncidentTemplate
from dispatch.closeout.seed_templates import seed_templates
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import SiteFactory, TechnicianFactory, api_token_for, jwt_for
from tests.mcp.clients import McpCaller, connected, run_client

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_SECRET = "another-secret-of-sufficient-length-0123"

CHECKLIST_DONE = {
    "work_performed": True,
    "parts_used_or_needed": True,
    "resolution_status": True,
    "onsite_photos_after": True,
    "billing_authorization": True,
}


def ok(result, status: int = 200) -> dict:
    assert not result.is_error, result.structured_content
    assert result.meta["status"] == status, result.meta
    return result.structured_content


def refused(result, status: int, code: str) -> dict:
    assert result.is_error, result.structured_content
    assert result.meta["status"] == status
    error = result.structured_content["error"]
    assert (error["code"], error["policy_error"]["code"]) == (code, code), error
    return error


@pytest.fixture
def world(mcp_url):
    for template in seed_templates():
        IncidentTemplate.objects.get_or_create(incident_type=template["incident_type"], defaults=template)
    site = SiteFactory(service_region="EAST_BAY", access_code="4821")
    technician = TechnicianFactory(
        skills=["CANNOT_SECURE_ENTRY", "DOOR_WONT_LATCH"], region_codes=["EAST_BAY"], user__username="dana.tech"
    )
    return {
        "url": mcp_url,
        "site": site,
        "technician": technician,
        "dispatcher": McpCaller(mcp_url, api_token_for("dispatcher")),
        "tech": McpCaller(mcp_url, api_token_for("technician", technician=technician)),
        "qa": McpCaller(mcp_url, jwt_for("qa-lee", "qa")),
        "finance": McpCaller(mcp_url, jwt_for("finance-ana", "finance")),
    }


def test_each_role_lists_exactly_its_tools_from_the_api(world, client):
    for caller in (world["dispatcher"], world["tech"], world["qa"]):
        listed = caller.tools()
        api = client.get("/api/v1/tools", HTTP_AUTHORIZATION=f"Bearer {caller.token}").json()["tools"]
        assert [(tool.name, tool.description, tool.input_schema) for tool in listed] == [
            (tool["name"], tool["description"], tool["parameters"]) for tool in api
        ]
    dispatcher_tools = {tool.name for tool in world["dispatcher"].tools()}
    technician_tools = {tool.name for tool in world["tech"].tools()}
    assert {"ticket_create", "assignment_dispatch"} <= dispatcher_tools - technician_tools
    assert {"tech_check_in", "tech_complete"} <= technician_tools


def test_canonical_emergency_from_create_to_invoice_over_mcp(world):
    dispatcher, tech, qa, finance = world["dispatcher"], world["tech"], world["qa"], world["finance"]
    site, technician = world["site"], world["technician"]
    done: list[str] = []
    keys: list[str] = []

    def command(caller, name, arguments, status=200):
        key = str(uuid.uuid4())
        body = ok(caller.call(name, arguments, key=key), status)
        keys.append(key)
        done.append(name)
        return body

    created = command(
        dispatcher,
        "ticket_create",
        {
            "account_id": str(site.account_id),
            "site_id": str(site.id),
            "summary": "Storefront door cannot be locked after a break-in",
            "description": "Glass intact, lock cylinder punched out. Store closes at 21:00.",
        },
        201,
    )
    ticket_id = created["id"]
    assert created["state"] == "NEW"

    triaged = command(
        dispatcher,
        "ticket_triage",
        {"ticket_id": ticket_id, "priority": "EMERGENCY", "incident_type": "CANNOT_SECURE_ENTRY", "nte_cents": 75000},
    )
    assert (triaged["state"], triaged["priority"]) == ("TRIAGED", "EMERGENCY")

    # A refusal is a tool error carrying the API's envelope, and records nothing.
    refused(
        dispatcher.call("assignment_dispatch", {"ticket_id": ticket_id, "tech_id": str(technician.id)}),
        409,
        "ASSIGNMENT_BYPASS_DENIED",
    )
    dispatched = command(
        dispatcher,
        "assignment_dispatch",
        {
            "ticket_id": ticket_id,
            "tech_id": str(technician.id),
            "dispatch_mode": "EMERGENCY_BYPASS",
            "dispatch_rationale": "Store cannot be secured overnight; nearest qualified technician.",
            "dispatch_confirmation": True,
        },
    )
    assert (dispatched["state"], dispatched["assigned_tech_id"]) == ("DISPATCHED", str(technician.id))

    checked_in = command(
        tech,
        "tech_check_in",
        {
            "ticket_id": ticket_id,
            "timestamp": timezone.now().isoformat(),
            "location": {"lat": 37.8044, "lng": -122.2711},
        },
    )
    assert checked_in["state"] == "IN_PROGRESS"

    template = IncidentTemplate.objects.get(incident_type="CANNOT_SECURE_ENTRY")
    kinds = {"photo": "PHOTO", "note": "NOTE", "signature": "SIGNATURE"}
    for evidence_key in template.required_evidence_keys:
        kind = kinds[evidence_key.split("_")[0]]
        arguments = {
            "ticket_id": ticket_id,
            "kind": kind,
            "uri": f"s3://dispatch-evidence/{ticket_id}/{evidence_key}.bin",
            "evidence_key": evidence_key,
        }
        if kind == "NOTE":
            arguments["metadata"] = {"text": "Temporary lock fitted; owner shown how to use it."}
        assert command(tech, "closeout_add_evidence", arguments, 201)["id"]

    completed = command(tech, "tech_complete", {"ticket_id": ticket_id, "checklist_status": CHECKLIST_DONE})
    assert completed["state"] == "COMPLETED_PENDING_VERIFICATION"
    verification = {"ticket_id": ticket_id, "timestamp": timezone.now().isoformat(), "result": "PASS"}
    verified = command(qa, "qa_verify", verification)
    assert verified["state"] == "VERIFIED"
    invoiced = command(finance, "billing_generate_invoice", {"ticket_id": ticket_id})
    assert invoiced["state"] == "INVOICED"

    # One audit event per command, in order, each under the idempotency key its call carried.
    events = ok(dispatcher.call("ticket_timeline", {"ticket_id": ticket_id}))["events"]
    assert [event["tool_name"] for event in events] == [TOOLS_BY_MCP_NAME[name].name for name in done]
    assert [event["request_id"] for event in events] == keys
    assert events[2]["actor_role"] == "dispatcher" and events[3]["actor_role"] == "technician"
    assert Ticket.objects.get(pk=ticket_id).state == "INVOICED"


def test_an_outsider_is_refused_at_the_door_with_the_api_envelope(world):
    url = world["url"]
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for authorization, code in (
        (None, "AUTH_REQUIRED"),
        ("Bearer rd_not-a-token", "INVALID_AUTH_TOKEN"),
        (f"Bearer {jwt_for('someone', 'dispatcher', secret=OTHER_SECRET)}", "INVALID_AUTH_TOKEN"),
    ):
        sent = {**headers, "Authorization": authorization} if authorization else headers
        response = httpx2.post(url, json=initialize, headers=sent, timeout=30)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == code

    # The SDK's client cannot even connect without a credential.
    async def connect_anonymously():
        async with connected(url, None) as client:
            await client.list_tools()

    with pytest.raises(ExceptionGroup) as refusal:
        run_client(connect_anonymously)
    assert refusal.group_contains(MCPError, match="error response")
    assert AuditEvent.objects.count() == 0


def test_a_replayed_call_answers_the_same_and_records_one_event(world):
    dispatcher, site = world["dispatcher"], world["site"]
    arguments = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Back door will not latch"}
    key = str(uuid.uuid4())
    first = dispatcher.call("ticket_create", arguments, key=key)
    again = dispatcher.call("ticket_create", arguments, key=key)
    assert ok(again, 201) == ok(first, 201)
    assert (first.meta["replayed"], again.meta["replayed"]) == (False, True)
    assert first.meta["idempotency_key"] == again.meta["idempotency_key"] == key
    assert Ticket.objects.count() == 1
    assert AuditEvent.objects.filter(tool_name="ticket.create", request_id=key).count() == 1

    # The same key with another payload is refused; without a key each call is a command of its own.
    other = {**arguments, "summary": "Other"}
    refused(dispatcher.call("ticket_create", other, key=key), 409, "IDEMPOTENCY_PAYLOAD_MISMATCH")
    refused(dispatcher.call("ticket_create", arguments, key="not-a-uuid"), 400, "INVALID_IDEMPOTENCY_KEY")
    ok(dispatcher.call("ticket_create", arguments), 201)
    ok(dispatcher.call("ticket_create", arguments), 201)
    assert Ticket.objects.count() == 3


def test_refusals_are_tool_errors_with_the_api_codes(world):
    dispatcher, tech, site = world["dispatcher"], world["tech"], world["site"]
    arguments = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Back door will not latch"}
    error = refused(tech.call("ticket_create", arguments), 403, "TOOL_ROLE_FORBIDDEN")
    assert error["tool_name"] == "ticket.create"
    error = refused(dispatcher.call("ticket_create", {**arguments, "nte_cents": -5}), 400, "INVALID_REQUEST")
    assert error["field"] == "nte_cents"
    refused(dispatcher.call("ticket_get", {"ticket_id": str(uuid.uuid4())}), 404, "TICKET_NOT_FOUND")
    refused(dispatcher.call("ticket_get", {}), 400, "INVALID_REQUEST")
    refused(dispatcher.call("ticket_delete_everything", {}), 404, "NOT_FOUND")
    assert AuditEvent.objects.count() == 0


def test_over_mcp_a_bypass_is_taken_once_and_its_author_cannot_verify_it(world):
    from tests.factories import ticket_at

    dispatcher, qa = world["dispatcher"], world["qa"]
    ticket_id = str(ticket_at("IN_PROGRESS", technician=world["technician"]).id)

    bypass = {"ticket_id": ticket_id, "bypass_rationale": "Photos lost with a broken phone"}
    assert ok(dispatcher.call("dispatch_manual_bypass", bypass))["state"] == "COMPLETED_PENDING_VERIFICATION"
    refused(dispatcher.call("dispatch_manual_bypass", bypass), 409, "MANUAL_BYPASS_ALREADY_USED")

    verification = {"ticket_id": ticket_id, "timestamp": timezone.now().isoformat(), "result": "PASS"}
    refused(dispatcher.call("qa_verify", verification), 403, "SEPARATION_OF_DUTIES")
    assert ok(qa.call("qa_verify", verification))["state"] == "VERIFIED"
