"""The autopilot's pass runs every minute on the worker (django-q2), as the outbox sweep does."""

from django.db import migrations

NAME = "autopilot pass"
FUNC = "dispatch.autopilot.tasks.autopilot_tick"


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Schedule.name is not unique: looked up by name and function to stay idempotent.
    if not Schedule.objects.filter(name=NAME, func=FUNC).exists():
        Schedule.objects.create(name=NAME, func=FUNC, schedule_type="I", minutes=1, repeats=-1)


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME, func=FUNC).delete()


class Migration(migrations.Migration):
    dependencies = [("autopilot", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]

    operations = [migrations.RunPython(schedule, unschedule)]
