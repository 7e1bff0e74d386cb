"""Closeout actions: evidence, completion behind the evidence gate, QA, invoice, close and the
overrides around them (evidence exceptions, manual bypass, force close), and the autonomy pauses.

Every action on a ticket runs through `ticket_execute` with its Command (the contract's tool
name, roles and from-states); autonomy pauses change no ticket and are recorded with `audit_only`.
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor, ActorType, service_actor
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_normalize
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.policy import access_check
from dispatch.tickets.services import (
    Outcome,
    TicketChange,
    audit_only,
    role_forbidden,
    ticket_execute,
    ticket_not_found,
)
from dispatch.tickets.states import TicketState

from . import evidence_files
from .billing import invoice_compute
from .gate import SIGNATURE_KEY, closeout_requirements, template_for
from .models import (
    AutonomyPause,
    AutonomyScope,
    ChecklistResult,
    CloseoutPacket,
    Evidence,
    EvidenceException,
    EvidenceKind,
    InvoiceDraft,
    InvoiceLine,
    LaborEntry,
    PartUsage,
    PriceBookItem,
    QaReview,
)
from .packets import iso, packet_compile, packet_hash
from .selectors import autonomy_pause_effective, autonomy_pause_serialize

S = TicketState
log = logging.getLogger(__name__)
CPV = S.COMPLETED_PENDING_VERIFICATION

EVIDENCE_ADD = command("closeout.add_evidence", ["dispatcher", "agent", "technician"], None, None, "Add evidence")
TECH_COMPLETE = command("tech.complete", ["dispatcher", "technician"], [S.IN_PROGRESS], CPV, "Complete work")
CLOSEOUT_CANDIDATE = command(
    "closeout.candidate", ["dispatcher", "agent", "technician"], [S.IN_PROGRESS], CPV, "Propose closeout"
)
QA_VERIFY = command("qa.verify", ["qa", "dispatcher"], [CPV], S.VERIFIED, "QA verify")
BILLING_GENERATE_INVOICE = command(
    "billing.generate_invoice", ["finance"], [S.VERIFIED], S.INVOICED, "Generate invoice draft"
)
TICKET_CLOSE = command("ticket.close", ["dispatcher", "finance", "approver"], [S.VERIFIED, S.INVOICED], S.CLOSED, "Close")
TICKET_FORCE_CLOSE = command("ticket.force_close", ["dispatcher", "approver"], [CPV], S.CLOSED, "Force close")
EVIDENCE_EXCEPTION = command(
    "closeout.evidence_exception",
    ["dispatcher", "qa", "approver"],
    [S.IN_PROGRESS, CPV, S.VERIFIED, S.INVOICED],
    None,
    "Grant evidence exception",
)
DISPATCH_MANUAL_BYPASS = command(
    "dispatch.manual_bypass", ["dispatcher"], [S.IN_PROGRESS, CPV], CPV, "Complete without the evidence gate"
)
AUTONOMY_PAUSE = command("ops.autonomy.pause", ["dispatcher"], None, None, "Pause agent autonomy")
AUTONOMY_ROLLBACK = command("ops.autonomy.rollback", ["dispatcher"], None, None, "Resume agent autonomy")
# Beyond the contract: the technician's labor and parts, which the invoice draft is built from.
LABOR_ADD = command(
    "closeout.add_labor", ["technician", "dispatcher"], [S.ON_SITE, S.IN_PROGRESS, S.ON_HOLD, CPV, S.VERIFIED], None,
    "Log labor",
)
PART_ADD = command(
    "closeout.add_part", ["technician", "dispatcher"], [S.ON_SITE, S.IN_PROGRESS, S.ON_HOLD, CPV, S.VERIFIED], None,
    "Log a part",
)

# Who may stand behind a force close (role names or their aliases).
FORCE_CLOSE_APPROVER_ROLES = frozenset({Role.DISPATCHER, Role.APPROVER, Role.ADMIN})
FORCE_CLOSE_MIN_CODE = 5
FORCE_CLOSE_MIN_REASON = 20
KIND_ALIASES = {
    "IMAGE": EvidenceKind.PHOTO,
    "PICTURE": EvidenceKind.PHOTO,
    "PIC": EvidenceKind.PHOTO,
    "TEXT": EvidenceKind.NOTE,
    "PDF": EvidenceKind.DOCUMENT,
    "DOC": EvidenceKind.DOCUMENT,
    "FILE": EvidenceKind.DOCUMENT,
}


# --- small validators (bad input: 400 before anything is locked or written) --------------------


def _bad(message: str, field: str, **details) -> DispatchError:
    return DispatchError("INVALID_REQUEST", message, status=400, dimension="request", details={"field": field, **details})


def _text(value, field: str, *, required: bool = False, max_length: int = 4000) -> str:
    """A trimmed string; None and "" are "not given" unless required."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _bad(f"Field '{field}' is required.", field)
        return ""
    if not isinstance(value, str):
        raise _bad(f"Field '{field}' must be a string.", field)
    value = value.strip()
    if len(value) > max_length:
        raise _bad(f"Field '{field}' is longer than {max_length} characters.", field)
    return value


def _string_list(value, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(f"Field '{field}' must be a list of non-empty strings.", field)
    return [v.strip() for v in value]


def _moment(value, field: str, *, required: bool) -> datetime | None:
    if value is None or value == "":
        if required:
            raise _bad(f"Field '{field}' is required.", field)
        return None
    parsed = value if isinstance(value, datetime) else (parse_datetime(value) if isinstance(value, str) else None)
    if parsed is None:
        raise _bad(f"Field '{field}' must be an ISO-8601 date-time.", field)
    if timezone.is_naive(parsed):
        raise _bad(f"Field '{field}' must carry a time zone (e.g. 'Z').", field)
    return parsed


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


def _role(actor: Actor) -> str:
    return actor.role.value if hasattr(actor.role, "value") else str(actor.role)


# --- evidence ----------------------------------------------------------------------------------


def evidence_kind_normalize(kind) -> tuple[str, str]:
    """(kind, label): a known kind in any case or with a suffix ("photo_0" is a PHOTO); anything
    else is OTHER, with the caller's word kept as the label."""
    raw = _text(kind, "kind", required=True, max_length=60)
    upper = raw.upper()
    if upper in EvidenceKind.values:
        return upper, ""
    head = re.split(r"[^A-Z]", upper, maxsplit=1)[0]
    if head in EvidenceKind.values:
        return head, raw
    if head in KIND_ALIASES:
        return KIND_ALIASES[head], raw
    return EvidenceKind.OTHER, raw


def evidence_add(
    *,
    actor: Actor,
    ticket_id,
    kind: str,
    uri: str | None = None,
    upload=None,
    evidence_key: str | None = None,
    checksum: str | None = None,
    metadata: dict | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Record one evidence item, given as an object-store URI or as an uploaded file."""
    kind_value, kind_label = evidence_kind_normalize(kind)
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("Field 'metadata' must be a JSON object.", "metadata")
    meta = dict(metadata or {})
    # The key may come top-level or inside metadata (as upstream clients send it); top-level wins.
    key = _text(evidence_key if evidence_key is not None else meta.get("evidence_key"), "evidence_key", max_length=120)
    if key:
        meta["evidence_key"] = key
    if kind_label:
        meta.setdefault("kind_label", kind_label)
    checksum = _text(checksum, "checksum", max_length=200)
    if upload is not None and uri:
        raise _bad("Send either a 'uri' or a file, not both.", "uri")
    prepared = evidence_files.upload_prepare(upload, checksum=checksum) if upload is not None else None
    clean_uri = "" if prepared else evidence_files.evidence_uri_check(uri)

    evidence_id = uuid.uuid4()
    stored: list[str] = []
    if prepared is not None:
        try:
            ticket_key = uuid.UUID(str(ticket_id))
        except ValueError:
            raise ticket_not_found(ticket_id) from None
        # Written before the transaction, so storage I/O (S3 when configured) never runs while
        # the ticket row is locked; removed again below if the change is refused.
        stored_name, stored_uri = evidence_files.upload_store(prepared, ticket_id=ticket_key, evidence_id=evidence_id)
        stored.append(stored_name)

    def apply(change: TicketChange) -> Evidence:
        ticket = change.ticket
        if ticket.state == S.CLOSED:
            raise DispatchError(
                "EVIDENCE_LOCKED", "The ticket is closed: its evidence is final.", status=409, dimension="evidence"
            )
        if ticket.state == S.CANCELLED:
            raise DispatchError(
                "INVALID_STATE_TRANSITION",
                "A cancelled ticket takes no evidence.",
                status=409,
                dimension="state",
                details={"from_state": ticket.state, "to_state": None, "allowed_next_states": []},
            )
        autonomy_guard(change)
        item = Evidence(
            id=evidence_id,
            ticket=ticket,
            kind=kind_value,
            evidence_key=key,
            uri=clean_uri,
            checksum=checksum,
            metadata=meta,
            created_by=actor.actor_id,
            created_by_role=_role(actor),
        )
        if prepared is not None:
            item.file.name = stored_name
            item.uri = stored_uri
            item.content_type = prepared.sniffed.content_type
            item.size = len(prepared.data)
            item.sha256 = prepared.sha256
            item.checksum = checksum or f"sha256:{prepared.sha256}"
            item.metadata = {**meta, **prepared.facts, "original_filename": prepared.original_name}
        item.save(force_insert=True)
        change.audit_payload.update(
            {"evidence_item_id": str(item.id), "evidence_kind": item.kind, "stored_uri": item.uri, "sha256": item.sha256}
        )
        return item

    default_payload = {"kind": kind, "uri": uri, "evidence_key": evidence_key, "checksum": checksum or None, "metadata": metadata}
    if prepared is not None:
        default_payload["upload"] = {"name": prepared.original_name, "size": len(prepared.data)}
    try:
        return ticket_execute(
            actor=actor, ticket_id=ticket_id, command=EVIDENCE_ADD, payload=payload or default_payload, apply=apply
        )
    except BaseException:
        for name in stored:
            evidence_files.upload_discard(name)
        raise


# --- completion behind the gate -----------------------------------------------------------------


def _completion_inputs(checklist_status, no_signature_reason, evidence_refs) -> tuple[dict, str, list[str]]:
    if not isinstance(checklist_status, dict):
        raise _bad("Field 'checklist_status' must be a JSON object.", "checklist_status")
    return (
        checklist_status,
        _text(no_signature_reason, "no_signature_reason"),
        _string_list(evidence_refs, "evidence_refs"),
    )


def _complete(
    *, actor, ticket_id, command_, checklist_status, no_signature_reason, evidence_refs, payload, risk_block: bool
) -> Outcome:
    status, reason, refs = _completion_inputs(checklist_status, no_signature_reason, evidence_refs)

    def apply(change: TicketChange) -> ChecklistResult:
        autonomy_guard(change)
        gate = closeout_requirements(
            ticket=change.ticket, checklist_status=status, no_signature_reason=reason, evidence_refs=refs
        )
        refusal = gate.error()
        if refusal is not None:
            raise refusal
        if risk_block and gate.high_risk:
            raise DispatchError(
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
        change.transition(CPV)
        submission = ChecklistResult.objects.create(
            ticket=change.ticket,
            tool=command_.tool,
            checklist_status=status,
            no_signature_reason=reason,
            evidence_refs=refs,
            gate=gate.as_dict(),
            submitted_by=actor.actor_id,
            submitted_by_role=_role(actor),
        )
        change.audit_payload.update(
            {
                "closeout_check": gate.as_dict(),
                "checklist_result_id": str(submission.id),
                "persisted_evidence_count": gate.evidence_count,
            }
        )
        return submission

    default_payload = {"checklist_status": status, "no_signature_reason": reason or None, "evidence_refs": refs}
    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=command_, payload=payload or default_payload, apply=apply
    )


def tech_complete(
    *,
    actor: Actor,
    ticket_id,
    checklist_status: dict,
    no_signature_reason: str | None = None,
    evidence_refs: list[str] | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Mark the work done (IN_PROGRESS -> COMPLETED_PENDING_VERIFICATION) once the gate is satisfied."""
    return _complete(
        actor=actor,
        ticket_id=ticket_id,
        command_=TECH_COMPLETE,
        checklist_status=checklist_status,
        no_signature_reason=no_signature_reason,
        evidence_refs=evidence_refs,
        payload=payload,
        risk_block=False,
    )


def closeout_candidate(
    *,
    actor: Actor,
    ticket_id,
    checklist_status: dict,
    no_signature_reason: str | None = None,
    evidence_refs: list[str] | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Propose the job for closeout: the gate, and no high-risk incident type (those need a person)."""
    return _complete(
        actor=actor,
        ticket_id=ticket_id,
        command_=CLOSEOUT_CANDIDATE,
        checklist_status=checklist_status,
        no_signature_reason=no_signature_reason,
        evidence_refs=evidence_refs,
        payload=payload,
        risk_block=True,
    )


# --- QA ----------------------------------------------------------------------------------------


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


def qa_verify(
    *, actor: Actor, ticket_id, timestamp, result: str, notes: str = "", payload: dict | None = None
) -> Outcome:
    """Record QA's verdict: PASS re-checks the completion and moves to VERIFIED; FAIL is recorded
    (the ticket does not move) and then refused with 409 QA_VERIFICATION_FAILED."""
    reviewed_at = _moment(timestamp, "timestamp", required=True)
    verdict = _text(result, "result", required=True).upper()
    if verdict not in QaReview.Result.values:
        raise _bad("Field 'result' must be PASS or FAIL.", "result")
    notes = _text(notes, "notes")

    def apply(change: TicketChange) -> QaReview:
        ticket = change.ticket
        review = QaReview.objects.create(
            ticket=ticket,
            result=verdict,
            notes=notes,
            reviewed_at=reviewed_at,
            reviewer=actor.actor_id,
            reviewer_role=_role(actor),
        )
        change.audit_payload.update(
            {"verification_result": verdict, "verified_at": iso(reviewed_at), "notes": notes or None, "qa_review_id": str(review.id)}
        )
        if verdict == QaReview.Result.FAIL:
            return review
        submission = ChecklistResult.objects.filter(ticket=ticket).order_by("-created_at", "-id").first()
        if submission is None:
            raise DispatchError(
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
        change.transition(S.VERIFIED)
        return review

    default_payload = {"timestamp": timestamp if isinstance(timestamp, str) else iso(reviewed_at), "result": result, "notes": notes or None}
    outcome = ticket_execute(actor=actor, ticket_id=ticket_id, command=QA_VERIFY, payload=payload or default_payload, apply=apply)
    if verdict == QaReview.Result.FAIL:
        raise QaVerificationFailed(outcome, notes)
    return outcome


# --- labor, parts and the invoice draft ----------------------------------------------------------


def labor_add(
    *,
    actor: Actor,
    ticket_id,
    minutes: int,
    rate_cents: int | None = None,
    description: str = "",
    technician_id=None,
    payload: dict | None = None,
) -> Outcome:
    """Log time worked on a job (the technician's own time unless another is named)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 24 * 60:
        raise _bad("Field 'minutes' must be a whole number from 1 to 1440.", "minutes")
    if rate_cents is not None and (isinstance(rate_cents, bool) or not isinstance(rate_cents, int) or rate_cents < 0):
        raise _bad("Field 'rate_cents' must be a non-negative whole number.", "rate_cents")
    description = _text(description, "description", max_length=300)

    def apply(change: TicketChange) -> LaborEntry:
        entry = LaborEntry.objects.create(
            ticket=change.ticket,
            technician_id=technician_id or actor.technician_id or change.ticket.assigned_tech_id,
            minutes=minutes,
            rate_cents=rate_cents,
            description=description,
            created_by=actor.actor_id,
        )
        change.audit_payload["labor_entry_id"] = entry.id
        return entry

    default_payload = {"minutes": minutes, "rate_cents": rate_cents, "description": description}
    return ticket_execute(actor=actor, ticket_id=ticket_id, command=LABOR_ADD, payload=payload or default_payload, apply=apply)


def part_add(
    *,
    actor: Actor,
    ticket_id,
    quantity=1,
    sku: str | None = None,
    description: str = "",
    unit_cents: int | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Log a part used on a job, from the price book (by SKU) or described with its own price."""
    try:
        qty = Decimal(str(quantity)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise _bad("Field 'quantity' must be a number.", "quantity") from None
    if not Decimal("0") < qty <= Decimal("10000"):
        raise _bad("Field 'quantity' must be more than 0 and at most 10000.", "quantity")
    if unit_cents is not None and (isinstance(unit_cents, bool) or not isinstance(unit_cents, int) or unit_cents < 0):
        raise _bad("Field 'unit_cents' must be a non-negative whole number.", "unit_cents")
    sku = _text(sku, "sku", max_length=64)
    description = _text(description, "description", max_length=300)
    item = None
    if sku:
        item = PriceBookItem.objects.filter(sku=sku, active=True).first()
        if item is None:
            raise DispatchError("PRICE_BOOK_ITEM_NOT_FOUND", f"No active price book item {sku}.", status=404)
    elif not description or unit_cents is None:
        raise _bad("A part needs a price book SKU, or a description and a unit price.", "sku")

    def apply(change: TicketChange) -> PartUsage:
        usage = PartUsage.objects.create(
            ticket=change.ticket,
            price_book_item=item,
            description=description,
            quantity=qty,
            unit_cents=unit_cents,
            created_by=actor.actor_id,
        )
        change.audit_payload["part_usage_id"] = usage.id
        return usage

    default_payload = {"quantity": str(qty), "sku": sku or None, "description": description, "unit_cents": unit_cents}
    return ticket_execute(actor=actor, ticket_id=ticket_id, command=PART_ADD, payload=payload or default_payload, apply=apply)


@dataclass(frozen=True)
class InvoiceWritten:
    """What generating an invoice leaves: the draft and the lines just written."""

    invoice: InvoiceDraft
    lines: list[InvoiceLine]


def invoice_generate(*, actor: Actor, ticket_id, payload: dict | None = None) -> Outcome:
    """Build the invoice draft from labor and parts (VERIFIED -> INVOICED); a reopened job's draft
    is rebuilt in place as a new revision."""

    def apply(change: TicketChange) -> InvoiceWritten:
        ticket = change.ticket
        totals = invoice_compute(ticket, template=lambda: template_for(ticket.incident_type))
        invoice = InvoiceDraft.objects.filter(ticket=ticket).first()
        if invoice is None:
            invoice = InvoiceDraft(ticket=ticket, number=f"INV-{ticket.id.hex[:12].upper()}")
        else:
            invoice.revision += 1
            invoice.lines.all().delete()
        invoice.currency = ticket.currency
        invoice.labor_cents = totals.labor_cents
        invoice.parts_cents = totals.parts_cents
        invoice.fees_cents = totals.fees_cents
        invoice.subtotal_cents = totals.subtotal_cents
        invoice.tax_cents = totals.tax_cents
        invoice.total_cents = totals.total_cents
        invoice.nte_cents = totals.nte_cents
        invoice.exceeds_nte = totals.exceeds_nte
        invoice.notes = totals.notes
        invoice.status = InvoiceDraft.Status.DRAFT
        invoice.created_by = invoice.created_by or actor.actor_id
        invoice.save()
        lines = InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=line.kind,
                description=line.description[:300],
                quantity=line.quantity,
                unit_cents=line.unit_cents,
                total_cents=line.total_cents,
                taxable=line.taxable,
            )
            for position, line in enumerate(totals.lines, start=1)
        )
        change.transition(S.INVOICED)
        change.audit_payload.update(
            {
                "invoice_generated": True,
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "revision": invoice.revision,
                "total_cents": invoice.total_cents,
                "exceeds_nte": invoice.exceeds_nte,
            }
        )
        return InvoiceWritten(invoice, lines)

    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=BILLING_GENERATE_INVOICE, payload=payload or {}, apply=apply
    )


# --- close, force close --------------------------------------------------------------------------


CLOSE_TOOLS = ("ticket.close", "ticket.force_close")
PACKET_BUILD_TASK = "dispatch.closeout.tasks.closeout_packet_build"


@dataclass(frozen=True)
class PacketPending:
    """A close's packet: its id is fixed when the ticket closes; it is compiled once that commits."""

    id: uuid.UUID
    ticket_id: uuid.UUID
    forced: bool


def _seal(change: TicketChange, *, reason: str, overrides: list[dict], forced: bool) -> PacketPending:
    """Lock the evidence (from here on it never changes) and have the packet compiled after commit.

    The close's audit event records the packet's id, the reason and the overrides; the packet
    is compiled from that event and the ticket's records, which can no longer change.
    """
    ticket = change.ticket
    packet_id = uuid.uuid4()
    locked = Evidence.objects.filter(ticket=ticket).update(is_locked=True)
    change.audit_payload.update(
        {
            "closeout_packet_id": str(packet_id),
            "evidence_locked": locked,
            "close_reason": reason or None,
            "overrides": overrides,
            "forced": forced,
        }
    )
    change.after_commit(lambda: packet_build_schedule(ticket.id))
    return PacketPending(id=packet_id, ticket_id=ticket.id, forced=forced)


def packet_build_schedule(ticket_id: uuid.UUID) -> None:
    """Hand the packet's compilation to the worker; the sweep catches a hand-off that is lost."""
    from django_q.tasks import async_task

    try:
        async_task(PACKET_BUILD_TASK, str(ticket_id))
    except Exception:  # the broker may be down; the close has committed and the sweep compiles it
        log.exception("Could not queue the closeout packet of ticket %s; the sweep will compile it.", ticket_id)


PACKET_COMPILED = command("closeout.packet_compiled", ["system"], None, None, "Closeout packet compiled")


def closeout_packet_build(*, ticket_id) -> CloseoutPacket | None:
    """Compile and store a closed ticket's packet (once: a second call returns the stored one)
    and chain its hash into the ticket's audit trail. None for a ticket that is not closed."""
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",)).select_related("site", "account").filter(pk=ticket_id).first()
        )
        if ticket is None or ticket.state != S.CLOSED:
            return None
        existing = CloseoutPacket.objects.filter(ticket=ticket).first()
        if existing is not None:
            return existing
        close_event = (
            AuditEvent.objects.filter(ticket=ticket, tool_name__in=CLOSE_TOOLS, after_state=S.CLOSED).order_by("-seq").first()
        )
        if close_event is None:
            return None
        packet = packet_compile(ticket=ticket, close_event=close_event)
        closed = close_event.payload or {}
        row = CloseoutPacket.objects.create(
            id=closed.get("closeout_packet_id") or uuid.uuid4(),
            ticket=ticket,
            packet=packet,
            sha256=packet_hash(packet),
            forced=bool(closed.get("forced")),
            created_by=close_event.actor_id,
        )
        audit_only(
            actor=service_actor("closeout-packets"),
            command=PACKET_COMPILED,
            ticket=ticket,
            payload={"closeout_packet_id": str(row.id), "packet_sha256": row.sha256, "close_event_id": str(close_event.id)},
        )
    return row


# A lost hand-off is normally caught by the next minute's sweep; looking back a week covers a
# worker that was down for days without reading every closed ticket ever.
PACKET_SWEEP_WINDOW = timedelta(days=7)


def closeout_packets_sweep() -> int:
    """Compile the packet of every ticket closed within the sweep window that has none yet (a lost
    hand-off); returns how many. Finds them through the recent close events (by time, indexed)."""
    closed = AuditEvent.objects.filter(
        created_at__gte=timezone.now() - PACKET_SWEEP_WINDOW, tool_name__in=CLOSE_TOOLS, after_state=S.CLOSED
    ).values("ticket_id")
    pending = list(
        Ticket.objects.filter(pk__in=closed, state=S.CLOSED, closeout_packet__isnull=True)
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)[:200]
    )
    built = 0
    for ticket_id in pending:
        try:
            built += closeout_packet_build(ticket_id=ticket_id) is not None
        except Exception:  # one ticket that cannot be compiled must not hold up the others
            log.exception("Could not compile the closeout packet of ticket %s.", ticket_id)
    return built


def ticket_close(
    *, actor: Actor, ticket_id, reason: str = "", closeout_override_code: str = "", payload: dict | None = None
) -> Outcome:
    """Close verified or invoiced work: lock the evidence; the closeout packet is compiled once the close commits."""
    reason = _text(reason, "reason")
    code = _text(closeout_override_code, "closeout_override_code", max_length=100)

    def apply(change: TicketChange) -> PacketPending:
        change.transition(S.CLOSED)
        overrides = []
        if code:
            overrides.append(
                {"kind": "closeout_override_code", "code": code, "reason": reason or None,
                 "by": actor.actor_id, "role": _role(actor)}
            )
        return _seal(change, reason=reason, overrides=overrides, forced=False)

    default_payload = {"reason": reason or None, "closeout_override_code": code or None}
    return ticket_execute(actor=actor, ticket_id=ticket_id, command=TICKET_CLOSE, payload=payload or default_payload, apply=apply)


def ticket_force_close(
    *,
    actor: Actor,
    ticket_id,
    override_code: str,
    override_reason: str,
    approver_role: str,
    payload: dict | None = None,
) -> Outcome:
    """Close completed work without QA: needs an override code, a real reason and an approver role."""
    code = _text(override_code, "override_code", required=True, max_length=100)
    if len(code) < FORCE_CLOSE_MIN_CODE:
        raise _bad(f"Field 'override_code' needs at least {FORCE_CLOSE_MIN_CODE} characters.", "override_code")
    why = _text(override_reason, "override_reason", required=True)
    if len(why) < FORCE_CLOSE_MIN_REASON:
        raise _bad(f"Field 'override_reason' needs at least {FORCE_CLOSE_MIN_REASON} characters.", "override_reason")
    role = role_normalize(_text(approver_role, "approver_role", required=True, max_length=40))
    if role not in FORCE_CLOSE_APPROVER_ROLES:
        raise _bad(
            "Field 'approver_role' must name a role that may approve a force close.",
            "approver_role",
            allowed=sorted(r.value for r in FORCE_CLOSE_APPROVER_ROLES),
        )

    def apply(change: TicketChange) -> PacketPending:
        change.transition(S.CLOSED)
        override = {
            "kind": "force_close",
            "override_code": code,
            "override_reason": why,
            "approver_role": role.value,
            "by": actor.actor_id,
            "role": _role(actor),
        }
        return _seal(change, reason=why, overrides=[override], forced=True)

    default_payload = {"override_code": code, "override_reason": why, "approver_role": approver_role}
    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=TICKET_FORCE_CLOSE, payload=payload or default_payload, apply=apply
    )


# --- overrides around the gate ----------------------------------------------------------------


def evidence_exception_grant(
    *,
    actor: Actor,
    ticket_id,
    exception_reason: str,
    evidence_refs: list[str] | None = None,
    expires_at=None,
    payload: dict | None = None,
) -> Outcome:
    """Waive required evidence keys (all of them when none are named) until `expires_at`."""
    reason = _text(exception_reason, "exception_reason", required=True)
    refs = list(dict.fromkeys(_string_list(evidence_refs, "evidence_refs")))
    until = _moment(expires_at, "expires_at", required=False)
    if until is not None and until <= timezone.now():
        raise _bad("Field 'expires_at' must be in the future.", "expires_at")

    def apply(change: TicketChange) -> EvidenceException:
        template = template_for(change.ticket.incident_type)
        if template is not None and refs:
            required = set(template.required_evidence_keys) | {SIGNATURE_KEY}
            unknown = [ref for ref in refs if ref not in required]
            if unknown:
                raise _bad(
                    "These are not evidence keys the incident template requires.",
                    "evidence_refs",
                    unknown_evidence_keys=unknown,
                    required_evidence_keys=sorted(required),
                )
        exception = EvidenceException.objects.create(
            ticket=change.ticket,
            reason=reason,
            evidence_refs=refs,
            expires_at=until,
            granted_by=actor.actor_id,
            granted_by_role=_role(actor),
        )
        change.audit_payload["evidence_exception_id"] = str(exception.id)
        return exception

    default_payload = {"exception_reason": reason, "evidence_refs": refs, "expires_at": iso(until)}
    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=EVIDENCE_EXCEPTION, payload=payload or default_payload, apply=apply
    )


def dispatch_manual_bypass(
    *, actor: Actor, ticket_id, bypass_rationale: str, target_tool: str = "", payload: dict | None = None
) -> Outcome:
    """A dispatcher completes the job without the evidence gate (IN_PROGRESS -> COMPLETED_PENDING_
    VERIFICATION), or waves an already completed job through QA's re-check; what the gate would
    have refused is recorded with the rationale."""
    rationale = _text(bypass_rationale, "bypass_rationale", required=True)
    target = _text(target_tool, "target_tool", max_length=100)

    def apply(change: TicketChange) -> ChecklistResult:
        ticket = change.ticket
        latest = ChecklistResult.objects.filter(ticket=ticket).order_by("-created_at", "-id").first()
        status = latest.checklist_status if latest else {}
        reason = latest.no_signature_reason if latest else ""
        refs = latest.evidence_refs if latest else []
        gate = closeout_requirements(ticket=ticket, checklist_status=status, no_signature_reason=reason, evidence_refs=refs)
        if ticket.state == S.IN_PROGRESS:
            change.transition(CPV)
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
            submitted_by_role=_role(actor),
        )
        change.audit_payload.update({"bypassed_check": bypassed, "checklist_result_id": str(submission.id)})
        return submission

    default_payload = {"bypass_rationale": rationale, "target_tool": target or None}
    return ticket_execute(
        actor=actor, ticket_id=ticket_id, command=DISPATCH_MANUAL_BYPASS, payload=payload or default_payload, apply=apply
    )


# --- autonomy pauses ---------------------------------------------------------------------------


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
            else {"id": None, "scope_type": self.scope_type, "incident_type": self.incident_type,
                  "ticket_id": self.ticket_id, "is_paused": False}
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
    scope = _text(scope_type, "scope_type", max_length=20).upper() or AutonomyScope.GLOBAL
    if scope not in AutonomyScope.values:
        raise _bad("Field 'scope_type' must be GLOBAL, INCIDENT or TICKET.", "scope_type")
    incident = _text(incident_type, "incident_type", max_length=64).upper()
    ticket_ref = ticket_id if ticket_id not in (None, "") else None
    if scope != AutonomyScope.INCIDENT and incident:
        raise _bad(f"Field 'incident_type' is not allowed for {scope} scope.", "incident_type")
    if scope != AutonomyScope.TICKET and ticket_ref is not None:
        raise _bad(f"Field 'ticket_id' is not allowed for {scope} scope.", "ticket_id")
    if scope == AutonomyScope.INCIDENT and not incident:
        raise _bad("Field 'incident_type' is required for INCIDENT scope.", "incident_type")
    ticket = None
    if scope == AutonomyScope.TICKET:
        if ticket_ref is None:
            raise _bad("Field 'ticket_id' is required for TICKET scope.", "ticket_id")
        try:
            key = uuid.UUID(str(ticket_ref))
        except ValueError:
            raise _bad("Field 'ticket_id' must be a UUID.", "ticket_id") from None
        ticket = Ticket.objects.filter(pk=key).first()
        if ticket is None:
            raise ticket_not_found(ticket_ref)
        access_check(actor, ticket)
    return scope, incident, ticket


def _scope_rows(scope: str, incident: str, ticket: Ticket | None):
    return AutonomyPause.objects.filter(scope_type=scope, incident_type=incident, ticket=ticket)


def autonomy_pause(
    *,
    actor: Actor,
    scope_type: str = AutonomyScope.GLOBAL,
    incident_type: str | None = None,
    ticket_id=None,
    reason: str = "",
    payload: dict | None = None,
) -> AutonomyChange:
    """Stop agents' closeout actions globally, for one incident type, or for one ticket.

    Pausing a scope that is already paused keeps the existing pause (and still records the call)."""
    scope, incident, ticket = _autonomy_scope(actor, AUTONOMY_PAUSE, scope_type, incident_type, ticket_id)
    reason = _text(reason, "reason")
    with transaction.atomic():
        pause = _scope_rows(scope, incident, ticket).filter(rolled_back_at__isnull=True).select_for_update().first()
        previous = pause is not None
        if pause is None:
            pause = AutonomyPause.objects.create(
                scope_type=scope,
                incident_type=incident,
                ticket=ticket,
                reason=reason,
                paused_by=actor.actor_id,
                paused_by_role=_role(actor),
            )
        event = audit_only(
            actor=actor,
            command=AUTONOMY_PAUSE,
            ticket=ticket,
            payload={
                **(payload or {"scope_type": scope, "incident_type": incident or None,
                               "ticket_id": str(ticket.id) if ticket else None, "reason": reason or None}),
                "action": "pause",
                "pause_id": str(pause.id),
                "previous_is_paused": previous,
                "current_is_paused": True,
            },
        )
    return AutonomyChange("pause", scope, incident or None, str(ticket.id) if ticket else None, pause, previous, True, event)


def autonomy_rollback(
    *,
    actor: Actor,
    scope_type: str = AutonomyScope.GLOBAL,
    incident_type: str | None = None,
    ticket_id=None,
    reason: str = "",
    payload: dict | None = None,
) -> AutonomyChange:
    """Lift the pause on a scope. The pause row stays, stamped with who lifted it and when;
    lifting a scope that is not paused changes nothing (and still records the call)."""
    scope, incident, ticket = _autonomy_scope(actor, AUTONOMY_ROLLBACK, scope_type, incident_type, ticket_id)
    reason = _text(reason, "reason")
    with transaction.atomic():
        active = list(_scope_rows(scope, incident, ticket).filter(rolled_back_at__isnull=True).select_for_update())
        now = timezone.now()
        for pause in active:
            pause.rolled_back_at = now
            pause.rolled_back_by = actor.actor_id
            pause.rollback_reason = reason
            pause.save(update_fields=["rolled_back_at", "rolled_back_by", "rollback_reason"])
        latest = active[0] if active else _scope_rows(scope, incident, ticket).order_by("-created_at").first()
        event = audit_only(
            actor=actor,
            command=AUTONOMY_ROLLBACK,
            ticket=ticket,
            payload={
                **(payload or {"scope_type": scope, "incident_type": incident or None,
                               "ticket_id": str(ticket.id) if ticket else None, "reason": reason or None}),
                "action": "rollback",
                "pause_ids": [str(p.id) for p in active],
                "previous_is_paused": bool(active),
                "current_is_paused": False,
            },
        )
    return AutonomyChange(
        "rollback", scope, incident or None, str(ticket.id) if ticket else None, latest, bool(active), False, event
    )
