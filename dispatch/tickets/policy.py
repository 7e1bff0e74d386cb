"""Who may run which command on which ticket, and if not, why: written once.

The executor raises the refusal this module finds; the cockpit, the job packet and the admin
buttons show the same refusal before anyone clicks. Checks run in the order a caller would
want to hear about them: the role (decided by the tool alone), the credential's scope, the
technician's own assignment, the version the caller loaded, then the ticket's state.
Requirements that belong to one phase (the evidence gate, the blind-intake confidence gate)
stay in that phase's services, which raise them as DispatchErrors like these.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role

from . import catalog
from .commands import Command
from .transitions import allowed_next_states


def _role_value(role: Any) -> str:
    return getattr(role, "value", str(role))


def role_refusal(command: Command, role: Any) -> DispatchError | None:
    """Refused when the role alone may not use the tool (403 TOOL_ROLE_FORBIDDEN)."""
    if command.allows_role(role):
        return None
    return DispatchError(
        "TOOL_ROLE_FORBIDDEN",
        f"Role {_role_value(role)} may not use {command.tool}.",
        status=403,
        dimension="role",
        details={"actor_role": _role_value(role), "allowed_roles": sorted(r.value for r in command.roles)},
    )


def scope_refusal(actor: Actor, *, account_id: Any, site_id: Any) -> DispatchError | None:
    """Refused when the credential is scoped away from this account and site, or is a customer's
    credential without any scope (a customer sees only their own account's tickets)."""
    if actor.role == Role.CUSTOMER and not actor.is_scoped:
        return DispatchError(
            "FORBIDDEN_SCOPE",
            "A customer credential must be scoped to the customer's account or site.",
            status=403,
            dimension="scope",
        )
    if not actor.in_scope(account_id=account_id, site_id=site_id):
        return DispatchError(
            "FORBIDDEN_SCOPE",
            "This credential is not scoped to the ticket's account or site.",
            status=403,
            dimension="scope",
        )
    return None


def assignment_refusal(actor: Actor, ticket: Any) -> DispatchError | None:
    """Technicians act only on tickets assigned to them, or whose crew they are booked on."""
    if actor.role == Role.TECHNICIAN and (
        actor.technician_id is None
        or (
            ticket.assigned_tech_id != actor.technician_id
            and not catalog.technician_on_crew(ticket.pk, actor.technician_id)
        )
    ):
        return DispatchError(
            "FORBIDDEN_SCOPE", "Technicians act only on tickets assigned to them.", status=403, dimension="assignment"
        )
    return None


def access_refusal(actor: Actor, ticket: Any) -> DispatchError | None:
    """Whether this actor may see or touch this ticket at all (scope, then own assignment)."""
    return scope_refusal(actor, account_id=ticket.account_id, site_id=ticket.site_id) or assignment_refusal(
        actor, ticket
    )


def version_refusal(ticket: Any, expected_version: int | None) -> DispatchError | None:
    """Refused when the caller acted on a version of the ticket that is no longer current."""
    if expected_version is None or ticket.version == expected_version:
        return None
    return DispatchError(
        "CONCURRENT_MODIFICATION",
        f"The ticket changed since you loaded it (version {expected_version}, now {ticket.version}). Reload and try again.",
        status=409,
        dimension="state",
        details={"expected_version": expected_version, "current_version": ticket.version},
    )


def invalid_transition(
    ticket_state: str, target: str | None, *, tool: str, command: Command | None = None
) -> DispatchError:
    """409 INVALID_STATE_TRANSITION, with where the ticket may go from here."""
    wanted = f" to {target}" if target else ""
    details: dict[str, Any] = {
        "from_state": ticket_state,
        "to_state": target,
        "allowed_next_states": allowed_next_states(ticket_state),
    }
    if command is not None and command.from_states is not None:
        details["allowed_from_states"] = sorted(str(s) for s in command.from_states)
    return DispatchError(
        "INVALID_STATE_TRANSITION",
        f"{tool} cannot move a ticket{wanted} from {ticket_state}.",
        status=409,
        dimension="state",
        details=details,
    )


def state_refusal(command: Command, ticket: Any) -> DispatchError | None:
    """Refused when the command may not start from the ticket's current state."""
    if command.allows_state(ticket.state):
        return None
    return invalid_transition(
        str(ticket.state),
        None if command.resulting_state is None else str(command.resulting_state),
        tool=command.tool,
        command=command,
    )


def command_refusal(
    command: Command, actor: Actor, ticket: Any, *, expected_version: int | None = None
) -> DispatchError | None:
    """Why the executor would refuse this command for this actor and ticket now, or None."""
    return (
        role_refusal(command, actor.role)
        or access_refusal(actor, ticket)
        or version_refusal(ticket, expected_version)
        or state_refusal(command, ticket)
    )


def command_allowed(command: Command, actor: Actor, ticket: Any) -> bool:
    return command_refusal(command, actor, ticket) is None


def refusal_as_dict(error: DispatchError) -> dict:
    """A refusal as action descriptors and packets show it: the code the tool itself answers."""
    return {"code": error.code, "message": error.message, "dimension": error.dimension, **(error.details or {})}


def access_check(actor: Actor, ticket: Any) -> None:
    """Raise the refusal for an actor who may not see or touch this ticket (see access_refusal)."""
    refusal = access_refusal(actor, ticket)
    if refusal:
        raise refusal


def access_filter(actor: Actor) -> Q:
    """access_refusal's rule for a whole queryset of tickets: the ones this actor may see."""
    if actor.role == Role.CUSTOMER and not actor.is_scoped:
        return Q(pk__in=[])
    visible = Q()
    if actor.is_scoped:
        scope = Q(pk__in=[])
        if actor.account_ids:
            scope |= Q(account_id__in=list(actor.account_ids))
        if actor.site_ids:
            scope |= Q(site_id__in=list(actor.site_ids))
        visible &= scope
    if actor.role == Role.TECHNICIAN:
        visible &= (
            Q(assigned_tech_id=actor.technician_id) | Q(pk__in=catalog.crew_ticket_ids(actor.technician_id))
            if actor.technician_id
            else Q(pk__in=[])
        )
    return visible
