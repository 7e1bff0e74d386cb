"""Crew jobs through the toolset: schedule.suggest names each window's crew and days (fields added
beside the contract's, which stay as they were), schedule.confirm books the whole crew, and each
crew member reads the job packet as its technician does."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.closeout.models import IncidentTemplate
from dispatch.scheduling.models import Appointment
from tests.api.test_roles import call
from tests.factories import TechnicianFactory, shifts_every_day, ticket_ready_to_schedule

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
HEAVY_DOOR = "HEAVY_DOOR_INSTALL"


def test_an_agent_offers_crew_windows_and_the_confirmation_books_the_whole_crew(client):
    IncidentTemplate.objects.create(
        incident_type=HEAVY_DOOR, name="Heavy door install", crew_size=2, default_duration_minutes=120
    )
    crew = []
    for name in ("Luis Ortega", "Ana Ruiz"):
        tech = TechnicianFactory(display_name=name, skills=[HEAVY_DOOR], region_codes=["EAST_BAY"])
        shifts_every_day(tech, start="07:00", end="17:00")
        crew.append(tech)
    outsider = TechnicianFactory(display_name="Kim Lee", skills=[HEAVY_DOOR], region_codes=["NORTH_BAY"])
    shifts_every_day(outsider, start="07:00", end="17:00")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)

    suggested = call(client, "schedule.suggest", role="agent", ticket_id=ticket.id, payload={"limit": 2})
    assert suggested.status_code == 200, suggested.content
    windows = suggested.json()["windows"]
    assert windows
    for window in windows:
        # The contract's fields, as before, and the crew beside them.
        assert {"tech_id", "tech_name", "start", "end", "arrival_window", "reason"} <= set(window)
        assert {member["tech_name"] for member in window["crew"]} == {"Luis Ortega", "Ana Ruiz"}
        assert window["crew"][0]["tech_id"] == window["tech_id"]
        assert len(window["days"]) == 1

    proposed = call(client, "schedule.propose", role="agent", ticket_id=ticket.id, payload={"options": windows})
    assert proposed.status_code == 200, proposed.content
    first = windows[0]
    confirmed = call(
        client,
        "schedule.confirm",
        role="dispatcher",
        ticket_id=ticket.id,
        payload={"start": first["start"], "end": first["end"]},
    )
    assert confirmed.status_code == 200, confirmed.content
    assert {part.technician_id for part in Appointment.objects.filter(ticket=ticket, status="CONFIRMED")} == {
        tech.id for tech in crew
    }

    for member in crew:
        packet = call(client, "tech.job_packet", role="technician", ticket_id=ticket.id, actor_id=member.user.username)
        assert packet.status_code == 200, packet.content
    refused = call(client, "tech.job_packet", role="technician", ticket_id=ticket.id, actor_id=outsider.user.username)
    assert refused.status_code in (403, 404)


def test_confirming_a_crew_window_refuses_when_a_member_was_booked_meanwhile(client):
    IncidentTemplate.objects.create(
        incident_type=HEAVY_DOOR, name="Heavy door install", crew_size=2, default_duration_minutes=120
    )
    luis, ana = (
        TechnicianFactory(display_name=name, skills=[HEAVY_DOOR], region_codes=["EAST_BAY"])
        for name in ("Luis Ortega", "Ana Ruiz")
    )
    for tech in (luis, ana):
        shifts_every_day(tech, start="07:00", end="17:00")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)
    start = datetime.combine(timezone.now().astimezone(LA).date() + timedelta(days=1), time(9), tzinfo=LA)
    option = {
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "tech_id": str(luis.id),
        "crew": [{"tech_id": str(luis.id)}, {"tech_id": str(ana.id)}],
    }
    proposed = call(client, "schedule.propose", role="agent", ticket_id=ticket.id, payload={"options": [option]})
    assert proposed.status_code == 200, proposed.content
    other = ticket_ready_to_schedule()
    Appointment.objects.create(
        ticket=other, technician=ana, start=start + timedelta(hours=1), end=start + timedelta(hours=3)
    )

    refused = call(
        client,
        "schedule.confirm",
        role="dispatcher",
        ticket_id=ticket.id,
        payload={"start": option["start"], "end": option["end"]},
    )

    assert refused.status_code == 409, refused.content
    assert refused.json()["error"]["code"] == "SLOT_RULE_VIOLATION"
    assert not Appointment.objects.filter(ticket=ticket).exists()
