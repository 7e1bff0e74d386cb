"""Autonomy pauses: a dispatcher stops agents' closeout actions globally, for one incident type
or for one ticket, and lifts the stop again. A pause changes no ticket: it is recorded with
`audit_only`, and every closeout action an agent takes asks `autonomy_guard` first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.policy import access_check
from dispatch.tickets.services import TicketChange, audit_only, role_forbidden, ticket_not_found

from ..models import AutonomyPause, AutonomyScope
from ..selectors import (
    autonomy_cache_renew,
    autonomy_pause_effective,
    autonomy_pause_serialize,
    autonomy_version_bump,
)
from .inputs import invalid, role_name, text

AUTONOMY_PAUSE = command("ops.autonomy.pause", ["dispatcher"], None, None, "Pause agent autonomy")
AUTONOMY_ROLLBACK = command("ops.autonomy.rollback", ["dispatcher"], None, None, "Resume agent autonomy")


def _is_agent(actor: Actor) -> bool:
    # An AI caller is an agent whatever role its credential carries (the "assistant" and
    # "bot" aliases map to dispatcher): pauses stop machines, not people.
    return actor.role == Role.AGENT or actor.actor_type == ActorType.AGENT


def autonomy_guard(change: TicketChange) -> None:
    """Refuse an agent's closeout action while a pause covers this ticket (409 AUTONOMY_DISABLED)."""
    if not _is_agent(change.actor):
        return
    pause = autonomy_pause_effective(change.ticket)
    if pause is None:
        return
    scope_id = {
        AutonomyScope.TICKET: str(pause.ticket_id),
        AutonomyScope.INCIDENT: pause.incident_type,
        AutonomyScope.GLOBAL: "GLOBAL",
    }[pause.scope_type]
    raise DispatchError(
        "AUTONOMY_DISABLED",
        "Autonomy is paused for this ticket: a person has to take this step.",
        status=409,
        dimension="policy",
        details={
            "scope_type": pause.scope_type,
            "scope_id": scope_id,
            "reason": pause.reason or None,
            "incident_type": change.ticket.incident_type or None,
            "ticket_id": str(change.ticket.id),
        },
    )


@dataclass(frozen=True)
class AutonomyChange:
    """What a pause or rollback did; `as_dict` is the toolset's answer."""

    action: str
    scope_type: str
    incident_type: str | None
    ticket_id: str | None
    pause: AutonomyPause | None
    previous_is_paused: bool
    current_is_paused: bool
    event: AuditEvent

    def as_dict(self) -> dict:
        scope = (
            autonomy_pause_serialize(self.pause)
            if self.pause is not None
            else {
                "id": None,
                "scope_type": self.scope_type,
                "incident_type": self.incident_type,
                "ticket_id": self.ticket_id,
                "is_paused": False,
            }
        )
        return {
            "action": self.action,
            "scope": scope,
            "previous_is_paused": self.previous_is_paused,
            "current_is_paused": self.current_is_paused,
            "history_id": str(self.pause.id) if self.pause is not None else None,
        }


def _autonomy_scope(actor: Actor, command_, scope_type, incident_type, ticket_id) -> tuple[str, str, Ticket | None]:
    if not command_.allows_role(actor.role):
        raise role_forbidden(command_, actor.role)
    scope = text(scope_type, "scope_type", max_length=20).upper() or AutonomyScope.GLOBAL
    if scope not in AutonomyScope.values:
        raise invalid("Field 'scope_type' must be GLOBAL, INCIDENT or TICKET.", "scope_type")
    incident = text(incident_type, "incident_type", max_length=64).upper()
    ticket_ref = ticket_id if ticket_id not in (None, "") else None
    if scope != AutonomyScope.INCIDENT and incident:
        raise invalid(f"Field 'incident_type' is not allowed for {scope} scope.", "incident_type")
    if scope != AutonomyScope.TICKET and ticket_ref is not None:
        raise invalid(f"Field 'ticket_id' is not allowed for {scope} scope.", "ticket_id")
    if scope == AutonomyScope.INCIDENT and not incident:
        raise invalid("Field 'incident_type' is required for INCIDENT scope.", "incident_type")
    ticket = None
    if scope == AutonomyScope.TICKET:
        if ticket_ref is None:
            raise invalid("Field 'ticket_id' is required for TICKET scope.", "ticket_id")
        try:
            key = uuid.UUID(str(ticket_ref))
        except ValueError:
            raise invalid("Field 'ticket_id' must be a UUID.", "ticket_id") from None
        ticket = Ticket.objects.filter(pk=key).first()
        if ticket is None:
            raise ticket_not_found(ticket_ref)
        access_check(actor, ticket)
    return scope, incident, ticket


def _scope_rows(scope: str, incident: str, ticket: Ticket | None):
    return AutonomyPause.objects.filter(scope_type=scope, incident_type=incident, ticket=ticket)


def _record(
    actor: Actor,
    command_,
    ticket: Ticket | None,
    scope: str,
    incident: str,
    reason: str,
    request: dict | None,
    outcome: dict,
) -> AuditEvent:
    """The call's audit event, and a new cache version so that every process sees the change.

    The version is written twice: inside the transaction (a database cache commits it with the
    pause) and again after the commit (a cache outside the database may have been read between the
    two, and filled with the pauses as they were before), when the cache is filled anew."""
    payload = {
        "scope_type": scope,
        "incident_type": incident or None,
        "ticket_id": str(ticket.id) if ticket else None,
        "reason": reason or None,
        **outcome,
    }
    if request:
        payload["request"] = request
    event = audit_only(actor=actor, command=command_, ticket=ticket, payload=payload)
    autonomy_version_bump()
    transaction.on_commit(autonomy_cache_renew)
    return event


def autonomy_pause(
    *,
    actor: Actor,
    scope_type: str = AutonomyScope.GLOBAL,
    incident_type: str | None = None,
    ticket_id=None,
    reason: str = "",
    request: dict | None = None,
) -> AutonomyChange:
    """Stop agents' closeout actions globally, for one incident type, or for one ticket.

    Pausing a scope that is already paused keeps the existing pause (and still records the call)."""
    scope, incident, ticket = _autonomy_scope(actor, AUTONOMY_PAUSE, scope_type, incident_type, ticket_id)
    reason = text(reason, "reason")
    with transaction.atomic():
        # Locked so that two pauses of one scope at the same moment leave one active row.
        pause = _scope_rows(scope, incident, ticket).filter(rolled_back_at__isnull=True).select_for_update().first()
        previous = pause is not None
        if pause is None:
            pause = AutonomyPause.objects.create(
                scope_type=scope,
                incident_type=incident,
                ticket=ticket,
                reason=reason,
                paused_by=actor.actor_id,
                paused_by_role=role_name(actor),
            )
        event = _record(
            actor,
            AUTONOMY_PAUSE,
            ticket,
            scope,
            incident,
            reason,
            request,
            {"action": "pause", "pause_id": str(pause.id), "previous_is_paused": previous, "current_is_paused": True},
        )
    return AutonomyChange(
        "pause", scope, incident or None, str(ticket.id) if ticket else None, pause, previous, True, event
    )


def autonomy_rollback(
    *,
    actor: Actor,
    scope_type: str = AutonomyScope.GLOBAL,
    incident_type: str | None = None,
    ticket_id=None,
    reason: str = "",
    request: dict | None = None,
) -> AutonomyChange:
    """Lift the pause on a scope. The pause row stays, stamped with who lifted it and when;
    lifting a scope that is not paused changes nothing (and still records the call)."""
    scope, incident, ticket = _autonomy_scope(actor, AUTONOMY_ROLLBACK, scope_type, incident_type, ticket_id)
    reason = text(reason, "reason")
    with transaction.atomic():
        active = list(_scope_rows(scope, incident, ticket).filter(rolled_back_at__isnull=True).select_for_update())
        now = timezone.now()
        for pause in active:
            pause.rolled_back_at = now
            pause.rolled_back_by = actor.actor_id
            pause.rollback_reason = reason
            pause.save(update_fields=["rolled_back_at", "rolled_back_by", "rollback_reason"])
        latest = active[0] if active else _scope_rows(scope, incident, ticket).order_by("-created_at").first()
        event = _record(
            actor,
            AUTONOMY_ROLLBACK,
            ticket,
            scope,
            incident,
            reason,
            request,
            {
                "action": "rollback",
                "pause_ids": [str(pause.id) for pause in active],
                "previous_is_paused": bool(active),
                "current_is_paused": False,
            },
        )
    return AutonomyChange(
        "rollback", scope, incident or None, str(ticket.id) if ticket else None, latest, bool(active), False, event
    )
