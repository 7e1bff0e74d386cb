"""The periodic sweep that compiles any closed ticket's packet whose hand-off to the worker was lost."""
from django.db import migrations

SWEEP_NAME = "closeout packets sweep"
SWEEP_FUNC = "dispatch.closeout.tasks.closeout_packets_sweep"


def seed(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Schedule.name is not unique, so look it up by name and function to stay idempotent.
    if not Schedule.objects.filter(name=SWEEP_NAME, func=SWEEP_FUNC).exists():
        Schedule.objects.create(name=SWEEP_NAME, func=SWEEP_FUNC, schedule_type="I", minutes=1, repeats=-1)


def unseed(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SWEEP_NAME, func=SWEEP_FUNC).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("closeout", "0004_intake_keywords"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
