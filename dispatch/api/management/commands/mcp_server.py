"""Serve the agent toolset over MCP on stdin/stdout, for a client that launches it as a subprocess."""

from __future__ import annotations

import os

import anyio
from django.core.management.base import BaseCommand, CommandError

from dispatch.common.errors import DispatchError

from ...mcp.calls import caller_authenticate
from ...mcp.server import stdio_serve

TOKEN_VARIABLE = "DISPATCH_MCP_TOKEN"


class Command(BaseCommand):
    help = (
        f"Serve the toolset over MCP (stdio) as the caller whose API token or JWT is in ${TOKEN_VARIABLE}; "
        "the caller sees and may call only its role's tools."
    )

    def handle(self, *args, **options):
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise CommandError(f"Set {TOKEN_VARIABLE} to an API token (rd_...) or a JWT.")
        credentials = {"Authorization": f"Bearer {token}"}
        # Refuse a bad credential before serving anything; each call is still checked again, so a
        # token revoked while the client runs is refused from its next call on.
        try:
            caller_authenticate(credentials)
        except DispatchError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        anyio.run(stdio_serve, credentials)
