"""Labor and parts logged on a job, and the invoice draft built from them (finance's review of
the draft, its approval and corrections are invoice_review.py's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.commands import command
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from ..billing import (
    invoice_compute,
)
from ..gate import template_for
from ..models import Invoice, InvoiceLine, LaborEntry, PartUsage, PriceBookItem
from .inputs import invalid, moment, text

BILLING_GENERATE_INVOICE = command(
    "billing.generate_invoice", ["finance"], [TicketState.VERIFIED], TicketState.INVOICED, "Generate invoice draft"
)
# Beyond the contract: the technician's labor and parts, which the invoice draft is built from.
WORK_LOGGED_STATES = [
    TicketState.ON_SITE,
    TicketState.IN_PROGRESS,
    TicketState.ON_HOLD,
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
]
LABOR_ADD = command("closeout.add_labor", ["technician", "dispatcher"], WORK_LOGGED_STATES, None, "Log labor")
PART_ADD = command("closeout.add_part", ["technician", "dispatcher"], WORK_LOGGED_STATES, None, "Log a part")
LABOR_UPDATE = command("closeout.update_labor", ["technician", "dispatcher"], WORK_LOGGED_STATES, None, "Edit labor")
MAX_LABOR_MINUTES = 24 * 60
# A phone's clock may run a little ahead of the server's.
WORKED_AT_SLACK = timedelta(minutes=5)


def _office_only(actor: Actor, **given) -> None:
    """The labor rate and whose time it was are the office's to set: a technician logs their own
    minutes, and the invoice draft prices them at the company's rate."""
    if actor.role != Role.TECHNICIAN:
        return
    for field, value in given.items():
        if value is not None:
            raise DispatchError(
                "FIELD_NOT_ALLOWED_FOR_ROLE",
                f"A technician cannot set '{field}'; dispatch does.",
                status=403,
                dimension="role",
                details={"field": field},
            )


def _whole_cents(value, field: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise invalid(f"Field '{field}' must be a non-negative whole number.", field)


def _minutes_check(minutes) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= MAX_LABOR_MINUTES:
        raise invalid(f"Field 'minutes' must be a whole number from 1 to {MAX_LABOR_MINUTES}.", "minutes")


def labor_entry_not_found(labor_entry_id) -> DispatchError:
    return DispatchError(
        "LABOR_ENTRY_NOT_FOUND",
        f"No labor entry {labor_entry_id} on this ticket.",
        status=404,
        dimension="request",
        details={"labor_entry_id": str(labor_entry_id)[:40]},
    )


def labor_add(
    *,
    actor: Actor,
    ticket_id,
    minutes: int,
    rate_cents: int | None = None,
    description: str = "",
    technician_id=None,
    worked_at=None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Log time worked on a job (the technician's own time unless another is named). `worked_at`
    is when the work started, which decides its rate class; left out, it is now."""
    _office_only(actor, rate_cents=rate_cents, technician_id=technician_id)
    _minutes_check(minutes)
    started = moment(worked_at, "worked_at", required=False)
    if started is not None and started > timezone.now() + WORKED_AT_SLACK:
        raise invalid("Field 'worked_at' is in the future: log work once it has started.", "worked_at")
    _whole_cents(rate_cents, "rate_cents")
    description = text(description, "description", max_length=300)

    with ticket_change(
        actor=actor,
        command=LABOR_ADD,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={
            "minutes": minutes,
            "rate_cents": rate_cents,
            "description": description,
            "worked_at": started.isoformat() if started else None,
        },
    ) as change:
        if started is not None and started < change.ticket.created_at - WORKED_AT_SLACK:
            raise invalid("Field 'worked_at' is before the job was opened.", "worked_at")
        entry = LaborEntry.objects.create(
            ticket=change.ticket,
            technician_id=technician_id or actor.technician_id or change.ticket.assigned_tech_id,
            minutes=minutes,
            rate_cents=rate_cents,
            description=description,
            worked_at=started,
            created_by=actor.actor_id,
        )
        change.audit_payload["labor_entry_id"] = entry.id
        change.result = entry
    return change.outcome


def labor_update(
    *,
    actor: Actor,
    ticket_id,
    labor_entry_id,
    minutes: int | None = None,
    description: str | None = None,
    expected_version: int | None = None,
    request: dict | None = None,
) -> Outcome:
    """Correct a labor entry of this ticket (minutes and/or description); the audit event records
    each changed field's old and new value. None leaves a field as it is; "" clears the description."""
    if minutes is None and description is None:
        raise invalid("Give the minutes or the description to change.", "minutes")
    if minutes is not None:
        _minutes_check(minutes)
    if description is not None:
        description = text(description, "description", max_length=300)
    # An id that is not a whole number names no entry: the same 404 as another ticket's entry.
    entry_key = labor_entry_id if isinstance(labor_entry_id, int) and not isinstance(labor_entry_id, bool) else None
    # ASCII digits only ("²" is a digit to str.isdigit but not to int), and no longer than a bigint.
    raw_key = labor_entry_id.strip() if isinstance(labor_entry_id, str) else ""
    if entry_key is None and raw_key.isascii() and raw_key.isdecimal() and len(raw_key) <= 19:
        entry_key = int(raw_key)

    with ticket_change(
        actor=actor,
        command=LABOR_UPDATE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"labor_entry_id": entry_key},
    ) as change:
        # Looked up under the ticket's lock and through the ticket, so an entry of another job
        # (which this actor may not be allowed to touch) is never found, let alone changed.
        entries = LaborEntry.objects.filter(ticket=change.ticket)
        if actor.role == Role.TECHNICIAN:
            # A technician corrects their own time, never a colleague's or the office's.
            entries = entries.filter(technician_id=actor.technician_id)
        entry = entries.filter(pk=entry_key).first() if entry_key is not None and 0 < entry_key < 2**63 else None
        if entry is None:
            raise labor_entry_not_found(labor_entry_id)
        changes = {}
        for name, new in (("minutes", minutes), ("description", description)):
            old = getattr(entry, name)
            if new is not None and new != old:
                changes[name] = {"old": old, "new": new}
                setattr(entry, name, new)
        if not changes:
            raise invalid("Nothing changed: the entry already has these values.", "labor_entry_id")
        entry.save(update_fields=list(changes))
        change.audit_payload["changes"] = changes
        change.result = entry
    return change.outcome


def part_add(
    *,
    actor: Actor,
    ticket_id,
    quantity=1,
    sku: str | None = None,
    description: str = "",
    unit_cents: int | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Log a part used on a job, from the price book (by SKU) or described with its own price
    (a part bought on the way, priced from its receipt; the invoice draft is reviewed)."""
    try:
        qty = Decimal(str(quantity)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise invalid("Field 'quantity' must be a number.", "quantity") from None
    if not qty.is_finite() or not Decimal("0") < qty <= Decimal("10000"):
        raise invalid("Field 'quantity' must be more than 0 and at most 10000.", "quantity")
    _whole_cents(unit_cents, "unit_cents")
    sku = text(sku, "sku", max_length=64)
    description = text(description, "description", max_length=300)
    item = None
    if sku:
        item = PriceBookItem.objects.filter(sku=sku, active=True).first()
        if item is None:
            raise DispatchError("PRICE_BOOK_ITEM_NOT_FOUND", f"No active price book item {sku}.", status=404)
    elif not description or unit_cents is None:
        raise invalid("A part needs a price book SKU, or a description and a unit price.", "sku")

    with ticket_change(
        actor=actor,
        command=PART_ADD,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"quantity": str(qty), "sku": sku or None, "description": description, "unit_cents": unit_cents},
    ) as change:
        usage = PartUsage.objects.create(
            ticket=change.ticket,
            price_book_item=item,
            description=description,
            quantity=qty,
            unit_cents=unit_cents,
            created_by=actor.actor_id,
        )
        change.audit_payload["part_usage_id"] = usage.id
        change.result = usage
    return change.outcome


@dataclass(frozen=True)
class InvoiceWritten:
    """What an invoice action leaves: the invoice version and its lines."""

    invoice: Invoice
    lines: list[InvoiceLine]


def invoice_current(ticket) -> Invoice | None:
    """The ticket's current invoice version (its draft, or the approved one), if any."""
    return Invoice.objects.filter(ticket=ticket).exclude(status=Invoice.Status.SUPERSEDED).first()


def invoice_number_for(ticket, version: int) -> str:
    base = f"INV-{ticket.id.hex[:12].upper()}"
    return base if version == 1 else f"{base}-{version}"


def invoice_sums_apply(invoice: Invoice, sums: dict) -> None:
    for name, value in sums.items():
        setattr(invoice, name, value)


def invoice_lines_write(invoice: Invoice, specs) -> list[InvoiceLine]:
    return InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            kind=line.kind,
            item_code=line.item_code[:64],
            description=line.description[:300],
            quantity=line.quantity,
            unit_cents=line.unit_cents,
            total_cents=line.total_cents,
            taxable=line.taxable,
            tax_code=line.tax_code[:60],
        )
        for position, line in enumerate(specs, start=1)
    )


def invoice_supersede(previous: Invoice) -> None:
    previous.status = Invoice.Status.SUPERSEDED
    previous.superseded_at = timezone.now()
    previous.save(update_fields=["status", "superseded_at", "updated_at"])


def invoice_generate(
    *, actor: Actor, ticket_id, request: dict | None = None, expected_version: int | None = None
) -> Outcome:
    """Build the invoice draft from labor, parts and the job type (VERIFIED -> INVOICED). After a
    reopen: a draft is rebuilt in place; an approved invoice is superseded by a new version."""
    with ticket_change(
        actor=actor,
        command=BILLING_GENERATE_INVOICE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
    ) as change:
        ticket = change.ticket
        totals = invoice_compute(ticket, template=lambda: template_for(ticket.incident_type))
        current = invoice_current(ticket)
        if current is not None and current.status == Invoice.Status.DRAFT:
            invoice = current
            invoice.lines.all().delete()
        else:
            # The first invoice is version 1; after that there is always a current one to follow.
            version = current.version + 1 if current is not None else 1
            invoice = Invoice(
                ticket=ticket, number=invoice_number_for(ticket, version), version=version, supersedes=current
            )
            if current is not None:
                invoice_supersede(current)
        invoice.currency = ticket.currency
        invoice_sums_apply(
            invoice,
            {
                "labor_cents": totals.labor_cents,
                "parts_cents": totals.parts_cents,
                "fees_cents": totals.fees_cents,
                "subtotal_cents": totals.subtotal_cents,
                "labor_tax_cents": totals.labor_tax_cents,
                "parts_tax_cents": totals.parts_tax_cents,
                "tax_cents": totals.tax_cents,
                "total_cents": totals.total_cents,
                "exceeds_nte": totals.exceeds_nte,
            },
        )
        invoice.tax_jurisdiction = totals.tax.jurisdiction
        invoice.labor_tax_bps = totals.tax.labor_bps
        invoice.parts_tax_bps = totals.tax.parts_bps
        invoice.nte_cents = totals.nte_cents
        invoice.approval_refs = totals.approval_refs
        invoice.notes = totals.notes
        invoice.status = Invoice.Status.DRAFT
        invoice.created_by = invoice.created_by or actor.actor_id
        invoice.save(force_insert=invoice is not current)
        lines = invoice_lines_write(invoice, totals.lines)
        change.transition(TicketState.INVOICED)
        change.audit_payload.update(
            {
                "invoice_generated": True,
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "version": invoice.version,
                "supersedes": str(current.id) if current is not None and current.pk != invoice.pk else None,
                "total_cents": invoice.total_cents,
                "exceeds_nte": invoice.exceeds_nte,
            }
        )
        change.result = InvoiceWritten(invoice, lines)
    return change.outcome
