"""One MCP request answered by the registry's own path: the synchronous half of the MCP face.

The caller's credentials are the headers /api/v1 reads (Authorization with an API token or a JWT;
the development headers when DISPATCH_DEV_AUTH is on), checked by the same authenticator; over
stdio the server process holds one credential and presents it with every call. Every call is
authenticated again, so a token revoked mid-session is refused by its next call.

A tool's MCP name is the registry's function name (`ticket.create` -> `ticket_create`), the name
/api/v1/tools gives, and its input schema is that same function definition: the contract's
payload schema, plus `ticket_id` when the route names a ticket. A command's idempotency key is
`_meta.idempotency_key` (a UUID) when the client sends one, so a retried call replays the stored
answer; otherwise every call gets a fresh key and runs once. As over HTTP, the key is the request
id of the call's audit event and of its error envelope.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from rest_framework.request import Request

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError

from ..auth import LOCAL_CALLER_KEY, actor_authenticate
from ..errors import REQUEST_ID_KEY, error_body, error_for, error_headers, request_id_of
from ..idempotency import plain_json
from ..openapi import function_definition
from ..payloads import payload_sane
from ..registry import TOOLS, Tool, tools_for_role
from ..views import tool_role_check, tool_run

logger = logging.getLogger("dispatch.api")

MCP_PATH = "/mcp"
IDEMPOTENCY_META_KEY = "idempotency_key"
# The names LLM clients accept for a tool.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOLS_BY_MCP_NAME: dict[str, Tool] = {tool.function_name: tool for tool in TOOLS}


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool call answered: the HTTP status and body /api/v1 would have answered."""

    status: int
    body: Any
    request_id: str
    idempotency_key: str | None = None
    replayed: bool = False
    # HTTP headers of a refusal besides the envelope (Retry-After of a 429).
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.status >= 400


def call_request(headers: Mapping[str, str], *, request_id: str | None = None, client: str | None = None) -> Request:
    """The caller's headers as a request, in the shape the authenticator and the handlers read.
    `client` is the network peer's address (REMOTE_ADDR; "" when the server could not tell);
    None for the stdio server's local caller."""
    http = HttpRequest()
    http.method = "POST"
    http.path = http.path_info = MCP_PATH
    for name, value in headers.items():
        if "_" in name:
            # As Django's ASGI handler and gunicorn do: "X_Forwarded_For" would otherwise land on
            # the same key as "X-Forwarded-For" and overwrite what the proxy wrote.
            continue
        meta_name = name.upper().replace("-", "_")
        if meta_name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            http.META[f"HTTP_{meta_name}"] = value
    http.META["CONTENT_TYPE"] = "application/json"
    if request_id is not None:
        http.META[REQUEST_ID_KEY] = request_id
    if client is None:
        # The stdio server: its one caller started it on this machine.
        http.META[LOCAL_CALLER_KEY] = True
    else:
        http.META["REMOTE_ADDR"] = client
    return Request(http)


def caller_authenticate(headers: Mapping[str, str], *, check_host: bool = False, client: str | None = None) -> Actor:
    """The Actor behind these headers, or the DispatchError /api/v1 would refuse them with.

    With check_host, the Host header must be one of ALLOWED_HOSTS, as for every page Django serves:
    the /mcp endpoint answers outside Django's request handling. `client` is the address of the
    HTTP peer: failed authentications are counted against it (with X-Forwarded-For read as
    DISPATCH_TRUSTED_PROXY_COUNT says), as /api/v1 counts them."""
    request = call_request(headers, client=client)
    if check_host:
        try:
            request.get_host()
        except DisallowedHost:
            raise DispatchError("INVALID_REQUEST", "The Host header names no host this server answers for.", status=400)
    return actor_authenticate(request)


def refusal(error: BaseException, headers: Mapping[str, str], *, client: str | None = None) -> ToolAnswer:
    """The error envelope (status and headers) for a request refused before any tool ran."""
    request = call_request(headers, client=client)
    return _error_answer(error, request)


def tools_listed(actor: Actor) -> list[dict]:
    """The actor's tools exactly as GET /api/v1/tools defines them for its role."""
    return [function_definition(tool) for tool in tools_for_role(actor.role)]


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    *,
    actor: Actor | None = None,
) -> ToolAnswer:
    """Run the tool an MCP client named, for the caller behind `headers` (or the `actor` already
    authenticated from them), through the registry path /api/v1 takes; refusals are answers too."""
    tool = TOOLS_BY_MCP_NAME.get(name)
    request = call_request(headers)
    key = None
    try:
        key = _key_given(meta)
        if key is None and tool is not None and tool.idempotency_required:
            key = uuid.uuid4()
        request = call_request(headers, request_id=str(key) if key else None)
        actor = replace(actor, request_id=request_id_of(request)) if actor else actor_authenticate(request)
        if tool is None:
            raise DispatchError(
                "NOT_FOUND",
                f"No tool is named {name[:64]!r}.",
                status=404,
                dimension="tool",
                details={"tool_name": name[:64]},
            )
        tool_role_check(tool, actor)
        payload, ticket_id = _arguments_split(tool, arguments)
        answer = tool_run(tool, actor, payload, ticket_id, request, key=key if tool.idempotency_required else None)
    except Exception as exc:
        # Every failure is answered with the API's envelope, as /api/v1 answers it.
        return replace(_error_answer(exc, request), idempotency_key=str(key) if key else None)
    return ToolAnswer(
        status=answer.status,
        body=plain_json(answer.body),
        request_id=request_id_of(request),
        idempotency_key=str(key) if key else None,
        replayed=answer.replayed,
    )


def _error_answer(exc: BaseException, request: Request) -> ToolAnswer:
    error = error_for(exc, request)
    request_id = request_id_of(request)
    if error.status >= 500:
        # The client gets the request id; the log gets the traceback.
        logger.error(
            "%s serving an MCP call (request %s)",
            error.code,
            request_id,
            exc_info=None if isinstance(exc, DispatchError) else (type(exc), exc, exc.__traceback__),
        )
    return ToolAnswer(
        status=error.status, body=error_body(error, request_id), request_id=request_id, headers=error_headers(error)
    )


def _key_given(meta: Mapping[str, Any] | None) -> uuid.UUID | None:
    raw = (meta or {}).get(IDEMPOTENCY_META_KEY)
    if raw is None:
        return None
    try:
        if isinstance(raw, str) and len(raw.strip()) == 36:
            return uuid.UUID(raw.strip())
    except ValueError:
        pass
    raise DispatchError("INVALID_IDEMPOTENCY_KEY", f"_meta.{IDEMPOTENCY_META_KEY} must be a valid UUID.", status=400)


def _arguments_split(tool: Tool, arguments: Mapping[str, Any] | None) -> tuple[dict, str | None]:
    """The tool's payload and, for a route that names a ticket, the `ticket_id` argument."""
    payload = dict(arguments or {})
    payload_sane(payload)
    if not tool.needs_ticket:
        return payload, None
    ticket_id = payload.pop("ticket_id", None)
    if not isinstance(ticket_id, str):
        raise DispatchError(
            "INVALID_REQUEST",
            "Field 'ticket_id' is invalid: the ticket to act on is required, as a UUID string.",
            status=400,
            dimension="request",
            details={"field": "ticket_id", "rule": "required"},
        )
    return payload, ticket_id
