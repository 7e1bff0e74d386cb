"""schedule.propose stores the offered windows; schedule.confirm books exactly one of them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.models import Appointment, ScheduleProposal
from dispatch.scheduling.services import schedule_confirm, schedule_propose
from dispatch.tickets.models import AuditEvent, StateTransition
from tests.factories import (
    AppointmentFactory,
    TechnicianFactory,
    actor_for,
    jwt_for,
    ticket_new,
    ticket_proposed,
    ticket_ready_to_schedule,
    window_at,
)

pytestmark = pytest.mark.django_db


def _options(*windows, tech=None):
    return [
        {"start": start.isoformat(), "end": end.isoformat(), **({"tech_id": str(tech.id)} if tech else {})}
        for start, end in windows
    ]


def test_propose_stores_the_windows_and_moves_to_schedule_proposed(dispatcher):
    ticket = ticket_ready_to_schedule()
    first, second = window_at(hour=9), window_at(hour=13)

    outcome = schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=_options(first, second))

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    proposal = ScheduleProposal.objects.get(ticket=ticket)
    assert proposal.status == "OPEN"
    assert [(o["start"], o["end"]) for o in proposal.options] == [
        (first[0].strftime("%Y-%m-%dT%H:%M:%SZ"), first[1].strftime("%Y-%m-%dT%H:%M:%SZ")),
        (second[0].strftime("%Y-%m-%dT%H:%M:%SZ"), second[1].strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    # Like the reference API, the first window shows as the tentative schedule.
    assert (ticket.scheduled_start, ticket.scheduled_end) == first
    assert outcome.result["proposal_id"] == str(proposal.id)
    assert outcome.event.tool_name == "schedule.propose"
    assert outcome.event.payload["proposal_id"] == str(proposal.id)


def test_a_new_proposal_supersedes_one_left_open(dispatcher):
    ticket = ticket_ready_to_schedule()
    # A proposal still open from an earlier round (the ticket went back to the queue).
    earlier = ScheduleProposal.objects.create(ticket=ticket, options=_options(window_at(hour=8)), created_by="earlier")

    outcome = schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=_options(window_at(hour=14)))

    earlier.refresh_from_db()
    assert earlier.status == "SUPERSEDED"
    assert earlier.decided_at is not None
    current = ScheduleProposal.objects.get(ticket=ticket, status="OPEN")
    assert str(current.id) == outcome.result["proposal_id"]
    assert outcome.event.payload["superseded_proposals"] == 1


@pytest.mark.parametrize(
    "options, field",
    [
        ([], "options"),
        ("tomorrow", "options"),
        ([{"start": "2030-01-01T10:00:00Z"}], "options[0].end"),
        ([{"start": "2030-01-01T10:00:00", "end": "2030-01-01T12:00:00"}], "options[0].start"),
        ([{"start": "2030-01-01T12:00:00Z", "end": "2030-01-01T10:00:00Z"}], "options[0].end"),
        ([{"start": "2030-01-01T06:00:00Z", "end": "2030-01-01T19:00:00Z"}], "options[0]"),
        ([{"start": "not a date", "end": "2030-01-01T19:00:00Z"}], "options[0].start"),
        ([{"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T12:00:00Z", "tech_id": "nope"}], "options[0].tech_id"),
    ],
)
def test_propose_refuses_bad_windows_and_changes_nothing(dispatcher, options, field):
    ticket = ticket_ready_to_schedule()
    events = AuditEvent.objects.count()

    with pytest.raises(DispatchError) as refused:
        schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=options)

    assert refused.value.code == "INVALID_REQUEST"
    assert refused.value.status == 400
    assert refused.value.details["field"] == field
    ticket.refresh_from_db()
    assert ticket.state == "READY_TO_SCHEDULE"
    assert AuditEvent.objects.count() == events
    assert not ScheduleProposal.objects.filter(ticket=ticket).exists()


def test_propose_refuses_more_than_ten_windows(dispatcher):
    ticket = ticket_ready_to_schedule()
    windows = [window_at(days=d) for d in range(1, 12)]
    with pytest.raises(DispatchError) as refused:
        schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=_options(*windows))
    assert refused.value.details["field"] == "options"


def test_propose_refuses_an_unknown_technician(dispatcher):
    ticket = ticket_ready_to_schedule()
    start, end = window_at()
    option = {"start": start.isoformat(), "end": end.isoformat(), "tech_id": "00000000-0000-4000-8000-000000000001"}
    with pytest.raises(DispatchError) as refused:
        schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=[option])
    assert refused.value.code == "INVALID_REQUEST"
    assert refused.value.details["unknown_tech_ids"] == [option["tech_id"]]


def test_propose_from_the_wrong_state_is_409_and_writes_nothing(dispatcher):
    ticket = ticket_new()
    with pytest.raises(DispatchError) as refused:
        schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=_options(window_at()))
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert refused.value.status == 409
    assert not ScheduleProposal.objects.exists()


@pytest.mark.parametrize("role", ["technician", "customer", "qa", "finance", "approver"])
def test_propose_refuses_other_roles(role):
    ticket = ticket_ready_to_schedule()
    with pytest.raises(DispatchError) as refused:
        schedule_propose(actor=actor_for(role), ticket_id=ticket.id, options=_options(window_at()))
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    assert refused.value.status == 403


def test_an_agent_may_propose():
    ticket = ticket_ready_to_schedule()
    outcome = schedule_propose(actor=actor_for("agent"), ticket_id=ticket.id, options=_options(window_at()))
    assert outcome.ticket.state == "SCHEDULE_PROPOSED"


def test_confirm_books_the_chosen_window_with_the_named_technician(dispatcher):
    tech = TechnicianFactory()
    first, second = window_at(hour=9), window_at(hour=13)
    ticket = ticket_proposed(options=_options(first) + _options(second, tech=tech))

    outcome = schedule_confirm(
        actor=dispatcher, ticket_id=ticket.id, start=second[0].isoformat(), end=second[1].isoformat()
    )

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert (ticket.scheduled_start, ticket.scheduled_end) == second
    appointment = Appointment.objects.get(ticket=ticket)
    assert (appointment.start, appointment.end, appointment.status) == (second[0], second[1], "CONFIRMED")
    assert appointment.technician == tech
    proposal = ScheduleProposal.objects.get(ticket=ticket)
    assert (proposal.status, proposal.accepted_option) == ("ACCEPTED", 1)
    assert outcome.result["appointment_id"] == str(appointment.id)
    assert list(StateTransition.objects.filter(ticket=ticket).values_list("to_state", flat=True))[-1] == "SCHEDULED"


def test_confirm_accepts_the_same_instant_in_another_offset(dispatcher):
    start, end = window_at(hour=17)
    ticket = ticket_proposed(options=_options((start, end)))
    pacific = "-08:00"
    local_start = (start - timedelta(hours=8)).replace(tzinfo=None).isoformat() + pacific
    local_end = (end - timedelta(hours=8)).replace(tzinfo=None).isoformat() + pacific

    schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=local_start, end=local_end)

    assert Appointment.objects.get(ticket=ticket).start == start


def test_confirm_without_a_technician_books_an_unassigned_slot(dispatcher):
    start, end = window_at()
    ticket = ticket_proposed(options=_options((start, end)))
    schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)
    assert Appointment.objects.get(ticket=ticket).technician is None


def test_confirm_refuses_a_window_that_was_not_proposed(dispatcher):
    start, end = window_at()
    ticket = ticket_proposed(options=_options((start, end)))

    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start + timedelta(hours=1), end=end)

    assert refused.value.code == "SCHEDULE_WINDOW_NOT_PROPOSED"
    assert (refused.value.status, refused.value.dimension) == (409, "scheduling")
    assert len(refused.value.details["proposed_windows"]) == 1
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_confirming_a_window_in_the_past_is_refused(dispatcher, client):
    tech = TechnicianFactory()
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    end = start + timedelta(hours=2)
    ticket = ticket_proposed(options=_options((start, end), tech=tech))
    events_before = AuditEvent.objects.filter(ticket=ticket).count()

    # The customer's "1" (or the dispatcher's click) comes after the window has begun.
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        with pytest.raises(DispatchError) as refused:
            schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)
        answer = client.post(
            f"/api/v1/tickets/{ticket.id}/schedule/confirm",
            data=json.dumps({"start": start.isoformat(), "end": end.isoformat()}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            HTTP_AUTHORIZATION=f"Bearer {jwt_for('dispatcher-1', 'dispatcher')}",
        )

    assert (refused.value.code, refused.value.status, refused.value.dimension) == (
        "SCHEDULE_WINDOW_PASSED",
        409,
        "scheduling",
    )
    assert refused.value.details["requested_window"]["start"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "SCHEDULE_WINDOW_PASSED"
    assert answer.json()["error"]["policy_error"] == {"code": "SCHEDULE_WINDOW_PASSED", "dimension": "scheduling"}
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert not Appointment.objects.filter(ticket=ticket).exists()
    assert not OutboundMessage.objects.filter(ticket=ticket, template="schedule_confirmed").exists()
    assert AuditEvent.objects.filter(ticket=ticket).count() == events_before


def test_proposing_a_window_in_the_past_is_refused(dispatcher):
    ticket = ticket_ready_to_schedule()
    begun = timezone.now() - timedelta(minutes=5)

    with pytest.raises(DispatchError) as refused:
        schedule_propose(
            actor=dispatcher,
            ticket_id=ticket.id,
            options=_options(window_at(hour=9), (begun, begun + timedelta(hours=2))),
        )

    assert (refused.value.code, refused.value.details["field"]) == ("SCHEDULE_WINDOW_PASSED", "options[1]")
    ticket.refresh_from_db()
    assert ticket.state == "READY_TO_SCHEDULE"
    assert not ScheduleProposal.objects.filter(ticket=ticket).exists()
    assert not OutboundMessage.objects.filter(ticket=ticket, template="proposal_windows").exists()


def test_confirm_refuses_a_double_booking(dispatcher):
    tech = TechnicianFactory()
    start, end = window_at()
    AppointmentFactory(technician=tech, start=start + timedelta(minutes=30), end=end + timedelta(hours=1))
    ticket = ticket_proposed(options=_options((start, end), tech=tech))

    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)

    assert refused.value.code == "TECH_UNAVAILABLE"
    assert (refused.value.status, refused.value.dimension) == (409, "assignment")
    assert refused.value.details["tech_id"] == str(tech.id)
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert ScheduleProposal.objects.get(ticket=ticket).status == "OPEN"


def test_back_to_back_jobs_do_not_overlap(dispatcher):
    tech = TechnicianFactory()
    start, end = window_at(hour=9)
    AppointmentFactory(technician=tech, start=end, end=end + timedelta(hours=2))
    AppointmentFactory(technician=tech, start=start - timedelta(hours=2), end=start)
    ticket = ticket_proposed(options=_options((start, end), tech=tech))

    schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)

    assert Appointment.objects.filter(technician=tech, status="CONFIRMED").count() == 3


def test_a_cancelled_jobs_booking_does_not_block_the_technician(dispatcher):
    from dispatch.tickets.services import ticket_cancel

    tech = TechnicianFactory()
    start, end = window_at()
    old = AppointmentFactory(technician=tech, start=start, end=end)
    ticket_cancel(actor=dispatcher, ticket_id=old.ticket_id, reason="Customer fixed it themselves")
    ticket = ticket_proposed(options=_options((start, end), tech=tech))

    schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)

    old.refresh_from_db()
    assert old.status == "CANCELLED"
    assert old.cancelled_reason == "The ticket was cancelled."


def test_confirm_refuses_an_inactive_technician(dispatcher):
    tech = TechnicianFactory(is_active=False)
    start, end = window_at()
    ticket = ticket_proposed(options=_options((start, end)))

    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end, tech_id=str(tech.id))

    assert refused.value.code == "TECH_UNAVAILABLE"
    assert not Appointment.objects.filter(ticket=ticket).exists()


def test_confirm_is_for_dispatchers_only():
    start, end = window_at()
    ticket = ticket_proposed(options=_options((start, end)))
    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=actor_for("agent"), ticket_id=ticket.id, start=start, end=end)
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"


def test_confirm_from_the_wrong_state_is_409(dispatcher):
    ticket = ticket_ready_to_schedule()
    start, end = window_at()
    with pytest.raises(DispatchError) as refused:
        schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=start, end=end)
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert refused.value.details["allowed_next_states"] == [
        "SCHEDULE_PROPOSED",
        "PENDING_CUSTOMER_CONFIRMATION",
        "CANCELLED",
    ]


def test_a_reminder_of_the_windows_leaves_out_the_one_that_has_begun_and_keeps_the_numbers(dispatcher):
    from dispatch.scheduling.notifications import proposal_reminder_notify

    ticket = ticket_ready_to_schedule(customer_phone="+15105550142")
    first, second, third = window_at(days=1, hour=9), window_at(days=2, hour=9), window_at(days=3, hour=9)
    schedule_propose(actor=dispatcher, ticket_id=ticket.id, options=_options(first, second, third))
    proposal = ScheduleProposal.objects.get(ticket=ticket)

    # The first window's morning has come and the customer has not answered yet.
    with time_machine.travel(first[0] + timedelta(minutes=30), tick=False):
        sent = proposal_reminder_notify(ticket=ticket, proposal=proposal)
    body = OutboundMessage.objects.get(pk=sent["outbox_id"]).body
    # The windows as numbered ("... 2) Wed Dec 9, 1-3 AM; 3) Thu ..."), not a ticket ref's ")".
    assert re.findall(r"(?:^|\s)(\d)\) ", body) == ["2", "3"]

    # Once every window has begun there is nothing left to choose: no message.
    with time_machine.travel(third[0] + timedelta(minutes=30), tick=False):
        silent = proposal_reminder_notify(ticket=ticket, proposal=proposal)
    assert silent["outbox_id"] is None and silent["refused"][0]["code"] == "WINDOW_PASSED"
