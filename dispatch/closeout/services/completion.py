"""Completion and QA: the technician saves checklist answers on the way and marks the work done
behind the evidence gate (or an agent proposes it), a dispatcher may complete without the gate,
and QA verifies or fails what was completed."""

from __future__ import annotations

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.tickets.commands import Command, command
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from ..gate import closeout_requirements, template_for
from ..models import ChecklistResult, QaReview
from ..packets import iso
from ..selectors import completion_latest
from .autonomy import autonomy_guard
from .inputs import invalid, moment, role_name, string_list, text

TECH_COMPLETE = command(
    "tech.complete",
    ["dispatcher", "technician"],
    [TicketState.IN_PROGRESS],
    TicketState.COMPLETED_PENDING_VERIFICATION,
    "Complete work",
)
CLOSEOUT_CANDIDATE = command(
    "closeout.candidate",
    ["dispatcher", "agent", "technician"],
    [TicketState.IN_PROGRESS],
    TicketState.COMPLETED_PENDING_VERIFICATION,
    "Propose closeout",
)
# Beyond the contract: the technician's answers kept while the work goes on (no state change).
CHECKLIST_SAVE = command(
    "closeout.save_checklist",
    ["technician", "dispatcher"],
    [TicketState.ON_SITE, TicketState.IN_PROGRESS, TicketState.ON_HOLD],
    None,
    "Save checklist answers",
)
QA_VERIFY = command(
    "qa.verify", ["qa", "dispatcher"], [TicketState.COMPLETED_PENDING_VERIFICATION], TicketState.VERIFIED, "QA verify"
)
DISPATCH_MANUAL_BYPASS = command(
    "dispatch.manual_bypass",
    ["dispatcher"],
    [TicketState.IN_PROGRESS, TicketState.COMPLETED_PENDING_VERIFICATION],
    TicketState.COMPLETED_PENDING_VERIFICATION,
    "Complete without the evidence gate",
)


def _risk_block(gate) -> DispatchError:
    return DispatchError(
        "MANUAL_REVIEW_REQUIRED",
        f"{gate.incident_type} is a high-risk incident type: a person completes it (tech.complete).",
        status=409,
        dimension="policy",
        details={
            "requirement_code": "AUTOMATION_RISK_BLOCK",
            "incident_type": gate.incident_type,
            "template_version": gate.template_version,
            "missing_evidence_keys": [],
            "missing_checklist_keys": [],
            "invalid_evidence_refs": [],
            "risk_profile": {
                "level": "high",
                "reasons": [f"high-risk incident type: {gate.incident_type}"],
                "evidence_keys": gate.evidence_keys,
                "evidence_items": gate.evidence_count,
                "incident_type": gate.incident_type,
            },
        },
    )


def _complete(
    *,
    actor: Actor,
    ticket_id,
    command_: Command,
    checklist_status,
    no_signature_reason,
    evidence_refs,
    request: dict | None,
    expected_version: int | None,
    risk_block: bool,
    saved_answers: bool = False,
) -> Outcome:
    """`saved_answers`: a caller that sends no checklist_status completes on the answers saved
    with closeout.save_checklist (and their no-signature reason unless it gives one)."""
    from_saved = saved_answers and checklist_status is None
    if not from_saved and not isinstance(checklist_status, dict):
        raise invalid("Field 'checklist_status' must be a JSON object.", "checklist_status")
    reason = text(no_signature_reason, "no_signature_reason")
    refs = string_list(evidence_refs, "evidence_refs")
    with ticket_change(
        actor=actor,
        command=command_,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"checklist_status": checklist_status, "no_signature_reason": reason or None, "evidence_refs": refs},
    ) as change:
        autonomy_guard(change)
        if from_saved:
            # Read under the ticket's lock: answers saved a moment ago are the ones completed on.
            saved = completion_latest(change.ticket.id)
            checklist_status = dict(saved.checklist_status) if saved else {}
            reason = reason or (saved.no_signature_reason if saved else "")
            change.audit_payload.update(
                {
                    "checklist_status": checklist_status,
                    "no_signature_reason": reason or None,
                    "checklist_source": {"saved_checklist_result_id": str(saved.id) if saved else None},
                }
            )
        gate = closeout_requirements(
            ticket=change.ticket, checklist_status=checklist_status, no_signature_reason=reason, evidence_refs=refs
        )
        refusal = gate.error()
        if refusal is not None:
            raise refusal
        if risk_block and gate.high_risk:
            raise _risk_block(gate)
        change.transition(TicketState.COMPLETED_PENDING_VERIFICATION)
        submission = ChecklistResult.objects.create(
            ticket=change.ticket,
            tool=command_.tool,
            checklist_status=checklist_status,
            no_signature_reason=reason,
            evidence_refs=refs,
            gate=gate.as_dict(),
            submitted_by=actor.actor_id,
            submitted_by_role=role_name(actor),
        )
        change.audit_payload.update(
            {
                "closeout_check": gate.as_dict(),
                "checklist_result_id": str(submission.id),
                "persisted_evidence_count": gate.evidence_count,
            }
        )
        change.result = submission
    return change.outcome


def tech_complete(
    *,
    actor: Actor,
    ticket_id,
    checklist_status: dict | None = None,
    no_signature_reason: str | None = None,
    evidence_refs: list[str] | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Mark the work done (IN_PROGRESS -> COMPLETED_PENDING_VERIFICATION) once the gate is satisfied.

    The answers are the checklist_status sent (the contract's callers always send one); without
    it, the answers saved with checklist_save."""
    return _complete(
        actor=actor,
        ticket_id=ticket_id,
        command_=TECH_COMPLETE,
        checklist_status=checklist_status,
        no_signature_reason=no_signature_reason,
        evidence_refs=evidence_refs,
        request=request,
        expected_version=expected_version,
        risk_block=False,
        saved_answers=True,
    )


def _checklist_answers(checklist_status) -> dict[str, bool]:
    if not isinstance(checklist_status, dict):
        raise invalid("Field 'checklist_status' must be a JSON object.", "checklist_status")
    for key, value in checklist_status.items():
        if not isinstance(value, bool):
            raise invalid(
                f"Checklist answer '{str(key)[:120]}' must be true or false.", f"checklist_status.{str(key)[:120]}"
            )
    return dict(checklist_status)


def checklist_save(
    *,
    actor: Actor,
    ticket_id,
    checklist_status: dict,
    no_signature_reason: str | None = None,
    expected_version: int | None = None,
    request: dict | None = None,
) -> Outcome:
    """Keep checklist answers given before completion (no state change), merged over the answers
    saved before; tech.complete without a checklist completes on them. `no_signature_reason`:
    None keeps the saved reason, "" clears it. The result is the ChecklistResult row written."""
    answers = _checklist_answers(checklist_status)
    given_reason = None if no_signature_reason is None else text(no_signature_reason, "no_signature_reason")

    with ticket_change(
        actor=actor,
        command=CHECKLIST_SAVE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"checklist_status": answers},
    ) as change:
        ticket = change.ticket
        template = template_for(ticket.incident_type)
        known = list(template.required_checklist_keys) if template else []
        unknown = sorted(key for key in answers if key not in known)
        if unknown:
            raise invalid(
                f"Not a checklist item of this job: {', '.join(unknown)}.",
                f"checklist_status.{unknown[0]}",
                unknown_checklist_keys=unknown,
                checklist_keys=known,
            )
        previous = completion_latest(ticket.id)
        merged = {**(previous.checklist_status if previous else {}), **answers}
        reason = given_reason if given_reason is not None else (previous.no_signature_reason if previous else "")
        gate = closeout_requirements(ticket=ticket, checklist_status=merged, no_signature_reason=reason)
        saved = ChecklistResult.objects.create(
            ticket=ticket,
            tool=CHECKLIST_SAVE.tool,
            checklist_status=merged,
            no_signature_reason=reason,
            gate=gate.as_dict(),
            submitted_by=actor.actor_id,
            submitted_by_role=role_name(actor),
        )
        change.audit_payload.update(
            {
                "no_signature_reason": reason or None,
                "saved_checklist_status": merged,
                "checklist_result_id": str(saved.id),
            }
        )
        change.result = saved
    return change.outcome


def closeout_candidate(
    *,
    actor: Actor,
    ticket_id,
    checklist_status: dict,
    no_signature_reason: str | None = None,
    evidence_refs: list[str] | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Propose the job for closeout: the gate, and no high-risk incident type (those need a person)."""
    return _complete(
        actor=actor,
        ticket_id=ticket_id,
        command_=CLOSEOUT_CANDIDATE,
        checklist_status=checklist_status,
        no_signature_reason=no_signature_reason,
        evidence_refs=evidence_refs,
        request=request,
        expected_version=expected_version,
        risk_block=True,
    )


def _bypass_used(ticket) -> ChecklistResult | None:
    """The job's completion without the evidence gate, if it had one."""
    return (
        ChecklistResult.objects.filter(ticket_id=ticket.id, tool=DISPATCH_MANUAL_BYPASS.tool)
        .order_by("-created_at", "-id")
        .first()
    )


def manual_bypass_refusal(ticket) -> DispatchError | None:
    """409 MANUAL_BYPASS_ALREADY_USED once the job was completed without the evidence gate: the
    bypass is an exception taken once per job, not a way to wave it through again and again
    (QA verifies it, or the work is reopened and completed through the gate)."""
    used = _bypass_used(ticket)
    if used is None:
        return None
    return DispatchError(
        "MANUAL_BYPASS_ALREADY_USED",
        "This job was already completed without the evidence gate; the bypass is offered once per job.",
        status=409,
        dimension="policy",
        details={
            "checklist_result_id": str(used.id),
            "bypassed_by": used.submitted_by,
            "bypassed_at": iso(used.created_at),
        },
    )


def qa_verify_refusal(actor: Actor, ticket, *, step: str = "QA-verify it") -> DispatchError | None:
    """403 SEPARATION_OF_DUTIES when the job's current completion bypassed the evidence gate and
    this actor is the one who bypassed it: whoever waived the check may not also be its check,
    neither by verifying the work nor by closing it without QA (`step` names which)."""
    submission = completion_latest(ticket.id)
    if submission is None or not submission.is_bypass or submission.submitted_by != actor.actor_id:
        return None
    return DispatchError(
        "SEPARATION_OF_DUTIES",
        f"You completed this job without the evidence gate, so someone else must {step}.",
        status=403,
        dimension="policy",
        details={"checklist_result_id": str(submission.id), "bypassed_by": submission.submitted_by},
    )


def dispatch_manual_bypass(
    *,
    actor: Actor,
    ticket_id,
    bypass_rationale: str,
    target_tool: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """A dispatcher completes the job without the evidence gate (IN_PROGRESS -> COMPLETED_PENDING_
    VERIFICATION), or waves an already completed job through QA's re-check; what the gate would
    have refused is recorded with the rationale."""
    rationale = text(bypass_rationale, "bypass_rationale", required=True)
    target = text(target_tool, "target_tool", max_length=100)

    with ticket_change(
        actor=actor,
        command=DISPATCH_MANUAL_BYPASS,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        # The rationale is recorded as the event's reason, where every reason in the trail is.
        audit={"reason": rationale, "target_tool": target or None},
    ) as change:
        ticket = change.ticket
        # Under the ticket's lock: two clicks racing are decided one after the other.
        refusal = manual_bypass_refusal(ticket)
        if refusal is not None:
            raise refusal
        latest = completion_latest(ticket.id)
        status = latest.checklist_status if latest else {}
        reason = latest.no_signature_reason if latest else ""
        refs = latest.evidence_refs if latest else []
        gate = closeout_requirements(
            ticket=ticket, checklist_status=status, no_signature_reason=reason, evidence_refs=refs
        )
        if ticket.state == TicketState.IN_PROGRESS:
            change.transition(TicketState.COMPLETED_PENDING_VERIFICATION)
        bypassed = {**gate.as_dict(), "target_tool": target or None}
        submission = ChecklistResult.objects.create(
            ticket=ticket,
            tool=DISPATCH_MANUAL_BYPASS.tool,
            checklist_status=status,
            no_signature_reason=reason,
            evidence_refs=refs,
            gate=bypassed,
            bypass_rationale=rationale,
            submitted_by=actor.actor_id,
            submitted_by_role=role_name(actor),
        )
        change.audit_payload.update({"bypassed_check": bypassed, "checklist_result_id": str(submission.id)})
        change.result = submission
    return change.outcome


class QaVerificationFailed(DispatchError):
    """QA said FAIL. The QaReview row and its audit event are already written by the time this
    is raised, and the ticket stays in COMPLETED_PENDING_VERIFICATION; the request is still
    answered 409. A caller that runs qa_verify inside its own transaction must let that
    transaction commit when it catches this error, or the FAIL record is lost with it."""

    def __init__(self, outcome: Outcome, notes: str) -> None:
        review: QaReview = outcome.result
        super().__init__(
            "QA_VERIFICATION_FAILED",
            "QA verification failed: the work goes back for correction.",
            status=409,
            dimension="policy",
            details={"ticket_id": str(outcome.ticket.id), "notes": notes or None, "qa_review_id": str(review.id)},
        )
        self.outcome = outcome


def _no_completion(ticket) -> DispatchError:
    return DispatchError(
        "CLOSEOUT_REQUIREMENTS_INCOMPLETE",
        "There is no completion to verify.",
        status=409,
        dimension="evidence",
        details={
            "requirement_code": "MISSING_COMPLETION_CONTEXT",
            "incident_type": ticket.incident_type or None,
            "template_version": None,
            "missing_evidence_keys": [],
            "missing_checklist_keys": [],
            "invalid_evidence_refs": [],
        },
    )


def qa_verify(
    *,
    actor: Actor,
    ticket_id,
    timestamp,
    result: str,
    notes: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record QA's verdict: PASS re-checks the completion and moves to VERIFIED; FAIL is recorded
    (the ticket does not move) and then refused with 409 QA_VERIFICATION_FAILED."""
    reviewed_at = moment(timestamp, "timestamp", required=True)
    verdict = text(result, "result", required=True).upper()
    if verdict not in QaReview.Result.values:
        raise invalid("Field 'result' must be PASS or FAIL.", "result")
    notes = text(notes, "notes")

    audit = {
        "timestamp": timestamp if isinstance(timestamp, str) else iso(reviewed_at),
        "result": result,
        "notes": notes or None,
    }
    with ticket_change(
        actor=actor,
        command=QA_VERIFY,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        ticket = change.ticket
        refusal = qa_verify_refusal(actor, ticket)
        if refusal is not None:
            raise refusal
        review = QaReview.objects.create(
            ticket=ticket,
            result=verdict,
            notes=notes,
            reviewed_at=reviewed_at,
            reviewer=actor.actor_id,
            reviewer_role=role_name(actor),
        )
        change.result = review
        change.audit_payload.update(
            {
                "verification_result": verdict,
                "verified_at": iso(reviewed_at),
                "notes": notes or None,
                "qa_review_id": str(review.id),
            }
        )
        if verdict == QaReview.Result.PASS:
            submission = completion_latest(ticket.id)
            if submission is None:
                raise _no_completion(ticket)
            if not submission.is_bypass:
                # Re-run the gate on what was submitted: an exception may have expired since.
                gate = closeout_requirements(
                    ticket=ticket,
                    checklist_status=submission.checklist_status,
                    no_signature_reason=submission.no_signature_reason,
                    evidence_refs=submission.evidence_refs,
                )
                refusal = gate.error()
                if refusal is not None:
                    raise refusal
                change.audit_payload["verification_closeout_check"] = gate.as_dict()
            change.transition(TicketState.VERIFIED)
    # The FAIL is committed (the review and its event stay) before it is answered as a refusal.
    if verdict == QaReview.Result.FAIL:
        raise QaVerificationFailed(change.outcome, notes)
    return change.outcome
