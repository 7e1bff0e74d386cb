"""A real MCP server for the tests: uvicorn on a loopback port, serving config/asgi.py's
application (Django plus /mcp), as `make run` does."""

from __future__ import annotations

import socket
import threading

import pytest
import uvicorn
from django.core.asgi import get_asgi_application

from dispatch.api.mcp.server import asgi_application


@pytest.fixture
def mcp_url(transactional_db):
    """The /mcp URL of a server running in a thread of this process, on the test database.

    Like live_server, it needs a transactional test: the server's threads have connections of
    their own, which see only what the test committed."""
    application = asgi_application(get_asgi_application())
    started = threading.Event()

    async def signalling(scope, receive, send):
        async def send_and_signal(message):
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                started.set()

        await application(scope, receive, send_and_signal if scope["type"] == "lifespan" else send)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    host, port = listener.getsockname()
    server = uvicorn.Server(uvicorn.Config(signalling, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    assert started.wait(timeout=20), "the MCP server did not start"
    yield f"http://{host}:{port}/mcp"
    server.should_exit = True
    thread.join(timeout=20)
    listener.close()
