"""Descriptions of the toolset built from the registry: OpenAPI 3.1, LLM function definitions, docs.

OpenAPI 3.1 is used because its schemas are plain JSON Schema 2020-12, so the contract's
payload schemas (which use `const`) go in unchanged as the request bodies.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache

from dispatch.tickets.states import TicketState

from .registry import FILE_MEDIA_TYPES, TOOLS, Tool

API_TITLE = "Real Dispatch dispatch-api"
API_VERSION = "1.0.0"
BASE_PATH = "/api/v1"
ERROR_STATUSES_COMMAND = ("400", "401", "403", "404", "409", "413", "500")
ERROR_STATUSES_READ = ("400", "401", "403", "404", "500")
# 429 AUTH_RATE_LIMITED: too many failed authentications from the caller's address (any tool).
RATE_LIMITED_STATUS = "429"

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_INTEGER = {"type": ["integer", "null"]}

TICKET_FIELDS = {
    "id": {"type": "string", "format": "uuid"},
    "account_id": NULLABLE_STRING,
    "site_id": NULLABLE_STRING,
    "asset_id": NULLABLE_STRING,
    "state": {"type": "string", "enum": [state.value for state in TicketState]},
    "priority": {"type": ["string", "null"], "enum": ["EMERGENCY", "URGENT", "ROUTINE", None]},
    "incident_type": NULLABLE_STRING,
    "summary": {"type": "string"},
    "description": NULLABLE_STRING,
    "customer_name": NULLABLE_STRING,
    "customer_phone": NULLABLE_STRING,
    "customer_email": NULLABLE_STRING,
    "nte_cents": NULLABLE_INTEGER,
    "scheduled_start": NULLABLE_INSTANT,
    "scheduled_end": NULLABLE_INSTANT,
    "identity_confidence": NULLABLE_INTEGER,
    "classification_confidence": NULLABLE_INTEGER,
    "assigned_tech_id": NULLABLE_STRING,
    "version": {"type": "integer"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}

TIMELINE_EVENT_FIELDS = {
    "id": {"type": "string"},
    "ticket_id": NULLABLE_STRING,
    "actor_type": {"type": "string"},
    "actor_id": {"type": "string"},
    "actor_role": {"type": "string"},
    "tool_name": {"type": "string"},
    "request_id": NULLABLE_STRING,
    "correlation_id": NULLABLE_STRING,
    "trace_id": NULLABLE_STRING,
    "before_state": NULLABLE_STRING,
    "after_state": NULLABLE_STRING,
    "payload": {"type": "object"},
    "created_at": {"type": "string", "format": "date-time"},
}

SCHEMAS = {
    "ErrorEnvelope": {
        "type": "object",
        "description": "Every refusal: a stable code, a message, the request id and the policy dimension.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id", "policy_error"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "request_id": NULLABLE_STRING,
                    "policy_error": {
                        "type": "object",
                        "required": ["code", "dimension"],
                        "properties": {"code": {"type": "string"}, "dimension": {"type": "string"}},
                    },
                },
                "additionalProperties": True,
            }
        },
    },
    "Ticket": {
        "type": "object",
        "required": list(TICKET_FIELDS),
        "properties": TICKET_FIELDS,
        "additionalProperties": True,
    },
    "TicketWithResult": {
        "type": "object",
        "description": "The ticket after the call, and what the call produced besides.",
        "required": ["ticket"],
        "properties": {"ticket": {"$ref": "#/components/schemas/Ticket"}},
        "additionalProperties": True,
    },
    "TimelineEvent": {
        "type": "object",
        "required": list(TIMELINE_EVENT_FIELDS),
        "properties": TIMELINE_EVENT_FIELDS,
        "additionalProperties": True,
    },
    "Timeline": {
        "type": "object",
        "required": ["ticket_id", "events"],
        "properties": {
            "ticket_id": {"type": "string"},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEvent"}},
        },
    },
    "Evidence": {
        "type": "object",
        "required": ["id", "ticket_id", "kind", "metadata", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "ticket_id": {"type": "string"},
            "kind": {"type": "string"},
            "evidence_key": NULLABLE_STRING,
            "uri": NULLABLE_STRING,
            "checksum": NULLABLE_STRING,
            "metadata": {"type": "object"},
            "created_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": True,
    },
    "EvidenceList": {
        "type": "object",
        "required": ["ticket_id", "evidence"],
        "properties": {
            "ticket_id": {"type": "string"},
            "evidence": {"type": "array", "items": {"$ref": "#/components/schemas/Evidence"}},
        },
    },
    "Object": {"type": "object", "additionalProperties": True},
}

TICKET_ID_PARAMETER = {
    "name": "ticketId",
    "in": "path",
    "required": True,
    "description": "The ticket's id (a UUID).",
    "schema": {"type": "string", "format": "uuid"},
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "A UUID naming this command. Retrying with the same key and body replays the first answer; "
    "the same key with another body is refused with IDEMPOTENCY_PAYLOAD_MISMATCH.",
    "schema": {"type": "string", "format": "uuid"},
}
QUERY_PARAMETERS = {
    "closeout.get_packet": [("version", "A version number (default: the newest).")],
    "billing.get_invoice": [("version", "A version number (default: the current one).")],
    "dispatcher.cockpit": [
        ("state", "Only these states (comma list)."),
        ("priority", "Only these priorities (comma list)."),
        ("sla_status", "Only healthy, warning or breach (comma list)."),
        ("account_id", "Only these accounts (comma list of UUIDs)."),
        ("site_id", "Only these sites (comma list of UUIDs)."),
        ("assigned_tech_id", "Only these technicians (comma list of UUIDs)."),
        ("incident_type", "Only these incident types (comma list)."),
        ("sort", "priority (default) or sla."),
        (
            "limit",
            "Rows per page: 50 unless given, at most 200. The counts are always for the whole queue.",
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        ),
        (
            "cursor",
            "The next page: a previous answer's next_cursor (null on the last page), passed back unchanged "
            "with the same filters and sort. Opaque; a cursor this server did not issue is refused with "
            "INVALID_REQUEST.",
            {"type": "string", "maxLength": 400},
        ),
        (
            "offset",
            "Rows to skip (the older way to page; not with cursor, which neither repeats nor skips rows when "
            "tickets change between pages).",
            {"type": "integer", "minimum": 0},
        ),
    ],
    "ops.autonomy.state": [
        ("ticket_id", "Explain the decision for this ticket (a UUID)."),
        ("incident_type", "Explain the decision for this incident type."),
    ],
}

UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["kind", "file"],
    "properties": {
        "kind": {"type": "string", "minLength": 1},
        "evidence_key": {"type": "string", "minLength": 1},
        "checksum": {"type": "string", "minLength": 1},
        "metadata": {"type": "string", "description": "A JSON object, as text."},
        "file": {"type": "string", "format": "binary"},
    },
}


def _roles_text(tool: Tool) -> str:
    command = tool.command
    lines = [f"Roles: {', '.join(sorted(role.value for role in command.roles))}."]
    if command.from_states is not None:
        lines.append(f"From states: {', '.join(sorted(command.from_states))}.")
    if command.resulting_state:
        lines.append(f"Resulting state: {command.resulting_state}.")
    return " ".join(lines)


def _operation(tool: Tool) -> dict:
    parameters = []
    if tool.needs_ticket:
        parameters.append(TICKET_ID_PARAMETER)
    if tool.idempotency_required:
        parameters.append(IDEMPOTENCY_PARAMETER)
    for name, description, *schema in QUERY_PARAMETERS.get(tool.name, []):
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": schema[0] if schema else {"type": "string"},
            }
        )
    success = str(tool.success_status)
    operation: dict = {
        "operationId": tool.function_name,
        "summary": tool.name,
        "description": f"{tool.description}\n\n{_roles_text(tool)}",
        "tags": [tool.name.split(".")[0]],
        "parameters": parameters,
        "responses": {
            success: {
                "description": "Success.",
                "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{tool.response}"}}},
            },
            **{
                status: {"$ref": "#/components/responses/Error"}
                for status in (ERROR_STATUSES_READ if tool.method == "GET" else ERROR_STATUSES_COMMAND)
            },
            RATE_LIMITED_STATUS: {"$ref": "#/components/responses/RateLimited"},
            "default": {"$ref": "#/components/responses/Error"},
        },
    }
    if tool.success_status == 201 and tool.response == "Ticket":
        # A tool that opens a ticket hands its id to every tool about a ticket: OpenAPI links, which
        # clients and stateful testers (schemathesis) follow to chain calls.
        operation["responses"][success]["links"] = {
            other.function_name: {
                "operationId": other.function_name,
                "parameters": {"path.ticketId": "$response.body#/id"},
            }
            for other in TOOLS
            if other.needs_ticket
        }
    for fmt in tool.file_formats:
        # The same read as a file, asked for with Accept (or the `.<format>` path below).
        if fmt != "json":
            media = FILE_MEDIA_TYPES[fmt]
            operation["responses"][success]["content"][media] = {"schema": {"type": "string", "format": "binary"}}
    if tool.method != "GET":
        content = {"application/json": {"schema": copy.deepcopy(tool.schema)}}
        if tool.uploads:
            content["multipart/form-data"] = {"schema": UPLOAD_SCHEMA}
        operation["requestBody"] = {"required": bool(tool.schema.get("required")), "content": content}
    return operation


def _file_operation(tool: Tool, fmt: str) -> dict:
    """The `.<format>` path of a read that answers as a file: the same tool, roles and refusals."""
    operation = _operation(tool)
    operation["operationId"] = f"{tool.function_name}_{fmt}"
    operation["description"] = f"{tool.name} as a {fmt.upper()} file.\n\n{_roles_text(tool)}"
    schema = {"type": "string", "format": "binary"} if fmt != "json" else {"type": "object"}
    operation["responses"]["200"]["content"] = {FILE_MEDIA_TYPES[fmt]: {"schema": schema}}
    return operation


@lru_cache(maxsize=1)
def _document_json() -> str:
    paths: dict[str, dict] = {}
    for tool in TOOLS:
        paths.setdefault(tool.route, {})[tool.method.lower()] = _operation(tool)
        for fmt in tool.file_formats:
            paths[f"{tool.route}.{fmt}"] = {"get": _file_operation(tool, fmt)}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": "The closed toolset through which agents run the Real Dispatch pipeline "
            "(wire-compatible with the dispatch-api v1 contract). Every command needs an Idempotency-Key; "
            "every refusal is an ErrorEnvelope. Too many failed authentications from one address are answered "
            "429 AUTH_RATE_LIMITED with Retry-After.",
        },
        "servers": [{"url": BASE_PATH}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "Refused: see error.code and error.policy_error.",
                    "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                },
                "RateLimited": {
                    "description": "AUTH_RATE_LIMITED: too many failed authentications from this address lately. "
                    "Every request from it is refused, valid credentials included, until the window ends "
                    "(Retry-After, and error.retry_after_seconds, say in how many seconds).",
                    "headers": {
                        "X-Request-Id": {"schema": {"type": "string"}},
                        "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}},
                    },
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                },
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (rd_..., made in the admin or with manage.py create_api_token) "
                    "or an HS256 JWT with sub, role, exp and optional account_ids/site_ids.",
                }
            },
        },
    }
    return json.dumps(document)


def openapi_document() -> dict:
    """The OpenAPI 3.1 document of every tool (a fresh copy; callers may change it)."""
    return json.loads(_document_json())


def function_parameters(tool: Tool) -> dict:
    """The payload schema as function parameters, with `ticket_id` when the route names a ticket."""
    schema = copy.deepcopy(tool.schema)
    schema.setdefault("type", "object")
    if tool.needs_ticket:
        schema["properties"] = {
            "ticket_id": {"type": "string", "format": "uuid", "description": "The ticket to act on."},
            **schema.get("properties", {}),
        }
        schema["required"] = ["ticket_id", *schema.get("required", [])]
    return schema


def function_definition(tool: Tool) -> dict:
    """One tool as a function-calling definition a language model can be handed as is."""
    command = tool.command
    return {
        "name": tool.function_name,
        "description": f"{tool.description} {_roles_text(tool)}",
        "parameters": function_parameters(tool),
        "tool_name": tool.name,
        "method": tool.method,
        "route": tool.route,
        "idempotency_required": tool.idempotency_required,
        "allowed_roles": sorted(role.value for role in command.roles),
        "allowed_from_states": None if command.from_states is None else sorted(command.from_states),
        "resulting_state": command.resulting_state,
    }


def docs_context() -> dict:
    """What templates/api/docs.html shows: every tool, grouped in registry order."""
    tools = []
    for tool in TOOLS:
        command = tool.command
        tools.append(
            {
                "name": tool.name,
                "anchor": tool.function_name,
                "method": tool.method,
                "path": BASE_PATH + tool.route,
                "description": tool.description,
                "roles": sorted(role.value for role in command.roles),
                "from_states": None if command.from_states is None else sorted(command.from_states),
                "resulting_state": command.resulting_state,
                "idempotency_required": tool.idempotency_required,
                "success_status": tool.success_status,
                "uploads": tool.uploads,
                "schema": json.dumps(tool.schema, indent=2, sort_keys=True),
            }
        )
    return {"title": API_TITLE, "version": API_VERSION, "base_path": BASE_PATH, "tools": tools}
