"""The evidence gate: may this job be marked complete, and if not, exactly what is missing.

Precedence of the single `requirement_code` (the upstream dispatch-api's order): no template
for the incident type, then the signature rule, then evidence references that do not resolve,
then missing evidence and/or checklist answers. The missing lists always name everything that
is missing, not only what the code is about.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from dispatch.common.errors import DispatchError

from .evidence_files import uri_is_object_store
from .models import Evidence, EvidenceException, EvidenceKind, IncidentTemplate

SIGNATURE_KEY = "signature_or_no_signature_reason"

TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
MISSING_SIGNATURE_CONFIRMATION = "MISSING_SIGNATURE_CONFIRMATION"
INVALID_EVIDENCE_REFERENCE = "INVALID_EVIDENCE_REFERENCE"
MISSING_REQUIREMENTS = "MISSING_REQUIREMENTS"  # evidence and checklist both incomplete
MISSING_EVIDENCE = "MISSING_EVIDENCE"
MISSING_CHECKLIST = "MISSING_CHECKLIST"
READY = "READY"


@dataclass(frozen=True)
class CloseoutGate:
    """The gate's verdict for one ticket and one submission."""

    code: str
    incident_type: str | None
    template_version: str | None = None
    missing_evidence_keys: list[str] = field(default_factory=list)
    missing_checklist_keys: list[str] = field(default_factory=list)
    invalid_evidence_refs: list[str] = field(default_factory=list)
    waived_evidence_keys: list[str] = field(default_factory=list)
    signature_satisfied: bool = False
    evidence_count: int = 0
    evidence_keys: list[str] = field(default_factory=list)
    high_risk: bool = False

    @property
    def ready(self) -> bool:
        return self.code == READY

    @property
    def problems(self) -> list[str]:
        """Every requirement code that applies, most important first."""
        if self.code == TEMPLATE_NOT_FOUND:
            return [TEMPLATE_NOT_FOUND]
        found = []
        if SIGNATURE_KEY in self.missing_evidence_keys:
            found.append(MISSING_SIGNATURE_CONFIRMATION)
        if self.invalid_evidence_refs:
            found.append(INVALID_EVIDENCE_REFERENCE)
        if set(self.missing_evidence_keys) - {SIGNATURE_KEY}:
            found.append(MISSING_EVIDENCE)
        if self.missing_checklist_keys:
            found.append(MISSING_CHECKLIST)
        return found

    def as_dict(self) -> dict:
        return {
            "ready": self.ready,
            "code": self.code,
            "incident_type": self.incident_type,
            "template_version": self.template_version,
            "missing_evidence_keys": list(self.missing_evidence_keys),
            "missing_checklist_keys": list(self.missing_checklist_keys),
            "invalid_evidence_refs": list(self.invalid_evidence_refs),
            "waived_evidence_keys": list(self.waived_evidence_keys),
            "signature_satisfied": self.signature_satisfied,
            "evidence_count": self.evidence_count,
        }

    def error(self) -> DispatchError | None:
        """The 409 refusal for an incomplete closeout, or None when the gate is open."""
        if self.ready:
            return None
        return DispatchError(
            "CLOSEOUT_REQUIREMENTS_INCOMPLETE",
            "Closeout requirements are incomplete: " + ", ".join(self.problems) + ".",
            status=409,
            dimension="evidence",
            details={
                "requirement_code": self.code,
                "incident_type": self.incident_type,
                "template_version": self.template_version,
                "missing_evidence_keys": list(self.missing_evidence_keys),
                "missing_checklist_keys": list(self.missing_checklist_keys),
                "invalid_evidence_refs": list(self.invalid_evidence_refs),
            },
        )


def template_for(incident_type: str | None) -> IncidentTemplate | None:
    key = (incident_type or "").strip().upper()
    return IncidentTemplate.objects.filter(incident_type=key).first() if key else None


def evidence_resolvable(item: Evidence) -> bool:
    """A stored upload, a URI into an allowed object store, or a note whose text we keep."""
    if item.kind == EvidenceKind.NOTE and str((item.metadata or {}).get("text") or "").strip():
        return True
    return bool(item.file) or uri_is_object_store(item.uri)


def _as_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def _invalid_refs(items: list[Evidence], explicit_refs: list[str]) -> list[str]:
    """References that name no evidence of this ticket (by id or URI) or evidence we cannot resolve.

    With no explicit references every item on the ticket is checked."""
    by_id = {str(item.id): item for item in items}
    by_uri: dict[str, Evidence] = {}
    for item in items:
        by_uri.setdefault(item.uri.strip(), item)
    invalid: set[str] = set()
    if explicit_refs:
        for ref in explicit_refs:
            as_id = _as_uuid(ref)
            item = by_id.get(as_id) if as_id else by_uri.get(ref)
            if item is None or not evidence_resolvable(item):
                invalid.add(ref)
    else:
        invalid |= {item.uri or str(item.id) for item in items if not evidence_resolvable(item)}
    return sorted(invalid)


def _waived(exceptions, required: list[str], at) -> list[str]:
    waived: set[str] = set()
    for exception in exceptions:
        if exception.is_active(at):
            waived |= set(required) if not exception.evidence_refs else set(exception.evidence_refs)
    return sorted(waived & set(required))


def closeout_requirements(
    *,
    ticket,
    checklist_status: dict | None,
    no_signature_reason: str | None = None,
    evidence_refs: list[str] | None = None,
) -> CloseoutGate:
    """Evaluate the ticket's incident template against its evidence and this submission."""
    incident_type = (ticket.incident_type or "").strip().upper() or None
    template = template_for(incident_type)
    if template is None:
        return CloseoutGate(code=TEMPLATE_NOT_FOUND, incident_type=incident_type)
    return _evaluate(
        incident_type=incident_type,
        template=template,
        items=list(Evidence.objects.filter(ticket=ticket).order_by("created_at", "id")),
        exceptions=EvidenceException.objects.filter(ticket=ticket),
        checklist_status=checklist_status,
        no_signature_reason=no_signature_reason,
        evidence_refs=evidence_refs,
    )


def closeout_requirements_many(tickets, submissions: dict) -> dict:
    """The gate for many tickets at once (a technician's day) in three queries whatever their
    number: {ticket id: CloseoutGate}. `submissions` maps a ticket id to its latest
    (checklist_status, no_signature_reason); a ticket without one has answered nothing yet."""
    tickets = list(tickets)
    ids = [ticket.id for ticket in tickets]
    kinds = {(ticket.incident_type or "").strip().upper() for ticket in tickets} - {""}
    templates = {t.incident_type: t for t in IncidentTemplate.objects.filter(incident_type__in=kinds)}
    items: dict = {ticket_id: [] for ticket_id in ids}
    for item in Evidence.objects.filter(ticket_id__in=ids).order_by("created_at", "id"):
        items[item.ticket_id].append(item)
    exceptions: dict = {ticket_id: [] for ticket_id in ids}
    for exception in EvidenceException.objects.filter(ticket_id__in=ids):
        exceptions[exception.ticket_id].append(exception)
    gates = {}
    for ticket in tickets:
        incident_type = (ticket.incident_type or "").strip().upper() or None
        template = templates.get(incident_type)
        if template is None:
            gates[ticket.id] = CloseoutGate(code=TEMPLATE_NOT_FOUND, incident_type=incident_type)
            continue
        checklist_status, reason = submissions.get(ticket.id, ({}, ""))
        gates[ticket.id] = _evaluate(
            incident_type=incident_type,
            template=template,
            items=items[ticket.id],
            exceptions=exceptions[ticket.id],
            checklist_status=checklist_status,
            no_signature_reason=reason,
            evidence_refs=None,
        )
    return gates


def _evaluate(
    *, incident_type, template, items, exceptions, checklist_status, no_signature_reason, evidence_refs
) -> CloseoutGate:
    """The gate's rules over what is already loaded: one evaluation serves one ticket or many."""
    reason = (no_signature_reason or "").strip()
    signature_satisfied = bool(reason) or any(
        item.kind == EvidenceKind.SIGNATURE or item.evidence_key == SIGNATURE_KEY for item in items
    )
    present = {item.evidence_key for item in items if item.evidence_key}
    if signature_satisfied:
        present.add(SIGNATURE_KEY)

    # The signature rule holds even for a template edited to leave its key out.
    required = list(dict.fromkeys([*template.required_evidence_keys, SIGNATURE_KEY]))
    waived = _waived(exceptions, required, timezone.now())
    missing_evidence = sorted(k for k in required if k not in present and k not in waived)
    status = checklist_status if isinstance(checklist_status, dict) else {}
    missing_checklist = sorted(k for k in template.required_checklist_keys if status.get(k) is not True)
    invalid = _invalid_refs(items, list(evidence_refs or []))

    if SIGNATURE_KEY in missing_evidence:
        code = MISSING_SIGNATURE_CONFIRMATION
    elif invalid:
        code = INVALID_EVIDENCE_REFERENCE
    elif missing_evidence and missing_checklist:
        code = MISSING_REQUIREMENTS
    elif missing_evidence:
        code = MISSING_EVIDENCE
    elif missing_checklist:
        code = MISSING_CHECKLIST
    else:
        code = READY
    return CloseoutGate(
        code=code,
        incident_type=incident_type,
        template_version=template.version,
        missing_evidence_keys=missing_evidence,
        missing_checklist_keys=missing_checklist,
        invalid_evidence_refs=invalid,
        waived_evidence_keys=waived,
        signature_satisfied=signature_satisfied or SIGNATURE_KEY in waived,
        evidence_count=len(items),
        evidence_keys=sorted(present),
        high_risk=template.high_risk,
    )
