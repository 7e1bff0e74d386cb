"""Reads of tickets for the faces: the wire shape of a ticket and of an actor, its timeline, the
actions an actor may take on it now, and its SLA clock. Nothing here writes.

The "allowed actions" come from the Commands the caller hands in (the API passes its registry),
so this module never imports the toolset above it; whether an action is allowed is the policy's
answer (dispatch/tickets/policy.py). The dispatcher's cockpit and the technician's job packet,
which combine these reads with the phases' own, live in dispatch/readmodels/.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Case, DateTimeField, DurationField, ExpressionWrapper, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from dispatch.common.actors import Actor, ActorType

from . import catalog, policy
from .commands import Command
from .models import AuditEvent, Priority, Ticket
from .policy import access_check
from .services import ticket_not_found
from .states import TicketState
from .timeline import TimelineNames

# The contract's SLA targets: minutes from the ticket's start (its scheduled start, else its
# creation) within which it must be resolved, and how close to the deadline counts as a warning.
SLA_TARGET_MINUTES_BY_PRIORITY = {Priority.EMERGENCY: 60, Priority.URGENT: 240, Priority.ROUTINE: 1440}
SLA_WARNING_THRESHOLD_MINUTES = 45
SLA_STATUSES = ("healthy", "warning", "breach")
PRIORITY_ORDER = (Priority.EMERGENCY, Priority.URGENT, Priority.ROUTINE)
# While a ticket waits in these states, a late SLA is the provider's doing.
PROVIDER_DELAY_STATES = (
    TicketState.SCHEDULED,
    TicketState.DISPATCHED,
    TicketState.ON_SITE,
    TicketState.IN_PROGRESS,
    TicketState.ON_HOLD,
    TicketState.COMPLETED_PENDING_VERIFICATION,
)


def iso_utc(value: datetime | None) -> str | None:
    """A datetime as the contract writes it: UTC, milliseconds, "Z" (JavaScript's toISOString)."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def ticket_detail(ticket: Ticket) -> dict:
    """The wire shape of a ticket (the contract's ticket fields; null where empty)."""
    return {
        "id": str(ticket.id),
        "account_id": str_or_none(ticket.account_id),
        "site_id": str_or_none(ticket.site_id),
        "asset_id": str_or_none(ticket.asset_id),
        "state": str(ticket.state),
        "priority": ticket.priority or None,
        "incident_type": ticket.incident_type or None,
        "summary": ticket.summary,
        "description": ticket.description or None,
        "customer_name": ticket.customer_name or None,
        "customer_phone": ticket.customer_phone or None,
        "customer_email": ticket.customer_email or None,
        "nte_cents": ticket.nte_cents,
        "scheduled_start": iso_utc(ticket.scheduled_start),
        "scheduled_end": iso_utc(ticket.scheduled_end),
        "identity_confidence": ticket.identity_confidence,
        "classification_confidence": ticket.classification_confidence,
        "assigned_tech_id": str_or_none(ticket.assigned_tech_id),
        "version": ticket.version,
        "created_at": iso_utc(ticket.created_at),
        "updated_at": iso_utc(ticket.updated_at),
    }


def actor_summary(actor: Actor) -> dict:
    """Who is asking, as the read models echo it."""
    return {"actor_id": actor.actor_id, "actor_role": _role_value(actor.role), "actor_type": actor.actor_type}


def ticket_get_for_actor(*, actor: Actor, ticket_id: Any, related: Sequence[str] = ()) -> Ticket:
    """The ticket an actor may read: 404 TICKET_NOT_FOUND, or 403 FORBIDDEN_SCOPE for a scoped
    credential outside its accounts/sites or a technician on someone else's job."""
    try:
        key = ticket_id if isinstance(ticket_id, uuid.UUID) else uuid.UUID(str(ticket_id))
    except (ValueError, TypeError, AttributeError):
        raise ticket_not_found(ticket_id) from None
    try:
        ticket = Ticket.objects.select_related(*related).get(pk=key)
    except (Ticket.DoesNotExist, ValidationError):
        raise ticket_not_found(ticket_id) from None
    access_check(actor, ticket)
    return ticket


def timeline_event_detail(event: dict | AuditEvent) -> dict:
    """One audit event as the timeline shows it (the payload was redacted when it was written)."""
    get = event.get if isinstance(event, dict) else (lambda name: getattr(event, name))
    return {
        "id": str(get("id")),
        "ticket_id": str_or_none(get("ticket_id")),
        "actor_type": get("actor_type"),
        "actor_id": get("actor_id"),
        "actor_role": get("actor_role"),
        "tool_name": get("tool_name"),
        "request_id": get("request_id") or None,
        "correlation_id": get("correlation_id") or None,
        "trace_id": get("trace_id") or None,
        "before_state": get("before_state") or None,
        "after_state": get("after_state") or None,
        "payload": get("payload") or {},
        "created_at": iso_utc(get("created_at")),
    }


TIMELINE_FIELDS = (
    "id",
    "ticket_id",
    "actor_type",
    "actor_id",
    "actor_role",
    "tool_name",
    "request_id",
    "correlation_id",
    "trace_id",
    "before_state",
    "after_state",
    "payload",
    "created_at",
)


def timeline_events(ticket_id) -> list[dict]:
    """Every audit event of a ticket as the timeline shows it, oldest first."""
    # `seq` breaks ties between events written in the same instant: it is the chain's global,
    # gapless order, so two events never swap places between two reads. One query, served by
    # the audit_ticket_seq index.
    rows = AuditEvent.objects.filter(ticket_id=ticket_id).order_by("created_at", "seq").values(*TIMELINE_FIELDS)
    return [timeline_event_detail(row) for row in rows]


def ticket_timeline(ticket: Ticket) -> dict:
    """Every audit event of a ticket, oldest first: `{"ticket_id", "events": [...]}`."""
    return {"ticket_id": str(ticket.id), "events": timeline_events(ticket.id)}


# --- allowed actions ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    command: Command
    method: str | None
    route: str | None


def tools_by_name(commands: Iterable[Any]) -> dict[str, _Tool]:
    """Index what the caller handed in: bare Commands, or registry entries carrying a `command`
    and, when they have them, the HTTP `method` and contract `route`."""
    if isinstance(commands, dict):
        return commands  # already indexed (a read model indexes once for all its rows)
    tools: dict[str, _Tool] = {}
    for item in commands:
        command = item if isinstance(item, Command) else getattr(item, "command", None)
        if not isinstance(command, Command):
            raise TypeError(f"Expected a Command or a registry entry with a command, got {item!r}.")
        method = getattr(item, "method", None) or getattr(item, "http_method", None)
        route = getattr(item, "route", None)
        tools[command.tool] = _Tool(command=command, method=method, route=route)
    return tools


def policy_error(code: str, message: str, dimension: str, **details: Any) -> dict:
    """A refusal as an action descriptor shows it (the same code the tool itself would answer)."""
    return {"code": code, "message": message, "dimension": dimension, **details}


def _role_value(role: Any) -> str:
    return getattr(role, "value", str(role))


def _command_refusal(command: Command, actor: Actor, ticket: Ticket) -> dict | None:
    """Why the executor would refuse this command for this actor and ticket now, or None."""
    refusal = policy.command_refusal(command, actor, ticket)
    return None if refusal is None else policy.refusal_as_dict(refusal)


def _requirements(command: Command, ticket: Ticket) -> dict | None:
    """What a permitted call must still carry, where the contract asks for more than the state."""
    if command.tool == "assignment.dispatch" and ticket.state == TicketState.TRIAGED:
        # From TRIAGED the contract allows dispatch only as an explicit, confirmed emergency bypass.
        return {
            "dispatch_mode": "EMERGENCY_BYPASS",
            "required_fields": ["dispatch_rationale", "dispatch_confirmation"],
        }
    return None


def _action(action_id: str, tool: _Tool, actor: Actor, ticket: Ticket, extra: dict | None = None) -> dict:
    refusal = _command_refusal(tool.command, actor, ticket) or extra
    endpoint = tool.route.replace("{ticketId}", str(ticket.id)) if tool.route else None
    descriptor = {
        "action_id": action_id,
        "tool_name": tool.command.tool,
        "label": tool.command.label,
        "endpoint": endpoint,
        "method": tool.method,
        "mutating": None if tool.method is None else tool.method.upper() != "GET",
        "enabled": refusal is None,
        "policy_error": refusal,
    }
    if refusal is None:
        requirements = _requirements(tool.command, ticket)
        if requirements:
            descriptor["requirements"] = requirements
    return descriptor


def ticket_actions(
    *,
    actor: Actor,
    ticket: Ticket,
    commands: Iterable[Any],
    blueprint: Sequence[tuple[str, str]] | None = None,
    extra_refusals: dict[str, dict] | None = None,
) -> list[dict]:
    """Action descriptors for a ticket: enabled, or the refusal the tool would answer.

    `blueprint` picks and names the actions ((action_id, tool_name) pairs); by default every
    command that acts on one ticket. Tools the caller did not hand in are left out.
    """
    tools = tools_by_name(commands)
    if blueprint is None:
        blueprint = [(name.replace(".", "_"), name) for name, tool in tools.items() if _acts_on_ticket(tool)]
    extra_refusals = extra_refusals or {}
    return [
        _action(action_id, tools[name], actor, ticket, extra_refusals.get(name))
        for action_id, name in blueprint
        if name in tools
    ]


def _acts_on_ticket(tool: _Tool) -> bool:
    if tool.route is not None:
        return "{ticketId}" in tool.route
    return tool.command.from_states is not None


def allowed_tools(*, actor: Actor, ticket: Ticket, commands: Iterable[Any]) -> list[str]:
    """Names of the ticket tools this actor may call on this ticket right now."""
    tools = tools_by_name(commands)
    return sorted(
        name
        for name, tool in tools.items()
        if _acts_on_ticket(tool) and policy.command_allowed(tool.command, actor, ticket)
    )


# --- SLA ----------------------------------------------------------------------------------


def _sla_target(priority: str) -> int:
    return SLA_TARGET_MINUTES_BY_PRIORITY.get(priority, SLA_TARGET_MINUTES_BY_PRIORITY[Priority.ROUTINE])


def _delay_attribution(state: str) -> str:
    if state == TicketState.APPROVAL_REQUIRED:
        return "customer"
    if state in PROVIDER_DELAY_STATES:
        return "provider"
    return "unknown"


def _signed_hours_minutes(total_minutes: int) -> str:
    sign = "-" if total_minutes < 0 else ""
    hours, minutes = divmod(abs(total_minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def sla_snapshot(ticket: Ticket, now: datetime) -> dict:
    """The ticket's SLA clock: target, deadline, minutes left and healthy/warning/breach."""
    target = _sla_target(ticket.priority)
    deadline = (ticket.scheduled_start or ticket.created_at) + timedelta(minutes=target)
    remaining = math.floor((deadline - now).total_seconds() / 60)
    status = "breach" if remaining < 0 else "warning" if remaining <= SLA_WARNING_THRESHOLD_MINUTES else "healthy"
    return {
        "sla_target_minutes": target,
        "sla_deadline_at": iso_utc(deadline),
        "sla_timer_remaining_minutes": remaining,
        "sla_timer_remaining": _signed_hours_minutes(remaining),
        "sla_status": status,
        "sla_delay_attribution": _delay_attribution(ticket.state),
    }


def sla_deadline_expression():
    """sla_snapshot's deadline as a database expression, to filter and sort on."""
    target = Case(
        *[
            When(priority=priority, then=Value(timedelta(minutes=minutes)))
            for priority, minutes in SLA_TARGET_MINUTES_BY_PRIORITY.items()
        ],
        default=Value(timedelta(minutes=SLA_TARGET_MINUTES_BY_PRIORITY[Priority.ROUTINE])),
        output_field=DurationField(),
    )
    return ExpressionWrapper(Coalesce("scheduled_start", "created_at") + target, output_field=DateTimeField())


def sla_status_q(status: str, now: datetime) -> Q:
    """The tickets (annotated with `sla_deadline`) in one SLA status at `now`."""
    # The same buckets as sla_snapshot: remaining = floor(minutes left), breach below 0,
    # warning up to SLA_WARNING_THRESHOLD_MINUTES inclusive.
    warning_end = now + timedelta(minutes=SLA_WARNING_THRESHOLD_MINUTES + 1)
    if status == "breach":
        return Q(sla_deadline__lt=now)
    if status == "warning":
        return Q(sla_deadline__gte=now, sla_deadline__lt=warning_end)
    return Q(sla_deadline__gte=warning_end)


def priority_rank():
    """A ticket's priority as a number to sort on: emergencies first."""
    return Case(
        *[When(priority=priority, then=Value(rank)) for rank, priority in enumerate(PRIORITY_ORDER)],
        default=Value(len(PRIORITY_ORDER)),
        output_field=IntegerField(),
    )


# --- the timeline's names -----------------------------------------------------------------------------


def _tech_ids(value: Any, found: set[str]) -> None:
    """Every technician id a payload names, at any depth (tech_id, previous_tech_id, moved_to...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).endswith("tech_id") and isinstance(item, str):
                found.add(item)
            else:
                _tech_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _tech_ids(item, found)


def _uuid_texts(values: Iterable[str]) -> list[uuid.UUID]:
    keys = []
    for value in values:
        try:
            keys.append(uuid.UUID(value))
        except ValueError:
            continue
    return keys


def timeline_names(events: Sequence[AuditEvent]) -> TimelineNames:
    """The names a ticket's timeline speaks of, read once for all its events: the users who acted
    (a technician by their technician name), the technicians the payloads name, and the incident
    types' template names. At most three queries, whatever the number of events."""
    # Only people sign in as users: an agent's or a service's id is never a user's, even when it
    # is all digits. isascii: "²".isdigit() is true, and int() refuses it.
    user_ids = {
        int(e.actor_id)
        for e in events
        if e.actor_type == ActorType.HUMAN and e.actor_id.isascii() and e.actor_id.isdigit()
    }
    tech_ids: set[str] = set()
    for event in events:
        _tech_ids(event.payload, tech_ids)
    users: dict[str, str] = {}
    if user_ids:
        for pk, username, first, last in (
            get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username", "first_name", "last_name")
        ):
            users[str(pk)] = f"{first} {last}".strip() or username
    technicians: dict[str, str] = {}
    keys = _uuid_texts(tech_ids)
    if keys or user_ids:
        # Technician lives in a phase app: reached through the ticket's foreign key, not imported.
        Technician = Ticket._meta.get_field("assigned_tech").related_model
        for pk, user_id, name in Technician.objects.filter(Q(pk__in=keys) | Q(user_id__in=user_ids)).values_list(
            "pk", "user_id", "display_name"
        ):
            technicians[str(pk)] = name
            if user_id in user_ids and name:
                # A technician acting is named as the office knows them.
                users[str(user_id)] = name
    return TimelineNames(
        users=users,
        technicians=technicians,
        incident_types=catalog.incident_type_names(),
        zone=ZoneInfo(settings.TIME_ZONE),
    )
