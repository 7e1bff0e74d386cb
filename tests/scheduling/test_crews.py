"""Jobs for a crew and jobs over several days: offered only when the whole crew is free, booked
whole (one ticket, one audit event), kept together by the board and the day planner, released
together."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dispatch.closeout.models import IncidentTemplate
from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.assignment import assignment_dispatch
from dispatch.scheduling.board import board_day
from dispatch.scheduling.booking import appointment_book, appointment_move
from dispatch.scheduling.day_planner import day_problem_load
from dispatch.scheduling.engine import slots_suggest
from dispatch.scheduling.models import Appointment
from dispatch.scheduling.proposals import schedule_confirm, schedule_propose, suggestion_json
from dispatch.tickets import policy
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.services import ticket_cancel
from tests.factories import (
    AppointmentFactory,
    TechnicianFactory,
    TimeOffFactory,
    actor_for,
    shifts_every_day,
    ticket_ready_to_schedule,
)

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
HEAVY_DOOR = "HEAVY_DOOR_INSTALL"
STOREFRONT = "STOREFRONT_REPLACEMENT"
WEEKDAYS = range(5)


def at(hour: int, minute: int = 0, *, days: int = 1, day: date | None = None) -> datetime:
    day = day or timezone.now().astimezone(LA).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=LA)


def next_friday() -> date:
    """A Friday at least two days ahead: a three-day run from it continues on Monday."""
    day = timezone.now().astimezone(LA).date() + timedelta(days=2)
    while day.weekday() != 4:
        day += timedelta(days=1)
    return day


def technician(name: str, skills=(HEAVY_DOOR, STOREFRONT), weekdays=range(7)):
    tech = TechnicianFactory(display_name=name, skills=list(skills), region_codes=["EAST_BAY"])
    shifts_every_day(tech, start="07:00", end="18:00", weekdays=weekdays)
    return tech


@pytest.fixture(autouse=True)
def templates():
    IncidentTemplate.objects.create(
        incident_type=HEAVY_DOOR, name="Heavy door install", crew_size=2, default_duration_minutes=180
    )
    IncidentTemplate.objects.create(
        incident_type=STOREFRONT, name="Storefront replacement", crew_size=2, days=3, default_duration_minutes=240
    )


def crew_of(window) -> set:
    return {tech_id for tech_id, _name in window.crew}


def test_a_job_type_refuses_a_crew_of_five_or_zero_days():
    template = IncidentTemplate(incident_type="ODD_JOB", name="Odd job", crew_size=5, days=0)
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert {"crew_size", "days"} <= set(refused.value.message_dict)


# --- the search --------------------------------------------------------------------------------


def test_two_person_job_is_offered_only_when_both_technicians_are_free():
    luis, ana = technician("Luis Ortega"), technician("Ana Ruiz")
    technician("Kim Lee", skills=["DOOR_WONT_LATCH"])  # free all day, but not skilled for it
    AppointmentFactory(technician=luis, start=at(9), end=at(12))
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)

    suggestion = slots_suggest(ticket=ticket, now=at(7), horizon_days=1, limit=5)

    assert suggestion.windows, suggestion.explanation
    for window in suggestion.windows:
        assert crew_of(window) == {luis.id, ana.id}
        # Luis is busy until noon: no window of the pair starts before he is free.
        assert window.start >= at(12)
        assert window.end - window.start == timedelta(hours=3)
        assert "Crew of" not in window.reason and "crew of 2" in window.reason


def test_two_person_job_is_not_offered_when_only_one_technician_is_qualified():
    technician("Luis Ortega")
    technician("Kim Lee", skills=["DOOR_WONT_LATCH"])
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)

    suggestion = slots_suggest(ticket=ticket, now=at(7), horizon_days=3)

    assert suggestion.windows == []
    assert "needs 2 technicians at once" in suggestion.explanation


def test_three_day_job_is_offered_only_where_the_crew_is_free_every_day():
    friday = next_friday()
    luis, ana = technician("Luis Ortega", weekdays=WEEKDAYS), technician("Ana Ruiz", weekdays=WEEKDAYS)
    # Ana is off on the Monday after: a run from Friday or the Thursday before cannot be hers.
    monday = friday + timedelta(days=3)
    TimeOffFactory(technician=ana, start=at(0, day=monday), end=at(23, day=monday))
    ticket = ticket_ready_to_schedule(incident_type=STOREFRONT)

    suggestion = slots_suggest(ticket=ticket, now=at(7, day=friday - timedelta(days=1)), horizon_days=2, limit=3)

    assert suggestion.windows == []
    assert "same consecutive working days" in suggestion.explanation
    later = slots_suggest(ticket=ticket, now=at(7, day=monday), horizon_days=3, limit=3)
    assert later.windows
    for window in later.windows:
        assert crew_of(window) == {luis.id, ana.id}
        assert len(window.days) == 3
        assert all(start.astimezone(LA).date() > monday for start, _end in window.days)


# --- booking ------------------------------------------------------------------------------------


def test_three_day_job_books_the_same_crew_on_consecutive_working_days(dispatcher):
    friday = next_friday()
    luis, ana = technician("Luis Ortega", weekdays=WEEKDAYS), technician("Ana Ruiz", weekdays=WEEKDAYS)
    ticket = ticket_ready_to_schedule(incident_type=STOREFRONT)

    outcome = appointment_book(
        actor=dispatcher, ticket_id=ticket.id, technician_id=luis.id, start=at(8, day=friday), end=at(12, day=friday)
    )

    parts = list(Appointment.objects.filter(ticket=ticket, status="CONFIRMED").order_by("start", "technician_id"))
    assert len(parts) == 6
    assert len({part.visit for part in parts}) == 1 and parts[0].visit is not None
    monday = friday + timedelta(days=3)
    days = sorted({part.start.astimezone(LA).date() for part in parts})
    assert days == [friday, monday, monday + timedelta(days=1)]  # the weekend is skipped
    for day in days:
        on_day = [p for p in parts if p.start.astimezone(LA).date() == day]
        assert {p.technician_id for p in on_day} == {luis.id, ana.id}
        assert all((p.start, p.end) == (at(8, day=day), at(12, day=day)) for p in on_day)
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert ticket.assigned_tech_id == luis.id  # the lead
    assert (ticket.scheduled_start, ticket.scheduled_end) == (at(8, day=friday), at(12, day=days[-1]))
    assert [member["technician_name"] for member in outcome.result["crew"]] == ["Luis Ortega", "Ana Ruiz"]
    assert "3 days" in outcome.result["visit_text"]


def test_crew_booking_writes_one_audit_event(dispatcher):
    friday = next_friday()
    luis, ana = technician("Luis Ortega", weekdays=WEEKDAYS), technician("Ana Ruiz", weekdays=WEEKDAYS)
    ticket = ticket_ready_to_schedule(incident_type=STOREFRONT)
    before = AuditEvent.objects.filter(ticket=ticket).count()

    appointment_book(
        actor=dispatcher,
        ticket_id=ticket.id,
        technician_id=luis.id,
        crew=[str(ana.id)],
        start=at(8, day=friday),
        end=at(12, day=friday),
    )

    events = list(AuditEvent.objects.filter(ticket=ticket).order_by("created_at"))
    assert len(events) == before + 1
    payload = events[-1].payload
    assert events[-1].tool_name == "schedule.book"
    assert [member["tech_id"] for member in payload["crew"]] == [str(luis.id), str(ana.id)]
    assert len(payload["days"]) == 3 and len(payload["appointment_ids"]) == 6
    # One confirmation for the customer, not one per part.
    assert OutboundMessage.objects.filter(ticket=ticket).count() <= 1


def test_crew_booking_refuses_and_books_nothing_when_one_member_is_busy_on_a_later_day(dispatcher):
    friday = next_friday()
    luis, ana = technician("Luis Ortega", weekdays=WEEKDAYS), technician("Ana Ruiz", weekdays=WEEKDAYS)
    monday = friday + timedelta(days=3)
    AppointmentFactory(technician=ana, start=at(10, day=monday), end=at(11, day=monday))
    ticket = ticket_ready_to_schedule(incident_type=STOREFRONT)
    version = Ticket.objects.get(pk=ticket.pk).version

    with pytest.raises(DispatchError) as refused:
        appointment_book(
            actor=dispatcher,
            ticket_id=ticket.id,
            technician_id=luis.id,
            crew=[ana.id],
            start=at(8, day=friday),
            end=at(12, day=friday),
        )

    assert refused.value.code == "SLOT_RULE_VIOLATION"
    assert any(reason.startswith("Day 2 (") and "Ana Ruiz" in reason for reason in refused.value.details["reasons"])
    assert not Appointment.objects.filter(ticket=ticket).exists()
    ticket.refresh_from_db()
    assert (ticket.state, ticket.version) == ("READY_TO_SCHEDULE", version)


def test_crew_booking_refuses_hostile_crews(dispatcher):
    luis, ana = technician("Luis Ortega"), technician("Ana Ruiz")
    kim = technician("Kim Lee")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)
    for crew, code in (
        (["not-a-uuid"], "INVALID_REQUEST"),
        ([str(ana.id), str(ana.id)], "INVALID_REQUEST"),
        ([str(ana.id), str(kim.id)], "INVALID_REQUEST"),  # three for a crew of two
        ("everyone", "INVALID_REQUEST"),
    ):
        with pytest.raises(DispatchError) as refused:
            appointment_book(
                actor=dispatcher, ticket_id=ticket.id, technician_id=luis.id, crew=crew, start=at(9), end=at(12)
            )
        assert refused.value.code == code, crew
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_crew_booking_is_refused_when_no_second_technician_is_free(dispatcher):
    luis, ana = technician("Luis Ortega"), technician("Ana Ruiz")
    TimeOffFactory(technician=ana, start=at(0), end=at(23))
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)

    with pytest.raises(DispatchError) as refused:
        appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=luis.id, start=at(9), end=at(12))

    assert refused.value.code == "SLOT_RULE_VIOLATION"
    assert "needs a crew of 2" in refused.value.message
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_a_customer_is_offered_crew_windows_that_say_so_and_confirming_books_the_crew(dispatcher):
    luis, ana = technician("Luis Ortega"), technician("Ana Ruiz")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR, customer_phone="+15105550142")
    offered = suggestion_json(slots_suggest(ticket=ticket, now=at(7), horizon_days=1, limit=2))
    assert {member["tech_name"] for member in offered["windows"][0]["crew"]} == {"Luis Ortega", "Ana Ruiz"}

    schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=offered["windows"])
    text = OutboundMessage.objects.filter(ticket=ticket).latest("created_at").body
    assert "(2 technicians)" in text

    first = offered["windows"][0]
    outcome = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=first["start"], end=first["end"])

    parts = Appointment.objects.filter(ticket=ticket, status="CONFIRMED")
    assert {part.technician_id for part in parts} == {luis.id, ana.id}
    assert len({part.visit for part in parts}) == 1
    assert outcome.ticket.assigned_tech_id.hex == first["tech_id"].replace("-", "")


# --- keeping the visit together ---------------------------------------------------------------


@pytest.fixture
def booked_crew(dispatcher):
    luis, ana = technician("Luis Ortega"), technician("Ana Ruiz")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)
    appointment_book(
        actor=dispatcher, ticket_id=ticket.id, technician_id=luis.id, crew=[ana.id], start=at(9), end=at(12)
    )
    return ticket, luis, ana


def test_dragging_one_part_of_a_crew_job_is_refused(dispatcher, booked_crew):
    ticket, _luis, ana = booked_crew
    part = Appointment.objects.get(ticket=ticket, technician=ana)

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=part.id, technician_id=ana.id, start=at(13))

    assert refused.value.code == "VISIT_PART_NOT_MOVABLE"
    assert "one part cannot move alone" in refused.value.message
    assert Appointment.objects.filter(ticket=ticket, status="CONFIRMED", start=at(9)).count() == 2


def test_day_planner_never_moves_part_of_a_crew_job(booked_crew):
    ticket, _luis, _ana = booked_crew
    loaded = day_problem_load(day=at(9).date(), now=at(6))

    keys = {f"job:{pk}" for pk in Appointment.objects.filter(ticket=ticket).values_list("id", flat=True)}
    assert keys and not keys & set(loaded.booked)
    fixed = {stop.key for stop in loaded.problem.stops if stop.fixed}
    # A fixed stop may be merged with an overlapping one of the same technician; none is movable.
    assert not keys & {stop.key for stop in loaded.problem.stops if not stop.fixed}
    assert fixed


def test_day_planner_leaves_queued_crew_jobs_to_a_person():
    technician("Luis Ortega"), technician("Ana Ruiz")
    ticket = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)
    loaded = day_problem_load(day=at(9).date(), now=at(6), include_queue=True)
    assert not [stop for stop in loaded.problem.stops if str(ticket.id) in stop.key]


def test_crew_job_shows_in_each_technicians_lane_linked_on_the_board_model(booked_crew):
    ticket, _luis, _ana = booked_crew
    board = board_day(day=at(9).date(), now=at(6))

    blocks = {lane.name: [b for b in lane.blocks if b.ticket_id == ticket.id] for lane in board.lanes}
    assert len(blocks["Luis Ortega"]) == len(blocks["Ana Ruiz"]) == 1
    assert blocks["Luis Ortega"][0].visit == blocks["Ana Ruiz"][0].visit != ""
    assert blocks["Luis Ortega"][0].visit_label == "Crew of 2 with Ana Ruiz"
    assert blocks["Ana Ruiz"][0].visit_label == "Crew of 2 with Luis Ortega"


def test_dispatching_a_crew_job_keeps_its_crew_and_refuses_an_outsider(dispatcher, booked_crew):
    ticket, luis, ana = booked_crew
    kim = technician("Kim Lee")

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=kim.id)
    assert refused.value.code == "ASSIGNMENT_NOT_ON_CREW"

    outcome = assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=luis.id)
    assert outcome.ticket.state == "DISPATCHED"
    parts = Appointment.objects.filter(ticket=ticket, status="CONFIRMED")
    assert {part.technician_id for part in parts} == {luis.id, ana.id}
    # Both crew members are told, each on their own phone.
    told = outcome.event.payload["crew_notifications"]
    assert list(told) == [str(ana.id)]
    assert outcome.event.payload["technician_notification"]["outbox_id"]
    assert told[str(ana.id)]["outbox_id"]
    recipients = set(
        OutboundMessage.objects.filter(ticket=ticket, template="tech_dispatched").values_list("recipient", flat=True)
    )
    assert recipients == {luis.phone, ana.phone}


def test_a_crew_member_may_act_on_the_job_and_others_may_not(booked_crew):
    ticket, luis, ana = booked_crew
    kim = technician("Kim Lee")
    ticket.refresh_from_db()

    for member in (luis, ana):
        actor = actor_for("technician", technician=member)
        assert policy.access_refusal(actor, ticket) is None
        assert Ticket.objects.filter(policy.access_filter(actor), pk=ticket.pk).exists()
    outsider = actor_for("technician", technician=kim)
    assert policy.access_refusal(outsider, ticket).code == "FORBIDDEN_SCOPE"
    assert not Ticket.objects.filter(policy.access_filter(outsider), pk=ticket.pk).exists()


def test_cancelling_a_crew_job_frees_every_technician(dispatcher, booked_crew):
    ticket, luis, ana = booked_crew
    ticket_cancel(actor=dispatcher, ticket_id=ticket.id, reason="Customer postponed the install")

    other = ticket_ready_to_schedule(incident_type=HEAVY_DOOR)
    appointment_book(
        actor=dispatcher, ticket_id=other.id, technician_id=ana.id, crew=[luis.id], start=at(9), end=at(12)
    )

    assert Appointment.objects.filter(ticket=other, status="CONFIRMED").count() == 2
    assert not Appointment.objects.filter(ticket=ticket, status="CONFIRMED").exists()
    for member in (luis, ana):
        actor = actor_for("technician", technician=member)
        assert policy.access_refusal(actor, other) is None


def test_a_one_technician_job_is_booked_as_before(dispatcher):
    luis = technician("Luis Ortega", skills=["DOOR_WONT_LATCH"])
    ticket = ticket_ready_to_schedule()
    appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=luis.id, start=at(9), end=at(10))
    part = Appointment.objects.get(ticket=ticket)
    assert part.visit is None
    suggestion = suggestion_json(slots_suggest(ticket=ticket_ready_to_schedule(), now=at(7), horizon_days=1))
    assert all("crew" not in window and "days" not in window for window in suggestion["windows"])
