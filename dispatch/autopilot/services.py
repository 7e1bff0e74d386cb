"""The built-in dispatcher: one pass over the jobs it may move, each step an audited call of the
same services the toolset uses, with the reason in words.

It acts as its own actor (actor_type AGENT, actor_id "autopilot") with the dispatcher's role, and
the finance role only to draft an invoice (never to approve one). Before every action it reads
the pauses (ops.autonomy.pause) and the autonomy ladder; it stops and hands the job to a person
(a HANDOVER escalation on the board) wherever handover.py finds a reason. Two passes at once
never act twice: each call names the ticket's version it decided on, and the executor refuses
the second (VERSION_CONFLICT), which a pass counts as "someone else acted".

What it does, by state:
  READY_TO_SCHEDULE  proposes the slot engine's best windows to the customer (level 1), or leaves
                     the proposal as a suggestion for a dispatcher's click (level 0). The
                     customer's numbered reply books it (scheduling.replies); an unanswered
                     proposal gets a reminder and then a dispatcher (scheduling.wakeups).
  TRIAGED EMERGENCY  dispatches the best technician at once (level 2) and tells the customer who
                     is coming and when; below level 2, suggests it.
  SCHEDULED          dispatches the booked technician when the window is near (level 2).
  COMPLETED_PENDING_VERIFICATION  automatic QA (level 3): qa.verify PASS when every check holds,
                     a QA hand-over naming what failed otherwise.
  VERIFIED           drafts the invoice for finance (level 3).
Once an evening it also re-plans tomorrow's routes (evening.py), moving only the bookings of
jobs at level 1 or above.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.closeout.models import Invoice
from dispatch.closeout.services import invoice_generate, qa_verify
from dispatch.closeout.services.invoicing import invoice_current
from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.intake.models import InboundMessage
from dispatch.scheduling import engine
from dispatch.scheduling.assignment import assignment_dispatch, technicians_ranked
from dispatch.scheduling.models import CustomerNotice, Escalation, EscalationKind
from dispatch.scheduling.notifications import moment_phrase, site_zone, window_phrase
from dispatch.scheduling.proposals import schedule_propose, suggestion_json
from dispatch.scheduling.selectors import appointments_booked_for_ticket
from dispatch.scheduling.wakeups import handover_raise
from dispatch.tickets.models import Priority, Ticket
from dispatch.tickets.states import TicketState

from . import models
from .evening import evening_plan_run
from .handover import Handover, handover_reasons
from .ladder import Ladder, paused
from .qa import qa_findings

log = logging.getLogger(__name__)

ACTOR_ID = "autopilot"
# The states a pass looks at.
ACTED_STATES = (
    TicketState.TRIAGED,
    TicketState.READY_TO_SCHEDULE,
    TicketState.SCHEDULED,
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
)
PROPOSAL_WINDOWS = 3
PASS_LIMIT = 200


def autopilot_actor(role: str = Role.DISPATCHER) -> Actor:
    return Actor(actor_type=ActorType.AGENT, actor_id=ACTOR_ID, role=role, request_id=str(uuid.uuid4()))


def proposal_lead(priority: str) -> timedelta:
    """How far ahead the first window offered to a customer starts: time to read and answer
    (DISPATCH_AUTOPILOT_PROPOSAL_LEAD_MINUTES; half of it for an urgent job)."""
    minutes = int(getattr(settings, "DISPATCH_AUTOPILOT_PROPOSAL_LEAD_MINUTES", 90))
    return timedelta(minutes=minutes // 2 if priority == Priority.URGENT else minutes)


def dispatch_lead() -> timedelta:
    """How long before a booked window the technician is dispatched."""
    return timedelta(minutes=int(getattr(settings, "DISPATCH_AUTOPILOT_DISPATCH_LEAD_MINUTES", 60)))


@dataclass(frozen=True)
class Decision:
    """What a pass did with one ticket, for `manage.py autopilot --once` and the tests."""

    ticket_id: str
    ref: str
    state: str
    # proposed, dispatched, verified, invoiced, handed_over, suggested, waiting, paused, conflict, error
    action: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def _request(reason: str, **facts: Any) -> dict:
    """What the audit event records beside the payload: the reason in words, and the facts."""
    return {"autopilot": True, "reason": reason, **facts}


def _decision(ticket: Ticket, action: str, reason: str) -> Decision:
    return Decision(str(ticket.pk), ticket.short_ref, ticket.state, action, reason)


# --- Hand-overs ------------------------------------------------------------------------------------


def _settled(ticket: Ticket, handover: Handover, resolved: list[Escalation]) -> bool:
    """A person resolved a hand-over of this reason after what raised it was said (or, for a
    standing condition, in the state the job is in now): the autopilot may go on."""
    for escalation in resolved:
        if escalation.details.get("reason_code") != handover.code:
            continue
        if handover.since is not None and escalation.resolved_at >= handover.since:
            return True
        if handover.since is None and escalation.details.get("ticket_state") == ticket.state:
            return True
    return False


def _hand_over(ticket: Ticket, handover: Handover, **facts: Any) -> Decision:
    raised = handover_raise(
        actor=autopilot_actor(),
        ticket_id=ticket.pk,
        state=ticket.state,
        version=ticket.version,
        reason_code=handover.code,
        reason=handover.reason,
        facts=facts,
    )
    return _decision(ticket, "handed_over" if raised else "waiting", handover.reason)


def _needs_person(ticket: Ticket) -> Handover | None:
    """The first reason, not yet settled by a person, that this job must go to one."""
    messages = list(
        InboundMessage.objects.filter(ticket=ticket)
        .only("subject", "body", "flags", "needs_review", "received_at")
        .order_by("-received_at")
    )
    reasons = handover_reasons(ticket, messages)
    if not reasons:
        return None
    # Resolved by a person (the wake-ups resolve hand-overs whose job moved on: that is no answer).
    resolved = list(
        Escalation.objects.filter(ticket=ticket, kind=EscalationKind.HANDOVER, resolved_at__isnull=False).exclude(
            resolved_by__startswith="system"
        )
    )
    return next((reason for reason in reasons if not _settled(ticket, reason, resolved)), None)


# --- Steps -------------------------------------------------------------------------------------------


def _suggested_before(ticket: Ticket, action: str) -> Decision | None:
    """A suggestion of this action already waits, or a dispatcher dismissed it while the ticket
    stayed as it is: nothing to suggest again (and no slot search to run every minute)."""
    # One the job has moved on from no longer applies: it is closed, and a fresh one may be made.
    models.Suggestion.objects.filter(ticket=ticket, status=models.Suggestion.Status.OPEN).exclude(
        ticket_version=ticket.version
    ).update(status=models.Suggestion.Status.STALE, decided_at=timezone.now(), decided_by=ACTOR_ID)
    found = (
        models.Suggestion.objects.filter(ticket=ticket, action=action)
        .filter(
            Q(status=models.Suggestion.Status.OPEN)
            | Q(status=models.Suggestion.Status.DISMISSED, ticket_version=ticket.version)
        )
        .values_list("status", flat=True)
        .first()
    )
    if found == models.Suggestion.Status.OPEN:
        return _decision(ticket, "waiting", "A suggestion already waits for a dispatcher.")
    if found == models.Suggestion.Status.DISMISSED:
        return _decision(ticket, "waiting", "A dispatcher dismissed the suggestion; the job is theirs.")
    return None


def _suggest(ticket: Ticket, action: str, payload: dict, reason: str) -> Decision:
    """Leave the action for a dispatcher's click (level 0, or an emergency below level 2)."""
    try:
        with transaction.atomic():
            models.Suggestion.objects.create(
                ticket=ticket, action=action, payload=payload, reason=reason, ticket_version=ticket.version
            )
    except IntegrityError:
        return _decision(ticket, "waiting", "A suggestion already waits for a dispatcher.")
    return _decision(ticket, "suggested", reason)


def _propose(ticket: Ticket, level: int) -> Decision:
    if level < models.PROPOSE_AND_BOOK and (waiting := _suggested_before(ticket, "schedule.propose")):
        return waiting
    # A customer needs time to read and answer: the search starts after the lead (a read, as
    # schedule.suggest's, without its audit).
    found = engine.slots_suggest(
        ticket=ticket, limit=PROPOSAL_WINDOWS, now=timezone.now() + proposal_lead(ticket.priority)
    )
    suggestion = suggestion_json(found)
    windows = suggestion["windows"]
    if not windows:
        return _hand_over(ticket, Handover("no_capacity", "No technician can take the job within its horizon."))
    zone = site_zone(ticket.site)
    due = suggestion.get("sla_due")
    earliest = datetime.fromisoformat(windows[0]["start"])
    if due and earliest > datetime.fromisoformat(due):
        due_at = moment_phrase(datetime.fromisoformat(due), zone)
        text = f"No technician can take the job before it is due ({due_at}); the earliest is {moment_phrase(earliest, zone)}."
        return _hand_over(ticket, Handover("sla", text), sla_due=due)
    options = [{"start": w["start"], "end": w["end"], "tech_id": w["tech_id"]} for w in windows]
    offered = "; ".join(
        f"{window_phrase(datetime.fromisoformat(w['start']), datetime.fromisoformat(w['end']), zone)} with {w['tech_name']}"
        for w in windows
    )
    reason = f"Offered the customer the {len(options)} best windows the slot engine found: {offered}."
    if level < models.PROPOSE_AND_BOOK:
        return _suggest(ticket, "schedule.propose", {"options": options}, reason)
    # A pause set while the slot engine searched still stops the step.
    if stop := paused(ticket):
        return _decision(ticket, "paused", stop)
    schedule_propose(
        actor=autopilot_actor(),
        ticket_id=ticket.pk,
        options=options,
        expected_version=ticket.version,
        request=_request(reason, level=level),
    )
    return _decision(ticket, "proposed", reason)


def _dispatch_emergency(ticket: Ticket, level: int, now: datetime) -> Decision:
    if level < models.DISPATCH and (waiting := _suggested_before(ticket, "assignment.dispatch")):
        return waiting
    # Free from a few minutes from now (a window that has begun is no one's to take) for the job's length.
    start = now + timedelta(minutes=5)
    end = start + timedelta(minutes=engine.job_minutes(ticket.incident_type))
    ranked = technicians_ranked(ticket=ticket, service_type=ticket.incident_type or "", start=start, end=end)
    fit = [c for c in ranked if c["available"] and all(c["matches"].get(k, True) for k in ("capability", "zone"))]
    if not fit:
        return _hand_over(ticket, Handover("no_capacity", "No technician fits this emergency now."))
    best = fit[0]
    reason = f"Emergency: {best['tech_name']} sent at once, the best fit now ({', '.join(best['reasons'])})."
    if level < models.DISPATCH:
        return _suggest(ticket, "assignment.dispatch", {"tech_id": best["tech_id"]}, reason)
    if stop := paused(ticket):
        return _decision(ticket, "paused", stop)
    assignment_dispatch(
        actor=autopilot_actor(),
        ticket_id=ticket.pk,
        tech_id=best["tech_id"],
        dispatch_mode="EMERGENCY_BYPASS",
        dispatch_rationale=reason,
        dispatch_confirmation=True,
        expected_version=ticket.version,
        request=_request(reason, level=level),
    )
    return _decision(ticket, "dispatched", reason)


def _dispatch_booked(ticket: Ticket, level: int, now: datetime) -> Decision | None:
    if level < models.DISPATCH:
        return None
    appointment = appointments_booked_for_ticket(ticket_id=ticket.pk).select_related("technician").first()
    if appointment is None or appointment.technician is None:
        return None
    if appointment.start - dispatch_lead() > now:
        return None
    if appointment.end <= now:
        # Sending someone to a window that is over tells the customer nothing true: a person calls.
        return _hand_over(ticket, Handover("window_missed", "The booked window is over and nobody was sent."))
    starts = moment_phrase(appointment.start, site_zone(ticket.site), now=now)
    reason = f"The booked window starts at {starts}: {appointment.technician.display_name} is sent."
    assignment_dispatch(
        actor=autopilot_actor(),
        ticket_id=ticket.pk,
        tech_id=appointment.technician_id,
        dispatch_rationale=reason,
        expected_version=ticket.version,
        request=_request(reason, level=level, appointment_id=str(appointment.pk)),
    )
    return _decision(ticket, "dispatched", reason)


def _verify(ticket: Ticket, level: int, now: datetime) -> Decision | None:
    if level < models.VERIFY_AND_INVOICE:
        return None
    findings = qa_findings(ticket)
    if stop := paused(ticket):
        return _decision(ticket, "paused", stop)
    if findings:
        return _hand_over(
            ticket, Handover("qa_failed", "Automatic QA failed: " + " ".join(findings)), findings=findings
        )
    reason = (
        "Automatic QA passed: every required evidence key present and readable, the checklist complete, "
        "a signature or its reason, labor recorded."
    )
    qa_verify(
        actor=autopilot_actor(),
        ticket_id=ticket.pk,
        timestamp=now.isoformat(),
        result="PASS",
        notes=reason,
        expected_version=ticket.version,
        request=_request(reason, level=level),
    )
    return _decision(ticket, "verified", reason)


def _invoice(ticket: Ticket, level: int) -> Decision | None:
    if level < models.VERIFY_AND_INVOICE:
        return None
    current = invoice_current(ticket)
    if current is not None and current.status != Invoice.Status.DRAFT:
        # Reopened work whose invoice finance already approved: a new version is money's business.
        return _hand_over(
            ticket, Handover("invoice_approved", "Finance approved this job's invoice before it was reopened.")
        )
    reason = "Verified work: the invoice draft is built for finance to review and approve."
    outcome = invoice_generate(
        # Drafting is finance's tool; the autopilot never approves what it drafts.
        actor=autopilot_actor(Role.FINANCE),
        ticket_id=ticket.pk,
        expected_version=ticket.version,
        request=_request(reason, level=level),
    )
    invoice = outcome.result.invoice
    if invoice.exceeds_nte:
        _hand_over(
            outcome.ticket,
            Handover(
                "nte_exceeded",
                "The invoice draft exceeds the job's not-to-exceed amount: finance and the customer decide.",
            ),
        )
    return _decision(ticket, "invoiced", reason)


def ticket_step(ticket: Ticket, *, ladder: Ladder, now: datetime) -> Decision | None:
    """The autopilot's one step on one ticket (None: nothing for it to do here)."""
    stop = paused(ticket)
    if stop:
        return _decision(ticket, "paused", stop)
    waiting = Escalation.objects.filter(ticket=ticket, kind=EscalationKind.HANDOVER, resolved_at__isnull=True).first()
    if waiting is not None:
        # Handed to a person: nothing more until they resolve it (or the job moves on).
        return _decision(ticket, "waiting", waiting.details.get("reason") or "Waiting for a person.")
    handover = _needs_person(ticket)
    if handover is not None:
        return _hand_over(ticket, handover)
    if ticket.state == TicketState.TRIAGED and ticket.priority != Priority.EMERGENCY:
        # Triaged but not ready to schedule, with nothing flagged: a person triaged it so, and decides.
        return None
    level = ladder.level(ticket.incident_type, ticket.priority)
    try:
        if ticket.state == TicketState.READY_TO_SCHEDULE:
            return _propose(ticket, level)
        if ticket.state == TicketState.TRIAGED:
            return _dispatch_emergency(ticket, level, now)
        if ticket.state == TicketState.SCHEDULED:
            return _dispatch_booked(ticket, level, now)
        if ticket.state == TicketState.COMPLETED_PENDING_VERIFICATION:
            return _verify(ticket, level, now)
        if ticket.state == TicketState.VERIFIED:
            return _invoice(ticket, level)
    except DispatchError as exc:
        if exc.code in (
            "VERSION_CONFLICT",
            "CONCURRENT_MODIFICATION",
            "INVALID_STATE_TRANSITION",
            "TOOL_STATE_FORBIDDEN",
        ):
            # Another pass, a person or an agent acted first: nothing is left for this one.
            return _decision(ticket, "conflict", f"Someone else acted first ({exc.code}).")
        return _hand_over(ticket, Handover("refused", f"The step was refused: {exc.message}"), code=exc.code)
    return None


def _reassignment_suggest(ticket: Ticket, now: datetime) -> Decision | None:
    """A dispatch nobody acknowledged (the wake-up escalated it): propose the next best technician
    for a dispatcher to send instead (a suggestion, whatever the level: taking a job off a
    technician who may be on the way is a person's call)."""
    waiting = _suggested_before(ticket, "assignment.reassign")
    if waiting is not None:
        return waiting
    start = now + timedelta(minutes=5)
    end = start + timedelta(minutes=engine.job_minutes(ticket.incident_type))
    ranked = technicians_ranked(ticket=ticket, service_type=ticket.incident_type or "", start=start, end=end)
    others = [
        c
        for c in ranked
        if c["tech_id"] != str(ticket.assigned_tech_id)
        and c["available"]
        and all(c["matches"].get(k, True) for k in ("capability", "zone"))
    ]
    if not others:
        return None
    best = others[0]
    current = ticket.assigned_tech.display_name if ticket.assigned_tech else "The technician"
    reason = f"{current} has not acknowledged the job; {best['tech_name']} is the next best fit ({', '.join(best['reasons'])})."
    return _suggest(ticket, "assignment.reassign", {"tech_id": best["tech_id"]}, reason)


def _unanswered_hand_over(now: datetime, *, ticket_ids, limit: int) -> list[Decision]:
    """A customer reminded of intake's question who still has not answered: a person calls them."""
    wait = timedelta(minutes=int(getattr(settings, "DISPATCH_QUESTION_REMINDER_MINUTES", 240)))
    reminders = CustomerNotice.objects.filter(
        kind=CustomerNotice.Kind.QUESTION_REMINDER,
        ticket__state=TicketState.NEEDS_INFO,
        created_at__lte=now - wait,
    ).select_related("ticket", "ticket__site")
    if ticket_ids is not None:
        reminders = reminders.filter(ticket_id__in=ticket_ids)
    decisions = []
    for notice in reminders.order_by("created_at")[:limit]:
        ticket = notice.ticket
        if paused(ticket) or ticket.inbound_messages.filter(received_at__gt=notice.created_at).exists():
            continue
        handover = Handover("no_answer", "The customer has not answered our question, nor the reminder.")
        decisions.append(_guarded(ticket, lambda t=ticket, h=handover: _hand_over(t, h)))
    return decisions


def _guarded(ticket: Ticket, step) -> Decision | None:
    """One ticket's step; a bug or a broken row is logged with its traceback and the pass goes
    on with the other tickets (the next pass tries this one again)."""
    try:
        return step()
    except Exception:
        log.exception("The autopilot's step failed for ticket %s.", ticket.pk)
        return _decision(ticket, "error", "The step failed; it is tried again at the next pass.")


def autopilot_pass(
    *, now: datetime | None = None, ticket_ids: list | None = None, limit: int = PASS_LIMIT
) -> list[Decision]:
    """One pass over the jobs the autopilot may move (or only `ticket_ids`); what it did with each."""
    if not getattr(settings, "DISPATCH_AUTOPILOT", True):
        return []
    now = now or timezone.now()
    ladder = Ladder.read()
    tickets = (
        Ticket.objects.filter(state__in=ACTED_STATES)
        # A booked job far from its window, and a job handed to a person, have nothing for it now:
        # left out here so that they never crowd the jobs that do out of the pass's limit.
        .exclude(state=TicketState.SCHEDULED, scheduled_start__gt=now + dispatch_lead())
        .exclude(escalations__kind=EscalationKind.HANDOVER, escalations__resolved_at__isnull=True)
        .select_related("site", "assigned_tech")
    )
    if ticket_ids is not None:
        tickets = tickets.filter(pk__in=ticket_ids)
    decisions = []
    for ticket in tickets.order_by("queue_rank", "created_at")[:limit]:
        decision = _guarded(ticket, lambda t=ticket: ticket_step(t, ladder=ladder, now=now))
        if decision is not None:
            decisions.append(decision)
    decisions += _unanswered_hand_over(now, ticket_ids=ticket_ids, limit=limit)
    if ticket_ids is None:
        # Once an evening: tomorrow's routes re-planned (evening.py).
        evening_plan_run(now=now)
    unacknowledged = Ticket.objects.filter(
        state=TicketState.DISPATCHED,
        escalations__kind=EscalationKind.UNACKNOWLEDGED_DISPATCH,
        escalations__resolved_at__isnull=True,
    ).select_related("site", "assigned_tech")
    if ticket_ids is not None:
        unacknowledged = unacknowledged.filter(pk__in=ticket_ids)
    for ticket in unacknowledged.distinct()[:limit]:
        if paused(ticket) is None:
            decision = _guarded(ticket, lambda t=ticket: _reassignment_suggest(t, now))
            if decision is not None:
                decisions.append(decision)
    return decisions
