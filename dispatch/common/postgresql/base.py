"""Django's PostgreSQL backend, with two changes for the hot paths.

Health checks only after idling. With CONN_HEALTH_CHECKS, Django runs `SELECT 1` before the
first query of every request, to find a connection the server dropped while it sat unused (a
restart, a failover, an idle timeout). Under load that is one more round trip per request for a
connection that was in use a moment ago. As PgBouncer does (`server_check_delay`), a connection
that opened a cursor within the last IDLE_CHECK_AFTER seconds is not checked; one idle for
longer is, and is replaced if the server is gone. The price: a connection the server drops
while it is busy fails the one request that meets it, and Django closes it when that request
ends (as it would without health checks).

Prepared statements for compiled SQL. Django binds parameters on the client, so PostgreSQL
parses and plans every statement afresh; for the indexed one-row statements of a command,
planning is most of what the server spends (a ticket locked with its site: 65 of 75 µs).
`statement_cursor()` gives a cursor that binds on the server and prepares what it runs;
dispatch.common.compiled runs its fixed statements through it. psycopg keeps up to 100 of them
per connection, one per statement text and parameter types, and drops them all after a
rollback, so a refused command costs its connection a few re-preparations. Every other query
keeps Django's client-side binding, where an unprepared server-side statement would cost more.
Prepared statements need a session per connection: behind a transaction-pooling PgBouncer, set
OPTIONS["prepare_threshold"] = None, which turns them off.
"""
from __future__ import annotations

import time

from django.db.backends.postgresql import base, operations
from django.utils.asyncio import async_unsafe
from django.utils.functional import cached_property
from psycopg import errors

# PgBouncer's default for the same trade-off.
IDLE_CHECK_AFTER = 30.0
# psycopg prepares a statement after this many runs: in practice never, except when asked
# (`prepare=True`, as PreparedCursor does). None would turn preparing off altogether.
_PREPARE_ONLY_WHEN_ASKED = 2**31


class PreparedCursor(base.ServerBindingCursor):
    """Binds parameters on the server and prepares every statement it runs (once per connection)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        # A prepared statement's text has placeholders, not values: show it as Django does
        # for server-side binding, with the values written in (query logs, captured queries).
        if isinstance(cursor, PreparedCursor):
            try:
                return self.compose_sql(sql, params)
            except errors.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    # Monotonic time of the last cursor this connection opened; None until the first one.
    used_at: float | None = None
    # Set by statement_cursor() for the cursor create_cursor() makes next.
    _statement_cursor_requested = False

    @cached_property
    def prepares_statements(self) -> bool:
        return self.settings_dict["OPTIONS"].get("prepare_threshold", _PREPARE_ONLY_WHEN_ASKED) is not None

    def get_connection_params(self):
        params = super().get_connection_params()
        if "prepare_threshold" not in self.settings_dict["OPTIONS"]:
            params["prepare_threshold"] = _PREPARE_ONLY_WHEN_ASKED
        return params

    @async_unsafe
    def statement_cursor(self):
        """A cursor for a statement run many times with new values: prepared on first use."""
        if not self.prepares_statements:
            return self.cursor()
        # Django's own path (health check, connect, error translation, query logging, time
        # zone), with the prepared cursor in place of the connection's default one.
        self._statement_cursor_requested = True
        try:
            return self._cursor()
        finally:
            self._statement_cursor_requested = False

    def create_cursor(self, name=None):
        self.used_at = time.monotonic()
        if not self._statement_cursor_requested or name:
            return super().create_cursor(name)
        default = self.connection.cursor_factory
        self.connection.cursor_factory = PreparedCursor
        try:
            return super().create_cursor(name)
        finally:
            self.connection.cursor_factory = default

    def close_if_health_check_failed(self):
        recently_used = self.used_at is not None and time.monotonic() - self.used_at < IDLE_CHECK_AFTER
        if self.connection is not None and self.health_check_enabled and recently_used:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def connect(self):
        # A new connection has not answered anything yet: nothing to vouch for it.
        self.used_at = None
        super().connect()
