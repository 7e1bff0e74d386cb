"""Trigram indexes for the back office's search, on PostgreSQL.

Django's `icontains` is `UPPER(col::text) LIKE UPPER('%word%')` on PostgreSQL; a GIN index with
pg_trgm's operator class on the same UPPER(col) expression answers it without reading the table.
SQLite has no such index and searches its (smaller) tables directly, so these are created only on
PostgreSQL, through the schema editor, and kept out of the models' Meta.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.models.functions import Upper

# (model, field) → index name
SEARCHED = (
    ("Ticket", "summary", "ticket_summary_trgm"),
    ("Ticket", "customer_name", "ticket_customer_name_trgm"),
    ("Ticket", "customer_phone", "ticket_customer_phone_trgm"),
    ("Ticket", "customer_email", "ticket_customer_email_trgm"),
    ("Site", "name", "site_name_trgm"),
    ("Site", "address_line1", "site_address_trgm"),
    ("Site", "city", "site_city_trgm"),
    ("Account", "name", "account_name_trgm"),
)


class TrigramExtensionKept(TrigramExtension):
    """Created if missing; left in place when this migration is undone (something else may use it)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass


def _index(field: str, name: str) -> GinIndex:
    return GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


def indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, field, name in SEARCHED:
        schema_editor.add_index(apps.get_model("tickets", model_name), _index(field, name))


def indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, field, name in SEARCHED:
        schema_editor.remove_index(apps.get_model("tickets", model_name), _index(field, name))


class Migration(migrations.Migration):
    dependencies = [("tickets", "0012_ticket_queue_rank")]
    operations = [
        TrigramExtensionKept(),
        migrations.RunPython(indexes_create, indexes_drop, elidable=False),
    ]
