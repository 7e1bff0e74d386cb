"""The closeout packet: a closed job's whole record as one JSON document with a verification hash.

The hash is the sha256 of the packet's canonical JSON (sorted keys, no whitespace, UTF-8), so
anyone holding the JSON can recompute it. The `closeout.packet_compiled` audit event that follows
the close carries the hash, which puts the packet under the audit chain too.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder

from dispatch.tickets.models import AuditEvent, StateTransition

from .models import (
    ChecklistResult,
    Closure,
    Evidence,
    EvidenceException,
    InvoiceDraft,
    LaborEntry,
    PartUsage,
    QaReview,
)

PACKET_VERSION = "1"


def iso(value) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, the wire format of the toolset."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_json(packet: dict) -> bytes:
    return json.dumps(packet, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


def packet_hash(packet: dict) -> str:
    return hashlib.sha256(canonical_json(packet)).hexdigest()


def plain(value):
    """Round-trip through JSON so the stored packet is exactly what was hashed."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def evidence_item(item: Evidence) -> dict:
    """One evidence item as the toolset, the closeout packet and the technician's job packet show it.
    Its metadata always names the evidence key it satisfies, as upstream clients read it there."""
    metadata = dict(item.metadata or {})
    if item.evidence_key:
        metadata.setdefault("evidence_key", item.evidence_key)
    return {
        "id": str(item.id),
        "ticket_id": str(item.ticket_id),
        "kind": item.kind,
        "evidence_key": item.evidence_key or None,
        "uri": item.uri,
        "checksum": item.checksum or None,
        "sha256": item.sha256 or None,
        "content_type": item.content_type or None,
        "size": item.size,
        "metadata": metadata,
        "created_by": item.created_by,
        "created_at": iso(item.created_at),
        "is_locked": item.is_locked,
    }


def _event(event: AuditEvent) -> dict:
    return {
        "seq": event.seq,
        "id": str(event.id),
        "tool_name": event.tool_name,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "request_id": event.request_id,
        "correlation_id": event.correlation_id,
        "before_state": event.before_state,
        "after_state": event.after_state,
        "payload": event.payload,
        "hash": event.hash,
        "created_at": iso(event.created_at),
    }


def _submission(row: ChecklistResult) -> dict:
    return {
        "id": str(row.id),
        "tool": row.tool,
        "checklist_status": row.checklist_status,
        "no_signature_reason": row.no_signature_reason or None,
        "evidence_refs": row.evidence_refs,
        "gate": row.gate,
        "bypass_rationale": row.bypass_rationale or None,
        "submitted_by": row.submitted_by,
        "submitted_by_role": row.submitted_by_role,
        "created_at": iso(row.created_at),
    }


def invoice_serialize(invoice: InvoiceDraft | None, lines: list | None = None) -> dict | None:
    """An invoice draft with its lines, as the packet and the API show it (`lines` when the caller
    already holds them, else they are read)."""
    if invoice is None:
        return None
    if lines is None:
        lines = list(invoice.lines.order_by("position"))
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "revision": invoice.revision,
        "status": invoice.status,
        "currency": invoice.currency,
        "labor_cents": invoice.labor_cents,
        "parts_cents": invoice.parts_cents,
        "fees_cents": invoice.fees_cents,
        "subtotal_cents": invoice.subtotal_cents,
        "tax_cents": invoice.tax_cents,
        "total_cents": invoice.total_cents,
        "nte_cents": invoice.nte_cents,
        "exceeds_nte": invoice.exceeds_nte,
        "notes": invoice.notes,
        "lines": [
            {
                "position": line.position,
                "kind": line.kind,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_cents": line.unit_cents,
                "total_cents": line.total_cents,
                "taxable": line.taxable,
            }
            for line in sorted(lines, key=lambda line: line.position)
        ],
    }


def packet_compile(*, ticket, closure: Closure, close_event: AuditEvent) -> dict:
    """Everything a closed job leaves behind, in one JSON-ready dict. Compiled once the close has
    committed, from its closure (why, overrides) and its audit event (who, when), so the timeline,
    state history and actors include the close itself."""
    overrides = closure.overrides or []
    reason = closure.reason
    site = ticket.site
    account = ticket.account
    events = list(AuditEvent.objects.filter(ticket=ticket, seq__lte=close_event.seq).order_by("seq"))
    transitions = list(StateTransition.objects.filter(ticket=ticket).order_by("seq"))
    evidence = list(Evidence.objects.filter(ticket=ticket).order_by("created_at", "id"))
    submissions = list(ChecklistResult.objects.filter(ticket=ticket).order_by("created_at", "id"))
    latest = submissions[-1] if submissions else None
    exceptions = list(EvidenceException.objects.filter(ticket=ticket).order_by("created_at", "id"))
    signatures = [
        str(item.id)
        for item in evidence
        if item.kind == "SIGNATURE" or item.evidence_key == "signature_or_no_signature_reason"
    ]

    actors: dict[tuple, dict] = {}
    for event in events:
        actors.setdefault(
            (event.actor_id, event.actor_role),
            {"actor_id": event.actor_id, "actor_role": event.actor_role, "actor_type": event.actor_type},
        )

    all_overrides = list(overrides or [])
    all_overrides += [
        {
            "kind": "manual_bypass",
            "bypass_rationale": row.bypass_rationale,
            "by": row.submitted_by,
            "role": row.submitted_by_role,
            "at": iso(row.created_at),
            "bypassed": row.gate,
        }
        for row in submissions
        if row.is_bypass
    ]

    invoice = InvoiceDraft.objects.filter(ticket=ticket).first()
    packet = {
        "packet_version": PACKET_VERSION,
        "header": {
            "ticket_id": str(ticket.id),
            "reference": ticket.short_ref,
            "state": ticket.state,
            "closed_at": iso(close_event.created_at),
            "closed_by": {
                "actor_id": close_event.actor_id,
                "actor_role": close_event.actor_role,
                "actor_type": close_event.actor_type,
            },
            "close_tool": close_event.tool_name,
            "close_reason": reason or None,
            "priority": ticket.priority,
            "incident_type": ticket.incident_type or None,
            "template_version": (latest.gate or {}).get("template_version") if latest else None,
        },
        "account": {"id": str(account.id), "name": account.name},
        "site": {
            "id": str(site.id),
            "name": site.name,
            "address": site.address,
            "timezone": site.timezone,
            "service_region": site.service_region,
        },
        "ticket": {
            "summary": ticket.summary,
            "description": ticket.description,
            "customer_name": ticket.customer_name,
            "asset_id": str(ticket.asset_id) if ticket.asset_id else None,
            "assigned_tech_id": str(ticket.assigned_tech_id) if ticket.assigned_tech_id else None,
            "nte_cents": ticket.nte_cents,
            "currency": ticket.currency,
            "scheduled_start": iso(ticket.scheduled_start),
            "scheduled_end": iso(ticket.scheduled_end),
            "created_at": iso(ticket.created_at),
        },
        "timeline": [_event(event) for event in events],
        "state_history": [
            {
                "seq": row.seq,
                "from_state": row.from_state or None,
                "to_state": row.to_state,
                "audit_event_id": str(row.audit_event_id),
                "created_at": iso(row.created_at),
            }
            for row in transitions
        ],
        "evidence": [evidence_item(item) for item in evidence],
        "checklist": _submission(latest) if latest else None,
        "submissions": [_submission(row) for row in submissions],
        "signature": {
            "captured": bool(signatures),
            "evidence_ids": signatures,
            "no_signature_reason": (latest.no_signature_reason or None) if latest else None,
        },
        "qa_reviews": [
            {
                "id": str(row.id),
                "result": row.result,
                "notes": row.notes,
                "reviewed_at": iso(row.reviewed_at),
                "reviewer": row.reviewer,
                "reviewer_role": row.reviewer_role,
            }
            for row in QaReview.objects.filter(ticket=ticket).order_by("created_at", "id")
        ],
        "labor": [
            {
                "minutes": row.minutes,
                "rate_cents": row.rate_cents,
                "description": row.description,
                "technician_id": str(row.technician_id) if row.technician_id else None,
            }
            for row in LaborEntry.objects.filter(ticket=ticket).order_by("created_at", "id")
        ],
        "parts": [
            {
                "sku": row.price_book_item.sku if row.price_book_item_id else None,
                "description": row.description,
                "quantity": str(row.quantity),
                "unit_cents": row.unit_cents,
            }
            for row in PartUsage.objects.filter(ticket=ticket)
            .select_related("price_book_item")
            .order_by("created_at", "id")
        ],
        "invoice": invoice_serialize(invoice),
        "evidence_exceptions": [
            {
                "id": str(row.id),
                "reason": row.reason,
                "evidence_refs": row.evidence_refs,
                "expires_at": iso(row.expires_at),
                "granted_by": row.granted_by,
                "granted_by_role": row.granted_by_role,
                "created_at": iso(row.created_at),
            }
            for row in exceptions
        ],
        "overrides": all_overrides,
        "actors": sorted(actors.values(), key=lambda a: (a["actor_role"], a["actor_id"])),
    }
    return plain(packet)
