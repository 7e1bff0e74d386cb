"""GET /health: 200 when the database answers and is fully migrated, 503 otherwise."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

# Asks a fresh Django process for /health, so a test can give it a database of its own.
HEALTH_IN_SUBPROCESS = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
if len(sys.argv) > 1:
    call_command("migrate", sys.argv[1], sys.argv[2], verbosity=0)
response = Client().get("/health")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def health_in_subprocess(env_changes: dict[str, str], *migrate_to: str) -> tuple[int, dict]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", ALLOWED_HOSTS="testserver", **env_changes)
    finished = subprocess.run(
        [sys.executable, "-c", HEALTH_IN_SUBPROCESS, *migrate_to],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    answer = json.loads(finished.stdout.strip().splitlines()[-1])
    return answer["status"], answer["body"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_health_is_ok_on_a_migrated_database(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "database": {"vendor": connection.vendor, "reachable": True},
        "migrations": {"pending": [], "up_to_date": True},
    }


@pytest.mark.django_db
def test_health_names_the_migration_that_is_not_applied(client):
    # Forget that the newest tickets migration ran: to the app that is a pending migration.
    # The test's transaction rolls the row back, so the database stays as it was.
    leaf = next(name for app, name in MigrationLoader(connection).graph.leaf_nodes() if app == "tickets")
    MigrationRecorder.Migration.objects.filter(app="tickets", name=leaf).delete()

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "migrations_pending"
    assert body["database"]["reachable"] is True
    assert body["migrations"] == {"pending": [f"tickets.{leaf}"], "up_to_date": False}


def test_health_lists_every_pending_migration_of_a_partly_migrated_database(tmp_path):
    status, body = health_in_subprocess({"SQLITE_PATH": str(tmp_path / "partly.sqlite3")}, "tickets", "0001_initial")

    assert status == 503
    assert body["status"] == "migrations_pending"
    pending = body["migrations"]["pending"]
    assert "tickets.0001_initial" not in pending
    assert "tickets.0002_audit_chain_head" in pending
    assert "closeout.0002_seed_incident_templates" in pending
    assert "django_q.0001_initial" in pending


def test_health_is_unavailable_when_postgresql_does_not_answer():
    status, body = health_in_subprocess({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/dispatch"})

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"]["vendor"] == "postgresql"
    assert body["database"]["reachable"] is False
    assert "migrations" not in body


def test_health_is_unavailable_when_the_sqlite_file_cannot_be_opened(tmp_path):
    status, body = health_in_subprocess({"SQLITE_PATH": str(tmp_path / "no-such-folder" / "db.sqlite3")})

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"] == {"vendor": "sqlite", "reachable": False, "error": "OperationalError"}
