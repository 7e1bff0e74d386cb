"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil

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


def _restore_seed_data_after(item) -> None:
    """A transactional test ends with a flush that also empties what data migrations seeded
    (incident and message templates, role groups, the audit chain head). Serialized rollback
    reloads that content, so the tests after it see the same database as the ones before."""
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
