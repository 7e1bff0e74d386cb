"""Automatic QA: what a QA reviewer checks on a finished job before it is verified, checked by the
autopilot. All must hold for a PASS; anything else becomes a QA task naming what failed, never a
silent pass.

- The closeout gate passes on what the technician submitted: every required evidence key, the
  checklist complete, a signature or the reason there is none.
- Every piece of evidence it cites can be read back from storage, and every photo opens as an
  image (a file lost by the store, or a corrupt upload, is not a photo).
- A job bypassed by a dispatcher (no evidence gate), one an agent proposed as complete, and
  high-risk work are a person's to verify.
- Labor is recorded: an invoice without time would bill nothing for the visit.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

from dispatch.closeout.gate import closeout_requirements
from dispatch.closeout.models import Evidence, EvidenceKind, LaborEntry
from dispatch.closeout.selectors import completion_latest
from dispatch.tickets.models import Ticket


def _readable(item: Evidence) -> bool:
    if not item.file:
        # Referenced by URI (s3://, minio://) rather than uploaded here: the reference is the record;
        # a note typed on the phone is its text.
        return bool(item.uri) or bool(item.kind == EvidenceKind.NOTE and (item.metadata or {}).get("text"))
    try:
        if not default_storage.exists(item.file.name):
            return False
        if item.kind == EvidenceKind.PHOTO:
            with default_storage.open(item.file.name, "rb") as stream, Image.open(stream) as image:
                image.verify()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return False
    return True


def qa_findings(ticket: Ticket) -> list[str]:
    """What keeps this finished job from an automatic PASS, in words; [] when it passes."""
    submission = completion_latest(ticket.id)
    if submission is None:
        return ["No completion was submitted."]
    if submission.is_bypass:
        return ["A dispatcher completed the job without the evidence gate: a person verifies it."]
    if submission.tool != "tech.complete":
        # Proposed by an agent (closeout.candidate): no person has looked at the work yet.
        return ["The completion was proposed by an agent, not the technician: a person verifies it."]
    findings = []
    gate = closeout_requirements(
        ticket=ticket,
        checklist_status=submission.checklist_status,
        no_signature_reason=submission.no_signature_reason,
        evidence_refs=submission.evidence_refs,
    )
    if gate.missing_evidence_keys:
        findings.append("Missing evidence: " + ", ".join(gate.missing_evidence_keys) + ".")
    if gate.missing_checklist_keys:
        findings.append("Checklist not complete: " + ", ".join(gate.missing_checklist_keys) + ".")
    if gate.invalid_evidence_refs:
        findings.append("Evidence cited that does not exist: " + ", ".join(gate.invalid_evidence_refs) + ".")
    if gate.high_risk:
        findings.append("High-risk work: a person verifies it.")
    if not gate.ready and not findings:
        findings.append(f"The closeout gate does not pass ({gate.code}).")
    unreadable = [
        item.evidence_key or str(item.pk)
        for item in Evidence.objects.filter(ticket=ticket).order_by("created_at", "id")
        if not _readable(item)
    ]
    if unreadable:
        findings.append("Evidence that cannot be read back: " + ", ".join(unreadable) + ".")
    if not LaborEntry.objects.filter(ticket=ticket).exists():
        findings.append("No labor recorded.")
    return findings
