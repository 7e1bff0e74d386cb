"""GET /health: 200 when the database answers and is fully migrated, the task broker answers and
the file store answers; 503 otherwise, naming the part that does not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django_q.conf import Conf

from tests.s3 import moto_s3_server, s3_bucket, s3_storages  # noqa: F401  (the moto_s3 and s3 fixtures)

REDIS_SERVER = "/usr/bin/redis-server"
# The load balancer's patience: every probe has about a second to connect and one to answer.
ANSWERS_WITHIN_SECONDS = 3

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
        # The test settings' queue is django-q2's ORM broker, its files the local media folder.
        "broker": {"backend": "orm", "reachable": True},
        "storage": {"backend": "local", "reachable": True},
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


def test_health_is_unavailable_when_the_orm_brokers_database_does_not_answer():
    status, body = health_in_subprocess({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/dispatch"})

    assert status == 503
    assert body["broker"]["backend"] == "orm"
    assert body["broker"]["reachable"] is False
    assert body["broker"]["error"] == body["database"]["error"]


# --- the Redis broker -------------------------------------------------------------------------


@pytest.fixture
def redis_broker(settings, monkeypatch):
    """Switch this process's django-q2 broker to Redis at a URL, as REDIS_URL does in
    config/settings/base.py. django_q.conf.Conf copies Q_CLUSTER into class attributes once, when
    it is imported, and does not follow settings overrides; get_broker() and /health read those
    attributes, so they are patched along with the setting (monkeypatch puts both back)."""

    def use(url: str) -> None:
        cluster = {key: value for key, value in settings.Q_CLUSTER.items() if key != "orm"}
        settings.Q_CLUSTER = {**cluster, "redis": url}
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", url)

    return use


@contextmanager
def silent_server():
    """A TCP port that takes connections and never answers on them (a hung server, or a
    firewall that lets the handshake through): only a read timeout ends a wait on it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def timed_health(client) -> tuple[float, object]:
    started = time.monotonic()
    response = client.get("/health")
    return time.monotonic() - started, response


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free port, keeping nothing on disk; stopped after the test."""
    if not os.path.exists(REDIS_SERVER):
        pytest.fail(f"{REDIS_SERVER} not found; run the suite through `make test`, which installs it.")
    port = closed_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.django_db
def test_health_pings_a_real_redis_broker(client, redis_broker, redis_server):
    redis_broker(redis_server)

    response = client.get("/health")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert response.json()["broker"] == {"backend": "redis", "reachable": True}
    # The probe closed its connection: soon the server has only the one client asking it this.
    import redis

    with redis.Redis.from_url(redis_server) as asking:
        deadline = time.monotonic() + 2
        while len(asking.client_list()) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [entry["cmd"] for entry in asking.client_list()] == ["client|list"]


@pytest.mark.django_db
def test_health_is_unavailable_when_redis_does_not_listen(client, redis_broker):
    redis_broker(f"redis://:secret-password@127.0.0.1:{closed_port()}/0")

    seconds, response = timed_health(client)

    assert response.status_code == 503
    assert seconds < ANSWERS_WITHIN_SECONDS
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["broker"] == {"backend": "redis", "reachable": False, "error": "ConnectionError"}
    assert body["database"]["reachable"] is True and body["storage"]["reachable"] is True
    assert b"secret-password" not in response.content


@pytest.mark.django_db
def test_health_does_not_wait_on_a_redis_that_never_answers(client, redis_broker):
    with silent_server() as port:
        redis_broker(f"redis://127.0.0.1:{port}/0")

        seconds, response = timed_health(client)

    assert response.status_code == 503
    assert seconds < ANSWERS_WITHIN_SECONDS
    assert response.json()["broker"] == {"backend": "redis", "reachable": False, "error": "TimeoutError"}


# --- the file store ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_unavailable_when_the_media_folder_cannot_be_made(client, settings, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["storage"] == {"backend": "local", "reachable": False, "error": "NotADirectoryError"}


@pytest.mark.django_db
def test_health_heads_the_s3_bucket(client, s3):
    response = client.get("/health")

    assert response.status_code == 200, response.content
    assert response.json()["storage"] == {"backend": "s3", "reachable": True}
    # The probe has a client of its own: the storage's, which every upload uses, is as configured.
    for config in (storages["default"].client_config, storages["default"].connection.meta.client.meta.config):
        assert (config.connect_timeout, config.read_timeout) == (5, 10)  # config/settings/base.py's
        assert config.retries["total_max_attempts"] == 2


@pytest.mark.django_db
def test_health_names_a_missing_bucket(client, moto_s3, settings):
    settings.STORAGES = s3_storages(bucket=f"missing-{uuid.uuid4().hex[:8]}", endpoint_url=moto_s3)

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["storage"] == {
        "backend": "s3",
        "reachable": False,
        "error": "ClientError",
        "error_code": "404",
    }


@pytest.mark.django_db
def test_health_is_unavailable_quickly_when_s3_does_not_listen(client, s3, settings):
    settings.STORAGES = s3_storages(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{closed_port()}")

    seconds, response = timed_health(client)

    assert response.status_code == 503
    assert seconds < ANSWERS_WITHIN_SECONDS
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["storage"] == {"backend": "s3", "reachable": False, "error": "EndpointConnectionError"}
    assert body["database"]["reachable"] is True and body["broker"]["reachable"] is True
    assert b"127.0.0.1" not in response.content


@pytest.mark.django_db
def test_health_does_not_wait_on_an_s3_that_never_answers(client, s3, settings):
    with silent_server() as port:
        settings.STORAGES = s3_storages(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{port}")

        seconds, response = timed_health(client)

    assert response.status_code == 503
    assert seconds < ANSWERS_WITHIN_SECONDS
    assert response.json()["storage"] == {"backend": "s3", "reachable": False, "error": "ReadTimeoutError"}
