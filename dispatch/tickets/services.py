"""The one path through which every ticket change goes.

`ticket_change` (and `ticket_opening` for a new ticket) is a context manager that runs one
change in one transaction: it locks the ticket and asks the policy whether this actor may run
this command on it now; inside the block the calling service looks at the locked ticket,
decides, changes fields, takes FSM transitions and writes its own rows; on leaving the block
the executor bumps `version`, saves the columns that changed, writes the StateTransition rows
and exactly one AuditEvent, and hands background work to `on_commit`. Anything raised inside
the block rolls the whole change back. Services in every app build on these two; nothing
else calls a transition method.

    with ticket_change(actor=actor, command=TICKET_CANCEL, ticket_id=pk, expected_version=v) as change:
        change.transition(TicketState.CANCELLED)
    return change.outcome
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.common.money import cents_value

from . import policy
from .audit import audit_append, audit_event, audit_link
from .commands import Command
from .models import AuditEvent, StateTransition, Ticket, ticket_queue_rank
from .states import CREATION_STATES, TERMINAL_STATES, TicketState
from .transitions import transition_method

# Kept under their old names for the services that raise them directly.
invalid_transition = policy.invalid_transition


def ticket_not_found(ticket_id: Any) -> DispatchError:
    return DispatchError("TICKET_NOT_FOUND", f"No ticket {ticket_id}.", status=404, dimension="request")


def role_forbidden(command: Command, role: Any) -> DispatchError:
    return policy.role_refusal(command, role) or DispatchError(
        "TOOL_ROLE_FORBIDDEN", f"{command.tool} is refused.", status=403, dimension="role"
    )


@dataclass(frozen=True)
class Outcome:
    ticket: Ticket
    event: AuditEvent
    result: Any = None


@dataclass
class TicketChange:
    """What a service sees inside the executor: the locked ticket and the means to change it."""

    ticket: Ticket
    actor: Actor
    command: Command
    # The audit event's payload: the service decides what goes in it.
    audit_payload: dict = field(default_factory=dict)
    # What the service hands back to its caller (the outcome's `result`).
    result: Any = None
    steps: list[tuple[str, str]] = field(default_factory=list)
    after_commit_work: list[Callable[[], None]] = field(default_factory=list)
    event: AuditEvent | None = None

    def transition(self, target: str) -> None:
        """Take one FSM transition; refused with INVALID_STATE_TRANSITION if the graph has no such edge."""
        source = self.ticket.state
        method = transition_method(source, target)
        if method is None:
            raise invalid_transition(source, target, tool=self.command.tool)
        getattr(self.ticket, method)()
        self.steps.append((source, target))

    def after_commit(self, work: Callable[[], None]) -> None:
        """Run `work` once the transaction has committed (never for a rolled-back change)."""
        self.after_commit_work.append(work)

    @property
    def outcome(self) -> Outcome:
        """The change once its block has ended: the saved ticket, its audit event, the result."""
        if self.event is None:
            raise RuntimeError("The change has not been written yet: read its outcome after the with block.")
        return Outcome(ticket=self.ticket, event=self.event, result=self.result)


def ticket_locked(ticket_id: Any) -> Ticket:
    """The ticket, row-locked until the transaction ends, with its site (most services read it).

    A second change of the same ticket waits here until this one commits, then sees the new
    state and version. Only the ticket row is locked (`of`), not its site.
    """
    try:
        key = ticket_id if isinstance(ticket_id, uuid.UUID) else uuid.UUID(str(ticket_id))
    except (ValueError, TypeError, AttributeError):
        raise ticket_not_found(ticket_id) from None
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("site").filter(pk=key).first()
    if ticket is None:
        raise ticket_not_found(ticket_id)
    return ticket


# Columns compared before and after a change, so that only the touched ones are saved.
_TICKET_COLUMNS = tuple(
    f.attname for f in Ticket._meta.concrete_fields if not f.primary_key and f.attname != "updated_at"
)


def _columns(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in _TICKET_COLUMNS}


def _event(change: TicketChange, *, before_state: str, request: dict | None, opening: bool = False) -> AuditEvent:
    """The command's one audit event, chained: the ticket's audit head advances on the instance,
    so the ticket row is saved after this. Its payload is what the service decided, with the
    caller's raw request (if any) under one `request` key."""
    payload = dict(change.audit_payload)
    if request:
        payload["request"] = request
    event = audit_event(
        actor=change.actor,
        tool_name=change.command.tool,
        ticket=change.ticket,
        before_state=before_state,
        after_state=change.ticket.state,
        payload=payload,
    )
    audit_link(event, ticket=change.ticket, opening=opening)
    return event


# Told after commit that a ticket moved, as (ticket id, new state): the autopilot registers one
# (its app's ready()) so that it looks at the ticket at once instead of at its next pass.
_state_listeners: list[Callable[[Any, str], None]] = []


def state_listener_register(listener: Callable[[Any, str], None]) -> None:
    if listener not in _state_listeners:
        _state_listeners.append(listener)


def _record(change: TicketChange, event: AuditEvent) -> None:
    """The event, the transition rows it explains, and the change's after-commit work."""
    event.save(force_insert=True)
    ticket = change.ticket
    if change.steps:
        first = ticket.transition_seq - len(change.steps) + 1
        StateTransition.objects.bulk_create(
            StateTransition(
                ticket=ticket,
                seq=first + index,
                from_state=source,
                to_state=target,
                audit_event=event,
                created_at=event.created_at,
            )
            for index, (source, target) in enumerate(change.steps)
        )
    for work in change.after_commit_work:
        transaction.on_commit(work)
    if change.steps:
        for listener in _state_listeners:
            transaction.on_commit(functools.partial(listener, ticket.pk, ticket.state))
    change.event = event


@contextmanager
def ticket_change(
    *,
    actor: Actor,
    command: Command,
    ticket_id: Any,
    expected_version: int | None = None,
    request: dict | None = None,
    audit: dict | None = None,
) -> Iterator[TicketChange]:
    """Change one existing ticket through the single path (see the module docstring).

    The role is checked before anything is read: a tool the role may not use is refused the
    same way whichever ticket it names. `audit` starts the audit event's payload (the service
    may add to `change.audit_payload` inside the block); `request` is the caller's raw request,
    recorded beside it.
    """
    refusal = policy.role_refusal(command, actor.role)
    if refusal:
        raise refusal
    with transaction.atomic():
        ticket = ticket_locked(ticket_id)
        refusal = policy.command_refusal(command, actor, ticket, expected_version=expected_version)
        if refusal:
            raise refusal
        before_state = ticket.state
        before = _columns(ticket)
        change = TicketChange(ticket=ticket, actor=actor, command=command, audit_payload=dict(audit or {}))
        yield change
        ticket.version += 1
        ticket.transition_seq += len(change.steps)
        event = _event(change, before_state=before_state, request=request)
        # Only the columns this change touched (version and audit head always are). django-fsm's
        # ConcurrentTransitionMixin also makes the UPDATE conditional on the state read above: a
        # miss means the row changed without our lock (raw SQL, a database without row locks),
        # and the change is refused rather than overwriting it.
        ticket.queue_rank = ticket_queue_rank(ticket.state, ticket.priority)
        if ticket.state != before_state:
            ticket.done_at = timezone.now() if ticket.state in TERMINAL_STATES else None
        changed = [name for name, value in before.items() if getattr(ticket, name) != value]
        try:
            ticket.save(update_fields=[*changed, "updated_at"])
        except ConcurrentTransition:
            raise DispatchError(
                "CONCURRENT_MODIFICATION",
                "The ticket was changed by someone else at the same moment. Reload and try again.",
                status=409,
                dimension="state",
            ) from None
        _record(change, event)


@contextmanager
def ticket_opening(
    *,
    actor: Actor,
    command: Command,
    ticket: Ticket,
    request: dict | None = None,
    audit: dict | None = None,
) -> Iterator[TicketChange]:
    """Create a ticket in one of the creation states, with its first transition row and audit event.

    `ticket` is an unsaved Ticket whose `state` is a creation state. Inside the block the
    service may set fields and take further transitions; the ticket row is written once, when
    the block ends. Rows that point at the ticket are written after the block (inside the
    caller's own transaction where they must commit together).
    """
    refusal = policy.role_refusal(command, actor.role) or policy.scope_refusal(
        actor, account_id=ticket.account_id, site_id=ticket.site_id
    )
    if refusal:
        raise refusal
    if ticket.state not in CREATION_STATES:
        raise invalid_transition("", ticket.state, tool=command.tool)
    with transaction.atomic():
        ticket.version = 1
        change = TicketChange(
            ticket=ticket, actor=actor, command=command, steps=[("", ticket.state)], audit_payload=dict(audit or {})
        )
        yield change
        ticket.transition_seq = len(change.steps)
        # The event is chained first so that the one INSERT of the ticket carries its audit head.
        event = _event(change, before_state="", request=request, opening=True)
        ticket.queue_rank = ticket_queue_rank(ticket.state, ticket.priority)
        ticket.save(force_insert=True)
        _record(change, event)


def audit_only(
    *, actor: Actor, command: Command, payload: dict | None = None, ticket: Ticket | None = None
) -> AuditEvent:
    """Record an action that changes no ticket (autonomy pause, outbox replay) on the same chain."""
    refusal = policy.role_refusal(command, actor.role)
    if refusal:
        raise refusal
    with transaction.atomic():
        return audit_append(
            actor=actor,
            tool_name=command.tool,
            ticket=ticket,
            before_state=ticket.state if ticket else "",
            after_state=ticket.state if ticket else "",
            payload=payload or {},
        )


def now():
    return timezone.now()


# --- Ticket lifecycle services -------------------------------------------------------------
# Each is one business action: a Command (who, from where, to where) and the change it makes.

from .commands import command  # noqa: E402
from .models import Approval, Asset, Priority, Site  # noqa: E402

ALL_OPEN = [s for s in TicketState if s not in (TicketState.CLOSED, TicketState.CANCELLED)]

TICKET_CREATE = command("ticket.create", ["dispatcher", "agent"], None, "NEW", "Create ticket")
TICKET_TRIAGE = command("ticket.triage", ["dispatcher", "agent"], ["NEW", "NEEDS_INFO", "TRIAGED"], "TRIAGED", "Triage")
TICKET_REQUEST_INFO = command(
    "ticket.request_info", ["dispatcher", "agent"], ["NEW"], "NEEDS_INFO", "Ask the customer for details"
)
TICKET_CANCEL = command("ticket.cancel", ["dispatcher", "approver", "finance"], ALL_OPEN, "CANCELLED", "Cancel")
DISPATCH_FORCE_HOLD = command(
    "dispatch.force_hold", ["dispatcher"], ["DISPATCHED", "ON_SITE", "IN_PROGRESS"], "ON_HOLD", "Put on hold"
)
TICKET_RESUME = command("ticket.resume", ["dispatcher"], ["ON_HOLD"], None, "Resume from hold")
REOPEN_AFTER_VERIFICATION = command(
    "reopen_after_verification", ["dispatcher", "qa"], ["VERIFIED", "INVOICED"], "IN_PROGRESS", "Reopen"
)

TRIAGE_OUTCOMES = (TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE, TicketState.APPROVAL_REQUIRED)
SUMMARY_MAX = 500


def _bad(message: str, **details) -> DispatchError:
    return DispatchError("INVALID_REQUEST", message, status=400, dimension="request", details=details)


def ticket_create(
    *,
    actor: Actor,
    account_id,
    site_id,
    summary: str,
    description: str = "",
    asset_id=None,
    nte_cents: int | None = None,
    request: dict | None = None,
    command: Command = TICKET_CREATE,
    initial_state: str = TicketState.NEW,
    **fields,
) -> Outcome:
    """Open a ticket for a known account and site (the site must belong to the account)."""
    site = Site.objects.filter(pk=site_id).select_related("account").first()
    if site is None:
        raise DispatchError("SITE_NOT_FOUND", f"No site {site_id}.", status=404, dimension="request")
    if str(site.account_id) != str(account_id):
        raise _bad("The site does not belong to that account.", field="site_id")
    if asset_id and not Asset.objects.filter(pk=asset_id, site=site).exists():
        raise _bad("The asset is not at that site.", field="asset_id")
    if not summary or not summary.strip():
        raise _bad("A summary is required.", field="summary")
    if len(summary.strip()) > SUMMARY_MAX:
        raise _bad(f"The summary is longer than {SUMMARY_MAX} characters.", field="summary")
    ticket = Ticket(
        account_id=site.account_id,
        site=site,
        asset_id=asset_id,
        summary=summary.strip(),
        description=description or "",
        nte_cents=cents_value(nte_cents, "nte_cents"),
        state=initial_state,
        **fields,
    )
    audit = {"account_id": str(ticket.account_id), "site_id": str(site.pk), "summary": ticket.summary}
    with ticket_opening(actor=actor, command=command, ticket=ticket, request=request, audit=audit) as change:
        pass
    return change.outcome


def ticket_triage(
    *,
    actor: Actor,
    ticket_id,
    priority: str,
    incident_type: str,
    nte_cents: int | None = None,
    outcome: str = TicketState.TRIAGED,
    approval_reason: str = "",
    approval_amount_delta_cents: int | None = None,
    request: dict | None = None,
    facts: dict | None = None,
    gate: Callable[[TicketChange], None] | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Set priority, incident type and NTE, and move to TRIAGED, READY_TO_SCHEDULE or APPROVAL_REQUIRED.

    `facts` are what a calling service adds to the audit event (intake: the confidences it triaged on).
    `gate` is a calling phase's requirement, asked of the locked ticket once role, scope, version and
    state have passed and before anything changes (intake: the blind-intake confidence gate).
    """
    if priority not in Priority.values:
        raise _bad(f"Unknown priority {priority!r}.", field="priority")
    if outcome not in TRIAGE_OUTCOMES:
        raise _bad(f"Unknown triage outcome {outcome!r}.", field="workflow_outcome")
    if not incident_type or not str(incident_type).strip():
        raise _bad("An incident type is required.", field="incident_type")
    if len(str(incident_type).strip()) > 64:
        raise _bad("An incident type is at most 64 characters.", field="incident_type")
    nte_cents = cents_value(nte_cents, "nte_cents")
    approval_amount_delta_cents = cents_value(approval_amount_delta_cents, "approval_amount_delta_cents")
    audit = {
        "priority": priority,
        "incident_type": incident_type,
        "nte_cents": nte_cents,
        "workflow_outcome": outcome,
        **(facts or {}),
    }
    with ticket_change(
        actor=actor,
        command=TICKET_TRIAGE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        if gate is not None:
            gate(change)
        ticket = change.ticket
        ticket.priority = priority
        ticket.incident_type = str(incident_type).strip().upper()
        if nte_cents is not None:
            ticket.nte_cents = nte_cents
        if ticket.state != TicketState.TRIAGED:
            change.transition(TicketState.TRIAGED)
        if outcome == TicketState.READY_TO_SCHEDULE:
            change.transition(TicketState.READY_TO_SCHEDULE)
        elif outcome == TicketState.APPROVAL_REQUIRED:
            change.transition(TicketState.APPROVAL_REQUIRED)
            Approval.objects.create(
                ticket=ticket,
                kind=Approval.Kind.NTE_INCREASE if approval_amount_delta_cents else Approval.Kind.PROPOSAL,
                return_state=TicketState.READY_TO_SCHEDULE,
                amount_cents=approval_amount_delta_cents or None,
                reason=approval_reason or "Triage needs approval before scheduling.",
                requested_by=actor.actor_id,
            )
    return change.outcome


def ticket_request_info(*, actor: Actor, ticket_id, question: str, expected_version: int | None = None) -> Outcome:
    """Park a new ticket in NEEDS_INFO with the question the customer must answer."""
    if not question or not question.strip():
        raise _bad("Say what information is missing.", field="question")
    with ticket_change(
        actor=actor,
        command=TICKET_REQUEST_INFO,
        ticket_id=ticket_id,
        expected_version=expected_version,
        audit={"question": question.strip()},
    ) as change:
        change.transition(TicketState.NEEDS_INFO)
    return change.outcome


def ticket_cancel(
    *,
    actor: Actor,
    ticket_id,
    reason: str,
    cancellation_code: str = "",
    expected_version: int | None = None,
    request: dict | None = None,
) -> Outcome:
    """Cancel an open ticket, keeping the reason in the audit trail."""
    if not reason or not reason.strip():
        raise _bad("A reason is required to cancel.", field="reason")
    audit = {"reason": reason.strip()}
    if cancellation_code:
        audit["cancellation_code"] = cancellation_code
    with ticket_change(
        actor=actor,
        command=TICKET_CANCEL,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        change.transition(TicketState.CANCELLED)
    return change.outcome


def ticket_force_hold(
    *,
    actor: Actor,
    ticket_id,
    reason: str = "",
    hold_reason: str = "",
    expected_version: int | None = None,
    request: dict | None = None,
) -> Outcome:
    """Stop work on a dispatched or running job (customer unreachable, site not ready, ...)."""
    given = {key: value for key, value in {"reason": reason, "hold_reason": hold_reason}.items() if value}
    with ticket_change(
        actor=actor,
        command=DISPATCH_FORCE_HOLD,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=given,
    ) as change:
        change.transition(TicketState.ON_HOLD)
    return change.outcome


def ticket_resume(
    *, actor: Actor, ticket_id, to_state: str, reason: str = "", expected_version: int | None = None
) -> Outcome:
    """Take a job off hold: back to work (IN_PROGRESS) or back to the scheduling queue."""
    if to_state not in (TicketState.IN_PROGRESS, TicketState.READY_TO_SCHEDULE):
        raise _bad("A job on hold resumes to IN_PROGRESS or READY_TO_SCHEDULE.", field="to_state")
    with ticket_change(
        actor=actor,
        command=TICKET_RESUME,
        ticket_id=ticket_id,
        expected_version=expected_version,
        audit={"to_state": to_state, "reason": reason},
    ) as change:
        change.transition(to_state)
    return change.outcome


def ticket_reopen(
    *,
    actor: Actor,
    ticket_id,
    reason: str,
    reopen_scope: str = "",
    expected_version: int | None = None,
    request: dict | None = None,
) -> Outcome:
    """Send verified or invoiced work back to IN_PROGRESS."""
    if not reason or not reason.strip():
        raise _bad("A reason is required to reopen.", field="reason")
    with ticket_change(
        actor=actor,
        command=REOPEN_AFTER_VERIFICATION,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"reason": reason.strip(), "reopen_scope": reopen_scope},
    ) as change:
        change.transition(TicketState.IN_PROGRESS)
    return change.outcome


TICKET_UPDATE_DETAILS = command("ticket.update_details", ["dispatcher"], ALL_OPEN, None, "Edit details")
# Descriptive fields a dispatcher may correct by hand; state, schedule, assignment and money
# move only through their own services.
EDITABLE_DETAILS = ("summary", "description", "customer_name", "customer_phone", "customer_email", "asset_id")


def ticket_update_details(*, actor: Actor, ticket_id, changes: dict, expected_version: int | None = None) -> Outcome:
    """Correct a ticket's descriptive fields; the audit event records each field's old and new value."""
    unknown = sorted(set(changes) - set(EDITABLE_DETAILS))
    if unknown:
        raise _bad(f"These fields cannot be edited here: {', '.join(unknown)}.", fields=unknown)
    if "summary" in changes and not str(changes["summary"] or "").strip():
        raise _bad("A summary is required.", field="summary")
    with ticket_change(
        actor=actor, command=TICKET_UPDATE_DETAILS, ticket_id=ticket_id, expected_version=expected_version
    ) as change:
        ticket = change.ticket
        if (
            changes.get("asset_id")
            and not Asset.objects.filter(pk=changes["asset_id"], site_id=ticket.site_id).exists()
        ):
            raise _bad("The asset is not at this ticket's site.", field="asset_id")
        diff = {}
        for name, value in changes.items():
            old = getattr(ticket, name)
            new = value if value is not None or name == "asset_id" else ""
            if str(old or "") != str(new or ""):
                diff[name] = {
                    "from": str(old) if old is not None else None,
                    "to": str(new) if new is not None else None,
                }
                setattr(ticket, name, new)
        if not diff:
            raise _bad("Nothing changed.")
        change.audit_payload["changes"] = diff
        change.result = diff
    return change.outcome
