"""The database cache's table (autonomy pauses, rate limits, used webhook tokens) is created by
`migrate` itself: a deployment that runs only the migrations must not answer 500 on the first
cache read. `createcachetable` creates only the tables that are missing, so this is safe on a
database where it was already run by hand."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop, elidable=False)]
