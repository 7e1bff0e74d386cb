"""The PostgreSQL backend checks a reused connection only after it sat idle, and replaces a dead one."""
from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection, connections
from django.db.utils import ConnectionHandler, OperationalError

from dispatch.common.postgresql import base as backend

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _request_starts() -> None:
    """What Django does between two requests: forget the last health check, drop broken connections."""
    close_old_connections()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    """Drop the connection from the server's side, as a restart or an idle timeout would."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    for _ in range(100):
        with psycopg.connect(**params, autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
        time.sleep(0.02)


@pytest.fixture
def checks(monkeypatch):
    """Counts the `SELECT 1` health checks the backend runs."""
    calls = []
    original = connection.is_usable

    def counted():
        calls.append(time.monotonic())
        return original()

    monkeypatch.setattr(connection, "is_usable", counted)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"], "the test database must have health checks on"
    return calls


def test_the_settings_use_this_backend():
    assert isinstance(connections["default"], backend.DatabaseWrapper)
    assert connection.vendor == "postgresql"


def test_a_connection_that_just_answered_is_not_checked_again(checks):
    first = _backend_pid()
    for _ in range(5):
        _request_starts()
        assert _backend_pid() == first
    assert checks == []


def test_a_connection_idle_longer_than_the_delay_is_checked(checks, monkeypatch):
    first = _backend_pid()
    monkeypatch.setattr(connection, "used_at", time.monotonic() - backend.IDLE_CHECK_AFTER - 1)
    _request_starts()
    assert _backend_pid() == first
    assert len(checks) == 1
    # The check itself counts as use: the next request runs none.
    _request_starts()
    _backend_pid()
    assert len(checks) == 1


def test_an_idle_connection_the_server_dropped_is_replaced_before_the_request_uses_it(checks, monkeypatch):
    first = _backend_pid()
    _terminate(first)
    monkeypatch.setattr(connection, "used_at", time.monotonic() - backend.IDLE_CHECK_AFTER - 1)
    _request_starts()
    second = _backend_pid()
    assert second != first
    assert len(checks) == 1


def test_a_busy_connection_the_server_dropped_fails_one_request_then_is_replaced(checks):
    first = _backend_pid()
    _terminate(first)
    _request_starts()
    # Within the delay nothing is checked, so the request that meets the dead connection fails...
    with pytest.raises(OperationalError):
        _backend_pid()
    # ...and Django closes it when that request ends, so the next one connects afresh.
    _request_starts()
    assert _backend_pid() != first


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


def test_compiled_statements_are_prepared_once_and_orm_queries_are_not():
    from dispatch.common.compiled import CompiledQuery
    from dispatch.tickets.models import Account

    by_name = CompiledQuery(lambda name: Account.objects.filter(name=name), name=str)
    Account.objects.create(name="Harbor Dental")
    for _ in range(3):
        assert [a.name for a in by_name.objects(name="Harbor Dental")] == ["Harbor Dental"]
        assert Account.objects.filter(name="Harbor Dental").count() == 1
    prepared = _prepared_statements()
    compiled = [s for s in prepared if '"tickets_account"."name" = $1' in s]
    assert len(compiled) == 1  # one statement, prepared once, run three times
    assert not [s for s in prepared if "COUNT(" in s.upper()]


def test_a_prepared_statement_is_logged_with_its_values_and_errors_are_djangos():
    from django.db import IntegrityError, transaction
    from django.test.utils import CaptureQueriesContext

    from dispatch.common.compiled import row_insert
    from dispatch.tickets.models import Account

    account = Account(name="Logged")
    with CaptureQueriesContext(connection) as queries:
        row_insert(account)
    assert "'Logged'" in queries.captured_queries[0]["sql"]
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            row_insert(Account(pk=account.pk, name="Same id"))
    # The rollback discards the prepared statements; the next run prepares again and works.
    row_insert(Account(name="After"))
    assert sorted(Account.objects.values_list("name", flat=True)) == ["After", "Logged"]


def test_preparing_can_be_turned_off_for_a_transaction_pooler():
    options = {**connections["default"].settings_dict["OPTIONS"], "prepare_threshold": None}
    handler = ConnectionHandler({"default": {**connections["default"].settings_dict, "OPTIONS": options}})
    pooled = handler["default"]
    try:
        assert pooled.prepares_statements is False
        with pooled.statement_cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert not isinstance(cursor.cursor, backend.PreparedCursor)
        assert pooled.connection.prepare_threshold is None
    finally:
        pooled.close()
    assert connections["default"].prepares_statements is True
