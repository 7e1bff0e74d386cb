"""The autopilot's evening step: tomorrow's routes re-planned once, from the plan hour, moving
only what the ladder lets the autopilot book, each move audited as the autopilot's."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from dispatch.autopilot.models import AutonomyLevel, EveningPlan
from dispatch.autopilot.services import autopilot_pass
from dispatch.scheduling.models import Appointment
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, ticket_scheduled
from tests.scheduling.board_desk import LA, at, role_groups_fixture, technician, tomorrow  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _evening_on(settings):
    settings.DISPATCH_AUTOPILOT_EVENING_PLAN = True
    settings.DISPATCH_AUTOPILOT_PLAN_HOUR = 16


def _today_at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(tomorrow() - timedelta(days=1), time(hour, minute), tzinfo=LA)


@pytest.fixture
def crossed():
    ana, ben = technician("Ana North"), technician("Ben South")
    for tech, (lat, lng) in ((ana, ("37.870000", "-122.270000")), (ben, ("37.650000", "-122.100000"))):
        tech.home_lat, tech.home_lng = lat, lng
        tech.save(update_fields=["home_lat", "home_lng"])
    tickets = []
    for tech, lat, lng in ((ana, 37.65, -122.10), (ben, 37.87, -122.27)):
        for n, hour in enumerate((9, 11)):
            site = SiteFactory(lat=f"{lat + n * 0.004:.6f}", lng=f"{lng:.6f}")
            tickets.append(ticket_scheduled(technician=tech, site=site, start=at(hour), end=at(hour + 1, 30)))
    return tickets


def test_the_evening_pass_replans_tomorrow_once_as_the_autopilot(crossed):
    autopilot_pass(now=_today_at(15, 59))
    assert not EveningPlan.objects.exists()  # not yet the plan hour

    autopilot_pass(now=_today_at(16, 5))

    plan = EveningPlan.objects.get(day=tomorrow())
    assert plan.status == "improved" and plan.moves == 4 and plan.minutes_saved > 60
    events = AuditEvent.objects.filter(tool_name="schedule.optimize_day")
    assert events.count() == 4 and {e.actor_id for e in events} == {"autopilot"}
    # The next pass that evening plans nothing again.
    autopilot_pass(now=_today_at(16, 6))
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 4
    assert EveningPlan.objects.count() == 1


def test_jobs_below_the_booking_rung_stay_where_they_are(crossed):
    AutonomyLevel.objects.create(incident_type="DOOR_WONT_LATCH", priority="", level=0)
    booked = {a.pk for a in Appointment.objects.filter(status="CONFIRMED")}

    autopilot_pass(now=_today_at(17))

    plan = EveningPlan.objects.get(day=tomorrow())
    assert plan.status == "unchanged" and plan.moves == 0
    assert {a.pk for a in Appointment.objects.filter(status="CONFIRMED")} == booked


def test_an_evening_plan_that_failed_is_tried_again_a_few_times_then_left(crossed, monkeypatch):
    from dispatch.autopilot import evening

    def broken(**kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(evening, "day_plan", broken)
    for minute in range(5):
        autopilot_pass(now=_today_at(16, minute))
    plan = EveningPlan.objects.get(day=tomorrow())
    assert plan.status == "error" and plan.attempts == evening.MAX_ATTEMPTS

    monkeypatch.undo()
    autopilot_pass(now=_today_at(16, 10))
    assert EveningPlan.objects.get(day=tomorrow()).status == "error"  # given up: a person looks
