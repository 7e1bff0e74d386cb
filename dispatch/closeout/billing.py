"""Invoice arithmetic: labor at rate classes, parts from the price book, the trip charge, tax by
the site's jurisdiction, totals and the NTE check.

Everything is integer cents in the ticket's currency. Each line is rounded once (half up) and
totals are sums of the rounded lines, so the same inputs always give the same invoice, to the cent.
The rules (rates, multipliers, business hours, trip charges, tax rates) are rows the admin edits:
BillingSettings, TaxRate and the incident templates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from dispatch.tickets.models import Approval, StateTransition
from dispatch.tickets.states import TicketState

from .models import BillingSettings, InvoiceLine, LaborEntry, PartUsage, TaxRate

NONTAX = "NONTAX"


def billing_settings() -> BillingSettings:
    """The company's billing rules (the one row, made from the environment's defaults at first use)."""
    profile = BillingSettings.objects.filter(pk=1).first()
    if profile is None:
        profile, _ = BillingSettings.objects.get_or_create(
            pk=1, defaults={"standard_rate_cents": int(getattr(settings, "DISPATCH_LABOR_RATE_CENTS", 12500))}
        )
    return profile


def company_block(profile: BillingSettings) -> dict:
    """Who bills: the invoice's and the packet's header."""
    return {
        "name": profile.company_name or settings.DISPATCH_COMPANY_NAME,
        "address": profile.company_address,
        "phone": profile.company_phone,
        "email": profile.company_email,
    }


def cents_round(value: Decimal) -> int:
    return int(value.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def tax_cents(amount_cents: int, bps: int) -> int:
    return cents_round(Decimal(amount_cents) * Decimal(bps) / Decimal(10000))


@dataclass(frozen=True)
class TaxSpec:
    jurisdiction: str
    name: str
    labor_bps: int
    parts_bps: int

    def code(self, kind: str) -> str:
        """The tax code of a labor or parts line (what an accounting import books it under)."""
        bps = self.labor_bps if kind == "LABOR" else self.parts_bps
        return f"{self.jurisdiction}:{kind}" if bps else NONTAX


def tax_for_site(site) -> TaxSpec:
    """The site's jurisdiction's rates; the default row when it names none (or an unknown one);
    the environment's rates when the table is empty."""
    wanted = Q(is_default=True) | Q(jurisdiction=site.tax_jurisdiction) if site.tax_jurisdiction else Q(is_default=True)
    rows = list(TaxRate.objects.filter(wanted)[:2])
    rate = next((row for row in rows if row.jurisdiction == site.tax_jurisdiction), None) or next(iter(rows), None)
    if rate is not None:
        return TaxSpec(rate.jurisdiction, rate.name, rate.labor_bps, rate.parts_bps)
    return TaxSpec(
        "DEFAULT",
        "Default",
        int(getattr(settings, "DISPATCH_LABOR_TAX_RATE_BPS", 0)),
        int(getattr(settings, "DISPATCH_PARTS_TAX_RATE_BPS", 875)),
    )


@dataclass(frozen=True)
class RateClass:
    code: str
    name: str
    multiplier: Decimal


STANDARD = "STANDARD"
AFTER_HOURS = "AFTER_HOURS"
EMERGENCY = "EMERGENCY"


def rate_class_for(when: datetime | None, *, priority: str, zone: ZoneInfo, profile: BillingSettings) -> RateClass:
    """Emergency work bills at the emergency multiplier; other work outside business hours (or on
    a weekend, when the company says so) at the after-hours one; the rest at the standard rate."""
    if priority == "EMERGENCY":
        return RateClass(EMERGENCY, "emergency", profile.emergency_multiplier)
    if when is not None:
        local = when.astimezone(zone)
        weekend = local.weekday() >= 5 and profile.weekends_after_hours
        if weekend or not profile.business_hours_start <= local.time() < profile.business_hours_end:
            return RateClass(AFTER_HOURS, "after-hours", profile.after_hours_multiplier)
    return RateClass(STANDARD, "standard", Decimal("1"))


@dataclass(frozen=True)
class LaborPrice:
    """What one stretch of labor bills: the hours shown on the line, the hourly rate, its class
    (a rate the office set on the entry is billed as given) and the amount."""

    hours: Decimal
    rate_cents: int
    item_code: str
    class_name: str
    amount_cents: int


def labor_price(ticket, minutes: int, *, when: datetime | None, rate_cents: int | None, profile) -> LaborPrice:
    """The one pricing of labor, for the invoice, the packet and the technician's page alike. The
    amount is the hours as shown (two decimals) times the rate, so a line's quantity times its rate
    is its amount, in the PDF, the CSV and after finance edits any other line."""
    hours = (Decimal(minutes) / Decimal(60)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if rate_cents is not None:
        code, name, rate = "LABOR-SET", "agreed", rate_cents
    else:
        found = rate_class_for(when, priority=ticket.priority, zone=ZoneInfo(ticket.site.timezone), profile=profile)
        code, name = f"LABOR-{found.code}", f"{found.name} rate"
        rate = cents_round(Decimal(profile.standard_rate_cents) * found.multiplier)
    return LaborPrice(hours, rate, code, name, cents_round(hours * Decimal(rate)))


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    quantity: Decimal
    unit_cents: int
    total_cents: int
    taxable: bool
    item_code: str = ""
    tax_code: str = ""


@dataclass(frozen=True)
class InvoiceTotals:
    lines: list[LineSpec]
    labor_cents: int
    parts_cents: int
    fees_cents: int
    subtotal_cents: int
    labor_tax_cents: int
    parts_tax_cents: int
    tax_cents: int
    total_cents: int
    tax: TaxSpec
    nte_cents: int | None
    exceeds_nte: bool
    approval_refs: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def labor_line(price: LaborPrice, description: str, *, tax: TaxSpec) -> LineSpec:
    return LineSpec(
        InvoiceLine.Kind.LABOR,
        description,
        price.hours,
        price.rate_cents,
        price.amount_cents,
        tax.labor_bps > 0,
        item_code=price.item_code,
        tax_code=tax.code("LABOR"),
    )


def in_progress_spans(ticket) -> list[tuple[datetime, datetime]]:
    """(start, end) of every visit the ticket spent IN_PROGRESS."""
    spans = []
    entered = None
    for row in StateTransition.objects.filter(ticket=ticket).order_by("seq"):
        if row.to_state == TicketState.IN_PROGRESS:
            entered = row.created_at
        elif row.from_state == TicketState.IN_PROGRESS and entered is not None:
            spans.append((entered, row.created_at))
            entered = None
    return spans


def minutes_in_progress(ticket) -> int:
    """Whole minutes (rounded up) the ticket spent IN_PROGRESS, over every visit."""
    seconds = sum((end - start).total_seconds() for start, end in in_progress_spans(ticket))
    return math.ceil(seconds / 60) if seconds > 0 else 0


def invoice_totals(lines: list[LineSpec], tax: TaxSpec, *, nte_cents: int | None) -> dict:
    """Sums, taxes and the NTE check of a list of lines: labor and fees at the labor rate, parts
    at the parts rate, each on its taxable lines only."""
    labor = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.LABOR)
    parts = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.PART)
    fees = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.FEE)
    taxable_service = sum(line.total_cents for line in lines if line.kind != InvoiceLine.Kind.PART and line.taxable)
    taxable_parts = sum(line.total_cents for line in lines if line.kind == InvoiceLine.Kind.PART and line.taxable)
    labor_tax = tax_cents(taxable_service, tax.labor_bps)
    parts_tax = tax_cents(taxable_parts, tax.parts_bps)
    subtotal = labor + parts + fees
    total = subtotal + labor_tax + parts_tax
    return {
        "labor_cents": labor,
        "parts_cents": parts,
        "fees_cents": fees,
        "subtotal_cents": subtotal,
        "labor_tax_cents": labor_tax,
        "parts_tax_cents": parts_tax,
        "tax_cents": labor_tax + parts_tax,
        "total_cents": total,
        "exceeds_nte": nte_cents is not None and total > nte_cents,
    }


def nte_note(total: int, nte: int, currency: str) -> str:
    return (
        f"Total {total / 100:.2f} {currency} exceeds the not-to-exceed amount "
        f"{nte / 100:.2f} by {(total - nte) / 100:.2f}: get approval before sending."
    )


def invoice_compute(ticket, *, template: Callable[[], Any] | None = None) -> InvoiceTotals:
    """The invoice a ticket's recorded labor, parts and job type add up to. `template` returns the
    incident template (for the trip charge, and the typical duration when no time is recorded)."""
    profile = billing_settings()
    tax = tax_for_site(ticket.site)
    found = template() if template is not None else None
    lines: list[LineSpec] = []
    notes: list[str] = []

    def labor(minutes: int, when, what: str, rate_cents: int | None = None) -> LineSpec:
        price = labor_price(ticket, minutes, when=when, rate_cents=rate_cents, profile=profile)
        return labor_line(price, f"{what} — {price.class_name}", tax=tax)

    entries = list(LaborEntry.objects.filter(ticket=ticket).select_related("technician").order_by("created_at", "id"))
    for entry in entries:
        who = f" ({entry.technician.display_name})" if entry.technician_id else ""
        what = (entry.description or "Labor") + who
        lines.append(labor(entry.minutes, entry.worked_at or entry.created_at, what, entry.rate_cents))
    if not entries:
        # No labor was logged: bill the time the job was in progress, or the template's typical
        # duration when there is no such time on record.
        spans = in_progress_spans(ticket)
        minutes = minutes_in_progress(ticket)
        source = "time on site (check-in to completion)"
        started = spans[0][0] if spans else None
        if minutes == 0 and found is not None:
            minutes = found.default_duration_minutes
            source = f"standard duration for {found.name or found.incident_type}"
        if minutes:
            lines.append(labor(minutes, started, f"Labor, {source}"))
            notes.append(f"No labor entries were recorded; labor is billed from the {source}.")

    for usage in PartUsage.objects.filter(ticket=ticket).select_related("price_book_item").order_by("created_at", "id"):
        item = usage.price_book_item
        unit = usage.unit_cents if usage.unit_cents is not None else (item.unit_cents if item else 0)
        description = usage.description or (item.name if item else "Part")
        quantity = Decimal(usage.quantity)
        taxable = item.taxable if item else True
        lines.append(
            LineSpec(
                InvoiceLine.Kind.PART,
                description,
                quantity,
                unit,
                cents_round(quantity * Decimal(unit)),
                taxable and tax.parts_bps > 0,
                item_code=item.sku if item else "PART-CUSTOM",
                tax_code=tax.code("PARTS") if taxable else NONTAX,
            )
        )

    trip = found.trip_charge_cents if found is not None and found.trip_charge_cents is not None else None
    trip = profile.default_trip_charge_cents if trip is None else trip
    if trip:
        code = f"TRIP-{found.incident_type}" if found is not None else "TRIP"
        lines.append(
            LineSpec(
                InvoiceLine.Kind.FEE,
                "Trip charge",
                Decimal("1"),
                trip,
                trip,
                tax.labor_bps > 0,
                item_code=code[:64],
                tax_code=tax.code("LABOR"),
            )
        )

    approvals = [
        {
            "id": str(row.id),
            "kind": row.kind,
            "amount_cents": row.amount_cents,
            "decided_by": row.decided_by,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        }
        for row in Approval.objects.filter(ticket=ticket, status=Approval.Status.APPROVED).order_by("created_at")
    ]
    sums = invoice_totals(lines, tax, nte_cents=ticket.nte_cents)
    if sums["exceeds_nte"]:
        notes.append(nte_note(sums["total_cents"], ticket.nte_cents, ticket.currency))
    return InvoiceTotals(
        lines=lines,
        tax=tax,
        nte_cents=ticket.nte_cents,
        approval_refs=approvals,
        notes=notes,
        **sums,
    )
