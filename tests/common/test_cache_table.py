"""`migrate` alone leaves a database ready to serve: the database cache's table comes with it."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_migration_creates_the_cache_table_a_deployment_forgot(settings):
    # The production settings' database cache, under a table name no other test uses.
    table = "cache_made_by_migrate"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": table}}
    assert table not in connection.introspection.table_names()

    migration = importlib.import_module("dispatch.common.migrations.0001_cache_table")
    with connection.schema_editor() as editor:
        migration.cache_table_create(apps, editor)

    assert table in connection.introspection.table_names()
    cache.set("pause-version", 3)
    assert cache.get("pause-version") == 3
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
