"""Two autopilot workers at once on PostgreSQL: each job is moved once. They rely on the executor's
row lock and the version each decision names, not on luck."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from dispatch.autopilot.models import AutonomyLevel
from dispatch.autopilot.services import autopilot_pass
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.models import Appointment, ScheduleProposal
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, TechnicianFactory, shifts_every_day, ticket_ready_to_schedule, ticket_triaged

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 4


def _passes_at_once() -> list:
    barrier = threading.Barrier(WORKERS)
    decisions: list = []
    errors: list = []
    lock = threading.Lock()

    def work():
        try:
            barrier.wait()
            found = autopilot_pass()
            with lock:
                decisions.extend(found)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return decisions


def test_workers_racing_on_the_same_jobs_propose_and_dispatch_each_once():
    AutonomyLevel.objects.create(incident_type="", priority="", level=2)
    tech = TechnicianFactory(skills=["DOOR_WONT_LATCH"])
    shifts_every_day(tech, start="00:00", end="23:59", timezone="UTC")
    ready = [ticket_ready_to_schedule(site=SiteFactory(), customer_phone=f"+1510555{7000 + i}") for i in range(3)]
    emergency = ticket_triaged(site=SiteFactory(), customer_phone="+15105557999")

    decisions = _passes_at_once()

    acted = [d for d in decisions if d.action in ("proposed", "dispatched")]
    assert sorted(d.ticket_id for d in acted) == sorted(str(t.pk) for t in [*ready, emergency])
    assert {d.action for d in decisions} <= {"proposed", "dispatched", "conflict"}
    for ticket in ready:
        assert ScheduleProposal.objects.filter(ticket=ticket).count() == 1
        assert OutboundMessage.objects.filter(ticket=ticket, template="proposal_windows").count() == 1
        assert AuditEvent.objects.filter(ticket=ticket, tool_name="schedule.propose").count() == 1
    assert Appointment.objects.filter(ticket=emergency).count() == 1
    assert AuditEvent.objects.filter(ticket=emergency, tool_name="assignment.dispatch").count() == 1
    assert OutboundMessage.objects.filter(ticket=emergency, template="emergency_dispatched").count() == 1
