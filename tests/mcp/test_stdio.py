"""The toolset over MCP stdio: `manage.py mcp_server` spawned by the SDK's own client.

The server is another process, so it cannot see this test run's database (in memory on SQLite,
or uncommitted on PostgreSQL): it gets a SQLite file of its own under tmp_path, migrated and
seeded by `manage.py` subprocesses, and never the DATABASE_URL of the PostgreSQL pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from dispatch.api.mcp.calls import IDEMPOTENCY_META_KEY
from dispatch.api.openapi import function_definition
from dispatch.api.registry import tools_for_role
from dispatch.common.roles import Role
from tests.mcp.clients import run_client

ROOT = Path(__file__).resolve().parents[2]
SEED = """
import json
from tests.factories import SiteFactory, api_token_for
site = SiteFactory()
print(json.dumps({"account_id": str(site.account_id), "site_id": str(site.id), "token": api_token_for("dispatcher")}))
"""


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def server_env(tmp_path_factory):
    """The environment of a server process on a migrated SQLite file with one site and a dispatcher's token."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    database = tmp_path_factory.mktemp("mcp") / "mcp.sqlite3"
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", SQLITE_PATH=str(database))
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    seeded = manage("shell", "-c", SEED, env=env)
    assert seeded.returncode == 0, seeded.stderr
    world = json.loads(seeded.stdout.strip().splitlines()[-1])
    env["DISPATCH_MCP_TOKEN"] = world.pop("token")
    return env, world


def test_a_dispatcher_works_a_ticket_over_stdio_and_a_replay_runs_once(server_env):
    env, world = server_env
    parameters = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp_server"], env=env, cwd=ROOT)

    async def session():
        async with Client(parameters) as client:
            tools = (await client.list_tools()).tools
            created = await client.call_tool("ticket_create", {**world, "summary": "Back door will not latch"})
            ticket_id = created.structured_content["id"]
            triage = {"ticket_id": ticket_id, "priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}
            key = {IDEMPOTENCY_META_KEY: str(uuid.uuid4())}
            triaged = await client.call_tool("ticket_triage", triage, meta=key)
            replayed = await client.call_tool("ticket_triage", triage, meta=key)
            check_in = {"ticket_id": ticket_id, "timestamp": "2026-01-01T09:00:00Z"}
            refused = await client.call_tool("tech_check_in", check_in)
            timeline = await client.call_tool("ticket_timeline", {"ticket_id": ticket_id})
            return tools, created, triaged, replayed, refused, timeline

    tools, created, triaged, replayed, refused, timeline = run_client(session)
    assert [(tool.name, tool.description, tool.input_schema) for tool in tools] == [
        (definition["name"], definition["description"], definition["parameters"])
        for definition in map(function_definition, tools_for_role(Role.DISPATCHER))
    ]
    assert (created.is_error, created.meta["status"], created.structured_content["state"]) == (False, 201, "NEW")
    assert (triaged.is_error, triaged.structured_content["state"]) == (False, "TRIAGED")
    assert replayed.structured_content == triaged.structured_content
    assert (triaged.meta["replayed"], replayed.meta["replayed"]) == (False, True)
    # A refusal is a tool error carrying the API's envelope: a TRIAGED ticket cannot be checked in.
    assert (refused.is_error, refused.meta["status"]) == (True, 409)
    assert refused.structured_content["error"]["code"] == "INVALID_STATE_TRANSITION"
    events = timeline.structured_content["events"]
    assert [event["tool_name"] for event in events] == ["ticket.create", "ticket.triage"]
    assert events[1]["request_id"] == triaged.meta[IDEMPOTENCY_META_KEY]


def test_the_stdio_server_refuses_to_start_for_an_outsider(server_env):
    env, _world = server_env
    for token, code in (("rd_not-a-token", "INVALID_AUTH_TOKEN"), ("", "DISPATCH_MCP_TOKEN")):
        started = manage("mcp_server", env={**env, "DISPATCH_MCP_TOKEN": token})
        assert started.returncode != 0
        assert code in started.stderr, started.stderr
        assert started.stdout == ""
