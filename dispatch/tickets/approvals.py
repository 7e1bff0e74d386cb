"""Approvals: a technician asks for more money or a different scope; an approver decides.

The request parks the ticket in APPROVAL_REQUIRED with an Approval that remembers where the
job goes back to; the decision returns it there (APPROVED) or to TRIAGED (DENIED).
"""

from __future__ import annotations

import uuid

from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.common.money import cents_value

from .commands import command
from .models import Approval
from .services import Outcome, ticket_change
from .states import TicketState

TECH_REQUEST_CHANGE = command(
    "tech.request_change", ["technician"], [TicketState.IN_PROGRESS], TicketState.APPROVAL_REQUIRED, "Ask for approval"
)
APPROVAL_DECIDE = command(
    "approval.decide", ["approver", "dispatcher"], [TicketState.APPROVAL_REQUIRED], None, "Decide approval"
)

# Where an approved request may send the ticket back to.
APPROVAL_RETURN_STATES = frozenset({TicketState.READY_TO_SCHEDULE, TicketState.IN_PROGRESS})
DECISIONS = ("APPROVED", "DENIED")


def _bad(message: str, field: str) -> DispatchError:
    return DispatchError("INVALID_REQUEST", message, status=400, dimension="request", details={"field": field})


REASON_MAX_CHARS = 2000


def _required_text(value, field: str, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"Field '{field}' is required.", field)
    if max_length is not None and len(value.strip()) > max_length:
        raise _bad(f"Field '{field}' must be at most {max_length} characters.", field)
    return value.strip()


def change_request(
    *,
    actor: Actor,
    ticket_id,
    approval_type: str,
    reason: str,
    amount_delta_cents: int | float | None = None,
    evidence_refs: list[str] | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Open an approval (NTE increase or proposal) for work in progress; the result is the Approval."""
    kind = _required_text(approval_type, "approval_type").upper()
    if kind not in Approval.Kind.values:
        raise _bad("Field 'approval_type' must be NTE_INCREASE or PROPOSAL.", "approval_type")
    reason = _required_text(reason, "reason", REASON_MAX_CHARS)
    amount = None
    if amount_delta_cents is not None:
        amount = cents_value(amount_delta_cents, "amount_delta_cents")
    refs = evidence_refs or []
    if not isinstance(refs, list) or not all(isinstance(r, str) and r.strip() for r in refs):
        raise _bad("Field 'evidence_refs' must be a list of non-empty strings.", "evidence_refs")
    refs = [r.strip() for r in refs]
    audit = {"approval_type": kind, "reason": reason, "amount_delta_cents": amount, "evidence_refs": refs}
    with ticket_change(
        actor=actor,
        command=TECH_REQUEST_CHANGE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        if Approval.objects.filter(ticket=change.ticket, status=Approval.Status.PENDING).exists():
            raise DispatchError(
                "APPROVAL_ALREADY_PENDING",
                "This ticket already has an approval waiting.",
                status=409,
                dimension="state",
            )
        change.transition(TicketState.APPROVAL_REQUIRED)
        approval = Approval.objects.create(
            ticket=change.ticket,
            kind=kind,
            return_state=TicketState.IN_PROGRESS,
            amount_cents=amount,
            reason=reason,
            details={"source": TECH_REQUEST_CHANGE.tool, "evidence_refs": refs},
            requested_by=actor.actor_id,
        )
        change.audit_payload.update({"approval_id": str(approval.id), "approval_status": approval.status})
        change.result = approval
    return change.outcome


def approval_decide(
    *,
    actor: Actor,
    ticket_id,
    approval_id,
    decision: str,
    notes: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Grant (back to the approval's return state; an NTE increase raises the ticket's NTE) or deny
    (back to TRIAGED) the ticket's pending approval; the result is the Approval."""
    try:
        approval_key = uuid.UUID(str(approval_id))
    except ValueError:
        raise _bad("Field 'approval_id' must be a UUID.", "approval_id") from None
    verdict = _required_text(decision, "decision").upper()
    if verdict not in DECISIONS:
        raise _bad("Field 'decision' must be APPROVED or DENIED.", "decision")
    if notes is not None and not isinstance(notes, str):
        raise _bad("Field 'notes' must be a string.", "notes")
    notes = (notes or "").strip()
    audit = {"approval_id": str(approval_key), "decision": verdict, "notes": notes or None}
    with ticket_change(
        actor=actor,
        command=APPROVAL_DECIDE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        ticket = change.ticket
        approval = Approval.objects.select_for_update().filter(pk=approval_key, ticket=ticket).first()
        if approval is None:
            raise DispatchError(
                "APPROVAL_NOT_FOUND", "This ticket has no such approval.", status=404, dimension="request"
            )
        if approval.status != Approval.Status.PENDING:
            raise DispatchError(
                "APPROVAL_NOT_PENDING",
                f"The approval was already decided ({approval.status}).",
                status=409,
                dimension="state",
                details={"approval_status": approval.status},
            )
        if verdict == "APPROVED":
            target = approval.return_state
            if target not in APPROVAL_RETURN_STATES:
                raise DispatchError(
                    "INVALID_APPROVAL_TARGET_STATE",
                    f"The approval would return the ticket to {target}, which an approval cannot do.",
                    status=409,
                    dimension="state",
                    details={"return_state": target},
                )
            if approval.kind == Approval.Kind.NTE_INCREASE and approval.amount_cents:
                ticket.nte_cents = (ticket.nte_cents or 0) + approval.amount_cents
            approval.status = Approval.Status.APPROVED
        else:
            target = TicketState.TRIAGED
            approval.status = Approval.Status.DENIED
        approval.decided_by = actor.actor_id
        approval.decided_at = timezone.now()
        approval.decision_notes = notes
        approval.save(update_fields=["status", "decided_by", "decided_at", "decision_notes"])
        change.transition(target)
        change.audit_payload.update(
            {
                "approval_id": str(approval.id),
                "decision": verdict,
                "target_state": target,
                "nte_cents": ticket.nte_cents,
            }
        )
        change.result = approval
    return change.outcome
