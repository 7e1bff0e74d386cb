"""No technician is ever double-booked, even by two requests racing: on PostgreSQL the database
refuses overlapping HELD/CONFIRMED appointments of one technician (an exclusion constraint on
the technician and the [start, end) range).

SQLite has no exclusion constraints; there the same rule is checked in services.py under the
technician's lock (SQLite's IMMEDIATE transactions serialise writers). The constraint is not
declared on the model, so this one migration serves both databases.
"""
from django.db import migrations
from django.db.models import Func, Q

CONSTRAINT_NAME = "appointment_no_technician_overlap"


def _exclusion_constraint():
    # Imported here: django.contrib.postgres is only usable when the database is PostgreSQL.
    from django.contrib.postgres.constraints import ExclusionConstraint
    from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators

    class TsTzRange(Func):
        function = "TSTZRANGE"
        output_field = DateTimeRangeField()

    return ExclusionConstraint(
        name=CONSTRAINT_NAME,
        expressions=[
            ("technician", RangeOperators.EQUAL),
            # Half-open: a job ending at 11:00 and the next starting at 11:00 do not overlap.
            (
                TsTzRange("start", "end", RangeBoundary(inclusive_lower=True, inclusive_upper=False)),
                RangeOperators.OVERLAPS,
            ),
        ],
        condition=Q(technician__isnull=False, status__in=["HELD", "CONFIRMED"]),
    )


def constraint_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # btree_gist lets a GiST index compare the technician id with "=" next to the range.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.add_constraint(apps.get_model("scheduling", "Appointment"), _exclusion_constraint())


def constraint_remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_constraint(apps.get_model("scheduling", "Appointment"), _exclusion_constraint())


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(constraint_add, constraint_remove, elidable=False)]
