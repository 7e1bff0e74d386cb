"""Two crew bookings that share one technician, made at the same moment on PostgreSQL: exactly one
wins, the other is refused and books nothing, and nobody is booked twice."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from dispatch.closeout.models import IncidentTemplate
from dispatch.common.errors import DispatchError
from dispatch.scheduling.booking import appointment_book
from dispatch.scheduling.models import Appointment
from tests.factories import TechnicianFactory, actor_for, shifts_every_day, ticket_ready_to_schedule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LA = ZoneInfo("America/Los_Angeles")
HEAVY_DOOR = "HEAVY_DOOR_INSTALL"
OVERLAPPING_PAIRS_SQL = """
    SELECT count(*) FROM scheduling_appointment a JOIN scheduling_appointment b
      ON a.technician_id = b.technician_id AND a.id < b.id
     AND a.status IN ('HELD', 'CONFIRMED') AND b.status IN ('HELD', 'CONFIRMED')
     AND a.start < b."end" AND b.start < a."end"
"""


def _overlapping_pairs() -> int:
    with connection.cursor() as cursor:
        cursor.execute(OVERLAPPING_PAIRS_SQL)
        return cursor.fetchone()[0]


def test_two_crew_bookings_sharing_a_technician_at_the_same_time_book_exactly_one():
    IncidentTemplate.objects.update_or_create(
        incident_type=HEAVY_DOOR,
        defaults={"name": "Heavy door install", "crew_size": 2, "default_duration_minutes": 120},
    )
    techs = []
    for name in ("Luis Ortega", "Ana Ruiz", "Kim Lee"):
        tech = TechnicianFactory(display_name=name, skills=[HEAVY_DOOR], region_codes=["EAST_BAY"])
        shifts_every_day(tech, start="06:00", end="20:00")
        techs.append(tech)
    luis, ana, kim = techs
    day = timezone.now().astimezone(LA).date() + timedelta(days=1)
    for round_number, hour in enumerate((9, 13)):
        start = datetime.combine(day, time(hour), tzinfo=LA)
        # Ana is on both crews; each crew's lead is someone else, so the locks are taken in
        # different orders of the request but the same order of ids.
        contenders = [
            (ticket_ready_to_schedule(incident_type=HEAVY_DOOR), luis, ana),
            (ticket_ready_to_schedule(incident_type=HEAVY_DOOR), kim, ana),
        ]
        barrier = threading.Barrier(len(contenders))
        outcomes: dict = {}

        def book(ticket, lead, member, start=start, barrier=barrier, outcomes=outcomes):
            try:
                barrier.wait(timeout=30)
                appointment_book(
                    actor=actor_for("dispatcher"),
                    ticket_id=ticket.id,
                    technician_id=lead.id,
                    crew=[member.id],
                    start=start,
                    end=start + timedelta(hours=2),
                )
                outcomes[ticket.id] = "booked"
            except DispatchError as exc:
                outcomes[ticket.id] = exc.code
            finally:
                connection.close()

        threads = [threading.Thread(target=book, args=contender) for contender in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert sorted(outcomes.values()) == ["SLOT_RULE_VIOLATION", "booked"], (round_number, outcomes)
        loser = next(ticket for ticket, *_ in contenders if outcomes[ticket.id] != "booked")
        winner = next(ticket for ticket, *_ in contenders if outcomes[ticket.id] == "booked")
        assert not Appointment.objects.filter(ticket=loser).exists()
        assert Appointment.objects.filter(ticket=winner, status="CONFIRMED").count() == 2
        loser.refresh_from_db()
        assert loser.state == "READY_TO_SCHEDULE"
    assert _overlapping_pairs() == 0
    assert Appointment.objects.filter(technician=ana, status="CONFIRMED").count() == 2
