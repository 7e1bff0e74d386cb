"""assignment.recommend ranks active technicians by skill, region, availability and load, and says why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import RecommendationSnapshot
from dispatch.scheduling.services import assignment_recommend
from dispatch.technicians.models import TechnicianSkill
from dispatch.tickets.models import AuditEvent, StateTransition
from tests.factories import (
    AppointmentFactory,
    SiteFactory,
    TechnicianFactory,
    actor_for,
    shifts_every_day,
    ticket_dispatched,
    ticket_new,
    ticket_ready_to_schedule,
    window_at,
)

pytestmark = pytest.mark.django_db


def _tech(name, *, skills=("AUTO_OPERATOR_FAULT",), level=3, regions=("EAST_BAY",), **kwargs):
    tech = TechnicianFactory(display_name=name, skills=list(skills), region_codes=list(regions), **kwargs)
    TechnicianSkill.objects.filter(technician=tech).update(level=level)
    # window_at() windows are in UTC mornings: a long UTC shift every day covers them.
    shifts_every_day(tech, start="06:00", end="20:00", timezone="UTC")
    return tech


def _window(start, end):
    return {"start": start.isoformat(), "end": end.isoformat()}


def test_candidates_are_ranked_by_skill_region_availability_and_load(dispatcher, settings):
    # A company that weighs workload (off by default) sees each open job count against a technician.
    settings.DISPATCH_SLOT_WEIGHTS = {"workload_per_hour": 1.0}
    start, end = window_at(days=3, hour=9)
    dana = _tech("Dana Reyes", level=3)
    eli = _tech("Eli Park", level=5)
    _tech("Fay Chen", level=4, regions=("PENINSULA",))
    _tech("Gus Moreno", skills=("DOOR_WONT_LATCH",), level=5)
    hal = _tech("Hal Ito", level=5)
    _tech("Ivy Retired", level=5, is_active=False)
    AppointmentFactory(technician=hal, start=start, end=end)  # Hal is booked in the window
    ticket_dispatched(  # one open job for Dana, on another day
        technician=dana,
        incident_type="AUTO_OPERATOR_FAULT",
        start=start + timedelta(days=1),
        end=end + timedelta(days=1),
    )
    ticket = ticket_ready_to_schedule(incident_type="AUTO_OPERATOR_FAULT")

    outcome = assignment_recommend(
        actor=dispatcher,
        ticket_id=ticket.id,
        service_type="AUTO_OPERATOR_FAULT",
        limit=10,
        preferred_window=_window(start, end),
    )

    candidates = outcome.result["candidates"]
    # Skill first; a free technician from another region before a booked local one; the
    # stronger skill level before the busier technician; no skill last; inactive never.
    assert [c["name"] for c in candidates] == ["Eli Park", "Dana Reyes", "Fay Chen", "Hal Ito", "Gus Moreno"]
    # The score is the slot engine's weighting (skill level +3 a level, each open job -1.5 for its
    # typical 90 minutes); the hard rules above order the list before it.
    assert [c["score"] for c in candidates] == [115.0, 107.5, 112.0, 115.0, 100.0]
    by_name = {c["name"]: c for c in candidates}
    assert by_name["Dana Reyes"]["reasons"] == [
        "AUTO_OPERATOR_FAULT level 3",
        "covers EAST_BAY",
        "free in the window",
        "1 open job",
    ]
    assert by_name["Dana Reyes"]["reason"] == (
        "Dana Reyes: AUTO_OPERATOR_FAULT level 3, covers EAST_BAY, free in the window, 1 open job"
    )
    assert by_name["Hal Ito"]["reasons"][2] == "booked in the window"
    assert by_name["Hal Ito"]["available"] is False
    assert by_name["Fay Chen"]["reasons"][1] == "does not cover EAST_BAY"
    assert by_name["Gus Moreno"]["reasons"][0] == "no AUTO_OPERATOR_FAULT skill"
    assert by_name["Eli Park"]["reasons"][3] == "no open jobs"
    assert all(c["available"] for c in candidates if c["name"] != "Hal Ito")
    assert outcome.result["candidates"][0]["tech_id"] == str(eli.id)


def test_the_recommendation_is_stored_and_audited_without_a_state_change(dispatcher):
    _tech("Dana Reyes")
    ticket = ticket_ready_to_schedule(incident_type="AUTO_OPERATOR_FAULT")
    transitions = StateTransition.objects.filter(ticket=ticket).count()

    outcome = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="auto_operator_fault_v2")

    snapshot = RecommendationSnapshot.objects.get(pk=outcome.result["recommendation_snapshot_id"])
    assert snapshot.service_type == "AUTO_OPERATOR_FAULT"
    assert snapshot.candidates == outcome.result["candidates"]
    assert str(snapshot.recommended_tech_id) == outcome.result["candidates"][0]["tech_id"]
    assert outcome.result["recommendations"] == outcome.result["candidates"]
    event = AuditEvent.objects.filter(ticket=ticket).last()
    assert (event.tool_name, event.before_state, event.after_state) == (
        "assignment.recommend",
        "READY_TO_SCHEDULE",
        "READY_TO_SCHEDULE",
    )
    assert event.payload["recommendation_snapshot_id"] == str(snapshot.id)
    assert StateTransition.objects.filter(ticket=ticket).count() == transitions


def test_without_a_window_the_ticket_schedule_is_used_and_otherwise_the_next_free_slot_is_named(dispatcher):
    tech = _tech("Dana Reyes", skills=("DOOR_WONT_LATCH",))
    ticket = ticket_ready_to_schedule()
    outcome = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="DOOR_WONT_LATCH")
    assert outcome.result["candidates"][0]["reasons"][2].startswith("next free ")
    assert outcome.result["candidates"][0]["available"] is True
    assert outcome.result["window"] is None

    start, end = window_at(days=2)
    AppointmentFactory(technician=tech, start=start, end=end)
    from dispatch.scheduling.services import schedule_confirm, schedule_propose

    schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=[_window(start, end)])
    schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)
    outcome = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="DOOR_WONT_LATCH")
    assert outcome.result["candidates"][0]["reasons"][2] == "booked in the window"


def test_the_ticket_incident_type_counts_as_a_skill_match(dispatcher):
    _tech("Dana Reyes", skills=("CANNOT_SECURE_ENTRY",), level=4)
    ticket = ticket_ready_to_schedule(incident_type="CANNOT_SECURE_ENTRY")
    outcome = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="LOCKSMITH")
    assert outcome.result["candidates"][0]["reasons"][0] == "CANNOT_SECURE_ENTRY level 4"


def test_the_limit_cuts_the_list(dispatcher):
    for n in range(4):
        _tech(f"Tech {n}")
    ticket = ticket_ready_to_schedule()
    outcome = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="AUTO_OPERATOR_FAULT", limit=2)
    assert len(outcome.result["candidates"]) == 2


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"service_type": ""}, "service_type"),
        ({"service_type": "X", "limit": 0}, "recommendation_limit"),
        ({"service_type": "X", "limit": 21}, "recommendation_limit"),
        ({"service_type": "X", "limit": "5"}, "recommendation_limit"),
        (
            {"service_type": "X", "preferred_window": {"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}},
            "preferred_window.end",
        ),
    ],
)
def test_recommend_refuses_bad_input(dispatcher, kwargs, field):
    ticket = ticket_ready_to_schedule()
    with pytest.raises(DispatchError) as refused:
        assignment_recommend(actor=dispatcher, ticket_id=ticket.id, **kwargs)
    assert refused.value.details["field"] == field
    assert not RecommendationSnapshot.objects.exists()


def test_recommend_from_the_wrong_state_and_role(dispatcher):
    with pytest.raises(DispatchError) as refused:
        assignment_recommend(actor=dispatcher, ticket_id=ticket_new().id, service_type="DOOR_WONT_LATCH")
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    with pytest.raises(DispatchError) as refused:
        assignment_recommend(actor=actor_for("technician"), ticket_id=ticket_ready_to_schedule().id, service_type="X")
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    assert (
        assignment_recommend(
            actor=actor_for("agent"), ticket_id=ticket_ready_to_schedule().id, service_type="X"
        ).result["candidates"]
        == []
    )


def _recommend_queries(dispatcher, technician_count: int) -> int:
    site = SiteFactory()
    start, end = window_at(days=5)
    for n in range(technician_count):
        tech = _tech(f"Load {technician_count}-{n}", regions=("EAST_BAY", "PENINSULA"))
        if n % 3 == 0:
            AppointmentFactory(technician=tech, start=start, end=end)
    ticket = ticket_ready_to_schedule(site=site, incident_type="AUTO_OPERATOR_FAULT")
    with CaptureQueriesContext(connection) as queries:
        outcome = assignment_recommend(
            actor=dispatcher,
            ticket_id=ticket.id,
            service_type="AUTO_OPERATOR_FAULT",
            limit=20,
            preferred_window=_window(start, end),
        )
    assert len(outcome.result["candidates"]) == min(20, technician_count + 0)
    return len(queries.captured_queries)


def test_recommend_runs_a_constant_number_of_queries(dispatcher):
    with_three = _recommend_queries(dispatcher, 3)
    with_thirty = _recommend_queries(dispatcher, 30)
    assert with_three == with_thirty


def test_a_recommendation_leaves_the_ticket_as_it_was(dispatcher):
    _tech("Dana Reyes")
    ticket = ticket_ready_to_schedule(incident_type="AUTO_OPERATOR_FAULT")
    version = ticket.version

    outcome = assignment_recommend(
        actor=dispatcher, ticket_id=ticket.id, service_type="AUTO_OPERATOR_FAULT", expected_version=version
    )

    ticket.refresh_from_db()
    assert ticket.version == version == outcome.ticket.version
    assert outcome.result["candidates"][0]["name"] == "Dana Reyes"


def test_a_recommendation_for_a_version_no_longer_current_is_refused(dispatcher):
    ticket = ticket_ready_to_schedule(incident_type="AUTO_OPERATOR_FAULT")
    with pytest.raises(DispatchError) as refused:
        assignment_recommend(
            actor=dispatcher,
            ticket_id=ticket.id,
            service_type="AUTO_OPERATOR_FAULT",
            expected_version=ticket.version - 1,
        )
    assert refused.value.code == "CONCURRENT_MODIFICATION"
    assert not RecommendationSnapshot.objects.exists()
