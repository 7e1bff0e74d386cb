"""Drift: the registry is the contract — names, routes, roles, states and payload rules."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid

import pytest
from django.urls import resolve
from jsonschema import Draft202012Validator

from dispatch.api.payloads import FORMAT_CHECKER, payload_validate
from dispatch.api.registry import CONTRACT_FILE, TOOLS, TOOLS_BY_NAME
from dispatch.common.errors import DispatchError
from tests.factories import payload_example

# The dispatch-api v1 contract as published: the file in the repository must stay byte for byte
# this one, so an edit to the wire contract is a deliberate change of this digest, never a slip.
CONTRACT_SHA256 = "a01c4b42c9875c7ebba5c1551068d3d5e31e1e4d199fa93214f01081171f541e"


def contract_tools() -> dict[str, dict]:
    return {entry["tool_name"]: entry for entry in json.loads(CONTRACT_FILE.read_text())["tools"]}


def test_the_vendored_contract_is_the_published_v1_contract():
    assert hashlib.sha256(CONTRACT_FILE.read_bytes()).hexdigest() == CONTRACT_SHA256


def test_the_registry_lists_exactly_the_contract_tools_in_order():
    in_contract = [tool.name for tool in TOOLS if tool.in_contract]
    assert in_contract == [entry["tool_name"] for entry in json.loads(CONTRACT_FILE.read_text())["tools"]]
    assert len(in_contract) == 36


@pytest.mark.parametrize("name", sorted(contract_tools()))
def test_each_tool_matches_the_contract(name):
    entry = contract_tools()[name]
    tool = TOOLS_BY_NAME[name]
    command = tool.command
    assert command.tool == name
    assert tool.method == entry["http_method"]
    assert tool.route == entry["route"]
    assert tool.idempotency_required == entry["idempotency_required"] == (entry["http_method"] == "POST")
    assert sorted(role.value for role in command.roles) == sorted(entry["allowed_roles"])
    expected_from = None if entry["allowed_from_states"] is None else sorted(entry["allowed_from_states"])
    assert (None if command.from_states is None else sorted(command.from_states)) == expected_from
    assert command.resulting_state == entry["resulting_state"]
    # The published schema is the contract's, plus only optional fields of the project's own.
    added = tool.added_properties or {}
    contract_properties = entry["payload_schema"].get("properties", {})
    assert not set(added) & set(contract_properties)
    assert not set(added) & set(entry["payload_schema"].get("required", []))
    published = {
        **tool.schema,
        "properties": {k: v for k, v in tool.schema.get("properties", {}).items() if k not in added},
    }
    if "properties" not in entry["payload_schema"]:
        published.pop("properties")
    assert published == entry["payload_schema"]


@pytest.mark.parametrize("name", sorted(contract_tools()))
def test_each_route_resolves_to_its_tool(name):
    tool = TOOLS_BY_NAME[name]
    path = "/api/v1" + tool.route.replace("{ticketId}", str(uuid.uuid4()))
    match = resolve(path)
    assert match.func.view_initkwargs["tools"][tool.method] is tool


def test_the_api_has_no_routes_beyond_the_tools_and_their_descriptions():
    from dispatch.api import urls

    routes = {str(pattern.pattern) for pattern in urls.urlpatterns}
    tool_routes = {"v1/" + tool.route.lstrip("/").replace("{ticketId}", "<str:ticketId>") for tool in TOOLS}
    # A read that answers as a file also has a route per format (.../invoice.pdf), to the same tool.
    file_routes = {
        f"v1/{tool.route.lstrip('/').replace('{ticketId}', '<str:ticketId>')}.{fmt}"
        for tool in TOOLS
        for fmt in tool.file_formats
    }
    assert routes == tool_routes | file_routes | {"v1/tools", "v1/schema", "v1/docs", "^.*$"}
    for pattern in urls.urlpatterns:
        view_class = getattr(pattern.callback, "cls", None)
        assert view_class is None or not hasattr(view_class, "get_queryset"), "no generic or CRUD views under /api/"


# --- payload validation accepts and refuses exactly what the contract schema does -------------------


def _wrong_type(schema: dict):
    kind = schema.get("type")
    return {"string": 12345, "number": "many", "integer": "many", "boolean": "yes", "array": "x", "object": "x"}.get(
        kind
    )


def payload_variants(schema: dict) -> list[tuple[str, object]]:
    """A good payload and many near misses: each required field dropped, each field of the wrong
    type, formats, lengths, minimums and constants broken, unknown fields on closed objects."""
    if "anyOf" in schema:
        variants = []
        for index, branch in enumerate(schema["anyOf"]):
            variants += [(f"branch{index}:{label}", value) for label, value in payload_variants(branch)]
        return variants
    good = payload_example(schema)
    full = dict(good)
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        full.setdefault(name, payload_example(prop))
    variants: list[tuple[str, object]] = [("good", good), ("all fields", full), ("not an object", ["x"])]
    for name in schema.get("required", []):
        variants.append((f"without {name}", {k: v for k, v in good.items() if k != name}))
    for name, prop in properties.items():
        if "anyOf" in prop:
            variants.append((f"{name} not in enum", {**full, name: "NOT_A_CHOICE"}))
            continue
        wrong = _wrong_type(prop)
        if wrong is not None:
            variants.append((f"{name} wrong type", {**full, name: wrong}))
        if prop.get("format") == "uuid":
            variants.append((f"{name} not a uuid", {**full, name: "not-a-uuid-" + "x" * 25}))
        if prop.get("format") == "date-time":
            variants.append((f"{name} not a date-time", {**full, name: "next tuesday, around noon"}))
            variants.append((f"{name} without offset", {**full, name: "2030-03-02T17:00:00.000"}))
        if prop.get("format") == "email":
            variants.append((f"{name} not an email", {**full, name: "pat at example dot com"}))
        if prop.get("minLength"):
            variants.append((f"{name} too short", {**full, name: "x" * (prop["minLength"] - 1)}))
        if "minimum" in prop:
            variants.append((f"{name} below minimum", {**full, name: prop["minimum"] - 1}))
        if "maximum" in prop:
            variants.append((f"{name} above maximum", {**full, name: prop["maximum"] + 1}))
        if "const" in prop:
            variants.append((f"{name} other constant", {**full, name: "OTHER"}))
        if prop.get("type") == "array" and prop.get("minItems"):
            variants.append((f"{name} empty", {**full, name: []}))
        if prop.get("type") == "array" and prop.get("items", {}).get("type") == "object":
            item = payload_example(prop["items"])
            for required in prop["items"].get("required", []):
                broken = {k: v for k, v in item.items() if k != required}
                variants.append((f"{name} item without {required}", {**full, name: [broken]}))
    if schema.get("additionalProperties") is False:
        variants.append(("unknown field", {**full, "surprise": 1}))
    else:
        variants.append(("unknown field (allowed)", {**full, "surprise": 1}))
    return variants


@pytest.mark.parametrize("name", sorted(contract_tools()))
def test_payload_validation_agrees_with_the_contract_schema(name):
    contract_schema = contract_tools()[name]["payload_schema"]
    reference = Draft202012Validator(copy.deepcopy(contract_schema), format_checker=FORMAT_CHECKER)
    tool = TOOLS_BY_NAME[name]
    verdicts = []
    for label, payload in payload_variants(contract_schema):
        contract_accepts = not list(reference.iter_errors(payload))
        try:
            payload_validate(tool.schema, payload)
            api_accepts = True
        except DispatchError as error:
            assert error.status == 400 and error.code == "INVALID_REQUEST"
            api_accepts = False
        assert api_accepts == contract_accepts, f"{name}: {label}"
        verdicts.append((label, api_accepts))
    assert all(accepted for label, accepted in verdicts if label.endswith("good")), "the example payload must pass"
    assert not all(accepted for _, accepted in verdicts), "some near miss must be refused"


def test_a_refused_payload_names_the_field():
    with pytest.raises(DispatchError) as refused:
        payload_validate(TOOLS_BY_NAME["schedule.propose"].schema, {"options": [{"start": "2030-03-02T17:00:00Z"}]})
    assert refused.value.details["field"] == "options.0.end"
    with pytest.raises(DispatchError) as refused:
        payload_validate(TOOLS_BY_NAME["ticket.create"].schema, {"account_id": str(uuid.uuid4()), "summary": "x"})
    assert refused.value.details["field"] == "site_id"
