"""Invoice arithmetic: labor at rates, parts from the price book, tax, totals and the NTE check.

Everything is integer cents. Each line is rounded once (half up) and totals are sums of the
rounded lines, so the same inputs always give the same invoice, to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings

from dispatch.tickets.models import StateTransition
from dispatch.tickets.states import TicketState

from .models import InvoiceLine, LaborEntry, PartUsage

DEFAULT_LABOR_RATE_CENTS = 12500  # per hour
DEFAULT_LABOR_TAX_RATE_BPS = 0
DEFAULT_PARTS_TAX_RATE_BPS = 875


def labor_rate_cents() -> int:
    return int(getattr(settings, "DISPATCH_LABOR_RATE_CENTS", DEFAULT_LABOR_RATE_CENTS))


def labor_tax_bps() -> int:
    return int(getattr(settings, "DISPATCH_LABOR_TAX_RATE_BPS", DEFAULT_LABOR_TAX_RATE_BPS))


def parts_tax_bps() -> int:
    return int(getattr(settings, "DISPATCH_PARTS_TAX_RATE_BPS", DEFAULT_PARTS_TAX_RATE_BPS))


def cents_round(value: Decimal) -> int:
    return int(value.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def tax_cents(amount_cents: int, bps: int) -> int:
    return cents_round(Decimal(amount_cents) * Decimal(bps) / Decimal(10000))


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    quantity: Decimal
    unit_cents: int
    total_cents: int
    taxable: bool


@dataclass(frozen=True)
class InvoiceTotals:
    lines: list[LineSpec]
    labor_cents: int
    parts_cents: int
    fees_cents: int
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    nte_cents: int | None
    exceeds_nte: bool
    notes: list[str] = field(default_factory=list)


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / Decimal(60)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def labor_line(minutes: int, rate_cents: int, description: str) -> LineSpec:
    # The amount comes from the minutes, not the rounded hours shown on the line.
    total = cents_round(Decimal(minutes) * Decimal(rate_cents) / Decimal(60))
    return LineSpec(InvoiceLine.Kind.LABOR, description, _hours(minutes), rate_cents, total, labor_tax_bps() > 0)


def minutes_in_progress(ticket) -> int:
    """Whole minutes (rounded up) the ticket spent IN_PROGRESS, over every visit."""
    seconds = 0.0
    entered = None
    for row in StateTransition.objects.filter(ticket=ticket).order_by("seq"):
        if row.to_state == TicketState.IN_PROGRESS:
            entered = row.created_at
        elif row.from_state == TicketState.IN_PROGRESS and entered is not None:
            seconds += (row.created_at - entered).total_seconds()
            entered = None
    return math.ceil(seconds / 60) if seconds > 0 else 0


def invoice_compute(ticket, *, template: Callable[[], Any] | None = None) -> InvoiceTotals:
    """The invoice a ticket's recorded labor and parts add up to. `template` returns the
    incident template; it is only asked for when neither labor nor time on site is recorded."""
    lines: list[LineSpec] = []
    notes: list[str] = []
    default_rate = labor_rate_cents()

    entries = list(LaborEntry.objects.filter(ticket=ticket).select_related("technician").order_by("created_at", "id"))
    if entries:
        for entry in entries:
            who = f" ({entry.technician.display_name})" if entry.technician_id else ""
            lines.append(
                labor_line(entry.minutes, entry.rate_cents or default_rate, (entry.description or "Labor") + who)
            )
    else:
        # No labor was logged: bill the time the job was in progress, or the template's
        # typical duration when there is no such time on record.
        minutes = minutes_in_progress(ticket)
        source = "time on site (check-in to completion)"
        found = template() if minutes == 0 and template is not None else None
        if found is not None:
            minutes = found.default_duration_minutes
            source = f"standard duration for {found.incident_type}"
        if minutes:
            lines.append(labor_line(minutes, default_rate, f"Labor — {source}"))
            notes.append(f"No labor entries were recorded; labor is billed from the {source}.")

    for usage in PartUsage.objects.filter(ticket=ticket).select_related("price_book_item").order_by("created_at", "id"):
        item = usage.price_book_item
        unit = usage.unit_cents if usage.unit_cents is not None else (item.unit_cents if item else 0)
        description = usage.description or (item.name if item else "Part")
        if item:
            description = f"{description} [{item.sku}]"
        quantity = Decimal(usage.quantity)
        lines.append(
            LineSpec(
                InvoiceLine.Kind.PART,
                description,
                quantity,
                unit,
                cents_round(quantity * Decimal(unit)),
                item.taxable if item else True,
            )
        )

    labor = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.LABOR)
    parts = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.PART)
    fees = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.FEE)
    taxable_parts = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.PART and line.taxable)
    tax = tax_cents(labor, labor_tax_bps()) + tax_cents(taxable_parts, parts_tax_bps())
    subtotal = labor + parts + fees
    total = subtotal + tax
    nte = ticket.nte_cents
    exceeds = nte is not None and total > nte
    if exceeds:
        notes.append(
            f"Total {total / 100:.2f} {ticket.currency} exceeds the not-to-exceed amount "
            f"{nte / 100:.2f} by {(total - nte) / 100:.2f}: get approval before sending."
        )
    return InvoiceTotals(
        lines=lines,
        labor_cents=labor,
        parts_cents=parts,
        fees_cents=fees,
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=total,
        nte_cents=nte,
        exceeds_nte=exceeds,
        notes=notes,
    )
