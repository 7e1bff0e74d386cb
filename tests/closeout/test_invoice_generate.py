"""billing.generate_invoice: a real draft from labor and parts, with tax, totals and the NTE check."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from dispatch.closeout.models import Invoice, LaborEntry, PartUsage
from dispatch.closeout.services import invoice_generate, labor_add, part_add
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, StateTransition
from dispatch.tickets.services import ticket_change, ticket_reopen
from tests.factories import FACTORY_MOVE, PriceBookItemFactory, actor_for, ticket_at

pytestmark = pytest.mark.django_db


def half_up(value) -> int:
    return int(Decimal(value).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@pytest.fixture
def finance():
    return actor_for(Role.FINANCE)


def test_the_draft_adds_up_labor_parts_and_tax_to_the_cent(settings, billing, technician, finance):
    billing.standard_rate_cents = 12500
    billing.save()
    settings.DISPATCH_LABOR_TAX_RATE_BPS = 0
    settings.DISPATCH_PARTS_TAX_RATE_BPS = 875
    ticket = ticket_at("VERIFIED", technician=technician, nte_cents=30000)
    strike = PriceBookItemFactory(sku="STRIKE-ASA", name="ASA strike plate", unit_cents=2450)
    labels = PriceBookItemFactory(sku="LABEL", name="Inspection label", unit_cents=333, taxable=False)
    LaborEntry.objects.create(ticket=ticket, technician=technician, minutes=90, description="Realign strike")
    LaborEntry.objects.create(ticket=ticket, minutes=45, rate_cents=9000, description="Apprentice")
    PartUsage.objects.create(ticket=ticket, price_book_item=strike, quantity=2)
    PartUsage.objects.create(ticket=ticket, price_book_item=labels, quantity=3)
    PartUsage.objects.create(ticket=ticket, description="Shim kit", quantity=Decimal("1.5"), unit_cents=1999)

    outcome = invoice_generate(actor=finance, ticket_id=ticket.id)
    invoice = outcome.result.invoice

    labor = half_up(Decimal(90) * 12500 / 60) + half_up(Decimal(45) * 9000 / 60)
    taxable_parts = 2 * 2450 + half_up(Decimal("1.5") * 1999)
    parts = taxable_parts + 3 * 333
    tax = half_up(Decimal(taxable_parts) * 875 / 10000)
    assert (invoice.labor_cents, invoice.parts_cents, invoice.tax_cents) == (labor, parts, tax)
    assert invoice.subtotal_cents == labor + parts
    assert invoice.total_cents == labor + parts + tax
    assert (invoice.nte_cents, invoice.exceeds_nte) == (30000, labor + parts + tax > 30000)
    assert invoice.exceeds_nte and "exceeds the not-to-exceed" in invoice.notes[0]
    assert outcome.ticket.state == "INVOICED"

    lines = list(invoice.lines.values_list("position", "kind", "quantity", "unit_cents", "total_cents", "taxable"))
    assert lines == [
        (1, "LABOR", Decimal("1.50"), 12500, 18750, False),
        (2, "LABOR", Decimal("0.75"), 9000, 6750, False),
        (3, "PART", Decimal("2.00"), 2450, 4900, True),
        (4, "PART", Decimal("3.00"), 333, 999, False),
        (5, "PART", Decimal("1.50"), 1999, 2999, True),
    ]
    assert sum(total for *_, total, _taxable in lines) == invoice.subtotal_cents
    assert invoice.number == f"INV-{ticket.id.hex[:12].upper()}"
    event = AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()
    assert (event.tool_name, event.payload["invoice_id"], event.payload["total_cents"]) == (
        "billing.generate_invoice",
        str(invoice.id),
        invoice.total_cents,
    )


def test_within_the_nte_there_is_no_flag(finance):
    ticket = ticket_at("VERIFIED", nte_cents=100000)
    LaborEntry.objects.create(ticket=ticket, minutes=60)
    invoice = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    assert (invoice.total_cents, invoice.exceeds_nte, invoice.notes) == (12500, False, [])


def test_without_labor_entries_the_time_in_progress_is_billed(billing, finance):
    billing.standard_rate_cents = 9900
    billing.save()
    ticket = ticket_at("VERIFIED")
    rows = {r.to_state: r for r in StateTransition.objects.filter(ticket=ticket)}
    started = rows["IN_PROGRESS"].created_at
    StateTransition.objects.filter(pk=rows["COMPLETED_PENDING_VERIFICATION"].pk).update(
        created_at=started + timedelta(minutes=49, seconds=10)
    )
    invoice = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    # 49m10s bills as 50 minutes, shown as 0.83 h: the amount is the hours shown times the rate.
    assert invoice.labor_cents == half_up(Decimal("0.83") * 9900)
    line = invoice.lines.get()
    assert (line.kind, line.quantity) == ("LABOR", Decimal("0.83"))
    assert "time on site" in invoice.notes[0]


def test_reinvoicing_a_reopened_job_rebuilds_the_same_draft(finance, dispatcher):
    ticket = ticket_at("VERIFIED")
    LaborEntry.objects.create(ticket=ticket, minutes=60)
    first = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    ticket_reopen(actor=dispatcher, ticket_id=ticket.id, reason="Customer reports it sticks again")
    LaborEntry.objects.create(ticket=ticket, minutes=30)
    # Back to VERIFIED the short way: completion and QA are tested elsewhere.
    with ticket_change(actor=dispatcher, ticket_id=ticket.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    second = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    assert second.id == first.id and second.version == 1 and second.status == "DRAFT"
    assert second.labor_cents == 12500 + 6250
    assert Invoice.objects.count() == 1 and second.lines.count() == 2


def test_only_finance_generates_invoices_and_only_from_verified(dispatcher, finance):
    verified = ticket_at("VERIFIED")
    with pytest.raises(DispatchError) as caught:
        invoice_generate(actor=dispatcher, ticket_id=verified.id)
    assert caught.value.code == "TOOL_ROLE_FORBIDDEN"
    completed = ticket_at("COMPLETED_PENDING_VERIFICATION")
    with pytest.raises(DispatchError) as caught:
        invoice_generate(actor=finance, ticket_id=completed.id)
    assert caught.value.code == "INVALID_STATE_TRANSITION"
    assert Invoice.objects.count() == 0


def test_technicians_log_labor_and_parts_on_their_job(job, tech_actor, technician):
    item = PriceBookItemFactory(sku="CLOSER-4040", unit_cents=18900)
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=75, description="Adjust closer").result
    usage = part_add(actor=tech_actor, ticket_id=job.id, sku="CLOSER-4040", quantity=1).result
    custom = part_add(actor=tech_actor, ticket_id=job.id, description="Screws", unit_cents=150, quantity="4").result
    assert (entry.minutes, entry.technician_id) == (75, technician.id)
    assert (usage.price_book_item_id, custom.quantity) == (item.id, Decimal("4.00"))
    for call in (
        lambda: labor_add(actor=tech_actor, ticket_id=job.id, minutes=0),
        lambda: part_add(actor=tech_actor, ticket_id=job.id, description="No price"),
        lambda: part_add(actor=tech_actor, ticket_id=job.id, sku="NOPE"),
    ):
        with pytest.raises(DispatchError) as caught:
            call()
        assert caught.value.status in (400, 404)
