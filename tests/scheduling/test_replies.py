"""A customer answers the proposal SMS with a number; the window is booked through the same services.

The inbound side is intake's real `message_receive` (as the Twilio webhook calls it), then the
scheduling face `proposal_reply_apply`, as the webhook view does after it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.intake.services import message_receive
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling import tasks
from dispatch.scheduling.models import Appointment, Escalation, ScheduleHold, ScheduleProposal
from dispatch.scheduling.notifications import window_phrase
from dispatch.scheduling.replies import proposal_reply_apply
from dispatch.tickets.models import AuditEvent
from tests.factories import AppointmentFactory, TechnicianFactory, ticket_proposed, window_at

pytestmark = pytest.mark.django_db

PHONE = "+15105550142"
LA = ZoneInfo("America/Los_Angeles")


def _proposed(technicians=None, **fields):
    windows = [window_at(days=2, hour=17), window_at(days=3, hour=17), window_at(days=4, hour=21)]
    technicians = technicians or [None, None, None]
    options = [
        {"start": s.isoformat(), "end": e.isoformat(), **({"tech_id": str(t.id)} if t else {})}
        for (s, e), t in zip(windows, technicians)
    ]
    return ticket_proposed(options=options, customer_phone=PHONE, **fields), windows


def _sms(body: str, sid: str | None = None):
    """The customer's text, received as the Twilio webhook receives it."""
    return message_receive(
        channel="SMS", provider_message_id=sid or f"SM{uuid.uuid4().hex}", sender_phone=PHONE, body=body
    )


def _sent(ticket, template):
    return list(OutboundMessage.objects.filter(ticket=ticket, template=template).order_by("created_at"))


def test_replying_2_books_the_second_window_and_confirms_it():
    technician = TechnicianFactory()
    ticket, windows = _proposed(technicians=[None, technician, None])

    result = _sms("2")
    assert (result.ticket, result.reply_option) == (ticket, 2)
    outcome = proposal_reply_apply(result=result)

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    appointment = Appointment.objects.get(ticket=ticket)
    assert (appointment.start, appointment.end) == windows[1]
    assert (appointment.status, appointment.technician) == ("CONFIRMED", technician)
    assert ScheduleProposal.objects.get(ticket=ticket).accepted_option == 1
    (confirmation,) = _sent(ticket, "schedule_confirmed")
    assert (confirmation.channel, confirmation.recipient) == ("SMS", PHONE)
    assert window_phrase(*windows[1], LA) in confirmation.body
    # Booked by the SERVICE actor on the customer's behalf, through schedule.confirm.
    assert outcome.event.tool_name == "schedule.confirm"
    assert (outcome.event.actor_type, outcome.event.actor_id) == ("SERVICE", "service:customer-reply")
    assert outcome.event.payload["request"]["reply_option"] == 2
    assert outcome.event.payload["request"]["inbound_message_id"] == str(result.message.id)


def test_replying_2_again_does_nothing_twice():
    ticket, _windows = _proposed()
    first = _sms("2")
    proposal_reply_apply(result=first)
    events = AuditEvent.objects.filter(ticket=ticket).count()

    # The same text delivered again by the provider, and the customer texting "2" once more.
    assert proposal_reply_apply(result=_sms("2", sid=first.message.provider_message_id)) is None
    assert proposal_reply_apply(result=_sms("2")) is None

    assert Appointment.objects.filter(ticket=ticket).count() == 1
    assert len(_sent(ticket, "schedule_confirmed")) == 1
    assert AuditEvent.objects.filter(ticket=ticket, tool_name="schedule.confirm").count() == 1
    assert AuditEvent.objects.filter(ticket=ticket).count() == events


def test_the_same_reply_applied_twice_books_once():
    ticket, _windows = _proposed()
    result = _sms("2")
    proposal_reply_apply(result=result)
    assert proposal_reply_apply(result=SimpleNamespace(**{**vars(result), "duplicate": False})) is None
    assert Appointment.objects.filter(ticket=ticket).count() == 1
    assert len(_sent(ticket, "schedule_confirmed")) == 1


def test_a_number_no_window_has_gets_one_short_clarification():
    ticket, windows = _proposed()

    result = _sms("5")
    assert result.reply_option == 5
    assert proposal_reply_apply(result=result) is None
    proposal_reply_apply(result=result)  # the webhook view retried: still one answer

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert not Appointment.objects.filter(ticket=ticket).exists()
    (help_message,) = _sent(ticket, "proposal_reply_help")
    assert help_message.recipient == PHONE
    assert f"1) {window_phrase(*windows[0], LA)}" in help_message.body
    assert f"3) {window_phrase(*windows[2], LA)}" in help_message.body


def test_a_reply_to_a_proposal_held_as_stale_is_booked_and_the_escalation_resolved():
    ticket, windows = _proposed()
    tasks.proposals_stale_hold(now=timezone.now() + timedelta(minutes=300))
    ticket.refresh_from_db()
    assert ticket.state == "PENDING_CUSTOMER_CONFIRMATION"

    outcome = proposal_reply_apply(result=_sms("3"))

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    assert (Appointment.objects.get(ticket=ticket).start, ticket.scheduled_end) == windows[2]
    assert ScheduleHold.objects.get(ticket=ticket).status == "RELEASED"
    assert outcome.event.tool_name == "schedule.confirm"
    release = AuditEvent.objects.get(ticket=ticket, tool_name="schedule.release")
    assert release.actor_type == "SERVICE"
    assert len(_sent(ticket, "schedule_confirmed")) == 1
    # The next wake-up closes the stale-proposal escalation, with its own audit event.
    assert tasks.wakeups_run()
    escalation = Escalation.objects.get(ticket=ticket)
    assert escalation.resolution == "The proposal was answered or replaced."
    resolved = AuditEvent.objects.get(ticket=ticket, tool_name="dispatch.escalation_resolve")
    assert resolved.actor_type == "SYSTEM" and resolved.payload["escalation_id"] == str(escalation.id)


def test_a_reply_after_the_holds_confirmation_window_still_books_a_free_window(settings):
    settings.DISPATCH_STALE_HOLD_MINUTES = 60
    ticket, windows = _proposed()
    # Proposed eight hours ago and held three hours ago: the hold's hour for an answer is over.
    ScheduleProposal.objects.filter(ticket=ticket).update(created_at=timezone.now() - timedelta(hours=8))
    assert tasks.proposals_stale_hold(now=timezone.now() - timedelta(hours=3)) == 1

    proposal_reply_apply(result=_sms("1"))

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"
    hold = ScheduleHold.objects.get(ticket=ticket)
    assert (hold.status, hold.release_reason) == ("ROLLED_BACK", "The customer answered after the confirmation window.")
    assert Appointment.objects.get(ticket=ticket).start == windows[0][0]


def test_a_window_taken_meanwhile_is_not_booked_and_the_customer_is_told_new_times_follow():
    technician = TechnicianFactory()
    ticket, windows = _proposed(technicians=[technician, None, None])
    # Someone else booked the technician in that window since it was proposed.
    AppointmentFactory(technician=technician, start=windows[0][0], end=windows[0][1])

    assert proposal_reply_apply(result=_sms("1")) is None

    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULE_PROPOSED"
    assert not Appointment.objects.filter(ticket=ticket).exists()
    assert len(_sent(ticket, "proposal_reply_unavailable")) == 1
    assert _sent(ticket, "schedule_confirmed") == []


def test_a_different_number_after_booking_keeps_the_booking_and_says_so():
    ticket, windows = _proposed()
    proposal_reply_apply(result=_sms("2"))

    # Intake reports numbers only while a proposal is open, so this face is handed one directly.
    later = SimpleNamespace(
        message=SimpleNamespace(pk=uuid.uuid4(), channel="SMS"), ticket=ticket, reply_option=3, duplicate=False
    )
    assert proposal_reply_apply(result=later) is None
    assert proposal_reply_apply(result=later) is None

    assert Appointment.objects.get(ticket=ticket).start == windows[1][0]
    (note,) = _sent(ticket, "already_booked")
    assert window_phrase(*windows[1], LA) in note.body


def test_a_message_that_is_not_a_number_is_left_to_intake():
    ticket, _windows = _proposed()
    result = _sms("Can you come Friday instead?")
    assert result.reply_option is None
    assert proposal_reply_apply(result=result) is None
    assert not Appointment.objects.filter(ticket=ticket).exists()
