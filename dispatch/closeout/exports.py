"""The invoice as documents: the customer-facing PDF, JSON and the CSV an accounting import takes.

All three are built from the same stored invoice version, so they never disagree. An approved
invoice's PDF is the one stored when it was approved; a draft's is rendered when asked for.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.files.storage import default_storage
from django.utils import timezone

from dispatch.tickets.models import AuditEvent

from .billing import NONTAX, billing_settings, company_block
from .evidence_files import storage_reading
from .gate import template_for
from .models import Invoice
from .packets import invoice_serialize, iso

COMPLETION_TOOLS = ("tech.complete", "closeout.candidate", "dispatch.manual_bypass")
CSV_COLUMNS = (
    "invoice_number",
    "invoice_date",
    "due_date",
    "customer",
    "job_reference",
    "line",
    "item",
    "description",
    "quantity",
    "rate",
    "amount",
    "tax_code",
    "tax_amount",
    "currency",
    "status",
)


def invoice_dates(invoice: Invoice, profile) -> tuple[date, date]:
    """The invoice's date (its approval's, a draft's today) in the site's time zone, and its due date."""
    issued = (invoice.approved_at or timezone.now()).astimezone(ZoneInfo(invoice.ticket.site.timezone)).date()
    return issued, issued + timedelta(days=profile.payment_terms_days)


def invoice_document(invoice: Invoice) -> dict:
    """Everything the invoice PDF shows: who bills, who pays, where, for which job, the lines."""
    ticket = invoice.ticket
    site = ticket.site
    profile = billing_settings()
    issued, due = invoice_dates(invoice, profile)
    template = template_for(ticket.incident_type)
    completed = (
        AuditEvent.objects.filter(ticket=ticket, tool_name__in=COMPLETION_TOOLS)
        .order_by("-seq")
        .only("created_at")
        .first()
    )
    body = invoice_serialize(invoice)
    body["supersedes_number"] = invoice.supersedes.number if invoice.supersedes_id else None
    terms = profile.invoice_terms or f"Payment due within {profile.payment_terms_days} days of the invoice date."
    return {
        "company": company_block(profile),
        "bill_to": {
            "name": ticket.customer_name or ticket.account.name,
            "account": ticket.account.name,
            "email": ticket.account.billing_email or ticket.customer_email,
        },
        "site": {"name": site.name, "address": site.address},
        "job": {
            "reference": ticket.short_ref,
            "summary": ticket.summary,
            "incident_name": template.name if template else (ticket.incident_type or ""),
            "completed_at": iso(completed.created_at) if completed else None,
            "technician": ticket.assigned_tech.display_name if ticket.assigned_tech_id else None,
        },
        "issued_on": issued.isoformat(),
        "due_on": due.isoformat(),
        "terms": terms,
        "timezone": site.timezone,
        "invoice": body,
    }


def invoice_pdf_bytes(invoice: Invoice) -> bytes:
    """The invoice's PDF: as stored when approved, else rendered now from the draft."""
    if invoice.status != Invoice.Status.DRAFT and invoice.pdf:
        with storage_reading(), default_storage.open(invoice.pdf.name, "rb") as handle:
            return handle.read()
    from .documents.invoice_pdf import invoice_pdf_render

    return invoice_pdf_render(invoice_document(invoice)).data


def _rate(unit_cents: int) -> str:
    return f"{Decimal(unit_cents) / 100:.2f}"


def invoice_csv(invoices) -> str:
    """One row per invoice line (with its share of tax), in columns an accounting import maps. The
    same few queries for one invoice or a year of them."""
    profile = billing_settings()
    rows = (
        Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices])
        .select_related("ticket__site", "ticket__account")
        .prefetch_related("lines")
        .order_by("number")
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for invoice in rows:
        issued, due = invoice_dates(invoice, profile)
        lines = sorted(invoice.lines.all(), key=lambda line: line.position)
        shares = _tax_shares(invoice, lines)
        for line, tax in zip(lines, shares):
            writer.writerow(
                [
                    invoice.number,
                    issued.isoformat(),
                    due.isoformat(),
                    _cell(invoice.ticket.account.name),
                    invoice.ticket.short_ref,
                    line.position,
                    _cell(line.item_code),
                    _cell(line.description),
                    f"{line.quantity:.2f}",
                    _rate(line.unit_cents),
                    _rate(line.total_cents),
                    line.tax_code or NONTAX,
                    _rate(tax),
                    invoice.currency,
                    invoice.status,
                ]
            )
    return out.getvalue()


def _tax_shares(invoice: Invoice, lines: list) -> list[int]:
    """Each line's part of the invoice's labor and parts tax, in whole cents, in proportion to its
    amount: the floor of each share, then the cents left over to the largest remainders, so the
    shares are never negative and add up to the invoice's tax exactly."""
    shares = [0] * len(lines)
    for group, total_tax in (("LABOR", invoice.labor_tax_cents), ("PARTS", invoice.parts_tax_cents)):
        taxed = [i for i, line in enumerate(lines) if line.taxable and (line.kind == "PART") == (group == "PARTS")]
        base = sum(lines[i].total_cents for i in taxed)
        if not taxed or base <= 0 or total_tax <= 0:
            continue
        remainders = []
        for i in taxed:
            shares[i], remainder = divmod(total_tax * lines[i].total_cents, base)
            remainders.append((remainder, -i))
        left = total_tax - sum(shares[i] for i in taxed)
        for _remainder, negative_index in sorted(remainders, reverse=True)[:left]:
            shares[-negative_index] += 1
    return shares


def _cell(value: str) -> str:
    """Text as an accounting import may take it: no control or invisible formatting characters (a
    technician's labor note reaches a line as typed), and never a formula (=, +, -, @ at the start)."""
    value = "".join(char for char in value if unicodedata.category(char) not in ("Cc", "Cf"))
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
