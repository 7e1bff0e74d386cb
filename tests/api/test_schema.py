"""The toolset described: OpenAPI 3.1 at /schema, function definitions at /tools, a docs page at /docs."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from dispatch.api.registry import TOOLS
from dispatch.common.roles import Role
from tests.factories import TechnicianFactory, jwt_for

pytestmark = pytest.mark.django_db


def test_the_openapi_document_validates_and_describes_every_tool(client):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    file_paths = [(f"{tool.route}.{fmt}", fmt, tool) for tool in TOOLS for fmt in tool.file_formats]
    assert len(TOOLS) == 36 + len([tool for tool in TOOLS if not tool.in_contract])
    assert len(operations) == len(TOOLS) + len(file_paths)
    for path, fmt, tool in file_paths:
        # The file form of a read: the same tool and roles, answered in its own media type.
        operation = operations[("GET", path)]
        assert operation["operationId"] == f"{tool.function_name}_{fmt}"
        assert set(operation["responses"]["200"]["content"]) == {
            {"pdf": "application/pdf", "csv": "text/csv", "json": "application/json"}[fmt]
        }
    for tool in TOOLS:
        operation = operations[(tool.method, tool.route)]
        assert operation["operationId"] == tool.function_name
        assert operation["summary"] == tool.name
        names = {p["name"] for p in operation["parameters"]}
        assert ("ticketId" in names) == tool.needs_ticket
        assert ("Idempotency-Key" in names) == tool.idempotency_required
        if tool.method == "POST":
            assert operation["requestBody"]["content"]["application/json"]["schema"] == tool.schema
        else:
            assert "requestBody" not in operation
        assert str(tool.success_status) in operation["responses"]
        for status in ("400", "401", "403", "404", "500", "default"):
            assert operation["responses"][status] == {"$ref": "#/components/responses/Error"}
        # Too many failed authentications from the caller's address: any tool, with Retry-After.
        assert operation["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}
    assert document["security"] == [{"bearerAuth": []}]
    rate_limited = document["components"]["responses"]["RateLimited"]
    assert "AUTH_RATE_LIMITED" in rate_limited["description"]
    assert rate_limited["headers"]["Retry-After"]["required"] is True


def test_the_schema_components_are_valid_json_schemas(client):
    document = client.get("/api/v1/schema").json()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_error_answers_match_the_documented_envelope(client):
    document = client.get("/api/v1/schema").json()
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    response = client.get("/api/v1/tickets/not-a-uuid", HTTP_AUTHORIZATION=f"Bearer {jwt_for('d', 'dispatcher')}")
    assert not list(Draft202012Validator(envelope).iter_errors(response.json()))


def test_tools_lists_the_callers_tools_as_function_definitions(client):
    response = client.get("/api/v1/tools", HTTP_AUTHORIZATION=f"Bearer {jwt_for('desk', 'dispatcher')}")
    assert response.status_code == 200
    listing = response.json()
    assert listing["role"] == "dispatcher"
    by_name = {tool["name"]: tool for tool in listing["tools"]}
    expected = {tool.function_name for tool in TOOLS if "dispatcher" in tool.contract_entry["allowed_roles"]}
    assert set(by_name) == expected
    assert all("." not in name for name in by_name)
    triage = by_name["ticket_triage"]
    assert triage["tool_name"] == "ticket.triage"
    assert (triage["method"], triage["route"]) == ("POST", "/tickets/{ticketId}/triage")
    assert triage["parameters"]["type"] == "object"
    assert triage["parameters"]["required"][0] == "ticket_id"
    assert triage["parameters"]["properties"]["ticket_id"]["format"] == "uuid"
    assert {"priority", "incident_type"} <= set(triage["parameters"]["required"])
    assert triage["description"] and len(triage["description"]) > 80
    create = by_name["ticket_create"]
    assert "ticket_id" not in create["parameters"]["properties"]
    for tool in listing["tools"]:
        Draft202012Validator.check_schema(tool["parameters"])


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_tools_differ_by_role(client, role):
    sub = TechnicianFactory().user.username if role == "technician" else f"{role}-1"
    response = client.get("/api/v1/tools", HTTP_AUTHORIZATION=f"Bearer {jwt_for(sub, role)}")
    assert response.status_code == 200
    names = {tool["tool_name"] for tool in response.json()["tools"]}
    assert names == {tool.name for tool in TOOLS if role in tool.contract_entry["allowed_roles"]}


def test_tools_needs_credentials(client, settings):
    settings.DISPATCH_DEV_AUTH = False
    response = client.get("/api/v1/tools")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_REQUIRED"


def test_the_docs_page_lists_every_tool_without_any_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for tool in TOOLS:
        assert f'id="{tool.function_name}"' in page
        assert tool.route.replace("{ticketId}", "{ticketId}") in page
    sources = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', page)
    assert sources, "the page links its stylesheet"
    assert not [url for url in sources if re.match(r"^(https?:)?//", url)], sources
    assert "/static/css/api-docs.css" in sources
