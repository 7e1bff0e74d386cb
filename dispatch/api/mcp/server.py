"""The toolset's MCP server on the official SDK (`mcp`): Streamable HTTP at /mcp, and stdio.

Over HTTP the server is stateless and answers plain JSON (no SSE stream, no session id): every
POST carries its credentials and its one call, so any web process can answer any call and none
keeps anything between calls. A caller without valid credentials is refused at the door with the
same 401 envelope /api/v1 answers, before the SDK reads the body. Over stdio the process serves
one caller, whose credential the management command holds (`manage.py mcp_server`).

The ORM never runs on the event loop: each call runs in a thread of its own, as Django's ASGI
handler runs each request, with the database connection handling of a request around it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import close_old_connections
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.responses import JSONResponse

from ..openapi import API_TITLE, API_VERSION
from ..payloads import max_json_bytes
from . import calls

# Where the door puts the caller it authenticated, for the handlers of the same HTTP request.
ACTOR_SCOPE_KEY = "dispatch.actor"
# JSON-RPC error code of a tools/list refused for the caller's credentials (the envelope is its data).
REFUSED = -32001
# Room for the JSON-RPC envelope around the largest payload /api/v1 accepts.
ENVELOPE_BYTES = 64 * 1024
INSTRUCTIONS = (
    "Real Dispatch's closed toolset for field-service dispatch and closeout, the same tools as /api/v1. "
    "Tools that act on a ticket take its ticket_id. A refusal is an error result whose content is the API's "
    "error envelope (error.code, error.message, error.policy_error). Send _meta.idempotency_key (a UUID) to "
    "make a retried command replay its first answer instead of running again."
)


def _as_request(function: Callable) -> Callable:
    def run(*args, **kwargs):
        # What Django does around every request: drop connections that are broken or past their age.
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return run


async def in_thread(function: Callable, *args, **kwargs) -> Any:
    """Run synchronous Django code from the event loop, in a thread of this call's own."""
    # A ThreadSensitiveContext per call, as Django's ASGI handler opens one per request: calls
    # run side by side instead of queueing on the one thread-sensitive executor of the process.
    async with ThreadSensitiveContext():
        return await sync_to_async(_as_request(function), thread_sensitive=True)(*args, **kwargs)


def _tool_result(answer: calls.ToolAnswer) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(answer.body))],
        structured_content=answer.body if isinstance(answer.body, dict) else None,
        is_error=answer.is_error,
        meta={
            "status": answer.status,
            "request_id": answer.request_id,
            calls.IDEMPOTENCY_META_KEY: answer.idempotency_key,
            "replayed": answer.replayed,
        },
    )


def mcp_server(*, credentials: Mapping[str, str] | None = None) -> Server:
    """The MCP server of the toolset. Over HTTP each request brings its own headers; over stdio,
    `credentials` (the headers of the one caller, e.g. its Authorization) stand in for them."""

    def headers_of(ctx) -> Mapping[str, str]:
        return dict(ctx.request.headers) if ctx.request is not None else dict(credentials or {})

    def actor_at_door(ctx):
        return ctx.request.scope.get(ACTOR_SCOPE_KEY) if ctx.request is not None else None

    async def list_tools(ctx, params) -> types.ListToolsResult:
        actor = actor_at_door(ctx)
        if actor is None:
            try:
                actor = await in_thread(calls.caller_authenticate, headers_of(ctx))
            except Exception as error:
                # Refused with the API's envelope (a 500 one for anything unexpected), as over HTTP.
                answer = await in_thread(calls.refusal, error, headers_of(ctx))
                raise MCPError(REFUSED, answer.body["error"]["message"], data=answer.body) from None
        definitions = calls.tools_listed(actor)
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=definition["name"],
                    description=definition["description"],
                    input_schema=definition["parameters"],
                )
                for definition in definitions
            ]
        )

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        answer = await in_thread(
            calls.tool_call, params.name, params.arguments, params.meta, headers_of(ctx), actor=actor_at_door(ctx)
        )
        return _tool_result(answer)

    return Server(
        "real-dispatch",
        version=API_VERSION,
        title=API_TITLE,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def stdio_serve(credentials: Mapping[str, str]) -> None:
    """Serve one caller over this process's stdin and stdout until the client hangs up."""
    server = mcp_server(credentials=credentials)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def asgi_application(django_application) -> Callable:
    """An ASGI app serving the MCP endpoint at /mcp and everything else with Django.

    It answers ASGI lifespan events itself (Django does not): the SDK's session manager runs for
    as long as the server does. Build one per server; a session manager runs once."""
    manager = StreamableHTTPSessionManager(
        app=mcp_server(),
        json_response=True,
        stateless=True,
        max_request_body_size=max_json_bytes() + ENVELOPE_BYTES,
        # No DNS-rebinding middleware of the SDK's: the door below holds the Host header to
        # ALLOWED_HOSTS like every other URL, and no call runs without a bearer credential,
        # which a browser never adds to a request on its own.
        security_settings=None,
    )
    endpoint = StreamableHTTPASGIApp(manager)

    async def door(scope, receive, send) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        # The peer's address, as Django's ASGI handler takes it for REMOTE_ADDR: failed
        # authentications are counted against it as for /api/v1.
        client = (scope.get("client") or ("",))[0]
        try:
            scope[ACTOR_SCOPE_KEY] = await in_thread(calls.caller_authenticate, headers, check_host=True, client=client)
        except Exception as error:
            # Refused with the API's envelope (a 500 one for anything unexpected), as over HTTP.
            answer = await in_thread(calls.refusal, error, headers, client=client)
            extra = {"WWW-Authenticate": "Bearer"} if answer.status == 401 else {}
            headers = {"X-Request-Id": answer.request_id, **extra, **answer.headers}
            response = JSONResponse(answer.body, status_code=answer.status, headers=headers)
            await response(scope, receive, send)
            return
        await endpoint(scope, receive, send)

    async def application(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(manager, receive, send)
        elif scope["type"] == "http" and scope["path"].rstrip("/") == calls.MCP_PATH:
            await door(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application


async def _lifespan(manager: StreamableHTTPSessionManager, receive, send) -> None:
    await receive()  # lifespan.startup
    started = False
    try:
        async with manager.run():
            await send({"type": "lifespan.startup.complete"})
            started = True
            await receive()  # lifespan.shutdown
    except Exception as exc:
        await send({"type": "lifespan.shutdown.failed" if started else "lifespan.startup.failed", "message": str(exc)})
        raise
    await send({"type": "lifespan.shutdown.complete"})
