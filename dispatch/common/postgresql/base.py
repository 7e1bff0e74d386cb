"""Django's PostgreSQL backend, checking a reused connection only when it has been idle a while.

With CONN_HEALTH_CHECKS, Django runs `SELECT 1` before the first query of every request, to
find a connection the server dropped while it sat unused (a restart, a failover, an idle
timeout). Under load that is one more round trip per request for a connection that answered a
moment ago: an eighth of what an agent command costs. As PgBouncer does (`server_check_delay`),
a connection that ran a statement within the last IDLE_CHECK_AFTER seconds is taken as healthy;
one idle for longer is still checked, and replaced if the server is gone.
"""
from __future__ import annotations

import time

from django.db.backends.postgresql import base

# PgBouncer's default for the same trade-off.
IDLE_CHECK_AFTER = 30.0


class DatabaseWrapper(base.DatabaseWrapper):
    # Monotonic time of the last cursor this connection opened; None until the first one.
    used_at: float | None = None

    def create_cursor(self, name=None):
        self.used_at = time.monotonic()
        return super().create_cursor(name)

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
