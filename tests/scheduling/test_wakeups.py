"""Wake-ups, each fired by running the scheduled task with a frozen clock (`now=`).

Every wake-up acts through the executor as the SYSTEM actor (its own audit event) and is
idempotent: running the task a second time finds the work done and does nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from django_q.models import Schedule

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling import tasks
from dispatch.scheduling.eta import dispatch_acknowledge, tech_depart
from dispatch.scheduling.models import Appointment, CustomerNotice, Escalation, ScheduleHold
from dispatch.scheduling.notifications import appointment_reminder_notify
from dispatch.scheduling.services import assignment_dispatch, schedule_propose
from dispatch.scheduling.wakeups import escalation_resolve, escalations_open
from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import ticket_cancel
from tests.factories import (
    TechnicianFactory,
    actor_for,
    ticket_dispatched,
    ticket_proposed,
    ticket_ready_to_schedule,
    ticket_scheduled,
    window_at,
)

pytestmark = pytest.mark.django_db

PHONE = "+15105550142"
LA = ZoneInfo("America/Los_Angeles")


def _events(ticket, tool):
    return list(AuditEvent.objects.filter(ticket=ticket, tool_name=tool).order_by("seq"))


def _messages(ticket, template):
    return list(OutboundMessage.objects.filter(ticket=ticket, template=template))


def _system(event):
    return (event.actor_type, event.actor_role) == ("SYSTEM", "system")


def test_the_wakeups_are_scheduled_every_minute():
    schedule = Schedule.objects.get(func="dispatch.scheduling.tasks.wakeups_run")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


# --- stale proposals ----------------------------------------------------------------------------------


def _proposed(**fields):
    windows = [window_at(days=2, hour=17), window_at(days=3, hour=17)]
    options = [{"start": s.isoformat(), "end": e.isoformat()} for s, e in windows]
    return ticket_proposed(options=options, customer_phone=PHONE, **fields)


def test_an_unanswered_proposal_is_held_with_one_reminder_and_an_escalation(settings):
    settings.DISPATCH_PROPOSAL_STALE_MINUTES = 240
    ticket = _proposed()
    later = timezone.now() + timedelta(minutes=241)

    assert tasks.proposals_stale_hold(now=(later - timedelta(minutes=2)).isoformat()) == 0
    assert tasks.proposals_stale_hold(now=later.isoformat()) == 1

    ticket.refresh_from_db()
    assert ticket.state == "PENDING_CUSTOMER_CONFIRMATION"
    hold = ScheduleHold.objects.get(ticket=ticket)
    assert (hold.hold_reason, hold.status) == ("CUSTOMER_CONFIRMATION_STALE", "ACTIVE")
    (reminder,) = _messages(ticket, "proposal_reminder")
    assert reminder.recipient == PHONE
    assert "1) " in reminder.body and "2) " in reminder.body
    escalation = Escalation.objects.get(ticket=ticket)
    assert (escalation.kind, escalation.is_open, escalation.created_at) == ("STALE_PROPOSAL", True, later)
    assert escalation.details["hold_id"] == str(hold.id)
    (event,) = _events(ticket, "schedule.hold")
    assert _system(event)
    assert event.payload["escalation_id"] == str(escalation.id)
    assert event.payload["customer_reminder"]["outbox_id"] == str(reminder.id)

    # The second run (and one an hour later) finds the work done.
    assert tasks.proposals_stale_hold(now=later.isoformat()) == 0
    assert tasks.wakeups_run(now=(later + timedelta(hours=1)).isoformat())["stale_proposals"] == 0
    assert len(_messages(ticket, "proposal_reminder")) == 1
    assert Escalation.objects.filter(ticket=ticket).count() == 1
    assert len(_events(ticket, "schedule.hold")) == 1


def test_a_proposal_rolled_back_to_waiting_is_not_held_or_reminded_again():
    from dispatch.scheduling.services import schedule_rollback

    ticket = _proposed()
    later = timezone.now() + timedelta(minutes=300)
    tasks.proposals_stale_hold(now=later)
    hold = ScheduleHold.objects.get(ticket=ticket)
    schedule_rollback(actor=actor_for("dispatcher"), ticket_id=ticket.id, confirmation_id=hold.id, reason="call back")

    assert tasks.proposals_stale_hold(now=later + timedelta(hours=5)) == 0
    assert len(_messages(ticket, "proposal_reminder")) == 1


# --- unacknowledged dispatches --------------------------------------------------------------------------


def test_a_dispatch_not_acknowledged_in_time_is_escalated_once_as_system(settings):
    settings.DISPATCH_ACK_TIMEOUT_MINUTES = 15
    technician = TechnicianFactory()
    ticket = ticket_dispatched(technician=technician)
    later = timezone.now() + timedelta(minutes=16)

    assert tasks.dispatches_unacknowledged_escalate(now=timezone.now() + timedelta(minutes=10)) == 0
    assert tasks.dispatches_unacknowledged_escalate(now=later) == 1

    escalation = Escalation.objects.get(ticket=ticket)
    assert escalation.kind == "UNACKNOWLEDGED_DISPATCH"
    assert escalation.details["tech_name"] == technician.display_name
    assert technician.display_name in escalation.details["reason"]
    (event,) = _events(ticket, "dispatch.escalate")
    assert _system(event)
    assert (event.before_state, event.after_state) == ("DISPATCHED", "DISPATCHED")
    assert event.payload["escalation_id"] == str(escalation.id)
    assert list(escalations_open()) == [escalation]

    assert tasks.dispatches_unacknowledged_escalate(now=later + timedelta(minutes=30)) == 0
    assert Escalation.objects.filter(ticket=ticket).count() == 1


def test_an_acknowledged_dispatch_is_not_escalated_and_acknowledging_late_resolves_the_escalation():
    technician = TechnicianFactory()
    on_time = ticket_dispatched(technician=technician)
    dispatch_acknowledge(actor=actor_for("technician", technician=technician), ticket_id=on_time.id)
    late_technician = TechnicianFactory()
    late = ticket_dispatched(technician=late_technician)
    later = timezone.now() + timedelta(minutes=20)

    assert tasks.dispatches_unacknowledged_escalate(now=later) == 1
    assert not Escalation.objects.filter(ticket=on_time).exists()

    tech_depart(actor=actor_for("technician", technician=late_technician), ticket_id=late.id, eta_minutes=25)
    escalation = Escalation.objects.get(ticket=late)
    assert escalation.resolved_at is not None
    assert escalation.resolution == "The technician acknowledged the job."
    assert list(escalations_open()) == []


def test_a_redispatch_is_a_new_dispatch_to_acknowledge():
    from dispatch.scheduling.services import dispatch_force_unassign

    ticket = ticket_dispatched()
    later = timezone.now() + timedelta(minutes=20)
    tasks.dispatches_unacknowledged_escalate(now=later)
    dispatcher = actor_for("dispatcher")
    dispatch_force_unassign(actor=dispatcher, ticket_id=ticket.id, reason="no answer")
    assignment_dispatch(actor=dispatcher, ticket_id=ticket.id, tech_id=TechnicianFactory().id)

    # The first escalation is resolved (that dispatch is over); the new one is escalated on its own.
    report = tasks.wakeups_run(now=later)
    assert (report["resolved"], report["unacknowledged_dispatches"]) == (1, 1)
    first = Escalation.objects.get(ticket=ticket, resolved_at__isnull=False)
    second = Escalation.objects.get(ticket=ticket, resolved_at__isnull=True)
    assert first.resolution == "The job is no longer waiting on that dispatch."
    assert second.trigger_key != first.trigger_key
    resolve_event = _events(ticket, "dispatch.escalation_resolve")[0]
    assert _system(resolve_event)


# --- SLA risk -------------------------------------------------------------------------------------------------


def test_an_emergency_nobody_is_booked_for_is_flagged_near_its_due_time(settings):
    settings.DISPATCH_SLA_RISK_MARGIN_MINUTES = {"EMERGENCY": 60}
    ticket = ticket_ready_to_schedule(priority="EMERGENCY")
    due = ticket.created_at + timedelta(hours=4)

    assert tasks.sla_risks_flag(now=due - timedelta(minutes=61)) == 0
    assert tasks.sla_risks_flag(now=due - timedelta(minutes=50)) == 1

    escalation = Escalation.objects.get(ticket=ticket)
    assert escalation.kind == "SLA_RISK"
    assert escalation.details["due_at"] == due.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
    assert "not booked yet" in escalation.details["reason"]
    (event,) = _events(ticket, "dispatch.escalate")
    assert _system(event)
    assert event.payload["kind"] == "SLA_RISK"

    # Still at risk later, past due even: flagged once.
    assert tasks.sla_risks_flag(now=due + timedelta(minutes=30)) == 0
    assert Escalation.objects.filter(ticket=ticket).count() == 1


def _urgent_booked_in(hours: int):
    start = timezone.now() + timedelta(hours=hours)
    return ticket_scheduled(priority="URGENT", start=start, end=start + timedelta(hours=2))


def test_a_job_booked_to_arrive_after_its_due_time_is_flagged_and_one_booked_in_time_is_not():
    in_time, too_late, missed = _urgent_booked_in(22), _urgent_booked_in(30), _urgent_booked_in(6)
    near_due = timezone.now() + timedelta(hours=21)

    assert tasks.sla_risks_flag(now=near_due) == 2

    assert not Escalation.objects.filter(ticket=in_time).exists()
    assert "technician is expected at" in Escalation.objects.get(ticket=too_late).details["reason"]
    # Booked well in time, but the booked time went by and nobody checked in.
    assert "nobody is on site yet" in Escalation.objects.get(ticket=missed).details["reason"]


def test_an_sla_flag_is_resolved_once_a_technician_is_on_site():
    from dispatch.scheduling.services import tech_check_in

    technician = TechnicianFactory()
    ticket = ticket_dispatched(
        technician=technician,
        priority="EMERGENCY",
        start=timezone.now() + timedelta(hours=5),
        end=timezone.now() + timedelta(hours=6),
    )
    assert tasks.sla_risks_flag(now=timezone.now() + timedelta(hours=3, minutes=30)) == 1

    tech_check_in(
        actor=actor_for("technician", technician=technician),
        ticket_id=ticket.id,
        timestamp=timezone.now(),
        reason="Free early, the customer let us in",
    )
    assert tasks.wakeups_run(now=timezone.now() + timedelta(hours=4))["resolved"] == 1
    assert Escalation.objects.get(ticket=ticket).resolution == "A technician reached the site."


# --- the day-before reminder ------------------------------------------------------------------------------


def _visit_in_days(days: int, hour: int = 9):
    """A confirmed visit `days` from today at `hour`:00 site time, and 6 PM site time the day before it."""
    local_day = timezone.now().astimezone(LA).date() + timedelta(days=days)
    start = datetime.combine(local_day, time(hour), tzinfo=LA)
    evening_before = datetime.combine(local_day - timedelta(days=1), time(18), tzinfo=LA)
    ticket = ticket_scheduled(start=start, end=start + timedelta(hours=2), customer_phone=PHONE)
    return ticket, evening_before


def test_the_customer_is_reminded_the_evening_before_once(settings):
    settings.DISPATCH_REMINDER_HOUR = 17
    ticket, evening_before = _visit_in_days(3)

    assert tasks.appointment_reminders_send(now=evening_before - timedelta(hours=2)) == 0
    assert tasks.appointment_reminders_send(now=evening_before) == 1
    assert tasks.appointment_reminders_send(now=evening_before + timedelta(hours=1)) == 0

    (reminder,) = _messages(ticket, "reminder")
    assert "tomorrow, " in reminder.body and "9-11 AM" in reminder.body
    (event,) = _events(ticket, "customer.remind")
    assert _system(event)
    assert event.payload["customer_notification"]["outbox_id"] == str(reminder.id)


def test_no_reminder_for_a_past_window(settings):
    settings.DISPATCH_REMINDER_HOUR = 17
    ticket, evening_before = _visit_in_days(2)
    appointment = Appointment.objects.get(ticket=ticket)
    under_way = appointment.start + timedelta(minutes=30)

    # The evening's run came late (the worker was down): by now the visit is under way.
    with time_machine.travel(under_way, tick=False):
        assert tasks.appointment_reminders_send(now=evening_before) == 0
        notice = appointment_reminder_notify(ticket=ticket, appointment=appointment)

    assert _messages(ticket, "reminder") == []
    assert _events(ticket, "customer.remind") == []
    assert (notice["outbox_id"], notice["already_sent"]) == (None, False)
    assert notice["refused"] == [{"code": "WINDOW_PASSED", "window_start": appointment.start.isoformat()}]
    assert not CustomerNotice.objects.filter(ticket=ticket, kind=CustomerNotice.Kind.REMINDER).exists()


def test_a_visit_booked_the_same_day_gets_no_extra_reminder_and_a_moved_one_gets_a_new_one():
    booked_late, evening = _visit_in_days(4)
    # Booked that afternoon: the confirmation is a few hours old, a reminder would repeat it.
    Appointment.objects.filter(ticket=booked_late).update(created_at=evening - timedelta(hours=3))
    assert tasks.appointment_reminders_send(now=evening) == 0
    assert _messages(booked_late, "reminder") == []

    ticket, evening_before = _visit_in_days(3)
    tasks.appointment_reminders_send(now=evening_before)
    appointment = Appointment.objects.get(ticket=ticket)
    Appointment.objects.filter(pk=appointment.pk).update(
        start=appointment.start + timedelta(days=1), end=appointment.end + timedelta(days=1)
    )
    tasks.appointment_reminders_send(now=evening_before + timedelta(days=1))
    assert len(_messages(ticket, "reminder")) == 2


# --- the board's list -----------------------------------------------------------------------------------------


def test_open_escalations_list_the_most_pressing_first_and_a_dispatcher_can_resolve_one():
    stale = _proposed()
    dispatched = ticket_dispatched()
    later = timezone.now() + timedelta(minutes=300)
    tasks.wakeups_run(now=later)

    kinds = [e.kind for e in escalations_open(day=later.date())]
    assert kinds == ["UNACKNOWLEDGED_DISPATCH", "STALE_PROPOSAL"]
    assert list(escalations_open(day=(later - timedelta(days=2)).date())) == []

    dispatcher = actor_for("dispatcher")
    escalation = Escalation.objects.get(ticket=dispatched)
    outcome = escalation_resolve(actor=dispatcher, escalation_id=escalation.id, resolution="Called Dana, on it.")
    assert outcome.event.tool_name == "dispatch.escalation_resolve"
    assert [e.ticket_id for e in escalations_open()] == [stale.id]
    with pytest.raises(DispatchError) as again:
        escalation_resolve(actor=dispatcher, escalation_id=escalation.id)
    assert again.value.code == "ESCALATION_ALREADY_RESOLVED"
    with pytest.raises(DispatchError) as technician:
        escalation_resolve(actor=actor_for("technician"), escalation_id=escalation.id)
    assert technician.value.code == "TOOL_ROLE_FORBIDDEN"


def test_a_cancelled_tickets_escalations_are_resolved():
    ticket = _proposed()
    tasks.proposals_stale_hold(now=timezone.now() + timedelta(minutes=300))
    ticket_cancel(actor=actor_for("dispatcher"), ticket_id=ticket.id, reason="customer fixed it")

    assert tasks.wakeups_run(now=timezone.now() + timedelta(minutes=301))["resolved"] == 1
    assert Escalation.objects.get(ticket=ticket).resolution == "The ticket is cancelled."


def test_propose_is_not_affected_by_the_wakeups_of_other_tickets():
    # A fresh proposal is not stale, and a run over an empty day changes nothing.
    ticket = ticket_ready_to_schedule()
    start, end = window_at(days=2)
    schedule_propose(
        actor=actor_for("dispatcher"),
        ticket_id=ticket.id,
        options=[{"start": start.isoformat(), "end": end.isoformat()}],
    )
    assert tasks.wakeups_run(now=timezone.now()) == {
        "resolved": 0,
        "stale_proposals": 0,
        "unacknowledged_dispatches": 0,
        "sla_risks": 0,
        "reminders": 0,
        "question_reminders": 0,
    }
