"""Reads of tickets for the faces: the wire shape of a ticket, its timeline, the dispatcher's
queue and the technician's job packet. Nothing here writes.

The "allowed actions" of the cockpit and the packet come from the Commands the caller hands
in (the API passes its registry), so this module never imports the toolset above it. Likewise
the packet takes closeout's evidence gate and autonomy lookup as arguments; closeout tables it
lists are read through the app registry by name, as `Ticket.assigned_tech` names its model,
which keeps `tickets` free of imports from the phase apps.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Callable, Iterable, Sequence

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, DateTimeField, DurationField, ExpressionWrapper, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import invalid_request
from dispatch.common.roles import Role

from .commands import Command
from .models import AuditEvent, Contact, Priority, Ticket
from . import policy
from .policy import access_check
from .services import ticket_not_found
from .states import OPEN_STATES, TicketState

S = TicketState

# The contract's SLA targets: minutes from the ticket's start (its scheduled start, else its
# creation) within which it must be resolved, and how close to the deadline counts as a warning.
SLA_TARGET_MINUTES_BY_PRIORITY = {Priority.EMERGENCY: 60, Priority.URGENT: 240, Priority.ROUTINE: 1440}
SLA_WARNING_THRESHOLD_MINUTES = 45
SLA_STATUSES = ("healthy", "warning", "breach")
PRIORITY_ORDER = (Priority.EMERGENCY, Priority.URGENT, Priority.ROUTINE)

COCKPIT_MAX_ROWS = 200
PACKET_TIMELINE_EVENTS = 10
SIGNATURE_EVIDENCE_KEY = "signature_or_no_signature_reason"

# The actions the dispatcher's queue and the technician's packet offer, in the contract's names.
DISPATCHER_QUEUE_ACTIONS = (
    ("schedule_propose", "schedule.propose"),
    ("schedule_confirm", "schedule.confirm"),
    ("dispatch_assignment", "assignment.dispatch"),
    ("recommend_technicians", "assignment.recommend"),
    ("hold_schedule", "schedule.hold"),
    ("release_schedule", "schedule.release"),
    ("rollback_schedule", "schedule.rollback"),
    ("open_timeline", "ticket.timeline"),
    ("open_technician_packet", "tech.job_packet"),
)
TECH_PACKET_ACTIONS = (
    ("check_in", "tech.check_in"),
    ("add_evidence", "closeout.add_evidence"),
    ("request_change", "tech.request_change"),
    ("candidate", "closeout.candidate"),
    ("complete_work", "tech.complete"),
    ("open_timeline", "ticket.timeline"),
    ("open_evidence", "closeout.list_evidence"),
)
CLOSEOUT_TOOLS = ("tech.complete", "closeout.candidate")


def iso_utc(value: datetime | None) -> str | None:
    """A datetime as the contract writes it: UTC, milliseconds, "Z" (JavaScript's toISOString)."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt_timezone.utc)
    return value.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def ticket_detail(ticket: Ticket) -> dict:
    """The wire shape of a ticket (the contract's ticket fields; null where empty)."""
    return {
        "id": str(ticket.id),
        "account_id": _str_or_none(ticket.account_id),
        "site_id": _str_or_none(ticket.site_id),
        "asset_id": _str_or_none(ticket.asset_id),
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
        "assigned_tech_id": _str_or_none(ticket.assigned_tech_id),
        "version": ticket.version,
        "created_at": iso_utc(ticket.created_at),
        "updated_at": iso_utc(ticket.updated_at),
    }


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
        "ticket_id": _str_or_none(get("ticket_id")),
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
    "id", "ticket_id", "actor_type", "actor_id", "actor_role", "tool_name", "request_id",
    "correlation_id", "trace_id", "before_state", "after_state", "payload", "created_at",
)


def _timeline_events(ticket_id) -> list[dict]:
    # `seq` breaks ties between events written in the same instant: it is the chain's global,
    # gapless order, so two events never swap places between two reads. One query, served by
    # the audit_ticket_seq index.
    rows = AuditEvent.objects.filter(ticket_id=ticket_id).order_by("created_at", "seq").values(*TIMELINE_FIELDS)
    return [timeline_event_detail(row) for row in rows]


def ticket_timeline(ticket: Ticket) -> dict:
    """Every audit event of a ticket, oldest first: `{"ticket_id", "events": [...]}`."""
    return {"ticket_id": str(ticket.id), "events": _timeline_events(ticket.id)}


# --- allowed actions ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    command: Command
    method: str | None
    route: str | None


def _tools_by_name(commands: Iterable[Any]) -> dict[str, _Tool]:
    """Index what the caller handed in: bare Commands, or registry entries carrying a `command`
    and, when they have them, the HTTP `method` and contract `route`."""
    if isinstance(commands, dict):
        return commands  # already indexed (the cockpit indexes once for all its rows)
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
    if command.tool == "assignment.dispatch" and ticket.state == S.TRIAGED:
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
    *, actor: Actor, ticket: Ticket, commands: Iterable[Any], blueprint: Sequence[tuple[str, str]] | None = None,
    extra_refusals: dict[str, dict] | None = None,
) -> list[dict]:
    """Action descriptors for a ticket: enabled, or the refusal the tool would answer.

    `blueprint` picks and names the actions ((action_id, tool_name) pairs); by default every
    command that acts on one ticket. Tools the caller did not hand in are left out.
    """
    tools = _tools_by_name(commands)
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
    tools = _tools_by_name(commands)
    return sorted(name for name, tool in tools.items() if _acts_on_ticket(tool) and policy.command_allowed(tool.command, actor, ticket))


# --- SLA ----------------------------------------------------------------------------------


def _sla_target(priority: str) -> int:
    return SLA_TARGET_MINUTES_BY_PRIORITY.get(priority, SLA_TARGET_MINUTES_BY_PRIORITY[Priority.ROUTINE])


def _delay_attribution(state: str) -> str:
    if state == S.APPROVAL_REQUIRED:
        return "customer"
    if state in (S.SCHEDULED, S.DISPATCHED, S.ON_SITE, S.IN_PROGRESS, S.ON_HOLD, S.COMPLETED_PENDING_VERIFICATION):
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


def _sla_deadline_expression():
    target = Case(
        *[
            When(priority=priority, then=Value(timedelta(minutes=minutes)))
            for priority, minutes in SLA_TARGET_MINUTES_BY_PRIORITY.items()
        ],
        default=Value(timedelta(minutes=SLA_TARGET_MINUTES_BY_PRIORITY[Priority.ROUTINE])),
        output_field=DurationField(),
    )
    return ExpressionWrapper(Coalesce("scheduled_start", "created_at") + target, output_field=DateTimeField())


def _sla_status_q(status: str, now: datetime) -> Q:
    # The same buckets as sla_snapshot: remaining = floor(minutes left), breach below 0,
    # warning up to SLA_WARNING_THRESHOLD_MINUTES inclusive.
    warning_end = now + timedelta(minutes=SLA_WARNING_THRESHOLD_MINUTES + 1)
    if status == "breach":
        return Q(sla_deadline__lt=now)
    if status == "warning":
        return Q(sla_deadline__gte=now, sla_deadline__lt=warning_end)
    return Q(sla_deadline__gte=warning_end)


def _priority_rank():
    return Case(
        *[When(priority=priority, then=Value(rank)) for rank, priority in enumerate(PRIORITY_ORDER)],
        default=Value(len(PRIORITY_ORDER)),
        output_field=IntegerField(),
    )


# --- the dispatcher's cockpit -------------------------------------------------------------


def _enum_filter(name: str, values: Iterable[str] | None, allowed: Iterable[str], *, upper: bool = True) -> list[str]:
    chosen = []
    for raw in values or ():
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            part = part.upper() if upper else part.lower()
            if part not in allowed:
                raise invalid_request(f"Filter {name!r} has an unsupported value {part!r}.", field=name)
            chosen.append(part)
    return sorted(set(chosen))


def _uuid_filter(name: str, values: Iterable[str] | None) -> list[str]:
    chosen = []
    for raw in values or ():
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                chosen.append(str(uuid.UUID(part)))
            except ValueError:
                raise invalid_request(f"Filter {name!r} takes UUIDs.", field=name) from None
    return sorted(set(chosen))


def _scoped(queryset, actor: Actor):
    """Narrow a ticket queryset to what a scoped credential or a technician may see."""
    if actor.is_scoped:
        scope = Q(pk__in=[])
        if actor.account_ids:
            scope |= Q(account_id__in=list(actor.account_ids))
        if actor.site_ids:
            scope |= Q(site_id__in=list(actor.site_ids))
        queryset = queryset.filter(scope)
    if actor.role == Role.TECHNICIAN:
        queryset = queryset.filter(assigned_tech_id=actor.technician_id) if actor.technician_id else queryset.none()
    return queryset


def _bounded_int(name: str, value: Any, *, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_request(f"{name!r} must be a whole number.", field=name) from None
    if number < low or number > high:
        raise invalid_request(f"{name!r} must be between {low} and {high}.", field=name)
    return number


def dispatcher_cockpit(
    *,
    actor: Actor,
    commands: Iterable[Any],
    state: Iterable[str] | None = None,
    priority: Iterable[str] | None = None,
    sla_status: Iterable[str] | None = None,
    account_id: Iterable[str] | None = None,
    site_id: Iterable[str] | None = None,
    assigned_tech_id: Iterable[str] | None = None,
    incident_type: Iterable[str] | None = None,
    sort: str = "priority",
    limit: Any = None,
    offset: Any = None,
    ticket_id: str | None = None,
    now: datetime | None = None,
) -> dict:
    """The dispatcher's queue: open tickets by priority and age (or by SLA deadline), each with
    its site, technician, SLA clock and the actions allowed now; counts per state, priority and
    SLA status. A fixed number of queries whatever the number of tickets.
    """
    now = now or timezone.now()
    tools = _tools_by_name(commands)
    filters = {
        "state": _enum_filter("state", state, [s.value for s in OPEN_STATES]),
        "priority": _enum_filter("priority", priority, Priority.values),
        "sla_status": _enum_filter("sla_status", sla_status, SLA_STATUSES, upper=False),
        "account_id": _uuid_filter("account_id", account_id),
        "site_id": _uuid_filter("site_id", site_id),
        "assigned_tech_id": _uuid_filter("assigned_tech_id", assigned_tech_id),
        "incident_type": sorted({v.strip().upper() for raw in incident_type or () for v in str(raw).split(",") if v.strip()}),
    }
    if sort not in ("priority", "sla"):
        raise invalid_request("'sort' is 'priority' (priority, then oldest first) or 'sla' (nearest deadline first).", field="sort")
    limit = _bounded_int("limit", limit, default=COCKPIT_MAX_ROWS, low=1, high=COCKPIT_MAX_ROWS)
    offset = _bounded_int("offset", offset, default=0, low=0, high=10**9)

    # A positive list of open states lets the database use the (state, priority) index instead
    # of reading the closed history.
    base = _scoped(Ticket.objects.filter(state__in=[s.value for s in OPEN_STATES]), actor)
    for field_name in ("account_id", "site_id", "assigned_tech_id", "incident_type"):
        if filters[field_name]:
            base = base.filter(**{f"{field_name}__in": filters[field_name]})
    base = base.annotate(sla_deadline=_sla_deadline_expression())

    counts = _cockpit_counts(base, now)
    queue = base
    if filters["state"]:
        queue = queue.filter(state__in=filters["state"])
    if filters["priority"]:
        queue = queue.filter(priority__in=filters["priority"])
    if filters["sla_status"]:
        wanted = Q(pk__in=[])
        for status in filters["sla_status"]:
            wanted |= _sla_status_q(status, now)
        queue = queue.filter(wanted)
    total = _matching_total(counts["_groups"], filters)

    if sort == "sla":
        ordering = [F("sla_deadline").asc(), "priority_rank", "created_at", "id"]
    else:
        ordering = ["priority_rank", "created_at", "id"]
    rows = list(
        queue.annotate(priority_rank=_priority_rank())
        .select_related("site", "assigned_tech")
        .order_by(*ordering)[offset : offset + limit]
    )

    selected = None
    if ticket_id:
        ticket = ticket_get_for_actor(actor=actor, ticket_id=ticket_id)
        selected = {"ticket": ticket_detail(ticket), "timeline": ticket_timeline(ticket)}

    next_offset = offset + len(rows)
    return {
        "generated_at": iso_utc(now),
        "actor": _actor_summary(actor),
        "filters_applied": {**filters, "sort": sort, "ticket_id": ticket_id},
        "page": {"limit": limit, "offset": offset, "total": total, "next_offset": next_offset if next_offset < total else None},
        "counts": {key: value for key, value in counts.items() if not key.startswith("_")},
        "queue": [_queue_row(ticket, actor, tools, now) for ticket in rows],
        "selected_ticket": selected,
    }


def _cockpit_counts(base, now: datetime) -> dict:
    """Per (state, priority): how many open tickets and how many per SLA status, in one query."""
    groups = list(
        base.order_by()
        .values("state", "priority")
        .annotate(
            total=Count("id"),
            breach=Count("id", filter=_sla_status_q("breach", now)),
            warning=Count("id", filter=_sla_status_q("warning", now)),
            healthy=Count("id", filter=_sla_status_q("healthy", now)),
        )
    )
    by_state = {s.value: 0 for s in TicketState if s in OPEN_STATES}
    by_priority = {p.value: 0 for p in PRIORITY_ORDER}
    by_sla = {status: 0 for status in SLA_STATUSES}
    for group in groups:
        by_state[group["state"]] = by_state.get(group["state"], 0) + group["total"]
        by_priority[group["priority"]] = by_priority.get(group["priority"], 0) + group["total"]
        for status in SLA_STATUSES:
            by_sla[status] += group[status]
    return {
        "total_open": sum(by_state.values()),
        "by_state": by_state,
        "by_priority": by_priority,
        "by_sla_status": by_sla,
        "_groups": groups,
    }


def _matching_total(groups: list[dict], filters: dict) -> int:
    total = 0
    for group in groups:
        if filters["state"] and group["state"] not in filters["state"]:
            continue
        if filters["priority"] and group["priority"] not in filters["priority"]:
            continue
        total += sum(group[s] for s in filters["sla_status"]) if filters["sla_status"] else group["total"]
    return total


def _actor_summary(actor: Actor) -> dict:
    return {"actor_id": actor.actor_id, "actor_role": _role_value(actor.role), "actor_type": actor.actor_type}


def _queue_row(ticket: Ticket, actor: Actor, tools: dict[str, _Tool], now: datetime) -> dict:
    site = ticket.site
    tech = ticket.assigned_tech
    return {
        "ticket_id": str(ticket.id),
        "state": str(ticket.state),
        "priority": ticket.priority,
        "incident_type": ticket.incident_type or None,
        "summary": ticket.summary,
        "customer_name": ticket.customer_name or None,
        "site_region": site.service_region or site.region or None,
        "site": {
            "id": str(site.id),
            "name": site.name,
            "address": site.address,
            "city": site.city,
            "region": site.region or None,
            "service_region": site.service_region or None,
        },
        "assigned_tech": _str_or_none(ticket.assigned_tech_id),
        "assigned_tech_name": tech.display_name if tech else None,
        "scheduled_start": iso_utc(ticket.scheduled_start),
        "scheduled_end": iso_utc(ticket.scheduled_end),
        "created_at": iso_utc(ticket.created_at),
        "age_minutes": max(0, math.floor((now - ticket.created_at).total_seconds() / 60)),
        "last_update_at": iso_utc(ticket.updated_at),
        "version": ticket.version,
        **sla_snapshot(ticket, now),
        "actions": ticket_actions(actor=actor, ticket=ticket, commands=tools, blueprint=DISPATCHER_QUEUE_ACTIONS),
        "allowed_tools": allowed_tools(actor=actor, ticket=ticket, commands=tools),
    }


# --- the technician's job packet ----------------------------------------------------------


def _closeout_model(name: str):
    try:
        return apps.get_model("closeout", name)
    except LookupError:
        return None


def _evidence_rows(ticket: Ticket) -> list:
    evidence_model = _closeout_model("Evidence")
    if evidence_model is None:
        return []
    return list(evidence_model.objects.filter(ticket_id=ticket.id).order_by("created_at", "pk"))


def _evidence_key(item) -> str:
    key = getattr(item, "evidence_key", "") or ""
    if not key and isinstance(getattr(item, "metadata", None), dict):
        key = item.metadata.get("evidence_key") or ""
    return str(key).strip()


def _evidence_item(item) -> dict:
    metadata = dict(getattr(item, "metadata", None) or {})
    key = _evidence_key(item)
    if key and "evidence_key" not in metadata:
        metadata["evidence_key"] = key
    return {
        "id": str(item.pk),
        "ticket_id": str(item.ticket_id),
        "kind": getattr(item, "kind", None),
        "uri": getattr(item, "uri", None) or None,
        "checksum": getattr(item, "checksum", None) or None,
        "metadata": metadata,
        "created_by": getattr(item, "created_by", None) or None,
        "created_at": iso_utc(getattr(item, "created_at", None)),
    }


def _latest_completion(events: list[dict]) -> dict:
    """The checklist and no-signature reason of the latest completion recorded on the timeline."""
    for event in reversed(events):
        if event["tool_name"] in CLOSEOUT_TOOLS:
            payload = event["payload"] or {}
            request = payload.get("request") if isinstance(payload.get("request"), dict) else payload
            return request if isinstance(request, dict) else {}
    return {}


def _evidence_refusal(gate: dict, ticket: Ticket) -> dict | None:
    """Why completion would be refused for the evidence on file. The checklist is left out: the
    technician answers it in the completion call itself, so it cannot block the action yet."""
    missing = list(gate.get("missing_evidence_keys") or [])
    invalid = list(gate.get("invalid_evidence_refs") or [])
    if gate.get("code") == "TEMPLATE_NOT_FOUND":
        code = "TEMPLATE_NOT_FOUND"
    elif SIGNATURE_EVIDENCE_KEY in missing:
        code = "MISSING_SIGNATURE_CONFIRMATION"
    elif invalid:
        code = "INVALID_EVIDENCE_REFERENCE"
    elif missing:
        code = "MISSING_EVIDENCE"
    else:
        return None
    return policy_error(
        "CLOSEOUT_REQUIREMENTS_INCOMPLETE",
        "Closeout requirements are incomplete.",
        "evidence",
        requirement_code=code,
        incident_type=ticket.incident_type or None,
        template_version=gate.get("template_version"),
        missing_evidence_keys=missing,
        missing_checklist_keys=[],
        invalid_evidence_refs=invalid,
    )


def _autonomy_refusal(pause) -> dict | None:
    if pause is None:
        return None
    scope_type = getattr(pause, "scope_type", "GLOBAL")
    scope_id = {
        "TICKET": _str_or_none(getattr(pause, "ticket_id", None)),
        "INCIDENT": getattr(pause, "incident_type", None) or None,
    }.get(scope_type, "GLOBAL")
    return policy_error(
        "AUTONOMY_DISABLED",
        "Autonomy is paused for this ticket context.",
        "policy",
        scope_type=scope_type,
        scope_id=scope_id,
        reason=getattr(pause, "reason", "") or None,
    )


def _as_dict(gate: Any) -> dict:
    if isinstance(gate, dict):
        return gate
    return gate.as_dict() if hasattr(gate, "as_dict") else dict(vars(gate))


def tech_job_packet(
    *,
    actor: Actor,
    ticket: Ticket,
    commands: Iterable[Any],
    closeout_requirements: Callable[..., Any],
    autonomy_pause: Callable[[Ticket], Any],
    now: datetime | None = None,
) -> dict:
    """What a technician needs on site: site and access, contact, scope, NTE, asset, the
    template's evidence and checklist keys, evidence on file and what is missing, the latest
    timeline and the actions allowed now (with the reason for each one that is not).

    `closeout_requirements(ticket=, checklist_status=, no_signature_reason=, evidence_refs=)`
    and `autonomy_pause(ticket)` are closeout's own gate and pause lookup: the API hands them in
    so the packet says exactly what completion will say (this module may not import closeout).
    """
    now = now or timezone.now()
    commands = _tools_by_name(commands)
    access_check(actor, ticket)
    ticket = Ticket.objects.select_related("site", "asset", "assigned_tech").get(pk=ticket.pk)
    site = ticket.site
    contact = Contact.objects.filter(site_id=site.id).order_by("-is_authorized_requester", "created_at", "pk").first()
    template_model = _closeout_model("IncidentTemplate")
    template = (
        template_model.objects.filter(incident_type=ticket.incident_type.strip().upper()).first()
        if template_model is not None and ticket.incident_type
        else None
    )
    evidence = _evidence_rows(ticket)
    events = _timeline_events(ticket.id)
    completion = _latest_completion(events)
    checklist_status = completion.get("checklist_status") if isinstance(completion.get("checklist_status"), dict) else {}
    no_signature_reason = completion.get("no_signature_reason") or None
    gate = _as_dict(
        closeout_requirements(
            ticket=ticket, checklist_status=checklist_status, no_signature_reason=no_signature_reason, evidence_refs=None
        )
    )
    pause = autonomy_pause(ticket)

    refusals: dict[str, dict] = {}
    closeout_refusal = _evidence_refusal(gate, ticket)
    if closeout_refusal is not None:
        refusals = {tool: closeout_refusal for tool in CLOSEOUT_TOOLS}
    elif pause is not None and (actor.role == Role.AGENT or actor.actor_type == ActorType.AGENT):
        # A pause stops machines, not people: an AI caller is refused whatever role it holds.
        refusals = {tool: _autonomy_refusal(pause) for tool in CLOSEOUT_TOOLS}
    if "closeout.candidate" not in refusals and template is not None and template.high_risk:
        refusals["closeout.candidate"] = policy_error(
            "MANUAL_REVIEW_REQUIRED",
            "This incident type is high-risk: a person reviews its closeout (use tech.complete).",
            "policy",
            requirement_code="AUTOMATION_RISK_BLOCK",
            incident_type=ticket.incident_type,
        )

    missing_evidence = list(gate.get("missing_evidence_keys") or [])
    required_keys = list(template.required_evidence_keys) if template else []
    sees_access_code = actor.role == Role.DISPATCHER or (
        actor.role == Role.TECHNICIAN and actor.technician_id is not None and actor.technician_id == ticket.assigned_tech_id
    )
    asset = ticket.asset
    tech = ticket.assigned_tech
    return {
        "generated_at": iso_utc(now),
        "actor": _actor_summary(actor),
        "packet": {
            "header": {
                "ticket_id": str(ticket.id),
                "reference": ticket.short_ref,
                "priority": ticket.priority,
                "incident_type": ticket.incident_type or None,
                "current_state": str(ticket.state),
                "version": ticket.version,
                "scheduled_window": {"start": iso_utc(ticket.scheduled_start), "end": iso_utc(ticket.scheduled_end)},
                "assigned_tech_id": _str_or_none(ticket.assigned_tech_id),
                "assigned_tech_name": tech.display_name if tech else None,
                **sla_snapshot(ticket, now),
            },
            "site_and_access": {
                "site_id": str(site.id),
                "site_name": site.name,
                "address": {
                    "address1": site.address_line1,
                    "address2": site.address_line2 or None,
                    "city": site.city,
                    "region": site.region or None,
                    "postal_code": site.postal_code or None,
                    "country": site.country,
                    "formatted": site.address,
                },
                "lat": None if site.lat is None else float(site.lat),
                "lng": None if site.lng is None else float(site.lng),
                "timezone": site.timezone,
                "hours": site.hours or None,
                "access_instructions": site.access_instructions or None,
                # The door code goes only to the technician on the job and to dispatch.
                "access_code": (site.access_code or None) if sees_access_code else None,
                "onsite_contact": (
                    {"name": contact.name, "phone": contact.phone or None, "email": contact.email or None}
                    if contact
                    else None
                ),
            },
            "customer": {
                "name": ticket.customer_name or None,
                "phone": ticket.customer_phone or None,
                "email": ticket.customer_email or None,
            },
            "work_scope": {
                "summary": ticket.summary,
                "customer_description": ticket.description or None,
                "nte_cents": ticket.nte_cents,
                "currency": ticket.currency,
            },
            "asset": (
                {
                    "id": str(asset.id),
                    "name": asset.name,
                    "make": asset.make or None,
                    "model": asset.model or None,
                    "serial": asset.serial or None,
                    "warranty_until": asset.warranty_until.isoformat() if asset.warranty_until else None,
                }
                if asset
                else None
            ),
            "evidence_requirements": {
                "template_version": template.version if template else None,
                "high_risk": bool(template and template.high_risk),
                "required_evidence": [{"key": key, "present": key not in missing_evidence} for key in required_keys],
                "missing_evidence_keys": missing_evidence,
                "evidence_items": [_evidence_item(item) for item in evidence],
            },
            "checklist": {
                "required_items": [
                    {"key": key, "checked": checklist_status.get(key) is True}
                    for key in (template.required_checklist_keys if template else [])
                ],
                "source": "latest_completion_attempt" if completion else "none_recorded",
            },
            "closeout_gate": gate,
            "autonomy": {"paused": pause is not None, "policy_error": _autonomy_refusal(pause)},
            "timeline": {"latest_events": events[-PACKET_TIMELINE_EVENTS:], "total_events": len(events)},
            "actions": ticket_actions(
                actor=actor, ticket=ticket, commands=commands, blueprint=TECH_PACKET_ACTIONS, extra_refusals=refusals
            ),
            "allowed_tools": allowed_tools(actor=actor, ticket=ticket, commands=commands),
        },
    }
