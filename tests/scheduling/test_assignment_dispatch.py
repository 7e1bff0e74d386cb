"""assignment.dispatch sends a technician: assignment, booking, notification, DISPATCHED."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.models import Appointment
from dispatch.scheduling.services import assignment_dispatch, assignment_recommend
from dispatch.tickets.models import AuditEvent, StateTransition
from tests.factories import (
    AppointmentFactory,
    SiteFactory,
    TechnicianFactory,
    actor_for,
    ticket_scheduled,
    ticket_triaged,
    window_at,
)

pytestmark = pytest.mark.django_db


def test_dispatch_assigns_the_booked_technician_and_queues_their_message(dispatcher):
    tech = TechnicianFactory(display_name="Dana Reyes", phone="+14155550142")
    start, end = window_at(hour=16)
    site = SiteFactory(name="Harbor Tower", timezone="America/Los_Angeles", access_code="4321")
    ticket = ticket_scheduled(site=site, technician=tech, start=start, end=end)

    outcome = assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=str(tech.id))

    ticket.refresh_from_db()
    assert ticket.state == "DISPATCHED"
    assert ticket.assigned_tech == tech
    appointment = Appointment.objects.get(ticket=ticket)
    assert (appointment.technician, appointment.status, appointment.start) == (tech, "CONFIRMED", start)
    message = OutboundMessage.objects.get(ticket=ticket)
    assert (message.channel, message.recipient, message.template, message.status) == (
        "SMS",
        "+14155550142",
        "tech_dispatched",
        "PENDING",
    )
    assert ticket.short_ref in message.body
    assert "Harbor Tower" in message.body
    local_start = start.astimezone(ZoneInfo("America/Los_Angeles"))
    assert f"{local_start:%H:%M}" in message.body
    assert "4321" not in message.body
    assert outcome.result["notification_outbox_id"] == str(message.id)
    event = outcome.event
    assert event.payload["technician_notification"]["channel"] == "SMS"
    assert event.payload["dispatch_validation"]["tech_id"] == str(tech.id)


def test_dispatch_to_another_technician_moves_the_booking(dispatcher):
    booked, other = TechnicianFactory(), TechnicianFactory()
    ticket = ticket_scheduled(technician=booked)
    appointment = Appointment.objects.get(ticket=ticket)

    assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=other.id)

    appointment.refresh_from_db()
    assert appointment.technician == other
    assert Appointment.objects.filter(ticket=ticket).count() == 1


def test_dispatch_refuses_a_technician_booked_elsewhere(dispatcher):
    tech = TechnicianFactory()
    start, end = window_at(hour=9)
    AppointmentFactory(technician=tech, start=start + timedelta(hours=1), end=end + timedelta(hours=1))
    ticket = ticket_scheduled(start=start, end=end)
    events = AuditEvent.objects.count()

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)

    assert refused.value.code == "TECH_UNAVAILABLE"
    assert (refused.value.status, refused.value.dimension) == (409, "assignment")
    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech) == ("SCHEDULED", None)
    assert Appointment.objects.get(ticket=ticket).technician is None
    assert not OutboundMessage.objects.filter(ticket=ticket).exists()
    assert AuditEvent.objects.count() == events


def test_dispatch_refuses_an_inactive_technician(dispatcher):
    tech = TechnicianFactory(is_active=False)
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)
    assert refused.value.code == "TECH_UNAVAILABLE"
    assert refused.value.dimension == "assignment"


def test_dispatch_refuses_an_unknown_technician(dispatcher):
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id="00000000-0000-4000-8000-000000000077")
    assert (refused.value.code, refused.value.status) == ("ASSIGNMENT_NOT_FOUND", 409)


def test_dispatch_refuses_a_technician_without_the_skill_or_the_region(dispatcher):
    ticket = ticket_scheduled(incident_type="AUTO_OPERATOR_FAULT")
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(
            actor=dispatcher, ticket_id=ticket.id, tech_id=TechnicianFactory(skills=["DOOR_WONT_LATCH"]).id
        )
    assert refused.value.code == "ASSIGNMENT_CAPABILITY_MISMATCH"

    elsewhere = TechnicianFactory(skills=["AUTO_OPERATOR_FAULT"], region_codes=["PENINSULA"])
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=elsewhere.id)
    assert refused.value.code == "ASSIGNMENT_ZONE_MISMATCH"
    assert refused.value.details["ticket_region"] == "EAST_BAY"


def test_emergency_bypass_dispatches_a_triaged_ticket_now(dispatcher):
    tech = TechnicianFactory(skills=["CANNOT_SECURE_ENTRY"])
    ticket = ticket_triaged(incident_type="CANNOT_SECURE_ENTRY")
    before = timezone.now()

    outcome = assignment_dispatch(
        actor=dispatcher,
        ticket_id=ticket.id,
        tech_id=tech.id,
        dispatch_mode="EMERGENCY_BYPASS",
        dispatch_rationale="Storefront glass door cannot lock; store closes in an hour.",
        dispatch_confirmation=True,
    )

    ticket.refresh_from_db()
    assert ticket.state == "DISPATCHED"
    appointment = Appointment.objects.get(ticket=ticket)
    # CANNOT_SECURE_ENTRY's template says 90 minutes.
    assert before <= appointment.start <= timezone.now()
    assert appointment.end - appointment.start == timedelta(minutes=90)
    assert (ticket.scheduled_start, ticket.scheduled_end) == (appointment.start, appointment.end)
    assert outcome.event.payload["dispatch_mode"] == "EMERGENCY_BYPASS"
    assert outcome.event.payload["dispatch_rationale"].startswith("Storefront")
    assert OutboundMessage.objects.get(ticket=ticket).body.startswith("Real Dispatch Door Service: EMERGENCY job")
    transitions = list(StateTransition.objects.filter(ticket=ticket).values_list("from_state", "to_state"))
    assert transitions[-1] == ("TRIAGED", "DISPATCHED")


@pytest.mark.parametrize(
    "mode, rationale, confirmation, missing",
    [
        ("STANDARD", "Urgent", True, ["dispatch_mode=EMERGENCY_BYPASS"]),
        ("EMERGENCY_BYPASS", "", True, ["dispatch_rationale"]),
        ("EMERGENCY_BYPASS", "   ", True, ["dispatch_rationale"]),
        ("EMERGENCY_BYPASS", "Urgent", False, ["dispatch_confirmation=true"]),
        ("EMERGENCY_BYPASS", "Urgent", "true", ["dispatch_confirmation=true"]),
    ],
)
def test_a_triaged_ticket_needs_a_complete_emergency_bypass(dispatcher, mode, rationale, confirmation, missing):
    tech = TechnicianFactory(skills=["CANNOT_SECURE_ENTRY"])
    ticket = ticket_triaged(incident_type="CANNOT_SECURE_ENTRY")

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(
            actor=dispatcher,
            ticket_id=ticket.id,
            tech_id=tech.id,
            dispatch_mode=mode,
            dispatch_rationale=rationale,
            dispatch_confirmation=confirmation,
        )

    assert refused.value.code == "ASSIGNMENT_BYPASS_DENIED"
    assert (refused.value.status, refused.value.dimension) == (409, "assignment")
    assert refused.value.details["missing_requirements"] == missing
    ticket.refresh_from_db()
    assert ticket.state == "TRIAGED"
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_an_emergency_bypass_still_refuses_a_busy_technician(dispatcher):
    tech = TechnicianFactory(skills=["CANNOT_SECURE_ENTRY"])
    now = timezone.now()
    AppointmentFactory(technician=tech, start=now - timedelta(minutes=30), end=now + timedelta(minutes=30))
    ticket = ticket_triaged(incident_type="CANNOT_SECURE_ENTRY")
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(
            actor=dispatcher,
            ticket_id=ticket.id,
            tech_id=tech.id,
            dispatch_mode="EMERGENCY_BYPASS",
            dispatch_rationale="Glass out",
            dispatch_confirmation=True,
        )
    assert refused.value.code == "TECH_UNAVAILABLE"


def test_dispatch_of_a_booking_whose_window_passed_starts_now(dispatcher):
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)
    from dispatch.scheduling.services import dispatch_force_unassign

    dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id, reason="Rebook")
    past_start = timezone.now() - timedelta(hours=5)
    type(ticket).objects.filter(pk=ticket.pk).update(
        scheduled_start=past_start, scheduled_end=past_start + timedelta(hours=2)
    )

    assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)

    live = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    assert live.start > past_start + timedelta(hours=4)
    assert live.end - live.start == timedelta(minutes=60)  # DOOR_WONT_LATCH's template


def test_dispatch_citing_a_recommendation_must_pick_its_top_technician(dispatcher):
    top = TechnicianFactory(display_name="Aaron Top")
    TechnicianFactory(display_name="Zed Second")
    ticket = ticket_scheduled()
    recommendation = assignment_recommend(actor=dispatcher, ticket_id=ticket.id, service_type="DOOR_WONT_LATCH")
    snapshot_id = recommendation.result["recommendation_snapshot_id"]
    second = recommendation.result["candidates"][1]["tech_id"]

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(
            actor=dispatcher, ticket_id=ticket.id, tech_id=second, recommendation_snapshot_id=snapshot_id
        )
    assert refused.value.code == "ASSIGNMENT_RECOMMENDATION_MISMATCH"

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(
            actor=dispatcher,
            ticket_id=ticket.id,
            tech_id=top.id,
            recommendation_snapshot_id="00000000-0000-4000-8000-000000000001",
        )
    assert refused.value.code == "ASSIGNMENT_NOT_FOUND"

    outcome = assignment_dispatch(
        actor=dispatcher, ticket_id=ticket.id, tech_id=top.id, recommendation_snapshot_id=snapshot_id
    )
    assert outcome.event.payload["dispatch_validation"]["recommendation_snapshot_id"] == snapshot_id


def test_a_technician_without_a_usable_phone_is_told_by_email(dispatcher):
    tech = TechnicianFactory(phone="")
    ticket = ticket_scheduled(technician=tech)
    outcome = assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)
    message = OutboundMessage.objects.get(ticket=ticket)
    assert (message.channel, message.recipient) == ("EMAIL", tech.user.email)
    assert outcome.event.payload["technician_notification"]["channel"] == "EMAIL"


def test_the_notification_is_sent_after_commit(dispatcher, django_capture_on_commit_callbacks, settings):
    settings.DISPATCH_MESSAGE_DELIVERY = "console"
    tech = TechnicianFactory()
    ticket = ticket_scheduled(technician=tech)
    with django_capture_on_commit_callbacks(execute=True):
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=tech.id)
    assert OutboundMessage.objects.get(ticket=ticket).status == "SENT"


@pytest.mark.parametrize("kwargs, field", [({"tech_id": "x"}, "tech_id"), ({"dispatch_mode": "FAST"}, "dispatch_mode")])
def test_dispatch_refuses_bad_input(dispatcher, kwargs, field):
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, **{"tech_id": TechnicianFactory().id, **kwargs})
    assert (refused.value.code, refused.value.details["field"]) == ("INVALID_REQUEST", field)


def test_dispatch_is_for_dispatchers_and_from_triaged_or_scheduled(dispatcher):
    tech = TechnicianFactory()
    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=actor_for("agent"), ticket_id=ticket_scheduled().id, tech_id=tech.id)
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"

    from tests.factories import ticket_ready_to_schedule

    with pytest.raises(DispatchError) as refused:
        assignment_dispatch(actor=dispatcher, ticket_id=ticket_ready_to_schedule().id, tech_id=tech.id)
    assert refused.value.code == "INVALID_STATE_TRANSITION"
