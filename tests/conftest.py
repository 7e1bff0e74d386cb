"""Fixtures shared by the whole suite."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time

import pytest

from tests.factories import actor_for

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def on_postgres() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


@pytest.fixture
def dispatcher():
    return actor_for("dispatcher")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _empty_cache():
    # Each test's database is rolled back; what the cache remembered of it (autonomy pauses, rate
    # limits) must not outlive it.
    from django.core.cache import caches

    for alias in caches:
        caches[alias].clear()


class _RequestsInFlight:
    """Counts the requests Django is handling at this moment, in any thread (the live server's
    included), through Django's request_started and request_finished signals."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def started(self, **kwargs) -> None:
        with self.changed:
            self.count += 1

    def finished(self, **kwargs) -> None:
        with self.changed:
            self.count -= 1
            self.changed.notify_all()

    def wait_until_idle(self, *, quiet: float = 0.05, timeout: float = 10.0) -> None:
        """Until no request has been in progress for `quiet` seconds (one the browser sent just
        before its page closed may still be starting), or `timeout` has passed."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while time.monotonic() < deadline:
                if self.count > 0:
                    self.changed.wait(timeout=max(0.0, deadline - time.monotonic()))
                    continue
                self.changed.wait(timeout=quiet)
                if self.count == 0:
                    return


_in_flight = _RequestsInFlight()


@pytest.fixture(scope="session")
def _requests_in_flight():
    from django.core.signals import request_finished, request_started

    request_started.connect(_in_flight.started, dispatch_uid="tests-requests-in-flight-started")
    request_finished.connect(_in_flight.finished, dispatch_uid="tests-requests-in-flight-finished")
    yield _in_flight
    request_started.disconnect(dispatch_uid="tests-requests-in-flight-started")
    request_finished.disconnect(dispatch_uid="tests-requests-in-flight-finished")


@pytest.fixture(scope="session")
def _test_database_sessions_ended(django_db_setup, django_db_blocker):
    """At the end of the run, before the test database is dropped: sessions that earlier tests'
    threads and servers left open on it are ended (PostgreSQL would otherwise wait five seconds
    for them, then refuse to drop it)."""
    yield
    gc.collect()
    from django.db import connections

    with django_db_blocker.unblock():
        for alias in connections:
            connection = connections[alias]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )


@pytest.fixture(autouse=True)
def _database_tests_end_their_sessions(request):
    """A run that uses the test database ends the sessions left on it before it is dropped."""
    if request.node.get_closest_marker("django_db") or {"db", "transactional_db", "live_server"} & set(
        request.fixturenames
    ):
        request.getfixturevalue("_test_database_sessions_ended")


@pytest.fixture(autouse=True)
def _live_server_idle_before_flush(request):
    """A test on the live server ends with its database flushed. A request its browser sent just
    before the page closed (the board's poll) may still be running in the server's thread: on
    PostgreSQL the flush's TRUNCATE and that request's reads can deadlock, and a request that
    outlives the test finds the database closed to it. Wait for the server to be idle first;
    this fixture's teardown runs after the test's own fixtures (the page) and before the flush."""
    if "live_server" not in request.fixturenames:
        yield
        return
    in_flight = request.getfixturevalue("_requests_in_flight")
    yield
    in_flight.wait_until_idle()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright. make test installs it; a missing browser fails."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; run the suite through `make test`, which installs it.")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections

    # Playwright's sync API switches the context, and Django's per-context connection objects
    # with it; the new ones lack the serialized test data that serialized_rollback restores
    # after a flush, so every transactional test after the first browser test would start
    # without the seeded templates. Hand the serialized data to the new connection objects.
    serialized = {alias: getattr(connections[alias], "_test_serialized_contents", None) for alias in connections}
    with sync_playwright() as playwright:
        for alias, contents in serialized.items():
            if contents is not None and not hasattr(connections[alias], "_test_serialized_contents"):
                connections[alias]._test_serialized_contents = contents
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def _transactional(item) -> bool:
    """Does the test run outside a rolled-back transaction (and end with a flush)?"""
    fixtures = getattr(item, "fixturenames", ())
    marker = item.get_closest_marker("django_db")
    return (
        "live_server" in fixtures
        or "transactional_db" in fixtures
        or (marker is not None and bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    )


def _restore_seed_data_after(item) -> None:
    """A transactional test ends with a flush that also empties what data migrations seeded
    (incident and message templates, role groups, the audit chain head). Serialized rollback
    reloads that content when the next transactional test starts; pytest_runtest_teardown below
    reloads it for a test of another kind that follows, so the tests after it see the same
    database as the ones before, in whatever order they run."""
    marker = item.get_closest_marker("django_db")
    transactional = "live_server" in getattr(item, "fixturenames", ()) or (
        marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    kwargs = dict(marker.kwargs) if marker is not None else {}
    if transactional and not kwargs.get("serialized_rollback"):
        item.add_marker(
            pytest.mark.django_db(**{**kwargs, "transaction": True, "serialized_rollback": True}), append=False
        )


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need a PostgreSQL server: on SQLite they are deselected (the
    PostgreSQL pass of `make test` runs them), never skipped."""
    for item in items:
        _restore_seed_data_after(item)
    if on_postgres():
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's flush, the seeded content is loaded back when the next test on
    this process is not a transactional one (which would load it itself). pytest-django runs the
    transactional tests last, but with two workers (pytest-xdist) a worker may take others after
    them."""
    result = yield
    if nextitem is not None and _transactional(item) and not _transactional(nextitem):
        from django.db import connections
        from pytest_django.plugin import blocking_manager_key

        with item.config.stash[blocking_manager_key].unblock():
            for alias in connections:
                contents = getattr(connections[alias], "_test_serialized_contents", None)
                if contents is not None:
                    connections[alias].creation.deserialize_db_from_string(contents)
    return result
