"""The one path through which every ticket change goes.

`ticket_execute` (and `ticket_open` for a new ticket) run a change in one transaction:
lock the ticket, check role, scope and from-state, let the calling service change fields and
take FSM transitions, bump `version`, write the StateTransition rows and exactly one
AuditEvent, and hand background work to `on_commit`. Services in every app build on these two;
nothing else calls a transition method.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

from django.db import transaction
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.compiled import CompiledQuery, row_insert, row_update
from dispatch.common.errors import DispatchError
from dispatch.common.money import cents_value
from dispatch.common.roles import Role

from .audit import audit_append, audit_event, audit_link
from .commands import Command
from .models import AuditEvent, StateTransition, Ticket
from .states import CREATION_STATES, TicketState
from .transitions import allowed_next_states, transition_method

S = TicketState


def invalid_transition(ticket_state: str, target: str | None, *, tool: str) -> DispatchError:
    allowed = allowed_next_states(ticket_state)
    wanted = f" to {target}" if target else ""
    return DispatchError(
        "INVALID_STATE_TRANSITION",
        f"{tool} cannot move a ticket{wanted} from {ticket_state}.",
        status=409,
        dimension="state",
        details={"from_state": ticket_state, "to_state": target, "allowed_next_states": allowed},
    )


def ticket_not_found(ticket_id: Any) -> DispatchError:
    return DispatchError("TICKET_NOT_FOUND", f"No ticket {ticket_id}.", status=404, dimension="request")


def role_forbidden(command: Command, role: Any) -> DispatchError:
    return DispatchError(
        "TOOL_ROLE_FORBIDDEN",
        f"Role {getattr(role, 'value', role)!s} may not use {command.tool}.",
        status=403,
        dimension="role",
        details={"allowed_roles": sorted(r.value for r in command.roles)},
    )


def scope_check(actor: Actor, ticket: Ticket) -> None:
    """Refuse an actor who may not touch this ticket: a scoped token outside its accounts and
    sites, a customer credential without a scope, or a technician on a ticket not assigned to them."""
    if actor.role == Role.CUSTOMER and not actor.is_scoped:
        # A customer sees only their own account's tickets; an unscoped customer sees none.
        raise DispatchError(
            "FORBIDDEN_SCOPE", "A customer credential must be scoped to the customer's account or site.",
            status=403, dimension="scope",
        )
    if not actor.in_scope(account_id=ticket.account_id, site_id=ticket.site_id):
        raise DispatchError(
            "FORBIDDEN_SCOPE", "This credential is not scoped to the ticket's account or site.", status=403, dimension="scope"
        )
    if actor.role == Role.TECHNICIAN and (actor.technician_id is None or ticket.assigned_tech_id != actor.technician_id):
        raise DispatchError(
            "FORBIDDEN_SCOPE", "Technicians act only on tickets assigned to them.", status=403, dimension="assignment"
        )


@dataclass
class TicketChange:
    """What a service sees inside the executor: the locked ticket and the means to change it."""

    ticket: Ticket
    actor: Actor
    command: Command
    steps: list[tuple[str, str]] = field(default_factory=list)
    audit_payload: dict = field(default_factory=dict)
    result: Any = None
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

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
        self._after_commit.append(work)


@dataclass(frozen=True)
class Outcome:
    ticket: Ticket
    event: AuditEvent
    result: Any = None


# Row lock: a second change of the same ticket waits here until this one commits, then sees the
# new state and version. Only the ticket row is locked (`of`); its site comes along in the same
# query because most services read it. Every command runs it, so its SQL is written once.
_TICKET_LOCKED = CompiledQuery(
    lambda pk: Ticket.objects.select_for_update(of=("self",)).select_related("site").filter(pk=pk).order_by(),
    pk=uuid.UUID,
)


def _ticket_locked(ticket_id: Any) -> Ticket:
    try:
        key = ticket_id if isinstance(ticket_id, uuid.UUID) else uuid.UUID(str(ticket_id))
    except (ValueError, TypeError, AttributeError):
        raise ticket_not_found(ticket_id) from None
    found = _TICKET_LOCKED.objects(pk=key)
    if not found:
        raise ticket_not_found(ticket_id)
    return found[0]


def _event(change: TicketChange, *, before_state: str, payload: dict, opening: bool = False) -> AuditEvent:
    """The command's one audit event, chained: the ticket's head fields advance on the instance,
    so the caller writes the ticket row and the event after this (in one statement where it can)."""
    event = audit_event(
        actor=change.actor,
        tool_name=change.command.tool,
        ticket=change.ticket,
        before_state=before_state,
        after_state=change.ticket.state,
        payload={**payload, **change.audit_payload},
    )
    audit_link(event, ticket=change.ticket, opening=opening)
    return event


def _record(change: TicketChange, event: AuditEvent) -> None:
    """The transition rows of a change whose event is written, and its after-commit work."""
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
    for work in change._after_commit:
        transaction.on_commit(work)


# A caller that runs a whole command in one transaction and rolls all of it back on any refusal
# (the agent API does) marks its block here: an executor call directly inside that block then
# needs no savepoint of its own, which saves two round trips to the database per command.
_whole_command_depth: ContextVar[int | None] = ContextVar("executor_whole_command_depth", default=None)


@contextmanager
def executor_inside_whole_command():
    """Declare the current atomic block as one command that is rolled back whole on any error."""
    token = _whole_command_depth.set(len(transaction.get_connection().atomic_blocks))
    try:
        yield
    finally:
        _whole_command_depth.reset(token)


def _command_atomic():
    connection = transaction.get_connection()
    depth = _whole_command_depth.get()
    directly_inside = depth is not None and connection.in_atomic_block and len(connection.atomic_blocks) == depth
    return transaction.atomic(savepoint=not directly_inside)


_TICKET_COLUMNS = tuple(f.attname for f in Ticket._meta.concrete_fields if not f.primary_key and f.attname != "updated_at")


def _columns(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in _TICKET_COLUMNS}


def _ticket_insert(ticket: Ticket) -> None:
    row_insert(ticket)
    # What django-fsm's save() does after writing: its concurrency check compares with this state.
    ticket._update_initial_state()


def ticket_execute(
    *,
    actor: Actor,
    ticket_id: Any,
    command: Command,
    payload: dict | None = None,
    apply: Callable[[TicketChange], Any],
    expected_version: int | None = None,
) -> Outcome:
    """Run one change of one ticket through the single path (see the module docstring).

    `apply` receives the TicketChange, may set fields, call `change.transition(...)`, write
    its own rows and register `after_commit` work; its return value is the outcome's result.
    Anything it raises rolls the whole change back.
    """
    payload = payload or {}
    if not command.allows_role(actor.role):
        raise role_forbidden(command, actor.role)
    with _command_atomic():
        ticket = _ticket_locked(ticket_id)
        scope_check(actor, ticket)
        if expected_version is not None and ticket.version != expected_version:
            raise DispatchError(
                "CONCURRENT_MODIFICATION",
                f"The ticket changed since you loaded it (version {expected_version}, now {ticket.version}). Reload and try again.",
                status=409,
                dimension="state",
                details={"expected_version": expected_version, "current_version": ticket.version},
            )
        if not command.allows_state(ticket.state):
            raise invalid_transition(ticket.state, command.resulting_state, tool=command.tool)
        before_state = ticket.state
        before = _columns(ticket)
        change = TicketChange(ticket=ticket, actor=actor, command=command)
        change.result = apply(change)
        ticket.version += 1
        ticket.transition_seq += len(change.steps)
        event = _event(change, before_state=before_state, payload=payload)
        # Only the columns this change touched (the version and audit head always do), and only
        # while the row still holds the state read above, as django-fsm's ConcurrentTransitionMixin
        # checks in save(). A miss is only reachable when the row was changed without the lock
        # above (raw SQL, a database without row locks): refuse rather than overwrite (the
        # event, written in the same statement, goes with the rollback).
        changed = [*(name for name, value in before.items() if getattr(ticket, name) != value), "updated_at"]
        if not row_update(ticket, fields=changed, where={"state": before_state}, insert_first=event):
            raise DispatchError(
                "CONCURRENT_MODIFICATION",
                "The ticket was changed by someone else at the same moment. Reload and try again.",
                status=409,
                dimension="state",
            )
        ticket._update_initial_state()
        _record(change, event)
    return Outcome(ticket=ticket, event=event, result=change.result)


def ticket_open(
    *,
    actor: Actor,
    command: Command,
    ticket: Ticket,
    payload: dict | None = None,
    apply: Callable[[TicketChange], Any] | None = None,
    prepare: Callable[[TicketChange], Any] | None = None,
) -> Outcome:
    """Create a ticket in one of the creation states, with its first transition row and audit event.

    `ticket` is an unsaved Ticket whose `state` is the creation state. `prepare` runs before the
    ticket row is written and may set fields and take further transitions, but write no rows;
    `apply` runs after the row exists (for rows that point at it) and may do both, at the cost
    of writing the ticket row twice. The result of the one that runs last is the outcome's.
    """
    if not command.allows_role(actor.role):
        raise role_forbidden(command, actor.role)
    if ticket.state not in CREATION_STATES:
        raise invalid_transition("", ticket.state, tool=command.tool)
    if not actor.in_scope(account_id=ticket.account_id, site_id=ticket.site_id):
        raise DispatchError(
            "FORBIDDEN_SCOPE", "This credential is not scoped to that account or site.", status=403, dimension="scope"
        )
    with _command_atomic():
        ticket.version = 1
        ticket.transition_seq = 1
        change = TicketChange(ticket=ticket, actor=actor, command=command, steps=[("", ticket.state)])
        if prepare is not None:
            change.result = prepare(change)
            ticket.transition_seq = len(change.steps)
        if apply is None:
            # The event is chained first so that the one INSERT of the ticket carries its head.
            event = _event(change, before_state="", payload=payload or {}, opening=True)
            _ticket_insert(ticket)
            row_insert(event)
        else:
            _ticket_insert(ticket)
            change.result = apply(change)
            ticket.transition_seq = len(change.steps)
            event = _event(change, before_state="", payload=payload or {}, opening=True)
            ticket.save()
            row_insert(event)
        _record(change, event)
    return Outcome(ticket=ticket, event=event, result=change.result)


def audit_only(*, actor: Actor, command: Command, payload: dict | None = None, ticket: Ticket | None = None) -> AuditEvent:
    """Record an action that changes no ticket (autonomy pause, outbox replay) on the same chain."""
    if not command.allows_role(actor.role):
        raise role_forbidden(command, actor.role)
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
from .models import Asset, Priority, Site  # noqa: E402

ALL_OPEN = [s for s in S if s not in (S.CLOSED, S.CANCELLED)]

TICKET_CREATE = command("ticket.create", ["dispatcher", "agent"], None, "NEW", "Create ticket")
TICKET_TRIAGE = command(
    "ticket.triage", ["dispatcher", "agent"], ["NEW", "NEEDS_INFO", "TRIAGED"], "TRIAGED", "Triage"
)
TICKET_REQUEST_INFO = command(
    "ticket.request_info", ["dispatcher", "agent"], ["NEW"], "NEEDS_INFO", "Ask the customer for details"
)
TICKET_CANCEL = command("ticket.cancel", ["dispatcher", "approver", "finance"], ALL_OPEN, "CANCELLED", "Cancel")
DISPATCH_FORCE_HOLD = command(
    "dispatch.force_hold", ["dispatcher"], ["DISPATCHED", "ON_SITE", "IN_PROGRESS"], "ON_HOLD", "Put on hold"
)
TICKET_RESUME = command(
    "ticket.resume", ["dispatcher"], ["ON_HOLD"], None, "Resume from hold"
)
REOPEN_AFTER_VERIFICATION = command(
    "reopen_after_verification", ["dispatcher", "qa"], ["VERIFIED", "INVOICED"], "IN_PROGRESS", "Reopen"
)

TRIAGE_OUTCOMES = (S.TRIAGED, S.READY_TO_SCHEDULE, S.APPROVAL_REQUIRED)


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
    payload: dict | None = None,
    command: Command = TICKET_CREATE,
    initial_state: str = S.NEW,
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
    ticket = Ticket(
        account_id=site.account_id,
        site=site,
        asset_id=asset_id,
        summary=summary.strip()[:500],
        description=description or "",
        nte_cents=cents_value(nte_cents, "nte_cents"),
        state=initial_state,
        **fields,
    )
    return ticket_open(actor=actor, command=command, ticket=ticket, payload=payload or {})


def ticket_triage(
    *,
    actor: Actor,
    ticket_id,
    priority: str,
    incident_type: str,
    nte_cents: int | None = None,
    outcome: str = S.TRIAGED,
    approval_reason: str = "",
    approval_amount_delta_cents: int | None = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Set priority, incident type and NTE, and move to TRIAGED, READY_TO_SCHEDULE or APPROVAL_REQUIRED."""
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

    def apply(change: TicketChange):
        ticket = change.ticket
        ticket.priority = priority
        ticket.incident_type = str(incident_type).strip().upper()
        if nte_cents is not None:
            ticket.nte_cents = nte_cents
        if ticket.state != S.TRIAGED:
            change.transition(S.TRIAGED)
        if outcome == S.READY_TO_SCHEDULE:
            change.transition(S.READY_TO_SCHEDULE)
        elif outcome == S.APPROVAL_REQUIRED:
            from .models import Approval

            change.transition(S.APPROVAL_REQUIRED)
            Approval.objects.create(
                ticket=ticket,
                kind=Approval.Kind.NTE_INCREASE if approval_amount_delta_cents else Approval.Kind.PROPOSAL,
                return_state=S.READY_TO_SCHEDULE,
                amount_cents=approval_amount_delta_cents or None,
                reason=approval_reason or "Triage needs approval before scheduling.",
                requested_by=actor.actor_id,
            )

    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=TICKET_TRIAGE,
        payload=payload
        or {"priority": priority, "incident_type": incident_type, "nte_cents": nte_cents, "workflow_outcome": outcome},
        apply=apply,
        expected_version=expected_version,
    )


def ticket_request_info(*, actor: Actor, ticket_id, question: str, expected_version: int | None = None) -> Outcome:
    """Park a new ticket in NEEDS_INFO with the question the customer must answer."""
    if not question or not question.strip():
        raise _bad("Say what information is missing.", field="question")
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=TICKET_REQUEST_INFO,
        payload={"question": question.strip()},
        apply=lambda change: change.transition(S.NEEDS_INFO),
        expected_version=expected_version,
    )


def ticket_cancel(
    *,
    actor: Actor,
    ticket_id,
    reason: str,
    cancellation_code: str = "",
    expected_version: int | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Cancel an open ticket, keeping the reason in the audit trail."""
    if not reason or not reason.strip():
        raise _bad("A reason is required to cancel.", field="reason")
    payload = {**(payload or {}), "reason": reason.strip()}
    if cancellation_code:
        payload["cancellation_code"] = cancellation_code
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=TICKET_CANCEL,
        payload=payload,
        apply=lambda change: change.transition(S.CANCELLED),
        expected_version=expected_version,
    )


def ticket_force_hold(
    *,
    actor: Actor,
    ticket_id,
    reason: str = "",
    hold_reason: str = "",
    expected_version: int | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Stop work on a dispatched or running job (customer unreachable, site not ready, ...)."""
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=DISPATCH_FORCE_HOLD,
        payload={**(payload or {}), **{k: v for k, v in {"reason": reason, "hold_reason": hold_reason}.items() if v}},
        apply=lambda change: change.transition(S.ON_HOLD),
        expected_version=expected_version,
    )


def ticket_resume(*, actor: Actor, ticket_id, to_state: str, reason: str = "", expected_version: int | None = None) -> Outcome:
    """Take a job off hold: back to work (IN_PROGRESS) or back to the scheduling queue."""
    if to_state not in (S.IN_PROGRESS, S.READY_TO_SCHEDULE):
        raise _bad("A job on hold resumes to IN_PROGRESS or READY_TO_SCHEDULE.", field="to_state")
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=TICKET_RESUME,
        payload={"to_state": to_state, "reason": reason},
        apply=lambda change: change.transition(to_state),
        expected_version=expected_version,
    )


def ticket_reopen(
    *,
    actor: Actor,
    ticket_id,
    reason: str,
    reopen_scope: str = "",
    expected_version: int | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Send verified or invoiced work back to IN_PROGRESS."""
    if not reason or not reason.strip():
        raise _bad("A reason is required to reopen.", field="reason")
    return ticket_execute(
        actor=actor,
        ticket_id=ticket_id,
        command=REOPEN_AFTER_VERIFICATION,
        payload={**(payload or {}), "reason": reason.strip(), "reopen_scope": reopen_scope},
        apply=lambda change: change.transition(S.IN_PROGRESS),
        expected_version=expected_version,
    )


TICKET_UPDATE_DETAILS = command(
    "ticket.update_details", ["dispatcher"], ALL_OPEN, None, "Edit details"
)
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

    def apply(change: TicketChange):
        ticket = change.ticket
        if changes.get("asset_id") and not Asset.objects.filter(pk=changes["asset_id"], site_id=ticket.site_id).exists():
            raise _bad("The asset is not at this ticket's site.", field="asset_id")
        diff = {}
        for name, value in changes.items():
            old = getattr(ticket, name)
            new = value if value is not None or name == "asset_id" else ""
            if str(old or "") != str(new or ""):
                diff[name] = {"from": str(old) if old is not None else None, "to": str(new) if new is not None else None}
                setattr(ticket, name, new)
        if not diff:
            raise _bad("Nothing changed.")
        change.audit_payload["changes"] = diff
        return diff

    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=TICKET_UPDATE_DETAILS, payload={}, apply=apply,
        expected_version=expected_version,
    )
