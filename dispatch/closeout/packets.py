"""The closeout packet: a closed job's whole record as one JSON document with a verification hash.

The hash is the sha256 of the packet's canonical JSON (sorted keys, no whitespace, UTF-8), so
anyone holding the JSON can recompute it; services/packet_versions.py stores those very bytes.
The audit event that issues a version (the close's `closeout.packet_compiled`, an approval, a
re-render) carries the hash, which puts the packet under the audit chain too.
"""

from __future__ import annotations

import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder

from dispatch.technicians.selectors import people_names
from dispatch.tickets.models import Approval, AuditEvent, StateTransition
from dispatch.tickets.phrases import event_phrase

from .billing import billing_settings, company_block, labor_price
from .models import (
    ChecklistResult,
    Closure,
    Evidence,
    EvidenceException,
    IncidentTemplate,
    Invoice,
    LaborEntry,
    PartUsage,
    QaReview,
)

PACKET_VERSION = "2"


def iso(value) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, the wire format of the toolset."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_json(packet: dict) -> bytes:
    return json.dumps(packet, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


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


def invoice_serialize(invoice: Invoice | None, lines: list | None = None) -> dict | None:
    """One invoice version with its lines, as the packet, the API and the exports show it (`lines`
    when the caller already holds them, else they are read)."""
    if invoice is None:
        return None
    if lines is None:
        lines = list(invoice.lines.order_by("position"))
    return {
        "id": str(invoice.id),
        "ticket_id": str(invoice.ticket_id),
        "number": invoice.number,
        "version": invoice.version,
        "status": invoice.status,
        "supersedes": str(invoice.supersedes_id) if invoice.supersedes_id else None,
        "supersedes_number": invoice.supersedes.number if invoice.supersedes_id else None,
        "currency": invoice.currency,
        "labor_cents": invoice.labor_cents,
        "parts_cents": invoice.parts_cents,
        "fees_cents": invoice.fees_cents,
        "subtotal_cents": invoice.subtotal_cents,
        "labor_tax_cents": invoice.labor_tax_cents,
        "parts_tax_cents": invoice.parts_tax_cents,
        "tax_cents": invoice.tax_cents,
        "total_cents": invoice.total_cents,
        "tax_jurisdiction": invoice.tax_jurisdiction or None,
        "labor_tax_bps": invoice.labor_tax_bps,
        "parts_tax_bps": invoice.parts_tax_bps,
        "nte_cents": invoice.nte_cents,
        "exceeds_nte": invoice.exceeds_nte,
        "approval_refs": invoice.approval_refs,
        "notes": invoice.notes,
        "created_at": iso(invoice.created_at),
        "approved_at": iso(invoice.approved_at),
        "approved_by": invoice.approved_by or None,
        "superseded_at": iso(invoice.superseded_at),
        "pdf_sha256": invoice.pdf_sha256 or None,
        "lines": [
            {
                "position": line.position,
                "kind": line.kind,
                "item_code": line.item_code or None,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_cents": line.unit_cents,
                "total_cents": line.total_cents,
                "taxable": line.taxable,
                "tax_code": line.tax_code or None,
            }
            for line in sorted(lines, key=lambda line: line.position)
        ],
    }


def _asset(ticket) -> dict | None:
    asset = ticket.asset
    if asset is None:
        return None
    return {"id": str(asset.id), "name": asset.name, "make": asset.make, "model": asset.model, "serial": asset.serial}


def _first_event(events: list[AuditEvent], tools: tuple[str, ...]):
    return next((event for event in events if event.tool_name in tools), None)


def _last_event(events: list[AuditEvent], tools: tuple[str, ...]):
    return next((event for event in reversed(events) if event.tool_name in tools), None)


def _readable_timeline(events: list[AuditEvent]) -> list[dict]:
    """The audit trail as people read it: who did what, when (the site's time zone is the reader's)."""
    names = people_names(event.actor_id for event in events if event.actor_type == "HUMAN")
    rows = []
    for event in events:
        if event.actor_type == "HUMAN":
            who = names.get(str(event.actor_id)) or "A team member"
        elif event.actor_type == "AGENT":
            who = "The dispatch assistant"
        else:
            who = "Real Dispatch"
        rows.append(
            {"at": iso(event.created_at), "who": who, "text": f"{who} {event_phrase(event.tool_name, event.payload)}"}
        )
    return rows


def _photo(item: Evidence) -> dict:
    metadata = item.metadata or {}
    return {
        "evidence_id": str(item.id),
        "evidence_key": item.evidence_key or None,
        "file": item.file.name or None,
        "thumbnail": metadata.get("thumbnail") or None,
        "content_type": item.content_type or None,
        "captured_at": metadata.get("exif_taken_at") or metadata.get("captured_at") or None,
        "uploaded_at": iso(item.created_at),
        "gps": metadata.get("gps") or None,
        "sha256": item.sha256 or None,
    }


def _labor(row: LaborEntry, ticket, profile) -> dict:
    """A labor entry with the hourly rate it bills at (its own, or its rate class's) and its amount."""
    when = row.worked_at or row.created_at
    price = labor_price(ticket, row.minutes, when=when, rate_cents=row.rate_cents, profile=profile)
    return {
        "minutes": row.minutes,
        "rate_cents": price.rate_cents,
        "rate_class": price.item_code,
        "rate_set_by_office": row.rate_cents is not None,
        "amount_cents": price.amount_cents,
        "description": row.description,
        "technician_id": str(row.technician_id) if row.technician_id else None,
        "technician": row.technician.display_name if row.technician_id else None,
        "worked_at": iso(when),
    }


def _checklist_items(keys: list[str], answered: dict) -> list[dict]:
    """Every checklist key the template asks for and any other one answered, with the answer."""
    ordered = list(keys) + [key for key in answered if key not in keys]
    return [
        {
            "key": key,
            "label": key.replace("_", " ").capitalize(),
            "done": answered.get(key) is True,
            "required": key in keys,
        }
        for key in ordered
    ]


def packet_compile(*, ticket, through_event: AuditEvent | None, closure: Closure | None = None) -> dict:
    """Everything a job leaves behind, in one JSON-ready dict: the audit trail up to `through_event`
    and the job's records as they stand. A close's packet is compiled once the close has committed,
    from its closure (why, overrides) and its audit event (who, when), so the timeline, state history
    and actors include the close itself; a packet issued before the close (invoice approval, a
    re-render) has no closure."""
    overrides = (closure.overrides or []) if closure else []
    reason = closure.reason if closure else ""
    close_event = through_event if closure else None
    site = ticket.site
    account = ticket.account
    events_query = AuditEvent.objects.filter(ticket=ticket).order_by("seq")
    if through_event is not None:
        events_query = events_query.filter(seq__lte=through_event.seq)
    events = list(events_query)
    transitions = list(StateTransition.objects.filter(ticket=ticket).order_by("seq"))
    evidence = list(Evidence.objects.filter(ticket=ticket).order_by("created_at", "id"))
    submissions = list(ChecklistResult.objects.filter(ticket=ticket).order_by("created_at", "id"))
    latest = submissions[-1] if submissions else None
    exceptions = list(EvidenceException.objects.filter(ticket=ticket).order_by("created_at", "id"))
    template = IncidentTemplate.objects.filter(incident_type=(ticket.incident_type or "").strip().upper()).first()
    signature_items = [
        item
        for item in evidence
        if item.kind == "SIGNATURE" or (item.evidence_key == "signature_or_no_signature_reason" and item.file)
    ]
    signatures = [str(item.id) for item in signature_items]
    signed = signature_items[-1] if signature_items else None
    technician = ticket.assigned_tech
    checked_in = _first_event(events, ("tech.check_in",))
    completed = _last_event(events, ("tech.complete", "closeout.candidate", "dispatch.manual_bypass"))
    reviews = list(QaReview.objects.filter(ticket=ticket).order_by("created_at", "id"))
    approvals = list(Approval.objects.filter(ticket=ticket).order_by("created_at", "id"))
    labor_rows = list(
        LaborEntry.objects.filter(ticket=ticket).select_related("technician").order_by("created_at", "id")
    )
    # Display names of everyone the packet names by actor id (one lookup for all of them).
    names = people_names(
        [row.granted_by for row in exceptions]
        + [item.created_by for item in evidence]
        + [row.reviewer for row in reviews]
        + [row.decided_by for row in approvals]
        + [row.submitted_by for row in submissions]
        + [override.get("by", "") for override in overrides]
    )
    profile = billing_settings()

    actors: dict[tuple, dict] = {}
    for event in events:
        actors.setdefault(
            (event.actor_id, event.actor_role),
            {"actor_id": event.actor_id, "actor_role": event.actor_role, "actor_type": event.actor_type},
        )

    all_overrides = [
        {**override, "by_name": names.get(str(override.get("by", ""))) or override.get("by")} for override in overrides
    ]
    all_overrides += [
        {
            "kind": "manual_bypass",
            "bypass_rationale": row.bypass_rationale,
            "by": row.submitted_by,
            "by_name": names.get(str(row.submitted_by)) or row.submitted_by,
            "role": row.submitted_by_role,
            "at": iso(row.created_at),
            "bypassed": row.gate,
        }
        for row in submissions
        if row.is_bypass
    ]

    invoice = Invoice.objects.filter(ticket=ticket).exclude(status=Invoice.Status.SUPERSEDED).first()
    packet = {
        "packet_version": PACKET_VERSION,
        "company": company_block(profile),
        "header": {
            "ticket_id": str(ticket.id),
            "reference": ticket.short_ref,
            "state": ticket.state,
            "closed_at": iso(close_event.created_at) if close_event else None,
            "closed_by": (
                {
                    "actor_id": close_event.actor_id,
                    "actor_role": close_event.actor_role,
                    "actor_type": close_event.actor_type,
                }
                if close_event
                else None
            ),
            "close_tool": close_event.tool_name if close_event else None,
            "close_reason": reason or None,
            "priority": ticket.priority,
            "incident_type": ticket.incident_type or None,
            "incident_name": template.name if template else None,
            "template_version": (latest.gate or {}).get("template_version") if latest else None,
            "through_seq": through_event.seq if through_event else None,
        },
        "account": {"id": str(account.id), "name": account.name},
        "customer": {"name": ticket.customer_name or account.name, "account": account.name},
        "site": {
            "id": str(site.id),
            "name": site.name,
            "address": site.address,
            "timezone": site.timezone,
            "service_region": site.service_region,
            # The access instructions, not the door code: the packet travels by email.
            "access_instructions": site.access_instructions or None,
            "hours": site.hours or None,
        },
        "asset": _asset(ticket),
        "technician": {"id": str(technician.id), "name": technician.display_name} if technician else None,
        "visit": {
            "scheduled_start": iso(ticket.scheduled_start),
            "scheduled_end": iso(ticket.scheduled_end),
            "arrived_at": iso(checked_in.created_at) if checked_in else None,
            "completed_at": iso(completed.created_at) if completed else None,
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
        "timeline_readable": _readable_timeline(events),
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
        "photos": [_photo(item) for item in evidence if item.kind == "PHOTO"],
        "notes": [
            {
                "evidence_id": str(item.id),
                "evidence_key": item.evidence_key or None,
                "text": (item.metadata or {}).get("text") or "",
                "by": item.created_by,
                "by_name": names.get(str(item.created_by)) or item.created_by,
                "at": iso(item.created_at),
            }
            for item in evidence
            if item.kind == "NOTE"
        ],
        "checklist": _submission(latest) if latest else None,
        "checklist_items": _checklist_items(
            list(template.required_checklist_keys) if template else [],
            (latest.checklist_status or {}) if latest else {},
        ),
        "submissions": [_submission(row) for row in submissions],
        "signature": {
            "captured": bool(signatures),
            "evidence_ids": signatures,
            "no_signature_reason": (latest.no_signature_reason or None) if latest else None,
            "file": signed.file.name or None if signed else None,
            "signer_name": (signed.metadata or {}).get("signer_name") or (signed.metadata or {}).get("signed_by")
            if signed
            else None,
            "signed_at": (signed.metadata or {}).get("signed_at") or iso(signed.created_at) if signed else None,
        },
        "qa_reviews": [
            {
                "id": str(row.id),
                "result": row.result,
                "notes": row.notes,
                "reviewed_at": iso(row.reviewed_at),
                "reviewer": row.reviewer,
                "reviewer_name": names.get(str(row.reviewer)) or row.reviewer,
                "reviewer_role": row.reviewer_role,
            }
            for row in reviews
        ],
        "labor": [_labor(row, ticket, profile) for row in labor_rows],
        "parts": [
            {
                "sku": row.price_book_item.sku if row.price_book_item_id else None,
                "description": row.description or (row.price_book_item.name if row.price_book_item_id else ""),
                "quantity": str(row.quantity),
                "unit_cents": row.unit_cents
                if row.unit_cents is not None
                else (row.price_book_item.unit_cents if row.price_book_item_id else None),
            }
            for row in PartUsage.objects.filter(ticket=ticket)
            .select_related("price_book_item")
            .order_by("created_at", "id")
        ],
        "approvals": [
            {
                "id": str(row.id),
                "kind": row.kind,
                "status": row.status,
                "amount_cents": row.amount_cents,
                "reason": row.reason,
                "requested_by": row.requested_by,
                "decided_by": row.decided_by or None,
                "decided_by_name": (names.get(str(row.decided_by)) or row.decided_by) if row.decided_by else None,
                "decision_notes": row.decision_notes or None,
                "created_at": iso(row.created_at),
                "decided_at": iso(row.decided_at),
            }
            for row in approvals
        ],
        "invoice": invoice_serialize(invoice),
        "evidence_exceptions": [
            {
                "id": str(row.id),
                "reason": row.reason,
                "evidence_refs": row.evidence_refs,
                "expires_at": iso(row.expires_at),
                "granted_by": row.granted_by,
                "granted_by_name": names.get(str(row.granted_by)) or row.granted_by,
                "granted_by_role": row.granted_by_role,
                "created_at": iso(row.created_at),
            }
            for row in exceptions
        ],
        "overrides": all_overrides,
        "actors": sorted(actors.values(), key=lambda a: (a["actor_role"], a["actor_id"])),
    }
    return plain(packet)
