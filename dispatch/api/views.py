"""The toolset's HTTP face: one view per contract route, dispatching by method to its tool.

A tool call runs, in this order (the upstream dispatch-api's): body size, media type (415) and
JSON, then credentials (401), the tool's roles (403 TOOL_ROLE_FORBIDDEN, decided before the
identity behind the role is resolved) and X-Tool-Name (403 TOOL_NOT_ALLOWED), the
Idempotency-Key of a command (400), an upload's file (read only now), the contract's payload
schema (400 INVALID_REQUEST), and finally the handler, whose service checks ticket, scope and state.
"""

from __future__ import annotations

import hashlib
import uuid

from django.http import HttpResponse
from django.shortcuts import render
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.common.downloads import document_response
from dispatch.common.errors import DispatchError
from dispatch.tickets.services import ticket_not_found

from . import idempotency
from .auth import actor_authenticate
from .errors import REQUEST_ID_KEY, api_exception_handler, method_not_allowed, request_id_of
from .openapi import docs_context, function_definition, openapi_document
from .payloads import body_size_check, is_multipart, json_body, multipart_fields, payload_validate
from .registry import FILE_MEDIA_TYPES, Tool, tools_by_route, tools_for_role


class JsonOnly(DefaultContentNegotiation):
    """The toolset answers JSON whatever the Accept header says (as the upstream API does)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiView(APIView):
    """Base of every /api/ view: no DRF auth or permission machinery, our envelope for errors."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    # JSON bodies are read by payloads.json_body; DRF parses only evidence uploads.
    parser_classes = [MultiPartParser]
    content_negotiation_class = JsonOnly
    # The OpenAPI document is built from the registry (openapi.py); DRF generates none.
    schema = None

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request, *args, **kwargs):
        # The request id is fixed before anything can fail, so every answer carries it.
        request_id_of(request)
        super().initial(request, *args, **kwargs)

    def http_method_not_allowed(self, request, *args, **kwargs):
        allowed = [m.upper() for m in self.http_method_names if m not in ("head", "options")]
        raise method_not_allowed(request.method, allowed)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-Id"] = request_id_of(request)
        return response


def _ticket_key(raw: str | None) -> str | None:
    """The canonical form of a path ticket id; a non-UUID names no ticket (404 TICKET_NOT_FOUND)."""
    if raw is None:
        return None
    try:
        key = uuid.UUID(raw)
    except ValueError:
        key = None
    if key is None or len(raw) != 36:
        # Echo only a bounded slice of whatever the client put in the path.
        raise ticket_not_found(raw[:64])
    return str(key)


def _role_forbidden(tool: Tool, role) -> DispatchError:
    return DispatchError(
        "TOOL_ROLE_FORBIDDEN",
        f"Role {getattr(role, 'value', role)} may not use {tool.name}.",
        status=403,
        dimension="role",
        details={"tool_name": tool.name, "allowed_roles": sorted(r.value for r in tool.roles)},
    )


def _tool_not_allowed(tool: Tool, named: str) -> DispatchError:
    return DispatchError(
        "TOOL_NOT_ALLOWED",
        f"Tool '{named}' is not allowed for this endpoint.",
        status=403,
        dimension="tool",
        details={"endpoint": tool.route, "tool_name": named},
    )


def _upload_digest(request) -> dict | None:
    upload = request.FILES.get("file")
    if upload is None:
        return None
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return {"name": upload.name, "size": upload.size, "sha256": digest.hexdigest()}


def tool_role_guard(tool: Tool):
    """The check of a role against the tool (403 TOOL_ROLE_FORBIDDEN), for actor_authenticate to
    run as soon as the credential names the role, before the identity behind it is resolved."""

    def check(role) -> None:
        if not tool.allows(role):
            raise _role_forbidden(tool, role)

    return check


def tool_role_check(tool: Tool, actor) -> None:
    """403 TOOL_ROLE_FORBIDDEN unless the actor's role may use the tool."""
    tool_role_guard(tool)(actor.role)


def tool_run(
    tool: Tool,
    actor,
    payload: dict,
    ticket_id: str | None,
    request,
    *,
    key: uuid.UUID | None,
    upload: dict | None = None,
) -> idempotency.CommandAnswer:
    """Run a tool for an actor whose role may use it: the payload against the contract's schema,
    the route's ticket id, then the handler, at most once per idempotency key when there is one.
    The HTTP view and the MCP face (dispatch/api/mcp) both end here, so both apply the same rules."""
    payload_validate(tool.upload_validator if upload else tool.validator, payload)
    ticket_id = _ticket_key(ticket_id)
    if key is None:
        status, body = tool.handler(payload, actor, ticket_id, request)
        return idempotency.CommandAnswer(status=status, body=body)
    endpoint = f"{tool.method} {tool.route.replace('{ticketId}', ticket_id or '')}"
    hashed = {"payload": payload, "upload": upload} if upload else payload
    return idempotency.command_run_once(
        actor_id=actor.actor_id,
        endpoint=endpoint,
        key=key,
        payload_hash=idempotency.request_hash(hashed),
        run=lambda: tool.handler(payload, actor, ticket_id, request),
        # A tool that writes files (an upload, a rendered document) answers a replay from the
        # record first, so a retry leaves no second file behind.
        look_first=bool(upload) or tool.writes_files,
    )


def file_format_wanted(tool: Tool, request, forced: str = "") -> str:
    """The file format a read is asked for: the route's (.pdf), else the one the Accept header
    prefers (by its q values; q=0 refuses a type, wildcards ask for nothing in particular); "" for
    the tool's JSON answer."""
    if forced:
        return forced
    by_type = {FILE_MEDIA_TYPES[fmt]: fmt for fmt in tool.file_formats if fmt != "json"}
    for accepted in request.accepted_types:  # Django's parse: best first, q=0 left out
        name = f"{accepted.main_type}/{accepted.sub_type}"
        if name == "application/json":
            return ""
        if name in by_type:
            return by_type[name]
    return ""


def file_response(document) -> HttpResponse:
    # A PDF opens in the browser, anything else is saved; the name is ours, never the caller's.
    return document_response(
        document.data, document.content_type, document.filename, inline=document.content_type == "application/pdf"
    )


class ToolRouteView(ApiView):
    """One contract route; `tools` maps each HTTP method it serves to its registry entry.
    `file_format` is set on the `.pdf`/`.csv`/`.json` route of a read that answers as a file."""

    tools: dict[str, Tool] = {}
    file_format: str = ""

    def initial(self, request, *args, **kwargs):
        # A command's Idempotency-Key names the logical request: when it is a valid UUID it is
        # the request id from the first check on, so even an early refusal quotes it.
        key = idempotency.key_in_header(request)
        if key is not None:
            request.META[REQUEST_ID_KEY] = str(key)
        super().initial(request, *args, **kwargs)

    def get(self, request, ticketId: str | None = None):
        return self.handle(request, ticketId)

    def post(self, request, ticketId: str | None = None):
        return self.handle(request, ticketId)

    def handle(self, request, ticketId: str | None = None):
        tool = self.tools[request.method]
        uploading = tool.uploads and is_multipart(request)
        body_size_check(request, uploads=tool.uploads)
        payload: dict = {}
        upload = None
        if tool.method != "GET" and not uploading:
            payload = json_body(request)

        # The role decides before the identity behind it is looked up: a technician's role on a
        # dispatcher's tool is a 403 whoever the technician is.
        actor = actor_authenticate(request, role_check=tool_role_guard(tool))
        named = request.headers.get("X-Tool-Name", "").strip()
        if named and named != tool.name:
            raise _tool_not_allowed(tool, named)

        fmt = file_format_wanted(tool, request, self.file_format) if tool.file_formats else ""
        if fmt:
            return file_response(tool.file_handler(fmt, actor, _ticket_key(ticketId), request))

        key = idempotency.idempotency_key_of(request) if tool.idempotency_required else None
        if uploading:
            # Only now, for a caller allowed this tool, is the upload read (spooled to disk past
            # a few MB, at most the Content-Length body_size_check allowed) and hashed.
            payload = multipart_fields(request)
            upload = _upload_digest(request)
            if upload is None:
                raise DispatchError(
                    "INVALID_REQUEST", "A multipart upload needs a 'file' field.", status=400, details={"field": "file"}
                )
        # The actor's request id is the key (see initial): audit rows, logs and replies agree.
        answer = tool_run(tool, actor, payload, ticketId, request, key=key, upload=upload)
        headers = {idempotency.REPLAY_HEADER: "true"} if answer.replayed else None
        return Response(answer.body, status=answer.status, headers=headers)


class ToolsView(ApiView):
    """GET /tools: the caller's tools as function-calling definitions for a language model."""

    http_method_names = ["get"]

    def get(self, request):
        actor = actor_authenticate(request)
        return Response(
            {
                "role": actor.role.value,
                "tools": [function_definition(tool) for tool in tools_for_role(actor.role)],
            }
        )


class SchemaView(ApiView):
    """GET /schema: the OpenAPI 3.1 document of the toolset, built from the registry."""

    http_method_names = ["get"]

    def get(self, request):
        return Response(openapi_document())


def docs_page(request):
    """GET /docs: a readable page of every tool, served from our own static files (no CDN)."""
    return render(request, "api/docs.html", docs_context())


def route_views():
    """(contract route, view) for every route in the registry, literal routes first."""
    # Literal routes first: /tickets/intake must not be taken for a ticket id.
    ordered = sorted(tools_by_route().items(), key=lambda item: ("{" in item[0], item[0]))
    views = []
    for route, by_method in ordered:
        view = ToolRouteView.as_view(tools=by_method, http_method_names=[method.lower() for method in by_method])
        views.append((route, view))
        for tool in by_method.values():
            for fmt in tool.file_formats:
                file_view = ToolRouteView.as_view(tools={"GET": tool}, http_method_names=["get"], file_format=fmt)
                views.append((f"{route}.{fmt}", file_view))
    return views
