"""Booking from the board and moving a booked job: every slot rule re-checked, one audit event,
history kept, and a refusal that says why and changes nothing."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.scheduling.booking import appointment_book, appointment_move
from dispatch.scheduling.models import Appointment, CustomerNotice, ScheduleProposal
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from tests.factories import (
    TechnicianFactory,
    TimeOffFactory,
    actor_for,
    shifts_every_day,
    ticket_dispatched,
    ticket_proposed,
    ticket_ready_to_schedule,
    ticket_scheduled,
)

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")


def at(hour: int, minute: int = 0, *, days: int = 1) -> datetime:
    """`hour`:`minute` Los Angeles time, `days` from today there (tomorrow by default)."""
    day = timezone.now().astimezone(LA).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=LA)


def technician(name: str):
    tech = TechnicianFactory(display_name=name, skills=["DOOR_WONT_LATCH"], region_codes=["EAST_BAY"])
    shifts_every_day(tech, start="07:00", end="18:00")
    return tech


@pytest.fixture
def dana():
    return technician("Dana Whitfield")


@pytest.fixture
def sam():
    return technician("Sam Okafor")


def _snapshot(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return (
        ticket.state,
        ticket.version,
        ticket.scheduled_start,
        ticket.assigned_tech_id,
        AuditEvent.objects.count(),
        sorted(Appointment.objects.values_list("id", "status", "technician_id", "start")),
    )


# --- booking ------------------------------------------------------------------------------------


def test_booking_a_ready_ticket_schedules_it_with_one_audit_event(dispatcher, dana):
    ticket = ticket_ready_to_schedule(customer_phone="+15105550199")
    start, end = at(10), at(11, 30)

    outcome = appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=dana.id, start=start, end=end)

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert (ticket.scheduled_start, ticket.scheduled_end) == (start, end)
    appointment = Appointment.objects.get(ticket=ticket)
    assert (appointment.technician, appointment.status, appointment.start, appointment.end) == (
        dana,
        "CONFIRMED",
        start,
        end,
    )
    event = AuditEvent.objects.get(ticket=ticket, tool_name="schedule.book")
    assert (event.before_state, event.after_state) == ("READY_TO_SCHEDULE", "SCHEDULED")
    assert event.payload["appointment_id"] == str(appointment.id)
    # One event, two transition rows: the booking is the proposal and its acceptance at once.
    assert list(
        StateTransition.objects.filter(audit_event=event).order_by("seq").values_list("from_state", "to_state")
    ) == [
        ("READY_TO_SCHEDULE", "SCHEDULE_PROPOSED"),
        ("SCHEDULE_PROPOSED", "SCHEDULED"),
    ]
    assert outcome.result["technician_name"] == "Dana Whitfield"
    # The customer is told, through the outbox, in the same transaction.
    notice = CustomerNotice.objects.get(ticket=ticket, kind="BOOKING")
    assert notice.message is not None and notice.message.recipient == "+15105550199"


def test_booking_a_proposed_ticket_closes_the_customers_open_proposal(dispatcher, dana):
    ticket = ticket_proposed(options=[{"start": at(8).isoformat(), "end": at(9, 30).isoformat()}])

    appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=dana.id, start=at(14), end=at(15, 30))

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert ScheduleProposal.objects.get(ticket=ticket).status == "SUPERSEDED"


def test_booking_off_shift_is_refused_with_the_rule_and_changes_nothing(dispatcher, dana):
    ticket = ticket_ready_to_schedule()
    before = _snapshot(ticket)

    with pytest.raises(DispatchError) as refused:
        appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=dana.id, start=at(19), end=at(20, 30))

    error = refused.value
    assert (error.status, error.code, error.dimension) == (409, "SLOT_RULE_VIOLATION", "scheduling")
    assert "Dana Whitfield is not on shift" in error.message
    assert any("not on shift" in reason for reason in error.details["reasons"])
    # The refused dispatcher gets the engine's current best windows to pick from instead.
    assert error.details["suggested_windows"]
    assert error.details["suggested_windows"][0]["tech_id"] == str(dana.id)
    assert _snapshot(ticket) == before


def test_booking_over_time_off_is_refused(dispatcher, dana):
    TimeOffFactory(technician=dana, start=at(7), end=at(18), reason="Training")
    ticket = ticket_ready_to_schedule()

    with pytest.raises(DispatchError) as refused:
        appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=dana.id, start=at(10), end=at(11, 30))

    assert "Training" in refused.value.message
    assert Ticket.objects.get(pk=ticket.pk).state == "READY_TO_SCHEDULE"


def test_booking_a_technician_without_the_skill_is_refused(dispatcher):
    locksmith = TechnicianFactory(display_name="Jordan Lee", skills=["HARDWARE_REPLACEMENT"])
    shifts_every_day(locksmith)
    ticket = ticket_ready_to_schedule()

    with pytest.raises(DispatchError) as refused:
        appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=locksmith.id, start=at(10), end=at(11))

    assert refused.value.code == "SLOT_RULE_VIOLATION"
    assert "does not have DOOR_WONT_LATCH" in refused.value.message
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_only_dispatchers_book(dana):
    ticket = ticket_ready_to_schedule()

    with pytest.raises(DispatchError) as refused:
        appointment_book(
            actor=actor_for("technician", technician=dana),
            ticket_id=ticket.id,
            technician_id=dana.id,
            start=at(10),
            end=at(11),
        )

    assert (refused.value.status, refused.value.code) == (403, "TOOL_ROLE_FORBIDDEN")
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_a_scheduled_ticket_is_not_booked_twice(dispatcher, dana):
    ticket = ticket_scheduled(technician=dana, start=at(9), end=at(10))

    with pytest.raises(DispatchError) as refused:
        appointment_book(actor=dispatcher, ticket_id=ticket.id, technician_id=dana.id, start=at(13), end=at(14))

    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert Appointment.objects.filter(ticket=ticket, status="CONFIRMED").count() == 1


def test_a_naive_time_is_bad_input(dispatcher, dana):
    ticket = ticket_ready_to_schedule()

    with pytest.raises(DispatchError) as refused:
        appointment_book(
            actor=dispatcher,
            ticket_id=ticket.id,
            technician_id=dana.id,
            start=datetime(2030, 3, 2, 9),
            end=datetime(2030, 3, 2, 10),
        )

    assert (refused.value.status, refused.value.code) == (400, "INVALID_REQUEST")


# --- moving -------------------------------------------------------------------------------------


def test_a_move_to_another_technician_and_time_keeps_the_length_and_the_history(dispatcher, dana, sam):
    ticket = ticket_scheduled(technician=dana, start=at(9), end=at(10, 30))
    old = Appointment.objects.get(ticket=ticket)

    outcome = appointment_move(actor=dispatcher, appointment_id=old.id, technician_id=sam.id, start=at(13))

    old.refresh_from_db()
    assert (old.status, old.cancelled_reason) == ("CANCELLED", "moved")
    new = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    assert (new.technician, new.start, new.end) == (sam, at(13), at(14, 30))
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert (ticket.scheduled_start, ticket.scheduled_end) == (at(13), at(14, 30))
    event = AuditEvent.objects.get(ticket=ticket, tool_name="schedule.move")
    assert event.payload["moved_from"]["tech_id"] == str(dana.id)
    assert event.payload["moved_to"]["tech_id"] == str(sam.id)
    assert event.payload["cancelled_appointment_id"] == str(old.id)
    assert outcome.result["appointment_id"] == str(new.id)
    # Both bookings stay on record: the board's history of who was booked when.
    assert Appointment.objects.filter(ticket=ticket).count() == 2


def test_a_move_later_on_the_same_lane(dispatcher, dana):
    ticket = ticket_scheduled(technician=dana, start=at(9), end=at(10, 30))
    old = Appointment.objects.get(ticket=ticket)

    appointment_move(actor=dispatcher, appointment_id=old.id, technician_id=dana.id, start=at(9, 45))

    # Overlapping its own old slot is fine: the job moves, it does not double-book Dana.
    new = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    assert (new.technician, new.start, new.end) == (dana, at(9, 45), at(11, 15))


def test_a_move_onto_an_occupied_slot_is_refused_with_the_reason(dispatcher, dana, sam):
    mine = ticket_scheduled(technician=dana, start=at(9), end=at(10, 30))
    ticket_scheduled(technician=sam, start=at(13), end=at(14, 30))
    booking = Appointment.objects.get(ticket=mine)
    before = _snapshot(mine)

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=booking.id, technician_id=sam.id, start=at(13, 30))

    error = refused.value
    assert (error.status, error.code) == (409, "SLOT_RULE_VIOLATION")
    assert "Overlaps Sam Okafor's job" in error.message
    assert _snapshot(mine) == before


def test_a_move_that_leaves_no_time_to_drive_is_refused(dispatcher, dana, sam):
    mine = ticket_scheduled(technician=dana, start=at(9), end=at(10))
    # Sam is busy in San Jose until 11:00; the job is in Oakland, an hour's drive away.
    from tests.factories import SiteFactory

    far = SiteFactory(lat="37.338210", lng="-121.886330", service_region="EAST_BAY", city="San Jose")
    ticket_scheduled(technician=sam, site=far, start=at(10), end=at(11))
    booking = Appointment.objects.get(ticket=mine)

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=booking.id, technician_id=sam.id, start=at(11, 15))

    assert "min to drive" in refused.value.message
    assert Appointment.objects.get(pk=booking.pk).status == "CONFIRMED"


def test_a_dispatched_job_is_not_moved_and_the_refusal_says_what_to_do(dispatcher, dana, sam):
    ticket = ticket_dispatched(technician=dana, start=at(9), end=at(10))
    booking = Appointment.objects.get(ticket=ticket, status="CONFIRMED")

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=booking.id, technician_id=sam.id, start=at(13))

    error = refused.value
    assert (error.status, error.code) == (409, "INVALID_STATE_TRANSITION")
    assert "already dispatched" in error.message and "Unassign" in error.message
    booking.refresh_from_db()
    assert (booking.status, booking.technician) == ("CONFIRMED", dana)


def test_moving_a_cancelled_booking_is_refused(dispatcher, dana):
    ticket = ticket_scheduled(technician=dana, start=at(9), end=at(10))
    old = Appointment.objects.get(ticket=ticket)
    appointment_move(actor=dispatcher, appointment_id=old.id, technician_id=dana.id, start=at(11))

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=old.id, technician_id=dana.id, start=at(14))

    assert refused.value.code == "APPOINTMENT_NOT_BOOKED"
    assert Appointment.objects.get(ticket=ticket, status="CONFIRMED").start == at(11)


def test_moving_into_the_past_is_refused(dispatcher, dana):
    ticket = ticket_scheduled(technician=dana, start=at(9), end=at(10))
    booking = Appointment.objects.get(ticket=ticket)

    with pytest.raises(DispatchError) as refused:
        appointment_move(actor=dispatcher, appointment_id=booking.id, technician_id=dana.id, start=at(9, days=-1))

    assert "already begun" in refused.value.message
