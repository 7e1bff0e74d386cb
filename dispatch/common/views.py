"""Health: can this process do its work? The database answers and is fully migrated, the task
broker answers, and the file store answers.

A load balancer polls /health every few seconds, so every probe is bounded: the broker and the
file store each get about a second to connect and a second to answer, never a retry, and a part
that does not answer in time is reported unreachable rather than keeping the poll waiting. What
fails is named by its exception's class only: a driver's message may hold a URL with credentials.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from django.core.files.storage import FileSystemStorage, storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker
from django_q.conf import Conf

# Seconds to connect, and again to answer, for the broker's and the file store's probes.
PROBE_TIMEOUT_SECONDS = 1.0


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _probe(part: dict, check) -> bool:
    """Run one reachability check, recording its outcome on `part`."""
    try:
        check()
    except Exception as exc:  # any error means the same thing here: not reachable
        part.update(reachable=False, error=exc.__class__.__name__)
        answer = getattr(exc, "response", None)  # botocore's ClientError: the object store's own code
        code = answer.get("Error", {}).get("Code") if isinstance(answer, dict) else None
        if code:
            part["error_code"] = str(code)  # "NoSuchBucket", "403"
        return False
    part["reachable"] = True
    return True


# --- the broker -------------------------------------------------------------------------------


def _database_ping(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis_ping(conf: str | dict) -> None:
    """PING the Redis server django-q2 uses, connected as its broker connects (a URL, or keyword
    arguments) but with short timeouts and no retries, whatever the URL's own options say: the
    broker's connection waits 5 s per try by default, and tries again."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    bounded = {
        "socket_connect_timeout": PROBE_TIMEOUT_SECONDS,
        "socket_timeout": PROBE_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
    }
    # A URL's own options (?socket_timeout=...) would win over from_url's keywords: parse it, then bound.
    options = redis.connection.parse_url(conf) if isinstance(conf, str) else dict(conf)
    pool = redis.ConnectionPool(**{**options, **bounded})
    try:
        redis.Redis(connection_pool=pool).ping()
    finally:
        pool.disconnect()


def broker_backend() -> str:
    """The broker django-q2's get_broker() hands tasks to, by its own rules (read from Conf,
    which is what the broker is chosen by), without connecting to it."""
    if Conf.BROKER_CLASS or Conf.IRON_MQ or isinstance(Conf.SQS, dict):
        return "other"
    if Conf.ORM:
        return "orm"
    if Conf.MONGO or Conf.DJANGO_REDIS:
        return "other"
    return "redis"


def broker_health(*, database: dict) -> dict:
    """Which django-q2 broker this process uses, and whether it answers (`database`: the
    default database's part of the answer, already probed)."""
    backend = broker_backend()
    part = {"backend": backend}
    if backend == "orm":
        # The ORM broker's queue is a table: reachable when its database answers (asked once).
        if Conf.ORM == DEFAULT_DB_ALIAS:
            part.update({key: value for key, value in database.items() if key in ("reachable", "error")})
        else:
            _probe(part, lambda: _database_ping(Conf.ORM))
    elif backend == "redis":
        _probe(part, lambda: _redis_ping(Conf.REDIS))
    else:
        # A broker this project does not configure: its own ping, with its own timeouts.
        broker = get_broker()
        part["backend"] = broker.__class__.__name__.lower()
        _probe(part, broker.ping)
    return part


# --- the file store ---------------------------------------------------------------------------

# One probe client per S3 storage (made once: a boto3 session is slow to build), dropped with it.
_s3_probe_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_s3_probe_lock = threading.Lock()


def _s3_probe_client(storage):
    """An S3 client as the storage's own (its credentials, endpoint, region and client config),
    but with short timeouts and no retries. The storage's client is left as it is: its config
    is the project's, and every upload uses it."""
    import boto3
    from botocore.config import Config

    with _s3_probe_lock:
        client = _s3_probe_clients.get(storage)
        if client is None:
            bounded = Config(
                connect_timeout=PROBE_TIMEOUT_SECONDS,
                read_timeout=PROBE_TIMEOUT_SECONDS,
                retries={"total_max_attempts": 1},
            )
            # merge() returns a new Config, as django-storages does for its unsigned client.
            config = storage.client_config.merge(bounded) if storage.client_config is not None else bounded
            # A session from the storage's own settings, so the probe signs with its credentials
            # (none set: boto3's usual chain, as the storage's).
            session = boto3.session.Session(
                aws_access_key_id=storage.access_key or None,
                aws_secret_access_key=storage.secret_key or None,
                aws_session_token=storage.security_token or None,
                profile_name=storage.session_profile or None,
            )
            client = session.client(
                "s3",
                region_name=storage.region_name,
                use_ssl=storage.use_ssl,
                endpoint_url=storage.endpoint_url,
                config=config,
                verify=storage.verify,
            )
            _s3_probe_clients[storage] = client
    return client


def _local_writable(location: Path) -> None:
    """The folder exists and this process may write in it; or it does not exist yet and can be
    made where it would be (Django's storage makes it on the first save)."""
    folder = location
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError


def storage_health() -> dict:
    """Which backend Django's default storage (every FileField's) is, and whether it answers."""
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        part = {"backend": "local"}
        _probe(part, lambda: _local_writable(Path(storage.location)))
        return part
    from storages.backends.s3 import S3Storage

    if isinstance(storage, S3Storage):
        part = {"backend": "s3"}
        _probe(part, lambda: _s3_probe_client(storage).head_bucket(Bucket=storage.bucket_name))
        return part
    part = {"backend": storage.__class__.__name__}
    _probe(part, lambda: storage.exists("health-probe"))
    return part


# --- the view ---------------------------------------------------------------------------------


@require_GET
def health(request):
    body = {"status": "ok", "database": {"vendor": connections[DEFAULT_DB_ALIAS].vendor}}
    database_up = _probe(body["database"], lambda: _database_ping(DEFAULT_DB_ALIAS))
    pending = None
    if database_up:
        pending = pending_migrations()
        body["migrations"] = {"pending": pending, "up_to_date": not pending}
    body["broker"] = broker_health(database=body["database"])
    body["storage"] = storage_health()
    if not all(body[part]["reachable"] for part in ("database", "broker", "storage")):
        body["status"] = "unavailable"
        return JsonResponse(body, status=503)
    if pending:
        body["status"] = "migrations_pending"
        return JsonResponse(body, status=503)
    return JsonResponse(body)
