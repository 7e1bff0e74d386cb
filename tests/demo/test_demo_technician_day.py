"""What a newcomer signing in as tech.dana finds after `load_demo` on a working morning: a working
day today (in the site's timezone) with a job in each state a technician meets, her next days
booked, the door hardware in the price book, and a registered phone her "Y" is known by.

(On a weekend or at night the demo is a coherent day too, with her present at her last shift's
end: test_demo_coherent_day.py reads it at every weekday and several hours.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from dispatch.closeout.models import Evidence, IncidentTemplate, PriceBookItem
from dispatch.intake.technician_messages import technician_for_phone
from dispatch.scheduling.engine import step_minutes
from dispatch.scheduling.models import Appointment, AppointmentStatus, DispatchAcknowledgement
from dispatch.scheduling.tech_replies import dispatch_waiting_for
from dispatch.technicians.models import Technician
from dispatch.tickets.states import TicketState

pytestmark = pytest.mark.django_db

FINISHED = {
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
    TicketState.INVOICED,
    TicketState.CLOSED,
}


# A Tuesday at half past ten in the Bay Area, the moment the stories are told for (timeline.NOMINAL_NOW).
WORKING_MORNING = datetime(2026, 12, 8, 10, 30, tzinfo=ZoneInfo("America/Los_Angeles"))


@pytest.fixture(autouse=True)
def _working_morning():
    with time_machine.travel(WORKING_MORNING, tick=True):
        yield


def _load() -> None:
    call_command("load_demo", stdout=StringIO())


def _dana() -> Technician:
    return Technician.objects.select_related("user").get(user__username="tech.dana")


def _her_bookings(dana: Technician):
    """Dana's bookings that stand (held, confirmed or done), with their tickets and sites."""
    return list(
        Appointment.objects.filter(technician=dana)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("ticket", "ticket__site", "ticket__assigned_tech")
        .order_by("start")
    )


def _local_day(appointment: Appointment):
    zone = ZoneInfo(appointment.ticket.site.timezone)
    return appointment.start.astimezone(zone).date(), timezone.now().astimezone(zone).date()


def test_dana_signs_in_to_a_day_with_a_job_in_each_state():
    _load()
    assert (
        authenticate(RequestFactory().post("/tech/login/"), username="tech.dana", password="technician-demo")
        is not None
    )
    dana = _dana()

    today = [a for a in _her_bookings(dana) if _local_day(a)[0] == _local_day(a)[1]]
    by_state: dict[str, list[Appointment]] = {}
    for appointment in today:
        by_state.setdefault(appointment.ticket.state, []).append(appointment)
    assert {TicketState.DISPATCHED, TicketState.SCHEDULED, TicketState.IN_PROGRESS} <= set(by_state)
    assert FINISHED & set(by_state), f"nothing finished today: {sorted(by_state)}"
    for appointment in today:
        ticket = appointment.ticket
        # Booked to her; from dispatch on, the ticket is assigned to her too.
        assert appointment.technician_id == dana.id
        if ticket.state != TicketState.SCHEDULED:
            assert ticket.assigned_tech_id == dana.id, (ticket.summary, ticket.state)
        zone = ZoneInfo(ticket.site.timezone)
        assert 7 <= appointment.start.astimezone(zone).hour < 17
    # The clock ticks here (now carries seconds), yet every booking starts on the slot grid.
    for appointment in _her_bookings(dana):
        start = appointment.start
        assert start.minute % step_minutes() == 0 and start.second == start.microsecond == 0, appointment


def test_her_dispatched_job_waits_for_her_acknowledgement():
    _load()
    dana = _dana()
    dispatched = [a.ticket for a in _her_bookings(dana) if a.ticket.state == TicketState.DISPATCHED]
    assert dispatched
    assert not DispatchAcknowledgement.objects.filter(ticket__in=dispatched).exists()
    # A "Y" from her registered phone would acknowledge it.
    assert dana.phone == "+15105550110"
    assert technician_for_phone(dana.phone) == dana
    assert dispatch_waiting_for(dana.id).ticket in dispatched


def test_her_job_in_progress_still_lacks_some_evidence():
    _load()
    dana = _dana()
    (ticket,) = [a.ticket for a in _her_bookings(dana) if a.ticket.state == TicketState.IN_PROGRESS]
    required = set(IncidentTemplate.objects.get(incident_type=ticket.incident_type).required_evidence_keys)
    have = set(Evidence.objects.filter(ticket=ticket).values_list("evidence_key", flat=True))
    assert have and have < required, (have, required)


def test_her_next_days_are_booked_and_a_job_is_scheduled_today_or_tomorrow():
    _load()
    dana = _dana()
    bookings = _her_bookings(dana)
    ahead = [a for a in bookings if 1 <= (_local_day(a)[0] - _local_day(a)[1]).days <= 3]
    assert len(ahead) >= 2
    assert all(a.ticket.state == TicketState.SCHEDULED for a in ahead)
    soon = [
        a
        for a in bookings
        if a.ticket.state == TicketState.SCHEDULED and (_local_day(a)[0] - _local_day(a)[1]) <= timedelta(days=1)
    ]
    assert soon


def test_the_templates_of_her_jobs_ask_for_evidence_and_a_checklist():
    _load()
    types = {a.ticket.incident_type for a in _her_bookings(_dana())}
    assert types
    for template in IncidentTemplate.objects.filter(incident_type__in=types):
        assert template.required_evidence_keys and template.required_checklist_keys, template.incident_type
    assert IncidentTemplate.objects.filter(incident_type__in=types).count() == len(types)


def test_the_price_book_has_the_usual_door_hardware():
    _load()
    names = " | ".join(PriceBookItem.objects.values_list("name", flat=True)).lower()
    for part in ("latch", "strike plate", "closer", "hinge set", "deadbolt"):
        assert part in names, part
    assert all(cents > 0 for cents in PriceBookItem.objects.values_list("unit_cents", flat=True))
