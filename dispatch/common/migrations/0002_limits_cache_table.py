"""The per-client counters (sign-in and API limits, the request form's) get a cache table of their
own, so a flood of counters from many addresses culls counters, never the used webhook tokens or
the autonomy pauses kept in the default cache. `createcachetable` creates only what is missing."""

from django.core.management import call_command
from django.db import migrations


def cache_tables_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("common", "0001_cache_table")]
    operations = [migrations.RunPython(cache_tables_create, migrations.RunPython.noop, elidable=False)]
