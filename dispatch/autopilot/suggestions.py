"""A dispatcher's answer to what the autopilot suggested where its level only lets it suggest.

Applying runs the same service the dispatcher would have run by hand, as the dispatcher, with the
autopilot's reason as the rationale: schedule.propose with the suggested windows;
assignment.dispatch of the suggested technician as a confirmed emergency bypass; or, for a
dispatch nobody acknowledged, dispatch.force_unassign then assignment.dispatch of the next one. It applies only
to the ticket as it was when suggested (its version): if anything changed since, the suggestion
is marked STALE and refused (409 SUGGESTION_STALE), and the autopilot suggests afresh at its next
pass. Dismissing closes the suggestion and leaves the ticket as it is; both are on the ticket's
audit trail.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.scheduling.assignment import assignment_dispatch, dispatch_force_unassign
from dispatch.scheduling.proposals import schedule_propose
from dispatch.tickets import policy
from dispatch.tickets.commands import command
from dispatch.tickets.models import Ticket
from dispatch.tickets.services import Outcome, audit_only

from .models import Suggestion

# Who may answer a suggestion: the dispatch desk (an admin acts as a dispatcher there).
SUGGESTION_APPLY = command("autopilot.suggestion_apply", ["dispatcher"], None, None, "Apply the autopilot's suggestion")
SUGGESTION_DISMISS = command(
    "autopilot.suggestion_dismiss", ["dispatcher"], None, None, "Dismiss the autopilot's suggestion"
)

PROPOSE, DISPATCH, REASSIGN = "schedule.propose", "assignment.dispatch", "assignment.reassign"
# The service's refusals that mean "the ticket is no longer as it was when suggested".
_STALE_CODES = frozenset({"VERSION_CONFLICT", "CONCURRENT_MODIFICATION", "INVALID_STATE_TRANSITION"})


def _not_found(suggestion_id: Any) -> DispatchError:
    return DispatchError("SUGGESTION_NOT_FOUND", f"No suggestion {suggestion_id}.", status=404, dimension="request")


def _decided(suggestion: Suggestion) -> DispatchError:
    return DispatchError(
        "SUGGESTION_DECIDED",
        f"This suggestion was already answered ({suggestion.get_status_display().lower()}).",
        status=409,
        dimension="state",
        details={"status": suggestion.status, "decided_by": suggestion.decided_by},
    )


def _stale(suggestion: Suggestion, current_version: int | None) -> DispatchError:
    return DispatchError(
        "SUGGESTION_STALE",
        "The ticket changed since the autopilot suggested this; it no longer applies. "
        "The autopilot looks at the ticket again at its next pass.",
        status=409,
        dimension="state",
        details={"suggested_on_version": suggestion.ticket_version, "current_version": current_version},
    )


def _open_suggestion(actor: Actor, suggestion_id: Any, cmd) -> Suggestion:
    """The suggestion, checked for the role (before anything is read) and the credential's scope."""
    refusal = policy.role_refusal(cmd, actor.role)
    if refusal:
        raise refusal
    try:
        key = suggestion_id if isinstance(suggestion_id, uuid.UUID) else uuid.UUID(str(suggestion_id))
    except (ValueError, TypeError, AttributeError):
        raise _not_found(suggestion_id) from None
    suggestion = Suggestion.objects.select_related("ticket").filter(pk=key).first()
    if suggestion is None:
        raise _not_found(suggestion_id)
    refusal = policy.access_refusal(actor, suggestion.ticket)
    if refusal:
        raise refusal
    return suggestion


def _windows_passed(suggestion: Suggestion) -> bool:
    """Windows suggested this morning that have begun by now are no offer to make a customer."""
    if suggestion.action != PROPOSE:
        return False
    starts = [parse_datetime(str(option.get("start", ""))) for option in (suggestion.payload or {}).get("options", [])]
    return any(start is None or start <= timezone.now() for start in starts)


def _decide(suggestion: Suggestion, status: str, actor: Actor) -> None:
    suggestion.status = status
    suggestion.decided_at = timezone.now()
    suggestion.decided_by = actor.actor_id
    suggestion.save(update_fields=["status", "decided_at", "decided_by"])


def _mark_stale(suggestion_id: uuid.UUID, actor: Actor) -> None:
    """Outside the refused change's transaction, so the mark stays."""
    Suggestion.objects.filter(pk=suggestion_id, status=Suggestion.Status.OPEN).update(
        status=Suggestion.Status.STALE, decided_at=timezone.now(), decided_by=actor.actor_id
    )


def _run(actor: Actor, suggestion: Suggestion) -> Outcome:
    request = {
        "suggestion_id": str(suggestion.pk),
        "suggested_by": "autopilot",
        "reason": suggestion.reason,
    }
    payload = suggestion.payload or {}
    if suggestion.action == PROPOSE:
        return schedule_propose(
            actor=actor,
            ticket_id=suggestion.ticket_id,
            options=payload.get("options"),
            expected_version=suggestion.ticket_version,
            request=request,
        )
    if suggestion.action == DISPATCH:
        return assignment_dispatch(
            actor=actor,
            ticket_id=suggestion.ticket_id,
            tech_id=payload.get("tech_id"),
            dispatch_mode="EMERGENCY_BYPASS",
            dispatch_rationale=suggestion.reason,
            dispatch_confirmation=True,
            expected_version=suggestion.ticket_version,
            request=request,
        )
    if suggestion.action == REASSIGN:
        # Taken off the technician who never acknowledged, then sent to the suggested one: two
        # services, two events, one transaction (the caller's).
        dispatch_force_unassign(
            actor=actor,
            ticket_id=suggestion.ticket_id,
            reason=suggestion.reason,
            reassign_type="autopilot_suggestion",
            expected_version=suggestion.ticket_version,
            request=request,
        )
        return assignment_dispatch(
            actor=actor,
            ticket_id=suggestion.ticket_id,
            tech_id=payload.get("tech_id"),
            dispatch_rationale=suggestion.reason,
            expected_version=suggestion.ticket_version + 1,
            request=request,
        )
    raise DispatchError(
        "SUGGESTION_UNKNOWN_ACTION",
        f"The autopilot suggested {suggestion.action!r}, which cannot be applied from here.",
        status=422,
        dimension="request",
    )


def suggestion_apply(*, actor: Actor, suggestion_id: Any) -> Outcome:
    """Do what the autopilot suggested, as `actor`, through the same service; mark it APPLIED."""
    suggestion = _open_suggestion(actor, suggestion_id, SUGGESTION_APPLY)
    if suggestion.status != Suggestion.Status.OPEN:
        raise _decided(suggestion)
    current = Ticket.objects.filter(pk=suggestion.ticket_id).values_list("version", flat=True).first()
    if current != suggestion.ticket_version or _windows_passed(suggestion):
        _mark_stale(suggestion.pk, actor)
        raise _stale(suggestion, current)
    try:
        with transaction.atomic():
            # Locked with the change: two dispatchers clicking at once apply it once.
            locked = Suggestion.objects.select_for_update().get(pk=suggestion.pk)
            if locked.status != Suggestion.Status.OPEN:
                raise _decided(locked)
            outcome = _run(actor, locked)
            _decide(locked, Suggestion.Status.APPLIED, actor)
    except DispatchError as error:
        if error.code in _STALE_CODES:
            _mark_stale(suggestion.pk, actor)
            current = Ticket.objects.filter(pk=suggestion.ticket_id).values_list("version", flat=True).first()
            raise _stale(suggestion, current) from error
        raise
    return outcome


def suggestion_dismiss(*, actor: Actor, suggestion_id: Any, note: str = "") -> Suggestion:
    """Close the suggestion without acting on it; the ticket's trail says who dismissed what."""
    suggestion = _open_suggestion(actor, suggestion_id, SUGGESTION_DISMISS)
    with transaction.atomic():
        locked = Suggestion.objects.select_for_update().select_related("ticket").get(pk=suggestion.pk)
        if locked.status != Suggestion.Status.OPEN:
            raise _decided(locked)
        _decide(locked, Suggestion.Status.DISMISSED, actor)
        audit_only(
            actor=actor,
            command=SUGGESTION_DISMISS,
            ticket=locked.ticket,
            payload={
                "suggestion_id": str(locked.pk),
                "suggested_action": locked.action,
                "suggested_reason": locked.reason,
                **({"note": note.strip()} if note and note.strip() else {}),
            },
        )
    return locked
