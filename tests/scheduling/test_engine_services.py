"""The engine behind the services: schedule.suggest (read-only, role- and scope-checked), its
windows proposed and confirmed with their technician, and assignment.recommend's availability."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import Appointment
from dispatch.scheduling.services import (
    assignment_recommend,
    schedule_confirm,
    schedule_propose,
    schedule_suggest,
)
from dispatch.tickets.models import AuditEvent
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    TimeOffFactory,
    actor_for,
    shifts_every_day,
    ticket_new,
    ticket_ready_to_schedule,
    window_at,
)

pytestmark = pytest.mark.django_db


def _tech(name, **kwargs):
    technician = TechnicianFactory(display_name=name, skills=["DOOR_WONT_LATCH"], **kwargs)
    shifts_every_day(technician, start="06:00", end="20:00", timezone="UTC")
    return technician


def test_suggest_returns_windows_with_technicians_and_reasons_and_writes_nothing(dispatcher):
    dana = _tech("Dana Reyes")
    ticket = ticket_ready_to_schedule()
    events = AuditEvent.objects.count()

    answer = schedule_suggest(actor=dispatcher, ticket_id=ticket.id)

    assert answer["ticket_id"] == str(ticket.id)
    assert len(answer["windows"]) == 3
    first = answer["windows"][0]
    assert first["tech_id"] == str(dana.id) and first["tech_name"] == "Dana Reyes"
    assert first["reason"].startswith("Dana Reyes: has DOOR_WONT_LATCH level 3, 0 min from home")
    start, end = parse_datetime(first["start"]), parse_datetime(first["end"])
    assert end - start == timedelta(minutes=60)
    assert parse_datetime(first["arrival_window"]["start"]) == start
    assert {"score", "travel_minutes"} <= set(first)
    assert answer["explanation"]
    assert AuditEvent.objects.count() == events


def test_an_agent_proposes_the_suggested_windows_and_the_confirmation_books_their_technician(dispatcher):
    dana = _tech("Dana Reyes")
    ticket = ticket_ready_to_schedule()
    agent = actor_for("agent")
    windows = schedule_suggest(actor=agent, ticket_id=ticket.id, limit=2)["windows"]

    schedule_propose(actor=agent, ticket_id=ticket.id, options=windows)
    chosen = windows[1]
    outcome = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=chosen["start"], end=chosen["end"])

    appointment = Appointment.objects.get(pk=outcome.result["appointment_id"])
    assert appointment.technician_id == dana.id
    assert outcome.ticket.state == "SCHEDULED"


def test_suggest_checks_role_scope_state_and_input():
    ticket = ticket_ready_to_schedule()
    with pytest.raises(DispatchError) as refused:
        schedule_suggest(actor=actor_for("technician"), ticket_id=ticket.id)
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    other_account = SiteFactory().account_id
    with pytest.raises(DispatchError) as refused:
        schedule_suggest(actor=actor_for("agent", account_ids=frozenset({str(other_account)})), ticket_id=ticket.id)
    assert refused.value.code == "FORBIDDEN_SCOPE"
    in_scope = actor_for("agent", account_ids=frozenset({str(ticket.account_id)}))
    assert schedule_suggest(actor=in_scope, ticket_id=ticket.id)["windows"] == []
    with pytest.raises(DispatchError) as refused:
        schedule_suggest(actor=actor_for("dispatcher"), ticket_id=ticket_new().id)
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    with pytest.raises(DispatchError) as refused:
        schedule_suggest(actor=in_scope, ticket_id=ticket.id, horizon_days=0)
    assert refused.value.details["field"] == "horizon_days"


def test_an_impossible_ticket_is_explained_by_the_service(dispatcher):
    ticket = ticket_ready_to_schedule(incident_type="FRAME_OR_GLASS_DAMAGE")
    _tech("Dana Reyes")
    answer = schedule_suggest(actor=dispatcher, ticket_id=ticket.id)
    assert answer["windows"] == []
    assert answer["explanation"] == (
        "No active technician is skilled for Frame or glass damage. "
        "A setup gap: add the skill to a technician (see Setup health)."
    )
    assert answer["excluded"] == {"skill": 1}


def test_recommend_uses_the_engines_availability_rules(dispatcher):
    start, end = window_at(days=3, hour=9)
    dana = _tech("Dana Reyes")
    _tech("Eli Park")
    TimeOffFactory(technician=dana, start=start - timedelta(hours=1), end=end + timedelta(hours=1), reason="Training")
    ticket = ticket_ready_to_schedule()
    outcome = assignment_recommend(
        actor=dispatcher,
        ticket_id=ticket.id,
        service_type="DOOR_WONT_LATCH",
        preferred_window={"start": start.isoformat(), "end": end.isoformat()},
    )
    by_name = {c["name"]: c for c in outcome.result["candidates"]}
    assert by_name["Eli Park"]["available"] is True
    assert by_name["Dana Reyes"]["available"] is False
    assert (
        by_name["Dana Reyes"]["reasons"][2].startswith("off ") and "(Training)" in by_name["Dana Reyes"]["reasons"][2]
    )
    assert outcome.result["candidates"][0]["name"] == "Eli Park"
