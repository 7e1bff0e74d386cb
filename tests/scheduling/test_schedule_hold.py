"""schedule.hold parks a ticket for customer confirmation; release and rollback return it exactly
to the snapshot the hold took."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import Appointment, ScheduleHold
from dispatch.scheduling.services import (
    assignment_dispatch,
    dispatch_force_unassign,
    schedule_confirm,
    schedule_hold,
    schedule_release,
    schedule_rollback,
)
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import (
    AppointmentFactory,
    TechnicianFactory,
    actor_for,
    ticket_proposed,
    ticket_ready_to_schedule,
    ticket_scheduled,
    window_at,
)

pytestmark = pytest.mark.django_db

SCHEDULE_FIELDS = ("state", "scheduled_start", "scheduled_end", "assigned_tech_id")


def _confirmation_window(hours_from_now: int = 48) -> dict:
    now = timezone.now()
    return {"start": now.isoformat(), "end": (now + timedelta(hours=hours_from_now)).isoformat()}


def _picture(ticket: Ticket) -> dict:
    """Everything a hold may touch: the ticket's schedule fields and its bookings."""
    ticket.refresh_from_db()
    return {
        **{field: getattr(ticket, field) for field in SCHEDULE_FIELDS},
        "appointments": sorted(
            Appointment.objects.filter(ticket=ticket).values_list("id", "technician_id", "start", "end", "status")
        ),
    }


def _hold(dispatcher, ticket, reason="CUSTOMER_PENDING", window=None):
    return schedule_hold(
        actor=dispatcher, ticket_id=ticket.id, hold_reason=reason, confirmation_window=window or _confirmation_window()
    )


def test_hold_parks_a_scheduled_ticket_and_keeps_the_slot_reserved(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)

    outcome = _hold(dispatcher, ticket)

    ticket.refresh_from_db()
    assert ticket.state == "PENDING_CUSTOMER_CONFIRMATION"
    hold = ScheduleHold.objects.get(ticket=ticket)
    assert outcome.result["confirmation_id"] == str(hold.id)
    assert outcome.result["hold_state"] == "SCHEDULED"
    assert hold.status == "ACTIVE"
    appointment = Appointment.objects.get(ticket=ticket)
    assert appointment.status == "HELD"
    assert hold.snapshot == {
        "state": "SCHEDULED",
        "scheduled_start": ticket.scheduled_start.isoformat().replace("+00:00", "Z"),
        "scheduled_end": ticket.scheduled_end.isoformat().replace("+00:00", "Z"),
        # The confirmed window's technician is the job's.
        "assigned_tech_id": str(tech.id),
        "appointments": [{"id": str(appointment.id), "status": "CONFIRMED"}],
    }
    # A held slot still blocks the technician.
    start, end = window_at()
    other = ticket_proposed(options=[{"start": start.isoformat(), "end": end.isoformat(), "tech_id": str(tech.id)}])
    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=dispatcher, ticket_id=other.id, start=start, end=end)
    assert refused.value.code == "TECH_UNAVAILABLE"


def test_release_returns_a_scheduled_ticket_exactly_to_the_snapshot(dispatcher):
    ticket = ticket_scheduled(technician=TechnicianFactory())
    before = _picture(ticket)
    hold = _hold(dispatcher, ticket)

    outcome = schedule_release(
        actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id=hold.result["confirmation_id"]
    )

    assert _picture(ticket) == before
    assert outcome.result["restored_state"] == "SCHEDULED"
    stored = ScheduleHold.objects.get(pk=hold.result["confirmation_id"])
    assert stored.status == "RELEASED"
    assert stored.released_by == dispatcher.actor_id
    assert outcome.event.before_state == "PENDING_CUSTOMER_CONFIRMATION"
    assert outcome.event.after_state == "SCHEDULED"


def test_release_returns_a_dispatch_ready_ticket_that_can_then_be_dispatched(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)
    hold = _hold(dispatcher, ticket)
    schedule_release(actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id=hold.result["confirmation_id"])

    outcome = assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)

    assert outcome.ticket.state == "DISPATCHED"


def test_hold_and_release_from_schedule_proposed_then_confirm(dispatcher):
    start, end = window_at(hour=10)
    ticket = ticket_proposed(options=[{"start": start.isoformat(), "end": end.isoformat()}])
    before = _picture(ticket)
    hold = _hold(dispatcher, ticket, reason="CUSTOMER_UNREACHABLE")
    assert hold.result["hold_state"] == "SCHEDULE_PROPOSED"

    schedule_release(actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id=hold.result["confirmation_id"])

    assert _picture(ticket) == before
    # The proposal survived the hold: its window can still be confirmed.
    confirmed = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)
    assert confirmed.ticket.state == "SCHEDULED"


def test_rollback_returns_exactly_to_the_snapshot_and_records_why(dispatcher):
    ticket = ticket_scheduled(technician=TechnicianFactory())
    before = _picture(ticket)
    hold = _hold(dispatcher, ticket)

    outcome = schedule_rollback(
        actor=dispatcher, ticket_id=ticket.id, confirmation_id=hold.result["confirmation_id"], reason="Wrong ticket"
    )

    assert _picture(ticket) == before
    stored = ScheduleHold.objects.get(pk=hold.result["confirmation_id"])
    assert (stored.status, stored.release_reason) == ("ROLLED_BACK", "Wrong ticket")
    assert outcome.result["reason"] == "Wrong ticket"
    assert outcome.event.payload["reason"] == "Wrong ticket"


def test_a_stale_hold_cannot_be_released_but_can_be_rolled_back(dispatcher):
    ticket = ticket_scheduled()
    before = _picture(ticket)
    past = timezone.now() - timedelta(hours=3)
    hold = _hold(dispatcher, ticket, window={"start": past.isoformat(), "end": (past + timedelta(hours=1)).isoformat()})
    confirmation_id = hold.result["confirmation_id"]

    with pytest.raises(DispatchError) as refused:
        schedule_release(actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id=confirmation_id)
    assert refused.value.code == "CUSTOMER_CONFIRMATION_STALE"
    assert (refused.value.status, refused.value.dimension) == (409, "scheduling")
    ticket.refresh_from_db()
    assert ticket.state == "PENDING_CUSTOMER_CONFIRMATION"

    schedule_rollback(actor=dispatcher, ticket_id=ticket.id, confirmation_id=confirmation_id)
    assert _picture(ticket) == before


def test_release_with_the_wrong_confirmation_id_is_refused(dispatcher):
    ticket = ticket_scheduled()
    _hold(dispatcher, ticket)
    events = AuditEvent.objects.count()

    with pytest.raises(DispatchError) as refused:
        schedule_release(
            actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id="00000000-0000-4000-8000-000000000009"
        )

    assert refused.value.code == "HOLD_CONFIRMATION_MISSING"
    assert refused.value.status == 409
    assert AuditEvent.objects.count() == events
    assert ScheduleHold.objects.get(ticket=ticket).status == "ACTIVE"


def test_rollback_with_the_wrong_confirmation_id_is_a_hold_state_conflict(dispatcher):
    ticket = ticket_scheduled()
    _hold(dispatcher, ticket)
    with pytest.raises(DispatchError) as refused:
        schedule_rollback(actor=dispatcher, ticket_id=ticket.id, confirmation_id="00000000-0000-4000-8000-000000000009")
    assert refused.value.code == "SCHEDULE_HOLD_STATE_CONFLICT"
    assert refused.value.dimension == "scheduling"


def test_a_confirmation_id_that_is_not_a_uuid_is_bad_input(dispatcher):
    ticket = ticket_scheduled()
    _hold(dispatcher, ticket)
    with pytest.raises(DispatchError) as refused:
        schedule_release(actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id="yes")
    assert (refused.value.code, refused.value.status) == ("INVALID_REQUEST", 400)


def test_release_or_rollback_needs_a_ticket_awaiting_confirmation(dispatcher):
    ticket = ticket_scheduled()
    for call, field in ((schedule_release, "customer_confirmation_id"), (schedule_rollback, "confirmation_id")):
        with pytest.raises(DispatchError) as refused:
            call(actor=dispatcher, ticket_id=ticket.id, **{field: "00000000-0000-4000-8000-000000000009"})
        assert refused.value.code == "INVALID_STATE_TRANSITION"


def test_a_second_active_hold_is_a_conflict(dispatcher):
    ticket = ticket_scheduled()
    # A hold left active while the ticket is SCHEDULED again (the ticket moved on without it).
    ScheduleHold.objects.create(
        ticket=ticket,
        hold_reason="CUSTOMER_PENDING",
        confirmation_start=timezone.now(),
        confirmation_end=timezone.now() + timedelta(hours=1),
        snapshot={"state": "SCHEDULED"},
        created_by="earlier",
    )

    with pytest.raises(DispatchError) as refused:
        _hold(dispatcher, ticket)

    assert refused.value.code == "SCHEDULE_HOLD_STATE_CONFLICT"
    assert refused.value.status == 409
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"


@pytest.mark.parametrize(
    "reason, window, field",
    [
        ("BECAUSE", None, "hold_reason"),
        ("CUSTOMER_PENDING", {"start": "2030-01-01T10:00:00Z"}, "confirmation_window.end"),
        (
            "CUSTOMER_PENDING",
            {"start": "2030-01-02T10:00:00Z", "end": "2030-01-01T10:00:00Z"},
            "confirmation_window.end",
        ),
        ("CUSTOMER_PENDING", "tomorrow", "confirmation_window"),
    ],
)
def test_hold_refuses_bad_input(dispatcher, reason, window, field):
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        schedule_hold(
            actor=dispatcher,
            ticket_id=ticket.id,
            hold_reason=reason,
            confirmation_window=window if window is not None else _confirmation_window(),
        )
    assert refused.value.code == "INVALID_REQUEST"
    assert refused.value.details["field"] == field


def test_hold_from_ready_to_schedule_is_refused_by_the_contract(dispatcher):
    ticket = ticket_ready_to_schedule()
    with pytest.raises(DispatchError) as refused:
        _hold(dispatcher, ticket)
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert not ScheduleHold.objects.exists()


def test_hold_is_for_dispatchers():
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        _hold(actor_for("agent"), ticket)
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"


def test_force_unassign_ends_an_active_hold(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)
    appointment = Appointment.objects.get(ticket=ticket)
    hold = _hold(dispatcher, ticket)

    dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id, reason="Tech called in sick")

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert ScheduleHold.objects.get(pk=hold.result["confirmation_id"]).status == "CANCELLED"
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_reason) == ("CANCELLED", "Tech called in sick")
    # Ticket is schedulable again: a new hold may be taken.
    _hold(dispatcher, ticket)


def test_release_restores_a_booking_without_colliding_with_itself(dispatcher):
    tech = TechnicianFactory()
    start, end = window_at(hour=9)
    ticket = ticket_scheduled(technician=tech, start=start, end=end)
    # Another job of the same technician right after: untouched by the hold and the release.
    neighbour = AppointmentFactory(technician=tech, start=end, end=end + timedelta(hours=1))
    hold = _hold(dispatcher, ticket)

    schedule_release(actor=dispatcher, ticket_id=ticket.id, customer_confirmation_id=hold.result["confirmation_id"])

    assert Appointment.objects.get(ticket=ticket).status == "CONFIRMED"
    neighbour.refresh_from_db()
    assert neighbour.status == "CONFIRMED"
