"""Two day planners applying at once on PostgreSQL: the executor's locks let one plan land whole
and refuse the other whole; no technician is ever double-booked."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection

from dispatch.common.errors import DispatchError
from dispatch.common.roles import role_groups_sync
from dispatch.scheduling.day_planner import day_plan, day_plan_apply
from dispatch.scheduling.models import Appointment
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, actor_for, ticket_scheduled
from tests.scheduling.board_desk import at, technician, tomorrow

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _crossed_day():
    role_groups_sync()
    ana, ben = technician("Ana North"), technician("Ben South")
    for tech, (lat, lng) in ((ana, ("37.870000", "-122.270000")), (ben, ("37.650000", "-122.100000"))):
        tech.home_lat, tech.home_lng = lat, lng
        tech.save(update_fields=["home_lat", "home_lng"])
    for tech, lat, lng in ((ana, 37.65, -122.10), (ben, 37.87, -122.27)):
        for n, hour in enumerate((9, 11, 13)):
            site = SiteFactory(lat=f"{lat + n * 0.004:.6f}", lng=f"{lng:.6f}")
            ticket_scheduled(technician=tech, site=site, start=at(hour), end=at(hour + 1, 30))


def test_two_planners_applying_at_once_land_one_plan_and_double_book_no_one():
    _crossed_day()
    plans = [day_plan(day=tomorrow()), day_plan(day=tomorrow())]
    assert all(plan.status == "improved" for plan in plans)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def apply(plan):
        try:
            barrier.wait(timeout=30)
            day_plan_apply(actor=actor_for("dispatcher"), moves=[m.as_json() for m in plan.moves])
            outcomes.append("applied")
        except DispatchError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(outcomes) == ["PLAN_STALE", "applied"]
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == len(plans[0].moves)
    booked = list(Appointment.objects.filter(status__in=["HELD", "CONFIRMED"]).order_by("technician_id", "start"))
    assert len(booked) == 6
    for a, b in itertools.pairwise(booked):
        if a.technician_id == b.technician_id:
            assert a.end <= b.start, f"{a} overlaps {b}"
