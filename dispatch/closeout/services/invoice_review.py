"""Finance's review of a job's invoice: edit the draft's lines, approve it (from then on it never
changes; its PDF is stored, a packet version issued and the customer emailed both), and correct an
approved invoice by a new version that supersedes it."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from decimal import Decimal, InvalidOperation

from django.core.files.base import ContentFile
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.messaging.services import outbox_enqueue
from dispatch.tickets.commands import command
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from ..billing import NONTAX, LineSpec, TaxSpec, billing_settings, cents_round, company_block, invoice_totals, nte_note
from ..evidence_files import NOT_STORED, storage_call
from ..models import Invoice, InvoiceLine
from .inputs import invalid, text
from .invoicing import (
    InvoiceWritten,
    invoice_current,
    invoice_lines_write,
    invoice_number_for,
    invoice_sums_apply,
    invoice_supersede,
)
from .packet_versions import packet_issue_in

# Beyond the contract: finance's review. A draft is edited and approved; an approved invoice is
# corrected only by a new version. Invoices outlive the close, so these work on closed jobs too.
INVOICE_REVIEW_STATES = [TicketState.INVOICED, TicketState.CLOSED]
BILLING_EDIT_INVOICE = command("billing.edit_invoice", ["finance"], INVOICE_REVIEW_STATES, None, "Edit invoice draft")
BILLING_APPROVE_INVOICE = command(
    "billing.approve_invoice", ["finance"], INVOICE_REVIEW_STATES, None, "Approve invoice"
)
BILLING_REVISE_INVOICE = command(
    "billing.revise_invoice", ["finance"], INVOICE_REVIEW_STATES, None, "Correct an approved invoice"
)


def invoice_not_editable(invoice: Invoice | None) -> DispatchError:
    if invoice is None:
        return DispatchError("INVOICE_NOT_FOUND", "This ticket has no invoice yet.", status=404, dimension="request")
    return DispatchError(
        "INVOICE_NOT_DRAFT",
        f"Invoice {invoice.number} is {invoice.get_status_display().lower()}: it never changes. "
        "Start a corrected version (billing.revise_invoice).",
        status=409,
        dimension="state",
        details={"invoice_id": str(invoice.id), "status": invoice.status},
    )


def same_invoice(invoice_id, invoice: Invoice) -> bool:
    """Whether an id a caller gave names this invoice (any spelling of the UUID)."""
    try:
        return uuid.UUID(str(invoice_id)) == invoice.id
    except ValueError:
        return False


def invoice_not_current(current: Invoice) -> DispatchError:
    return DispatchError(
        "INVOICE_NOT_CURRENT",
        "That invoice version is not the ticket's current one; reload and try again.",
        status=409,
        dimension="state",
        details={"current_invoice_id": str(current.id)},
    )


def _draft_of(ticket, invoice_id) -> Invoice:
    """The ticket's current invoice, which must be a draft (and the one the caller names)."""
    invoice = invoice_current(ticket)
    if invoice is None:
        raise invoice_not_editable(None)
    if invoice_id is not None and not same_invoice(invoice_id, invoice):
        raise invoice_not_current(invoice)
    if invoice.status != Invoice.Status.DRAFT:
        raise invoice_not_editable(invoice)
    return invoice


def invisible_characters(value: str) -> bool:
    """Control characters and invisible formatting (bidi overrides, zero-width marks): on a bill
    they hide or reorder what is printed, and in a CSV they reach an accounting system."""
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in value)


LINE_KINDS = {kind.value for kind in InvoiceLine.Kind}
MAX_LINES = 200
MAX_LINE_CENTS = 10**11  # a billion dollars: anything larger is a typing error


def _line_spec(raw, index: int, tax: TaxSpec) -> LineSpec:
    where = f"lines[{index}]"
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object.", "lines")
    kind = raw.get("kind")
    if kind not in LINE_KINDS:
        raise invalid(f"{where}.kind must be one of {', '.join(sorted(LINE_KINDS))}.", "lines")
    description = text(raw.get("description"), "description", required=True, max_length=300)
    item_code = text(raw.get("item_code") or "", "item_code", max_length=64)
    if invisible_characters(description) or invisible_characters(item_code) or not description.strip():
        raise invalid(
            f"{where} has control or invisible formatting characters (or no visible text): an invoice line is "
            "printed and exported as typed.",
            "lines",
        )
    try:
        quantity = Decimal(str(raw.get("quantity", "1"))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise invalid(f"{where}.quantity must be a number.", "lines") from None
    if not quantity.is_finite() or not Decimal("0") < quantity <= Decimal("10000"):
        raise invalid(f"{where}.quantity must be more than 0 and at most 10000.", "lines")
    unit = raw.get("unit_cents")
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit <= MAX_LINE_CENTS:
        raise invalid(f"{where}.unit_cents must be a whole number of cents from 0.", "lines")
    taxable = raw.get("taxable", kind == InvoiceLine.Kind.PART)
    if not isinstance(taxable, bool):
        raise invalid(f"{where}.taxable must be true or false.", "lines")
    group = "PARTS" if kind == InvoiceLine.Kind.PART else "LABOR"
    bps = tax.parts_bps if group == "PARTS" else tax.labor_bps
    return LineSpec(
        kind,
        description,
        quantity,
        unit,
        cents_round(quantity * Decimal(unit)),
        taxable and bps > 0,
        item_code=item_code,
        tax_code=tax.code(group) if taxable else NONTAX,
    )


def invoice_lines_replace(
    *,
    actor: Actor,
    ticket_id,
    lines,
    invoice_id=None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Finance edits a draft: its lines become exactly `lines` (kind, description, quantity,
    unit_cents, taxable, item_code each) and the totals, taxes and NTE check follow. The audit
    event records the lines before and after."""
    if not isinstance(lines, list) or not 0 < len(lines) <= MAX_LINES:
        raise invalid(f"Field 'lines' must be a list of 1 to {MAX_LINES} lines.", "lines")
    with ticket_change(
        actor=actor,
        command=BILLING_EDIT_INVOICE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
    ) as change:
        invoice = _draft_of(change.ticket, invoice_id)
        tax = TaxSpec(invoice.tax_jurisdiction or "DEFAULT", "", invoice.labor_tax_bps, invoice.parts_tax_bps)
        specs = [_line_spec(raw, index, tax) for index, raw in enumerate(lines)]
        before = [_line_brief(line) for line in invoice.lines.order_by("position")]
        # The NTE note follows the totals: the one written for the old total goes, others stay.
        stale_note = nte_note(invoice.total_cents, invoice.nte_cents, invoice.currency) if invoice.exceeds_nte else None
        invoice.lines.all().delete()
        written = invoice_lines_write(invoice, specs)
        sums = invoice_totals(specs, tax, nte_cents=invoice.nte_cents)
        invoice_sums_apply(invoice, sums)
        invoice.notes = [note for note in invoice.notes if note != stale_note]
        if sums["exceeds_nte"]:
            invoice.notes.append(nte_note(sums["total_cents"], invoice.nte_cents, invoice.currency))
        invoice.save()
        change.audit_payload.update(
            {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "lines_before": before,
                "lines_after": [_line_brief(line) for line in written],
                "total_cents": invoice.total_cents,
            }
        )
        change.result = InvoiceWritten(invoice, written)
    return change.outcome


def _line_brief(line) -> dict:
    return {
        "kind": line.kind,
        "item_code": line.item_code,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_cents": line.unit_cents,
        "total_cents": line.total_cents,
        "taxable": line.taxable,
    }


def invoice_approve(
    *,
    actor: Actor,
    ticket_id,
    invoice_id=None,
    nte_override_reason: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Finance approves the draft: from now on it never changes. Its PDF is stored as approved, a
    closeout packet version is issued, and the customer is emailed both (when an email is on file).
    An invoice over the not-to-exceed amount needs the reason finance approves it anyway."""
    from ..exports import invoice_pdf_bytes

    why = text(nte_override_reason, "nte_override_reason", max_length=500)
    with ticket_change(
        actor=actor,
        command=BILLING_APPROVE_INVOICE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"nte_override_reason": why or None},
    ) as change:
        ticket = change.ticket
        invoice = _draft_of(ticket, invoice_id)
        if invoice.exceeds_nte and len(why) < 10:
            raise DispatchError(
                "INVOICE_EXCEEDS_NTE",
                f"Invoice {invoice.number} is over the not-to-exceed amount: approve an NTE increase "
                "first, or give nte_override_reason (10+ characters) to approve it anyway.",
                status=409,
                dimension="state",
                details={"total_cents": invoice.total_cents, "nte_cents": invoice.nte_cents},
            )
        if invoice.exceeds_nte:
            # The "get approval before sending" warning was finance's, and is answered now: the
            # customer's PDF shows the NTE and the approvals, the audit event the override's reason.
            warning = nte_note(invoice.total_cents, invoice.nte_cents, invoice.currency)
            invoice.notes = [note for note in invoice.notes if note != warning]
        invoice.status = Invoice.Status.APPROVED
        invoice.approved_at = timezone.now()
        invoice.approved_by = actor.actor_id
        data = invoice_pdf_bytes(invoice)
        # A store out of reach refuses the approval (503), and the transaction takes it all back.
        with storage_call(NOT_STORED):
            invoice.pdf.save(f"invoices/{ticket.id}/{invoice.number}.pdf", ContentFile(data), save=False)
        invoice.pdf_sha256 = hashlib.sha256(data).hexdigest()
        invoice.save()
        packet = packet_issue_in(change, reason=f"Invoice {invoice.number} approved")
        recipient = ticket.account.billing_email or ticket.customer_email
        # A packet whose PDF failed to render (a fault the back office sees on the packet) does
        # not hold up the invoice: the email then says only what it carries.
        packet_attached = packet.pdf_status == packet.PdfStatus.READY
        emailed = None
        if recipient:
            attachments = [
                {"name": f"{invoice.number}.pdf", "content_type": "application/pdf", "storage_name": invoice.pdf.name}
            ]
            if packet_attached:
                attachments.append(
                    {
                        "name": f"closeout-{ticket.short_ref}-v{packet.version}.pdf",
                        "content_type": "application/pdf",
                        "storage_name": packet.pdf_file.name,
                    }
                )
            emailed = outbox_enqueue(
                channel="EMAIL",
                recipient=recipient,
                subject=f"Invoice {invoice.number} for job {ticket.short_ref}",
                body=_invoice_email_body(ticket, invoice, packet_attached=packet_attached),
                ticket=ticket,
                attachments=attachments,
            )
        change.audit_payload.update(
            {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "version": invoice.version,
                "total_cents": invoice.total_cents,
                "invoice_pdf_sha256": invoice.pdf_sha256,
                "closeout_packet_id": str(packet.id),
                "packet_sha256": packet.sha256,
                "emailed_to": recipient or None,
                "packet_attached": packet_attached,
                "outbox_id": str(emailed.id) if emailed else None,
            }
        )
        change.result = InvoiceWritten(invoice, list(invoice.lines.order_by("position")))
    return change.outcome


def _invoice_email_body(ticket, invoice: Invoice, *, packet_attached: bool) -> str:
    profile = billing_settings()
    company = company_block(profile)["name"]
    amount = f"{invoice.total_cents / 100:,.2f} {invoice.currency}"
    replaces = f" It replaces invoice {invoice.supersedes.number}." if invoice.supersedes_id else ""
    packet = (
        f" and the closeout packet for job {ticket.short_ref}: what was done, photos, checklist and signature"
        if packet_attached
        else f" for job {ticket.short_ref}; the closeout packet follows separately"
    )
    return (
        f"Hello {ticket.customer_name or ticket.account.name},\n\n"
        f"Thank you for choosing {company}. Attached are invoice {invoice.number} ({amount}, due in "
        f"{profile.payment_terms_days} days){packet}.{replaces}\n\n"
        "Reply to this email with any question about the work or the invoice.\n\n"
        f"{company}"
    )


def invoice_revise(
    *,
    actor: Actor,
    ticket_id,
    reason: str,
    invoice_id=None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Correct an approved invoice: a new draft version with the same lines supersedes it (the
    approved one stays as it was, marked superseded). Finance then edits and approves the new one."""
    why = text(reason, "reason", required=True, max_length=500)
    with ticket_change(
        actor=actor,
        command=BILLING_REVISE_INVOICE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"reason": why},
    ) as change:
        ticket = change.ticket
        current = invoice_current(ticket)
        if current is None:
            raise invoice_not_editable(None)
        if invoice_id is not None and not same_invoice(invoice_id, current):
            raise invoice_not_current(current)
        if current.status != Invoice.Status.APPROVED:
            raise DispatchError(
                "INVOICE_NOT_APPROVED",
                f"Invoice {current.number} is still a draft: edit it instead of issuing a new version.",
                status=409,
                dimension="state",
                details={"invoice_id": str(current.id)},
            )
        old_lines = list(current.lines.order_by("position"))
        invoice_supersede(current)
        version = current.version + 1
        copied = {
            name: getattr(current, name)
            for name in (
                "currency",
                "labor_cents",
                "parts_cents",
                "fees_cents",
                "subtotal_cents",
                "labor_tax_cents",
                "parts_tax_cents",
                "tax_cents",
                "total_cents",
                "tax_jurisdiction",
                "labor_tax_bps",
                "parts_tax_bps",
                "nte_cents",
                "exceeds_nte",
                "approval_refs",
            )
        }
        invoice = Invoice.objects.create(
            ticket=ticket,
            number=invoice_number_for(ticket, version),
            version=version,
            supersedes=current,
            notes=[*current.notes, f"Corrects {current.number}: {why}"],
            created_by=actor.actor_id,
            **copied,
        )
        lines = InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=line.position,
                kind=line.kind,
                item_code=line.item_code,
                description=line.description,
                quantity=line.quantity,
                unit_cents=line.unit_cents,
                total_cents=line.total_cents,
                taxable=line.taxable,
                tax_code=line.tax_code,
            )
            for line in old_lines
        )
        change.audit_payload.update(
            {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "version": invoice.version,
                "supersedes": str(current.id),
                "superseded_number": current.number,
            }
        )
        change.result = InvoiceWritten(invoice, lines)
    return change.outcome
