"""Wake-ups: what the scheduler notices on its own, every minute (see tasks.py).

- A proposal the customer has not answered for DISPATCH_PROPOSAL_STALE_MINUTES: the ticket is
  held for the customer (schedule.hold, CUSTOMER_CONFIRMATION_STALE), the customer gets one
  reminder, and the dispatcher an escalation.
- A dispatch the technician has not acknowledged within DISPATCH_ACK_TIMEOUT_MINUTES: escalated.
- A ticket whose technician will not be on site before its SLA due time (the slot engine's
  `sla_due`: EMERGENCY 4 h, URGENT 24 h, ROUTINE 5 days from creation): flagged once it is
  within DISPATCH_SLA_RISK_MARGIN_MINUTES of that time.
- The evening before a visit (from DISPATCH_REMINDER_HOUR, site time): the customer's reminder.
- Escalations whose cause went away (the technician acknowledged, arrived, the customer
  answered, the job a technician texted about moved on) are resolved.

Each action is one executor call as the SYSTEM actor, so it writes its own audit event, and
each is idempotent: what it raises or sends is keyed (Escalation.trigger_key,
CustomerNotice.occasion) and looked for first, so a second run finds it done and does nothing.
The condition is checked again under the ticket's lock, because a dispatcher or the customer
may have acted between the scan and the action. Every function takes `now` so tests can run
them with a frozen clock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from dispatch.common.actors import Actor, system_actor
from dispatch.common.errors import DispatchError
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets import catalog
from dispatch.tickets.commands import command
from dispatch.tickets.models import Priority, StateTransition, Ticket
from dispatch.tickets.services import Outcome, TicketChange, ticket_change, ticket_locked
from dispatch.tickets.states import OPEN_STATES, TicketState

from .engine import SLA_DUE, sla_due
from .inputs import iso
from .models import (
    Appointment,
    AppointmentStatus,
    CustomerNotice,
    Departure,
    DispatchAcknowledgement,
    Escalation,
    EscalationKind,
    ScheduleHold,
    ScheduleProposal,
)
from .notifications import (
    WINDOW_PASSED,
    appointment_reminder_notify,
    moment_phrase,
    proposal_reminder_notify,
    question_reminder_notify,
    reminder_occasion,
    site_zone,
)
from .proposals import schedule_hold

log = logging.getLogger(__name__)


# Only the system raises escalations and sends reminders on its own (SYSTEM passes every
# role check); no person or agent holds these tools.
# The autopilot (a dispatcher that is an agent) raises its hand-overs with the same tool.
DISPATCH_ESCALATE = command(
    "dispatch.escalate", ["dispatcher"], sorted(OPEN_STATES), None, "Escalate to the dispatcher"
)
CUSTOMER_REMIND = command("customer.remind", [], ["NEEDS_INFO", "SCHEDULED", "DISPATCHED"], None, "Remind the customer")
# A dispatcher closes an escalation they handled; the wake-ups close those whose cause went away.
ESCALATION_RESOLVE = command("dispatch.escalation_resolve", ["dispatcher"], None, None, "Resolve an escalation")

DEFAULTS = {
    "DISPATCH_PROPOSAL_STALE_MINUTES": 240,
    # How long the stale hold waits for the customer before schedule.release refuses their answer.
    "DISPATCH_STALE_HOLD_MINUTES": 24 * 60,
    "DISPATCH_ACK_TIMEOUT_MINUTES": 15,
    "DISPATCH_REMINDER_HOUR": 17,
    # How long a question intake asked may go unanswered before the customer is reminded, once.
    "DISPATCH_QUESTION_REMINDER_MINUTES": 4 * 60,
}
DEFAULT_SLA_RISK_MARGIN_MINUTES = {Priority.EMERGENCY: 60, Priority.URGENT: 4 * 60, Priority.ROUTINE: 24 * 60}

# Once a technician is on site the SLA (arrival) is met; cancelled and closed tickets are done.
SLA_MET_STATES = frozenset(
    {
        TicketState.ON_SITE,
        TicketState.IN_PROGRESS,
        TicketState.COMPLETED_PENDING_VERIFICATION,
        TicketState.VERIFIED,
        TicketState.INVOICED,
        TicketState.CLOSED,
        TicketState.CANCELLED,
    }
)
# The states in which the ticket's scheduled start is a booking, not a tentative proposal.
BOOKED_STATES = frozenset({TicketState.SCHEDULED, TicketState.DISPATCHED})
# The board shows the most pressing first.
KIND_ORDER = (
    EscalationKind.HANDOVER,
    EscalationKind.UNACKNOWLEDGED_DISPATCH,
    EscalationKind.TECHNICIAN_MESSAGE,
    EscalationKind.SLA_RISK,
    EscalationKind.STALE_PROPOSAL,
)


class ConditionCleared(Exception):
    """Raised inside an executor call when, under the lock, there is nothing left to do: rolls back, writes nothing."""


def _setting_minutes(name: str) -> timedelta:
    return timedelta(minutes=int(getattr(settings, name, DEFAULTS[name])))


def _per_priority(name: str, defaults: dict) -> dict[str, float]:
    configured = getattr(settings, name, None)
    if isinstance(configured, (int, float)):
        return {priority: float(configured) for priority in Priority.values}
    return {priority: float((configured or {}).get(priority, defaults[priority])) for priority in Priority.values}


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def _each(items: Iterable[Any], action: Callable[[Any], bool], label: str) -> int:
    """Run `action` for every item in its own transaction; one failing item never stops the others."""
    done = 0
    for item in items:
        try:
            with transaction.atomic():
                done += 1 if action(item) else 0
        except ConditionCleared:
            continue
        except DispatchError as exc:
            # Someone acted on the ticket between the scan and the lock (a booking, a cancel).
            log.info("Wake-up %s skipped %s: %s %s", label, item, exc.code, exc.message)
        except Exception:
            # A bug or a broken row must not stop every other ticket's wake-up; it is logged
            # with its traceback and retried on the next run.
            log.exception("Wake-up %s failed for %s.", label, item)
    return done


def _escalated_keys(kind: str, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    if not keys:
        return set()
    return set(Escalation.objects.filter(kind=kind, trigger_key__in=keys).values_list("trigger_key", flat=True))


# --- Stale proposals -----------------------------------------------------------------------------


def proposals_stale_hold(*, now: datetime | None = None) -> int:
    """Hold tickets whose proposal went unanswered, remind each customer once, escalate; returns how many."""
    now = _now(now)
    stale_after = _setting_minutes("DISPATCH_PROPOSAL_STALE_MINUTES")
    candidates = list(
        ScheduleProposal.objects.filter(
            status=ScheduleProposal.Status.OPEN,
            created_at__lte=now - stale_after,
            ticket__state=TicketState.SCHEDULE_PROPOSED,
        ).values_list("id", "ticket_id")
    )
    done = _escalated_keys(EscalationKind.STALE_PROPOSAL, (f"proposal:{pid}" for pid, _ in candidates))
    pending = [(pid, ticket_id) for pid, ticket_id in candidates if f"proposal:{pid}" not in done]

    def hold(item: tuple[uuid.UUID, uuid.UUID]) -> bool:
        proposal_id, ticket_id = item
        # Locked before the check, so the check and the hold see the same ticket; the hold's own
        # executor locks the same row again within this transaction.
        ticket = ticket_locked(ticket_id)
        proposal = ScheduleProposal.objects.filter(pk=proposal_id, status=ScheduleProposal.Status.OPEN).first()
        trigger_key = f"proposal:{proposal_id}"
        if (
            ticket.state != TicketState.SCHEDULE_PROPOSED
            or proposal is None
            or Escalation.objects.filter(
                ticket=ticket, kind=EscalationKind.STALE_PROPOSAL, trigger_key=trigger_key
            ).exists()
        ):
            raise ConditionCleared
        waited = round((now - proposal.created_at).total_seconds() / 60)
        escalation = Escalation.objects.create(
            ticket=ticket,
            kind=EscalationKind.STALE_PROPOSAL,
            trigger_key=trigger_key,
            created_at=now,
            details={
                "proposal_id": str(proposal.id),
                "proposed_at": iso(proposal.created_at),
                "minutes_waiting": waited,
                "reason": f"No answer to the proposed windows after {_duration(waited)}; held for the customer.",
            },
        )
        reminder = proposal_reminder_notify(ticket=ticket, proposal=proposal)
        window = {"start": now, "end": now + _setting_minutes("DISPATCH_STALE_HOLD_MINUTES")}
        outcome = schedule_hold(
            actor=system_actor("wakeup-stale-proposal"),
            ticket_id=ticket.id,
            hold_reason=ScheduleHold.Reason.CUSTOMER_CONFIRMATION_STALE,
            confirmation_window=window,
            facts={
                "wakeup": "proposal_stale",
                "proposal_id": str(proposal.id),
                "minutes_waiting": waited,
                "escalation_id": str(escalation.id),
                "customer_reminder": reminder,
            },
        )
        escalation.details["hold_id"] = outcome.result["confirmation_id"]
        escalation.save(update_fields=["details"])
        return True

    return _each(pending, hold, "stale proposal")


def _duration(minutes: int) -> str:
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


# --- Unacknowledged dispatches ------------------------------------------------------------------------


def _escalate(
    *,
    actor: Actor,
    ticket_id: Any,
    kind: str,
    trigger_key: str,
    now: datetime,
    check: Callable[[Ticket], dict],
    request: dict | None = None,
) -> Outcome:
    """One dispatch.escalate executor call: `check` (under the lock) returns the details or raises ConditionCleared."""
    with ticket_change(
        actor=actor,
        command=DISPATCH_ESCALATE,
        ticket_id=ticket_id,
        request=request,
        audit={"kind": kind, "trigger_key": trigger_key, "evaluated_at": iso(now)},
    ) as change:
        if Escalation.objects.filter(ticket=change.ticket, kind=kind, trigger_key=trigger_key).exists():
            raise ConditionCleared
        details = check(change.ticket)
        escalation = Escalation.objects.create(
            ticket=change.ticket, kind=kind, trigger_key=trigger_key, created_at=now, details=details
        )
        change.result = {"escalation_id": str(escalation.id), "kind": kind, **details}
        change.audit_payload.update(change.result)
    return change.outcome


def handover_raise(
    *,
    actor: Actor,
    ticket_id: Any,
    state: str,
    version: int,
    reason_code: str,
    reason: str,
    facts: dict | None = None,
) -> bool:
    """Hand a job to a person: an open HANDOVER escalation saying why, once per ticket, reason and
    version of the ticket (a second call, or a second worker at once, raises nothing; once a person
    resolved it, the ticket's version has moved and the same reason can be raised again), and none
    when the ticket has left `state` meanwhile. True when one was raised."""

    def check(ticket: Ticket) -> dict:
        if ticket.state != state:
            raise ConditionCleared
        # One open hand-over of a reason at a time: raising it bumps the ticket's version, which
        # must not make the next pass raise it again.
        if Escalation.objects.filter(
            ticket=ticket, kind=EscalationKind.HANDOVER, resolved_at__isnull=True, details__reason_code=reason_code
        ).exists():
            raise ConditionCleared
        return {"reason_code": reason_code, "reason": reason, "ticket_state": state, **(facts or {})}

    try:
        _escalate(
            actor=actor,
            ticket_id=ticket_id,
            kind=EscalationKind.HANDOVER,
            trigger_key=f"handover:{reason_code}:{state}:{version}",
            now=timezone.now(),
            check=check,
            # The reason in words, where every decision of the caller records it.
            request={"reason": reason, "reason_code": reason_code},
        )
    except ConditionCleared:
        return False
    return True


def dispatches_unacknowledged_escalate(*, now: datetime | None = None) -> int:
    """Escalate dispatches no technician acknowledged in time; returns how many were raised."""
    now = _now(now)
    timeout = _setting_minutes("DISPATCH_ACK_TIMEOUT_MINUTES")
    # The ticket's latest transition is its current dispatch when its seq is the ticket's last.
    rows = list(
        StateTransition.objects.filter(
            to_state=TicketState.DISPATCHED,
            ticket__state=TicketState.DISPATCHED,
            created_at__lte=now - timeout,
            acknowledgement__isnull=True,
        )
        .filter(seq=F("ticket__transition_seq"))
        .values_list("id", "ticket_id")
    )
    done = _escalated_keys(EscalationKind.UNACKNOWLEDGED_DISPATCH, (f"dispatch:{tid}" for tid, _ in rows))
    pending = [(tid, ticket_id) for tid, ticket_id in rows if f"dispatch:{tid}" not in done]
    actor = system_actor("wakeup-unacknowledged-dispatch")

    def escalate(item: tuple[int, uuid.UUID]) -> bool:
        transition_id, ticket_id = item

        def check(ticket: Ticket) -> dict:
            transition = StateTransition.objects.filter(pk=transition_id).first()
            if (
                ticket.state != TicketState.DISPATCHED
                or transition is None
                or transition.seq != ticket.transition_seq
                or DispatchAcknowledgement.objects.filter(dispatch_transition=transition).exists()
            ):
                raise ConditionCleared
            waited = round((now - transition.created_at).total_seconds() / 60)
            technician = ticket.assigned_tech
            name = technician.display_name if technician else "The technician"
            dispatched = moment_phrase(transition.created_at, site_zone(ticket.site), now=now)
            return {
                "dispatched_at": iso(transition.created_at),
                "minutes_waiting": waited,
                "tech_id": str(technician.pk) if technician else None,
                "tech_name": technician.display_name if technician else None,
                "reason": f"{name} has not acknowledged the job dispatched at {dispatched} ({waited} min ago).",
            }

        _escalate(
            actor=actor,
            ticket_id=ticket_id,
            kind=EscalationKind.UNACKNOWLEDGED_DISPATCH,
            trigger_key=f"dispatch:{transition_id}",
            now=now,
            check=check,
        )
        return True

    return _each(pending, escalate, "unacknowledged dispatch")


# --- SLA risk ------------------------------------------------------------------------------------------


def sla_due_at(ticket: Ticket) -> datetime:
    """When a technician must be on site by: the slot engine's due time (ROUTINE's for an unknown priority)."""
    return sla_due(ticket) or ticket.created_at + SLA_DUE[Priority.ROUTINE]


def _expected_arrival(ticket: Ticket) -> datetime | None:
    """When the technician is expected: the live ETA once on the way, else the booked start."""
    if ticket.state not in BOOKED_STATES:
        return None
    if ticket.state == TicketState.DISPATCHED:
        departure = (
            Departure.objects.filter(ticket=ticket).order_by("-departed_at").values_list("eta_at", flat=True).first()
        )
        if departure is not None:
            return departure
    return ticket.scheduled_start


def _sla_risk(ticket: Ticket, now: datetime) -> dict | None:
    """Why the ticket will miss its arrival due time (the details of the flag), or None if it will not."""
    due = sla_due_at(ticket)
    margins = _per_priority("DISPATCH_SLA_RISK_MARGIN_MINUTES", DEFAULT_SLA_RISK_MARGIN_MINUTES)
    margin = timedelta(minutes=margins.get(ticket.priority, margins[Priority.ROUTINE]))
    if now < due - margin:
        return None
    zone = site_zone(ticket.site)
    expected = _expected_arrival(ticket)
    due_text = moment_phrase(due, zone, now=now)
    if now >= due:
        reason = f"{ticket.get_priority_display()} job past its due time ({due_text}) with nobody on site."
    elif expected is None:
        reason = f"{ticket.get_priority_display()} job due by {due_text} and not booked yet."
    elif expected > due:
        reason = (
            f"{ticket.get_priority_display()} job due by {due_text} but the technician is expected "
            f"at {moment_phrase(expected, zone, now=now)}."
        )
    elif expected < now:
        reason = (
            f"{ticket.get_priority_display()} job due by {due_text}; the technician was expected "
            f"at {moment_phrase(expected, zone, now=now)} and nobody is on site yet."
        )
    else:
        return None
    return {
        "priority": ticket.priority,
        "due_at": iso(due),
        "expected_arrival": iso(expected),
        "overdue": now >= due,
        "reason": reason,
    }


def sla_risks_flag(*, now: datetime | None = None) -> int:
    """Flag open tickets that will miss their SLA (no one on site by the due time); returns how many."""
    now = _now(now)
    margins = _per_priority("DISPATCH_SLA_RISK_MARGIN_MINUTES", DEFAULT_SLA_RISK_MARGIN_MINUTES)
    # Only tickets already within their margin of the due time are read at all.
    within_margin = Q()
    for priority in Priority.values:
        within_margin |= Q(
            priority=priority,
            created_at__lte=now - SLA_DUE[priority] + timedelta(minutes=margins[priority]),
        )
    reached_site = StateTransition.objects.filter(ticket=OuterRef("pk"), to_state=TicketState.ON_SITE)
    tickets = list(
        Ticket.objects.filter(within_margin)
        .exclude(state__in=SLA_MET_STATES)
        .exclude(Exists(reached_site))
        .select_related("site")
    )
    keys = {ticket.pk: f"sla:{iso(sla_due_at(ticket))}" for ticket in tickets}
    flagged = set(
        Escalation.objects.filter(kind=EscalationKind.SLA_RISK, ticket_id__in=list(keys)).values_list(
            "ticket_id", "trigger_key"
        )
    )
    pending = [ticket for ticket in tickets if (ticket.pk, keys[ticket.pk]) not in flagged and _sla_risk(ticket, now)]
    actor = system_actor("wakeup-sla-risk")

    def flag(ticket: Ticket) -> bool:
        def check(locked: Ticket) -> dict:
            if locked.state in SLA_MET_STATES:
                raise ConditionCleared
            if StateTransition.objects.filter(ticket=locked, to_state=TicketState.ON_SITE).exists():
                raise ConditionCleared
            details = _sla_risk(locked, now)
            if details is None:
                raise ConditionCleared
            return details

        _escalate(
            actor=actor,
            ticket_id=ticket.pk,
            kind=EscalationKind.SLA_RISK,
            trigger_key=keys[ticket.pk],
            now=now,
            check=check,
        )
        return True

    return _each(pending, flag, "SLA risk")


# --- The day-before reminder --------------------------------------------------------------------------


def _window_passed(notice: dict) -> bool:
    return any(refusal.get("code") == WINDOW_PASSED for refusal in notice["refused"])


def _reminder_due(appointment: Appointment, now: datetime) -> bool:
    """The visit is tomorrow (site time), it is past the reminder hour today, and it was not booked today."""
    zone = site_zone(appointment.ticket.site)
    local_now = now.astimezone(zone)
    if appointment.start.astimezone(zone).date() != local_now.date() + timedelta(days=1):
        return False
    if local_now.hour < int(getattr(settings, "DISPATCH_REMINDER_HOUR", DEFAULTS["DISPATCH_REMINDER_HOUR"])):
        return False
    # Booked today: the confirmation the customer just got says the same thing. A job the day
    # plan moved today was booked earlier (it keeps the window the customer was told).
    return appointment.promised_start is not None or appointment.created_at.astimezone(zone).date() != local_now.date()


def appointment_reminders_send(*, now: datetime | None = None) -> int:
    """Send the day-before reminder of every confirmed visit tomorrow (once each); returns how many."""
    now = _now(now)
    # Tomorrow in any site's timezone lies within the next 48 hours.
    appointments = list(
        Appointment.objects.filter(
            status=AppointmentStatus.CONFIRMED,
            start__gt=now,
            start__lte=now + timedelta(hours=48),
            ticket__state__in=BOOKED_STATES,
        ).select_related("ticket__site")
    )
    # Reminders sent before they were counted per ticket and told window were counted per
    # appointment and start: either record means this visit was reminded.
    earlier = {a.pk: f"{a.id}@{a.start.isoformat()}" for a in appointments}
    sent = set(
        CustomerNotice.objects.filter(
            kind=CustomerNotice.Kind.REMINDER,
            occasion__in=[reminder_occasion(a) for a in appointments] + list(earlier.values()),
        ).values_list("occasion", flat=True)
    )
    pending = [
        a
        for a in appointments
        if reminder_occasion(a) not in sent and earlier[a.pk] not in sent and _reminder_due(a, now)
    ]
    actor = system_actor("wakeup-reminder")

    def remind(appointment: Appointment) -> bool:
        with ticket_change(
            actor=actor,
            command=CUSTOMER_REMIND,
            ticket_id=appointment.ticket_id,
            audit={"reminder": "day_before", "appointment_start": iso(appointment.start)},
        ) as change:
            current = Appointment.objects.filter(
                pk=appointment.pk, status=AppointmentStatus.CONFIRMED, start=appointment.start
            ).first()
            if current is None:
                raise ConditionCleared
            notice = appointment_reminder_notify(ticket=change.ticket, appointment=current)
            if notice["already_sent"] or _window_passed(notice):
                # A run that came too late (the worker was down) reminds nobody of a visit under way.
                raise ConditionCleared
            change.audit_payload.update({"appointment_id": str(current.id), "customer_notification": notice})
        return True

    return _each(pending, remind, "reminder")


# --- The unanswered question --------------------------------------------------------------------------


def questions_unanswered_remind(*, now: datetime | None = None) -> int:
    """Remind, once, each customer who has not answered what intake asked (the ticket waits in
    NEEDS_INFO, nothing came from them since the question); returns how many were reminded. The
    autopilot hands the job to a person when the reminder goes unanswered too."""
    now = _now(now)
    cutoff = now - _setting_minutes("DISPATCH_QUESTION_REMINDER_MINUTES")
    questions = {}
    for message_id, ticket_id, sent_at in (
        OutboundMessage.objects.filter(
            template="needs_info", ticket__state=TicketState.NEEDS_INFO, created_at__lte=cutoff
        )
        .order_by("ticket_id", "created_at")
        .values_list("id", "ticket_id", "created_at")
    ):
        questions[ticket_id] = (message_id, sent_at)  # the latest question per ticket
    reminded = set(
        CustomerNotice.objects.filter(
            kind=CustomerNotice.Kind.QUESTION_REMINDER, occasion__in=[str(m) for m, _ in questions.values()]
        ).values_list("occasion", flat=True)
    )
    pending = [(t, m, at) for t, (m, at) in questions.items() if str(m) not in reminded]
    actor = system_actor("wakeup-question-reminder")

    def remind(item) -> bool:
        ticket_id, message_id, asked_at = item
        with ticket_change(
            actor=actor,
            command=CUSTOMER_REMIND,
            ticket_id=ticket_id,
            audit={"reminder": "question", "asked_message_id": str(message_id), "asked_at": iso(asked_at)},
        ) as change:
            ticket = change.ticket
            if ticket.inbound_messages.filter(received_at__gt=asked_at).exists():
                raise ConditionCleared
            question = catalog.ticket_open_question(ticket)
            if not question:
                raise ConditionCleared
            notice = question_reminder_notify(ticket=ticket, asked_message_id=str(message_id), question=question)
            if notice["already_sent"]:
                raise ConditionCleared
            change.audit_payload.update({"question": question, "customer_notification": notice})
        return True

    return _each(pending, remind, "question reminder")


# --- Resolving escalations ---------------------------------------------------------------------------------


def _cleared_reason(escalation: Escalation, ticket: Ticket) -> str | None:
    """Why an open escalation no longer applies, or None while it still does."""
    if ticket.state in (TicketState.CANCELLED, TicketState.CLOSED):
        return f"The ticket is {ticket.get_state_display().lower()}."
    if escalation.kind == EscalationKind.STALE_PROPOSAL:
        proposal_id = escalation.details.get("proposal_id")
        if not ScheduleProposal.objects.filter(pk=proposal_id, status=ScheduleProposal.Status.OPEN).exists():
            return "The proposal was answered or replaced."
        return None
    if escalation.kind == EscalationKind.UNACKNOWLEDGED_DISPATCH:
        transition_id = int(escalation.trigger_key.split(":", 1)[1])
        if DispatchAcknowledgement.objects.filter(dispatch_transition_id=transition_id).exists():
            return "The technician acknowledged the job."
        if (
            ticket.state != TicketState.DISPATCHED
            or not StateTransition.objects.filter(pk=transition_id, seq=ticket.transition_seq).exists()
        ):
            return "The job is no longer waiting on that dispatch."
        return None
    if escalation.kind == EscalationKind.HANDOVER:
        # A hand-over stands until a person acts on the job (it moves) or resolves it.
        if ticket.state != escalation.details.get("ticket_state"):
            return "The job moved on since it was handed over."
        return None
    if escalation.kind == EscalationKind.TECHNICIAN_MESSAGE:
        # The text stays in the messages waiting for review; the board shows it while the job
        # is where it was when the technician wrote.
        if ticket.state != escalation.details.get("ticket_state"):
            return "The job moved on since the technician's message."
        return None
    if StateTransition.objects.filter(ticket=ticket, to_state=TicketState.ON_SITE).exists():
        return "A technician reached the site."
    if escalation.details.get("due_at") != iso(sla_due_at(ticket)):
        return "The ticket's priority and due time changed."
    return None


def _resolve(change: TicketChange, escalation: Escalation, resolution: str, now: datetime) -> dict:
    escalation.resolved_at = now
    escalation.resolved_by = change.actor.actor_id
    escalation.resolution = resolution
    escalation.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    result = {"escalation_id": str(escalation.id), "kind": escalation.kind, "resolution": resolution}
    change.audit_payload.update(result)
    return result


def escalations_resolve_cleared(*, now: datetime | None = None) -> int:
    """Resolve open escalations whose cause went away; returns how many."""
    now = _now(now)
    open_ids = list(Escalation.objects.filter(resolved_at__isnull=True).values_list("id", "ticket_id"))
    actor = system_actor("wakeup-resolve")

    def resolve(item: tuple[uuid.UUID, uuid.UUID]) -> bool:
        escalation_id, ticket_id = item
        with ticket_change(
            actor=actor,
            command=ESCALATION_RESOLVE,
            ticket_id=ticket_id,
            audit={"escalation_id": str(escalation_id), "automatic": True},
        ) as change:
            escalation = (
                Escalation.objects.select_for_update().filter(pk=escalation_id, resolved_at__isnull=True).first()
            )
            reason = _cleared_reason(escalation, change.ticket) if escalation else None
            if reason is None:
                raise ConditionCleared
            _resolve(change, escalation, reason, now)
        return True

    return _each(open_ids, resolve, "resolve escalation")


def escalation_resolve(
    *,
    actor: Actor,
    escalation_id: Any,
    resolution: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """A dispatcher closes an escalation they dealt with, saying how."""
    try:
        key = escalation_id if isinstance(escalation_id, uuid.UUID) else uuid.UUID(str(escalation_id))
        ticket_id = Escalation.objects.values_list("ticket_id", flat=True).get(pk=key)
    except (ValueError, TypeError, AttributeError, Escalation.DoesNotExist):
        raise DispatchError("ESCALATION_NOT_FOUND", f"No escalation {escalation_id}.", status=404) from None
    resolution = (resolution or "").strip() if isinstance(resolution, str) else ""
    with ticket_change(
        actor=actor,
        command=ESCALATION_RESOLVE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"escalation_id": str(key), "resolution": resolution},
    ) as change:
        escalation = Escalation.objects.select_for_update().get(pk=key)
        if escalation.resolved_at is not None:
            raise DispatchError(
                "ESCALATION_ALREADY_RESOLVED",
                "This escalation was already resolved.",
                status=409,
                dimension="state",
                details={"resolved_at": iso(escalation.resolved_at), "resolved_by": escalation.resolved_by},
            )
        change.result = _resolve(change, escalation, resolution or "Handled by the dispatcher.", timezone.now())
    return change.outcome


# --- All of them, and what the board reads -------------------------------------------------------------------


def wakeups_run(*, now: datetime | None = None) -> dict[str, int]:
    """Run every wake-up once (resolving first, so a cleared cause is not raised again); counts per kind."""
    now = _now(now)
    return {
        "resolved": escalations_resolve_cleared(now=now),
        "stale_proposals": proposals_stale_hold(now=now),
        "unacknowledged_dispatches": dispatches_unacknowledged_escalate(now=now),
        "sla_risks": sla_risks_flag(now=now),
        "reminders": appointment_reminders_send(now=now),
        "question_reminders": questions_unanswered_remind(now=now),
    }


def escalations_open(*, day: date | None = None) -> QuerySet[Escalation]:
    """Open escalations raised by the end of `day` (company time; all when None), most pressing kind first."""
    escalations = Escalation.objects.filter(resolved_at__isnull=True).select_related(
        "ticket", "ticket__site", "ticket__assigned_tech"
    )
    if day is not None:
        zone = ZoneInfo(settings.TIME_ZONE)
        day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        escalations = escalations.filter(created_at__lt=day_end)
    rank = Case(
        *[When(kind=kind, then=Value(index)) for index, kind in enumerate(KIND_ORDER)],
        default=Value(len(KIND_ORDER)),
        output_field=IntegerField(),
    )
    return escalations.annotate(kind_rank=rank).order_by("kind_rank", "created_at", "id")
