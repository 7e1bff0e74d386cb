"""Health: is the database reachable and fully migrated?"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


@require_GET
def health(request):
    body = {"status": "ok", "database": {"vendor": connections[DEFAULT_DB_ALIAS].vendor}}
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"]["reachable"] = True
    except Exception as exc:  # any driver error means the same thing here: not reachable
        body.update(status="unavailable")
        body["database"].update(reachable=False, error=exc.__class__.__name__)
        return JsonResponse(body, status=503)
    pending = pending_migrations()
    body["migrations"] = {"pending": pending, "up_to_date": not pending}
    if pending:
        body["status"] = "migrations_pending"
        return JsonResponse(body, status=503)
    return JsonResponse(body)
