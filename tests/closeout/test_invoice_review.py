"""Finance's invoice: rate classes, tax by the site's jurisdiction, the trip charge, then edit,
approve (immutable, emailed with the packet) and correct by a new version."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from pypdf import PdfReader

from dispatch.closeout.exports import invoice_csv
from dispatch.closeout.models import (
    CloseoutPacket,
    IncidentTemplate,
    Invoice,
    InvoiceLine,
    InvoiceLocked,
    LaborEntry,
    PartUsage,
    TaxRate,
)
from dispatch.closeout.services import (
    invoice_approve,
    invoice_generate,
    invoice_lines_replace,
    invoice_revise,
    part_add,
)
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import ticket_change
from tests.factories import FACTORY_MOVE, PriceBookItemFactory, actor_for, ticket_at

pytestmark = pytest.mark.django_db

PACIFIC = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def finance():
    return actor_for(Role.FINANCE)


@pytest.fixture
def office_hours(billing):
    billing.standard_rate_cents = 10000
    billing.after_hours_multiplier = Decimal("1.50")
    billing.emergency_multiplier = Decimal("2.00")
    billing.business_hours_start = time(8, 0)
    billing.business_hours_end = time(18, 0)
    billing.weekends_after_hours = True
    billing.save()
    return billing


def labor_at(ticket, minutes: int, local: datetime) -> LaborEntry:
    return LaborEntry.objects.create(ticket=ticket, minutes=minutes, worked_at=local.replace(tzinfo=PACIFIC))


def events(ticket, tool: str) -> int:
    return AuditEvent.objects.filter(ticket=ticket, tool_name=tool).count()


def test_labor_bills_at_the_rate_class_of_when_it_happened_and_the_priority(office_hours, finance):
    routine = ticket_at("VERIFIED")
    routine.priority = "ROUTINE"
    routine.save(update_fields=["priority"])
    labor_at(routine, 60, datetime(2026, 12, 2, 10, 0))  # a Wednesday morning: standard
    labor_at(routine, 60, datetime(2026, 12, 2, 19, 30))  # Wednesday evening: after-hours
    labor_at(routine, 30, datetime(2026, 12, 5, 11, 0))  # a Saturday: after-hours
    invoice = invoice_generate(actor=finance, ticket_id=routine.id).result.invoice
    labor = [(line.item_code, line.unit_cents, line.total_cents) for line in invoice.lines.filter(kind="LABOR")]
    assert labor == [
        ("LABOR-STANDARD", 10000, 10000),
        ("LABOR-AFTER_HOURS", 15000, 15000),
        ("LABOR-AFTER_HOURS", 15000, 7500),
    ]

    emergency = ticket_at("VERIFIED")
    emergency.priority = "EMERGENCY"
    emergency.save(update_fields=["priority"])
    labor_at(emergency, 45, datetime(2026, 12, 2, 10, 0))  # office hours, but an emergency
    line = invoice_generate(actor=finance, ticket_id=emergency.id).result.invoice.lines.get(kind="LABOR")
    assert (line.item_code, line.unit_cents, line.total_cents) == ("LABOR-EMERGENCY", 20000, 15000)


def test_tax_follows_the_sites_jurisdiction_parts_and_labor_separately_and_the_trip_charge_per_job_type(
    office_hours, finance
):
    TaxRate.objects.create(jurisdiction="DEFAULT-ZONE", name="Elsewhere", labor_bps=0, parts_bps=500, is_default=True)
    TaxRate.objects.create(jurisdiction="CA-ALAMEDA", name="Alameda County", labor_bps=250, parts_bps=1025)
    IncidentTemplate.objects.filter(incident_type="DOOR_WONT_LATCH").update(trip_charge_cents=4500)
    ticket = ticket_at("VERIFIED")
    ticket.priority = "ROUTINE"
    ticket.save(update_fields=["priority"])
    ticket.site.tax_jurisdiction = "CA-ALAMEDA"
    ticket.site.save(update_fields=["tax_jurisdiction"])
    labor_at(ticket, 60, datetime(2026, 12, 2, 10, 0))
    strike = PriceBookItemFactory(sku="STRIKE-1", name="Strike plate", unit_cents=3999, taxable=True)
    manual = PriceBookItemFactory(sku="MANUAL-1", name="Owner's manual", unit_cents=500, taxable=False)
    # Logged as the technician's part_add would have while the work was open.
    PartUsage.objects.create(ticket=ticket, price_book_item=strike, quantity=2)
    PartUsage.objects.create(ticket=ticket, price_book_item=manual, quantity=1)

    invoice = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    lines = {line.item_code: line for line in invoice.lines.all()}
    assert lines["TRIP-DOOR_WONT_LATCH"].total_cents == 4500 and lines["TRIP-DOOR_WONT_LATCH"].kind == "FEE"
    assert lines["STRIKE-1"].tax_code == "CA-ALAMEDA:PARTS" and lines["MANUAL-1"].tax_code == "NONTAX"
    assert lines["LABOR-STANDARD"].tax_code == "CA-ALAMEDA:LABOR"
    assert invoice.tax_jurisdiction == "CA-ALAMEDA"
    # Labor and the trip charge at 2.5%, the taxable part at 10.25%, each rounded once.
    assert invoice.labor_tax_cents == 363  # 362.5 rounds half up
    assert invoice.parts_tax_cents == 820  # 7998 * 10.25% = 819.795
    assert invoice.total_cents == 10000 + 4500 + 7998 + 500 + 363 + 820

    # A site that names no jurisdiction is taxed at the default row.
    other = ticket_at("VERIFIED")
    assert invoice_generate(actor=finance, ticket_id=other.id).result.invoice.tax_jurisdiction == "DEFAULT-ZONE"


@pytest.fixture
def draft(office_hours, finance):
    ticket = ticket_at("VERIFIED", nte_cents=50000)
    ticket.account.billing_email = "ap@harbor.example"
    ticket.account.save(update_fields=["billing_email"])
    labor_at(ticket, 90, datetime(2026, 12, 2, 9, 0))
    return invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice


LINES = [
    {
        "kind": "LABOR",
        "item_code": "LABOR-STANDARD",
        "description": "Adjust closer",
        "quantity": "1.5",
        "unit_cents": 10000,
    },
    {"kind": "PART", "item_code": "SHIM", "description": "Shims <b>&amp;</b> screws", "quantity": 3, "unit_cents": 275},
]


def test_finance_edits_the_draft_and_the_totals_follow_with_one_audit_event(draft, finance):
    ticket = draft.ticket
    before = events(ticket, "billing.edit_invoice")
    invoice = invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=LINES, invoice_id=draft.id).result.invoice
    assert [(line.position, line.total_cents) for line in invoice.lines.order_by("position")] == [(1, 15000), (2, 825)]
    assert invoice.subtotal_cents == 15825 and invoice.pk == draft.pk and invoice.status == "DRAFT"
    assert events(ticket, "billing.edit_invoice") == before + 1
    payload = AuditEvent.objects.filter(ticket=ticket, tool_name="billing.edit_invoice").get().payload
    assert len(payload["lines_before"]) == 1 and len(payload["lines_after"]) == 2


@pytest.mark.parametrize(
    "lines",
    [
        [],
        "not a list",
        [{"kind": "GIFT", "description": "x", "unit_cents": 1}],
        [{"kind": "PART", "description": "x", "unit_cents": -5}],
        [{"kind": "PART", "description": "x", "unit_cents": 1.5}],
        [{"kind": "PART", "description": "x", "unit_cents": True}],
        [{"kind": "PART", "description": "x", "unit_cents": 100, "quantity": "NaN"}],
        [{"kind": "PART", "description": "x", "unit_cents": 100, "quantity": 0}],
        [{"kind": "PART", "description": "", "unit_cents": 100}],
        [{"kind": "PART", "description": "x" * 301, "unit_cents": 100}],
        [{"kind": "PART", "description": "x", "unit_cents": 10**12}],
        [{"kind": "PART", "description": "x", "unit_cents": 1}] * 201,
    ],
)
def test_bad_lines_are_refused_with_a_stable_code_and_change_nothing(draft, finance, lines):
    before = list(draft.lines.values_list("description", "total_cents"))
    with pytest.raises(DispatchError) as caught:
        invoice_lines_replace(actor=finance, ticket_id=draft.ticket_id, lines=lines)
    assert caught.value.code == "INVALID_REQUEST"
    assert list(Invoice.objects.get(pk=draft.pk).lines.values_list("description", "total_cents")) == before
    assert events(draft.ticket, "billing.edit_invoice") == 0


def test_only_finance_reviews_invoices(draft):
    for role in (Role.DISPATCHER, Role.TECHNICIAN, Role.AGENT, Role.QA):
        with pytest.raises(DispatchError) as caught:
            invoice_approve(actor=actor_for(role), ticket_id=draft.ticket_id)
        assert caught.value.status == 403
    assert Invoice.objects.get(pk=draft.pk).status == "DRAFT"


def test_approval_freezes_the_invoice_stores_its_pdf_issues_a_packet_and_emails_both(
    settings, draft, finance, django_capture_on_commit_callbacks
):
    settings.DISPATCH_MESSAGE_DELIVERY = "live"  # Django's email backend: locmem in the tests
    ticket = draft.ticket
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_approve(actor=finance, ticket_id=ticket.id, invoice_id=draft.id).result.invoice
    assert invoice.status == "APPROVED" and invoice.approved_by == finance.actor_id
    assert events(ticket, "billing.approve_invoice") == 1
    text = "".join(page.extract_text() for page in PdfReader(invoice.pdf.open("rb")).pages)
    assert invoice.number in text and ticket.short_ref in text and "$" in text and "DRAFT" not in text

    packet = CloseoutPacket.objects.get(ticket=ticket)
    assert packet.pdf_status == "READY" and packet.packet["invoice"]["status"] == "APPROVED"

    message = OutboundMessage.objects.get(ticket=ticket, channel="EMAIL")
    assert message.recipient == "ap@harbor.example"
    assert [item["name"] for item in message.attachments] == [
        f"{invoice.number}.pdf",
        f"closeout-{ticket.short_ref}-v1.pdf",
    ]
    assert OutboundMessage.objects.get(pk=message.pk).status == "SENT"  # delivered once the approval committed
    sent = mail.outbox[-1]
    attached = {name: data for name, data, _ in sent.attachments}
    assert attached[f"{invoice.number}.pdf"] == invoice.pdf.open("rb").read()
    assert attached[f"closeout-{ticket.short_ref}-v1.pdf"] == packet.pdf_file.open("rb").read()

    # From now on the invoice never changes: not by the services, not by a stray save.
    with pytest.raises(DispatchError) as caught:
        invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=LINES)
    assert caught.value.code == "INVOICE_NOT_DRAFT"
    with pytest.raises(DispatchError) as caught:
        invoice_approve(actor=finance, ticket_id=ticket.id)
    assert caught.value.code == "INVOICE_NOT_DRAFT"
    invoice.total_cents = 1
    with pytest.raises(InvoiceLocked):
        invoice.save()
    with pytest.raises(InvoiceLocked):
        InvoiceLine.objects.filter(invoice=invoice).update(unit_cents=1)
    with pytest.raises(InvoiceLocked):
        Invoice.objects.get(pk=invoice.pk).delete()


def test_an_invoice_over_the_nte_needs_a_reason_to_be_approved(draft, finance):
    over = [{"kind": "LABOR", "description": "Rebuild operator", "quantity": 8, "unit_cents": 10000}]
    invoice_lines_replace(actor=finance, ticket_id=draft.ticket_id, lines=over)
    with pytest.raises(DispatchError) as caught:
        invoice_approve(actor=finance, ticket_id=draft.ticket_id)
    assert caught.value.code == "INVOICE_EXCEEDS_NTE" and caught.value.status == 409
    assert Invoice.objects.get(pk=draft.pk).status == "DRAFT"
    invoice = invoice_approve(
        actor=finance, ticket_id=draft.ticket_id, nte_override_reason="Customer approved by phone, PO 4471"
    ).result.invoice
    assert invoice.status == "APPROVED" and invoice.exceeds_nte
    # Finance's own warning does not go to the customer: the approved PDF shows the NTE itself.
    assert not any("get approval before sending" in note for note in invoice.notes)
    text = "".join(page.extract_text() for page in PdfReader(invoice.pdf.open("rb")).pages)
    assert "get approval before sending" not in text and "$500.00" in text


def test_a_correction_is_a_new_version_that_supersedes_the_approved_one(draft, finance):
    ticket = draft.ticket
    approved = invoice_approve(actor=finance, ticket_id=ticket.id).result.invoice
    approved_pdf = approved.pdf.open("rb").read()
    with pytest.raises(DispatchError) as caught:
        invoice_revise(actor=finance, ticket_id=ticket.id, reason="", invoice_id=approved.id)
    assert caught.value.code == "INVALID_REQUEST"

    second = invoice_revise(actor=finance, ticket_id=ticket.id, reason="Shims were not billed").result.invoice
    old = Invoice.objects.get(pk=approved.pk)
    assert old.status == "SUPERSEDED" and old.pdf.open("rb").read() == approved_pdf
    assert (second.version, second.status, second.supersedes_id) == (2, "DRAFT", approved.pk)
    assert second.number == f"{approved.number}-2"
    assert list(second.lines.values_list("description", "total_cents")) == list(
        old.lines.values_list("description", "total_cents")
    )
    # The stale version cannot be edited by naming it.
    with pytest.raises(DispatchError) as caught:
        invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=LINES, invoice_id=approved.id)
    assert caught.value.code == "INVOICE_NOT_CURRENT"
    invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=LINES, invoice_id=second.id)
    final = invoice_approve(actor=finance, ticket_id=ticket.id).result.invoice
    text = "".join(page.extract_text() for page in PdfReader(final.pdf.open("rb")).pages)
    assert approved.number in text  # "replaces INV-..."
    assert Invoice.objects.filter(ticket=ticket).exclude(status="SUPERSEDED").get() == final
    assert [events(ticket, tool) for tool in ("billing.revise_invoice", "billing.approve_invoice")] == [1, 2]


def test_the_csv_has_one_row_per_line_with_tax_shares_adding_up_and_no_formulas(draft, finance):
    TaxRate.objects.create(jurisdiction="CA-ALAMEDA", name="Alameda", labor_bps=0, parts_bps=1025)
    ticket = draft.ticket
    lines = [
        *LINES,
        {"kind": "PART", "description": '=HYPERLINK("http://evil")', "unit_cents": 333, "quantity": 1},
    ]
    invoice = invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=lines).result.invoice
    rows = list(csv.DictReader(io.StringIO(invoice_csv([invoice]))))
    assert [row["line"] for row in rows] == ["1", "2", "3"]
    assert {row["invoice_number"] for row in rows} == {invoice.number}
    assert rows[0]["amount"] == "150.00" and rows[1]["quantity"] == "3.00" and rows[1]["rate"] == "2.75"
    assert rows[2]["description"].startswith("'=")
    taxes = sum(Decimal(row["tax_amount"]) for row in rows)
    assert taxes == Decimal(invoice.tax_cents) / 100


def test_a_part_logged_on_site_is_priced_from_the_price_book(office_hours, finance, technician, tech_actor):
    PriceBookItemFactory(sku="CLOSER-4040", name="LCN 4040 closer", unit_cents=18900)
    job = ticket_at("IN_PROGRESS", technician=technician)
    part_add(actor=tech_actor, ticket_id=job.id, sku="CLOSER-4040", quantity=1)
    with ticket_change(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    line = invoice_generate(actor=finance, ticket_id=job.id).result.invoice.lines.get(kind="PART")
    assert (line.item_code, line.description, line.unit_cents) == ("CLOSER-4040", "LCN 4040 closer", 18900)


def test_labor_logged_with_when_it_started_bills_at_that_times_rate(office_hours, technician, tech_actor, finance):
    from dispatch.closeout.services import labor_add

    job = ticket_at("IN_PROGRESS", technician=technician)
    job.priority = "ROUTINE"
    job.save(update_fields=["priority"])
    evening = datetime(2026, 12, 2, 20, 0, tzinfo=PACIFIC)
    job.created_at = evening.replace(hour=7)
    job.save(update_fields=["created_at"])
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=60, worked_at=evening.isoformat()).result
    assert entry.worked_at == evening
    for bad in ("yesterday", "2026-12-02T20:00:00", "2999-01-01T00:00:00Z", "2026-12-01T08:00:00Z"):
        with pytest.raises(DispatchError) as caught:
            labor_add(actor=tech_actor, ticket_id=job.id, minutes=30, worked_at=bad)
        assert caught.value.details["field"] == "worked_at"
    assert LaborEntry.objects.filter(ticket=job).count() == 1
    with ticket_change(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    line = invoice_generate(actor=finance, ticket_id=job.id).result.invoice.lines.get(kind="LABOR")
    assert (line.item_code, line.unit_cents) == ("LABOR-AFTER_HOURS", 15000)


def test_reinvoicing_reopened_work_supersedes_an_approved_invoice(draft, finance):
    from dispatch.tickets.services import ticket_reopen

    ticket = draft.ticket
    approved = invoice_approve(actor=finance, ticket_id=ticket.id).result.invoice
    ticket_reopen(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Door drags again")
    labor_at(ticket, 30, datetime(2026, 12, 3, 9, 0))
    with ticket_change(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=FACTORY_MOVE) as change:
        change.transition("COMPLETED_PENDING_VERIFICATION")
        change.transition("VERIFIED")
    second = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    assert (second.version, second.status, second.supersedes_id) == (2, "DRAFT", approved.pk)
    assert Invoice.objects.get(pk=approved.pk).status == "SUPERSEDED"
    assert second.labor_cents == approved.labor_cents + 5000


def test_csv_tax_shares_are_whole_cents_never_negative_and_add_up(draft, finance):
    ticket = draft.ticket  # parts taxed at 8.75%, the default rate
    assert draft.parts_tax_bps == 875
    lines = [{"kind": "PART", "description": f"Washer {i}", "unit_cents": 7, "taxable": True} for i in range(5)]
    invoice = invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=lines).result.invoice
    rows = list(csv.DictReader(io.StringIO(invoice_csv([invoice]))))
    shares = [Decimal(row["tax_amount"]) for row in rows]
    assert all(share >= 0 for share in shares)
    assert sum(shares) == Decimal(invoice.parts_tax_cents) / 100
    # Every row's quantity times its rate is its amount.
    assert all(Decimal(row["quantity"]) * Decimal(row["rate"]) == Decimal(row["amount"]) for row in rows)


def test_saving_a_draft_with_its_lines_as_read_changes_no_amount(office_hours, finance):
    ticket = ticket_at("VERIFIED")
    ticket.priority = "ROUTINE"
    ticket.save(update_fields=["priority"])
    labor_at(ticket, 20, datetime(2026, 12, 2, 10, 0))  # 20 minutes: 0.33 h
    invoice = invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice
    before = list(invoice.lines.values_list("kind", "quantity", "unit_cents", "total_cents"))
    as_read = [
        {
            "kind": line.kind,
            "item_code": line.item_code,
            "description": line.description,
            "quantity": str(line.quantity),
            "unit_cents": line.unit_cents,
            "taxable": line.taxable,
        }
        for line in invoice.lines.order_by("position")
    ]
    again = invoice_lines_replace(actor=finance, ticket_id=ticket.id, lines=as_read).result.invoice
    assert list(again.lines.values_list("kind", "quantity", "unit_cents", "total_cents")) == before
    assert again.total_cents == invoice.total_cents


def test_no_write_path_reopens_an_approved_invoice(draft, finance):
    invoice = invoice_approve(actor=finance, ticket_id=draft.ticket_id).result.invoice
    invoice.status = "DRAFT"
    with pytest.raises(InvoiceLocked):
        invoice.save(update_fields=["status"])
    with pytest.raises(InvoiceLocked):
        Invoice.objects.filter(pk=invoice.pk).update(status="DRAFT")
    with pytest.raises(InvoiceLocked):
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice, position=99, kind="FEE", description="x", quantity=1, unit_cents=1, total_cents=1
                )
            ]
        )
    assert Invoice.objects.get(pk=invoice.pk).status == "APPROVED" and invoice.lines.count() == 1


def test_the_csv_export_costs_the_same_queries_for_one_invoice_or_many(office_hours, finance):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def exported(count: int) -> int:
        invoices = []
        for _ in range(count):
            ticket = ticket_at("VERIFIED")
            labor_at(ticket, 60, datetime(2026, 12, 2, 10, 0))
            invoices.append(invoice_generate(actor=finance, ticket_id=ticket.id).result.invoice)
        with CaptureQueriesContext(connection) as queries:
            rows = list(csv.DictReader(io.StringIO(invoice_csv(invoices))))
        assert len({row["invoice_number"] for row in rows}) == count
        return len(queries)

    assert exported(1) == exported(5)


def test_an_approval_while_the_file_store_refuses_the_pdf_is_a_503_that_changes_nothing(
    settings, tmp_path, draft, finance
):
    (tmp_path / "a-file").write_text("where the media folder should be")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    ticket = draft.ticket

    with pytest.raises(DispatchError) as refused:
        invoice_approve(actor=finance, ticket_id=ticket.id, invoice_id=draft.id)

    assert (refused.value.code, refused.value.status) == ("STORAGE_UNAVAILABLE", 503)
    draft.refresh_from_db()
    assert draft.status == "DRAFT" and not draft.pdf
    assert events(ticket, "billing.approve_invoice") == 0
    assert not CloseoutPacket.objects.filter(ticket=ticket).exists()
    assert not OutboundMessage.objects.filter(ticket=ticket, channel="EMAIL").exists()
