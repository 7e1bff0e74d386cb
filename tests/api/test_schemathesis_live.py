"""schemathesis against the live OpenAPI schema: no 5xx, no answer outside what the schema says.

Runs the `st` command (schemathesis 4.32.5, pinned) against the app served by live_server, as
a dispatcher: every operation (coverage phase), then fuzzing and the stateful phase (which follows
the schema's links from a new ticket to the tools about it) within a time budget. Part of the
generated calls use the ids of real tickets in several states (a schemathesis dictionary), so
they reach the services' own checks instead of stopping at 404 TICKET_NOT_FOUND.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.api.registry import TOOLS
from tests.factories import SiteFactory, TechnicianFactory, jwt_for, ticket_at, ticket_new

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
# Examples per operation in the fuzzing phase; the stateful phase then follows the schema's links
# from the tools that open a ticket to every tool about one. Sized to keep the run under a minute.
MAX_EXAMPLES = 25
# A budget for the whole run: the coverage phase tests every operation first, then fuzzing and
# the stateful phase spend what is left (on a loaded machine, fewer examples, never more time).
MAX_SECONDS = 35


def schemathesis_command() -> list[str]:
    st = Path(sys.executable).with_name("st")
    if st.exists():
        return [str(st)]
    found = shutil.which("st")
    assert found, "schemathesis (pinned in pyproject's test extras) must be installed"
    return [found]


def config_file(path: Path, *, tickets: list[str], accounts: list[str], sites: list[str]) -> Path:
    """Real ids for part of the generated calls, so they reach the services instead of a 404."""

    def values(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    path.write_text(
        f"""
[phases.coverage.generation]
mode = "positive"

[dictionaries.tickets]
values = {values(tickets)}

[dictionaries.accounts]
values = {values(accounts)}

[dictionaries.sites]
values = {values(sites)}

[parameters]
"path.ticketId" = {{ dictionary = "tickets", probability = 0.7 }}
"body.account_id" = {{ dictionary = "accounts", probability = 0.7 }}
"body.site_id" = {{ dictionary = "sites", probability = 0.7 }}
"""
    )
    return path


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, tmp_path):
    site = SiteFactory()
    technician = TechnicianFactory()
    tickets = [ticket_new(site=site)] + [
        ticket_at(state, technician=technician, site=site)
        for state in ("READY_TO_SCHEDULE", "IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION", "VERIFIED")
    ]
    token = jwt_for("schemathesis", "dispatcher", expires_in=3600)
    base = f"{live_server.url}/api/v1"
    config = config_file(
        tmp_path / "schemathesis.toml",
        tickets=[str(t.id) for t in tickets],
        accounts=[str(site.account_id)],
        sites=[str(site.id)],
    )
    command = [
        *schemathesis_command(),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base}/schema",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--workers",
        "1",
        "--seed",
        "20260302",
        "--no-shrink",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--output-truncate",
        "false",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    # Every tool, plus the file form (.pdf, .csv, .json) of the reads that answer as files.
    operations = len(TOOLS) + sum(len(tool.file_formats) for tool in TOOLS)
    assert f"Tested: {operations}" in output, output[-4000:]
