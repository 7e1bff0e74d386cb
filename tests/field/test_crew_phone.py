"""A job for a crew on each crew member's phone: listed, opened and worked on as their own; a
technician who is not on the crew still cannot open it."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dispatch.closeout.models import Evidence, IncidentTemplate
from dispatch.scheduling.assignment import assignment_dispatch
from dispatch.scheduling.booking import appointment_book
from dispatch.tickets.models import AuditEvent
from tests.factories import TechnicianFactory, actor_for, shifts_every_day, ticket_ready_to_schedule

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
PASSWORD = "correct-horse-battery"
HEAVY_DOOR = "HEAVY_DOOR_INSTALL"


def signed_in(user) -> Client:
    client = Client()
    answer = client.post("/tech/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code
    return client


def technician(name: str):
    tech = TechnicianFactory(display_name=name, skills=[HEAVY_DOOR], region_codes=["EAST_BAY"])
    shifts_every_day(tech, start="00:00", end="23:59")
    return tech


@pytest.fixture
def crew_job():
    IncidentTemplate.objects.create(
        incident_type=HEAVY_DOOR, name="Heavy door install", crew_size=2, default_duration_minutes=120
    )
    luis, ana, kim = technician("Luis Ortega"), technician("Ana Ruiz"), technician("Kim Lee")
    dispatcher = actor_for("dispatcher")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR, customer_name="Morgan Lee")
    start = datetime.combine(timezone.now().astimezone(LA).date() + timedelta(days=1), time(9), tzinfo=LA)
    appointment_book(
        actor=dispatcher,
        ticket_id=ticket.id,
        technician_id=luis.id,
        crew=[ana.id],
        start=start,
        end=start + timedelta(hours=2),
    )
    assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=luis.id)
    return ticket, luis, ana, kim


def test_each_crew_member_sees_the_job_on_their_phone(crew_job):
    ticket, luis, ana, kim = crew_job
    for member, other in ((luis, "Ana Ruiz"), (ana, "Luis Ortega")):
        client = signed_in(member.user)
        jobs = client.get(reverse("field:jobs")).content.decode()
        assert "Heavy door install" in jobs
        assert f"Crew of 2 with {other}" in jobs
        assert reverse("field:job", args=[ticket.id]) in jobs  # opens, as their own job does
        page = client.get(reverse("field:job", args=[ticket.id]))
        assert page.status_code == 200
        assert "Morgan" in page.content.decode()

    outsider = signed_in(kim.user)
    assert "Heavy door install" not in outsider.get(reverse("field:jobs")).content.decode()
    assert outsider.get(reverse("field:job", args=[ticket.id])).status_code == 404


def test_a_crew_member_adds_a_note_to_the_shared_job_and_an_outsider_cannot(crew_job):
    ticket, _luis, ana, kim = crew_job
    before = AuditEvent.objects.filter(ticket=ticket).count()

    answer = signed_in(ana.user).post(
        reverse("field:act", args=[ticket.id, "note"]),
        {"evidence_key": "", "text": "Second pair of hands: hinge side lifted."},
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_X_FIELD_FETCH="1",
    )

    assert answer.status_code == 200, answer.content
    assert AuditEvent.objects.filter(ticket=ticket).count() == before + 1
    assert Evidence.objects.filter(ticket=ticket, kind="NOTE").count() == 1
    refused = signed_in(kim.user).post(
        reverse("field:act", args=[ticket.id, "note"]),
        {"evidence_key": "", "text": "Not my job."},
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_X_FIELD_FETCH="1",
    )
    assert refused.status_code == 404
    assert Evidence.objects.filter(ticket=ticket, kind="NOTE").count() == 1
