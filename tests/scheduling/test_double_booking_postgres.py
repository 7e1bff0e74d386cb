"""No technician is ever double-booked on PostgreSQL: not by racing requests, not even by a write
that skips the service's lock (the exclusion constraint refuses it)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from dispatch.common.errors import DispatchError
from dispatch.scheduling import appointments as scheduling_appointments
from dispatch.scheduling.models import Appointment
from dispatch.scheduling.services import schedule_confirm
from tests.factories import (
    AppointmentFactory,
    TechnicianFactory,
    actor_for,
    shifts_every_day,
    ticket_proposed,
    window_at,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

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


def test_racing_confirmations_for_one_technician_book_exactly_one():
    tech = TechnicianFactory()
    shifts_every_day(tech, start="06:00", end="20:00")
    start, end = window_at(hour=9)
    contenders = []
    for shift in range(16):
        # Sixteen tickets, each offered a window overlapping all the others for the same technician.
        window = (start + timedelta(minutes=5 * shift), end + timedelta(minutes=5 * shift))
        option = {"start": window[0].isoformat(), "end": window[1].isoformat(), "tech_id": str(tech.id)}
        contenders.append((ticket_proposed(options=[option]), window))
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []
    refusals: list[DispatchError] = []

    def confirm(ticket, window):
        try:
            barrier.wait(timeout=30)
            schedule_confirm(actor=actor_for("dispatcher"), ticket_id=ticket.id, start=window[0], end=window[1])
            outcomes.append("booked")
        except DispatchError as exc:
            outcomes.append(exc.code)
            refusals.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=contender) for contender in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["TECH_UNAVAILABLE"] * 15 + ["booked"]
    assert all(refusal.status == 409 and refusal.dimension == "assignment" for refusal in refusals)
    # Each loser is handed a fresh proposal, and none of its windows is the one just taken.
    booked = Appointment.objects.get(technician=tech, status="CONFIRMED")
    for refusal in refusals:
        assert refusal.details["suggested_windows"], refusal.details.get("suggestion_explanation")
        for window in refusal.details["suggested_windows"]:
            if window["tech_id"] == str(tech.id):
                offered = (datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]))
                assert not (offered[0] < booked.end and booked.start < offered[1])
    assert Appointment.objects.filter(technician=tech, status="CONFIRMED").count() == 1
    assert _overlapping_pairs() == 0


def test_the_database_refuses_an_overlapping_booking_made_behind_the_services_back():
    tech = TechnicianFactory()
    start, end = window_at(hour=9)
    AppointmentFactory(technician=tech, start=start, end=end)

    with pytest.raises(IntegrityError, match="appointment_no_technician_overlap"), transaction.atomic():
        AppointmentFactory(technician=tech, start=start + timedelta(hours=1), end=end + timedelta(hours=1))

    # What the constraint allows: back to back, another technician, a cancelled or held-vs-none slot.
    AppointmentFactory(technician=tech, start=end, end=end + timedelta(hours=1))
    AppointmentFactory(technician=TechnicianFactory(), start=start, end=end)
    AppointmentFactory(technician=tech, start=start, end=end, status="CANCELLED")
    AppointmentFactory(technician=None, start=start, end=end)
    assert _overlapping_pairs() == 0


def test_a_constraint_violation_is_answered_as_tech_unavailable(monkeypatch):
    tech = TechnicianFactory()
    start, end = window_at(hour=13)
    AppointmentFactory(technician=tech, start=start, end=end)
    ticket = ticket_proposed(options=[{"start": start.isoformat(), "end": end.isoformat(), "tech_id": str(tech.id)}])
    # Pretend the locked check missed the clash (as a write from another code path would):
    # the database's refusal must still come back as the same clear 409.
    monkeypatch.setattr(
        scheduling_appointments, "appointments_booked_overlapping", lambda **kwargs: Appointment.objects.none()
    )

    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=actor_for("dispatcher"), ticket_id=ticket.id, start=start, end=end)

    assert (refused.value.code, refused.value.status) == ("TECH_UNAVAILABLE", 409)
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert Appointment.objects.filter(technician=tech).count() == 1
