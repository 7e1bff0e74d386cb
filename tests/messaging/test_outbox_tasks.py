"""The django-q2 side: the sweep is scheduled every minute, and the tasks call the services."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_q.models import Schedule

from dispatch.messaging import tasks
from dispatch.messaging.models import MessageTemplate, OutboundMessage
from dispatch.messaging.services import outbox_enqueue

seed_migration = importlib.import_module("dispatch.messaging.migrations.0002_seed_templates_and_sweep")


@pytest.mark.django_db
def test_the_sweep_runs_every_minute_and_seeding_again_adds_nothing():
    sweep = Schedule.objects.get(func="dispatch.messaging.tasks.outbox_sweep")
    assert (sweep.schedule_type, sweep.minutes, sweep.repeats) == (Schedule.MINUTES, 1, -1)
    MessageTemplate.objects.filter(code="reminder", language="en").update(
        body="{company}: edited by the office {window}"
    )
    templates_before = MessageTemplate.objects.count()
    # The seed as it ran: against the models as they stood at that migration.
    state = MigrationLoader(connection).project_state(("messaging", "0002_seed_templates_and_sweep"))
    seed_migration.seed(state.apps, None)
    assert Schedule.objects.filter(func="dispatch.messaging.tasks.outbox_sweep").count() == 1
    assert MessageTemplate.objects.count() == templates_before
    # Seeding never overwrites a text someone edited in the admin.
    assert (
        MessageTemplate.objects.get(language="en", code="reminder").body == "{company}: edited by the office {window}"
    )


@pytest.mark.django_db
def test_the_tasks_deliver_and_sweep(live_sms, clock, sync_queue):
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    assert tasks.outbox_deliver(str(message.pk)) == OutboundMessage.Status.SENT
    assert tasks.outbox_deliver(str(message.pk)) == "NOT_CLAIMED"
    assert tasks.outbox_sweep() == {"recorded_sent": 0, "reclaimed": 0, "dead_lettered": 0, "queued": 0}
    assert len(live_sms.sent) == 1


@pytest.mark.django_db
def test_a_broker_outage_at_commit_loses_no_message(
    live_sms, clock, sync_queue, monkeypatch, django_capture_on_commit_callbacks
):
    import django_q.tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(django_q.tasks, "async_task", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.PENDING
    assert live_sms.requests == []
    clock.advance(minutes=1)
    tasks.outbox_sweep()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert len(live_sms.sent) == 1
