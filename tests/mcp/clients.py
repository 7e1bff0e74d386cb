"""The SDK's own MCP client, driven from synchronous tests (which may use the ORM between calls)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from dispatch.api.mcp.calls import IDEMPOTENCY_META_KEY


def run_client(function):
    """Run an async client function to its end on an event loop in a thread of its own: the test's
    thread may already host a loop (Playwright's sync API leaves one there for the session)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, function).result()


@asynccontextmanager
async def connected(url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


class McpCaller:
    """One caller of the MCP endpoint with its own credential; each call is a connection of its own,
    as a stateless server allows (the test's thread stays synchronous, so it may use the ORM)."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.token = token

    def tools(self):
        async def listed():
            async with connected(self.url, self.token) as client:
                return (await client.list_tools()).tools

        return run_client(listed)

    def call(self, name: str, arguments: dict | None = None, *, key: str | None = None):
        async def called():
            async with connected(self.url, self.token) as client:
                return await client.call_tool(name, arguments or {}, meta={IDEMPOTENCY_META_KEY: key} if key else None)

        return run_client(called)
