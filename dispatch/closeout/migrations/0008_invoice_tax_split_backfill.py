"""Invoices drafted before taxes were kept per jurisdiction carry no rates: give them the rates
they were taxed at then (the environment's), split their tax into labor and parts, and code their
lines, so an edit or an export of such a draft taxes it as it was taxed."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import migrations


def _tax(amount_cents: int, bps: int) -> int:
    return int((Decimal(amount_cents) * Decimal(bps) / Decimal(10000)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def backfill(apps, schema_editor):
    Invoice = apps.get_model("closeout", "Invoice")
    InvoiceLine = apps.get_model("closeout", "InvoiceLine")
    labor_bps = int(getattr(settings, "DISPATCH_LABOR_TAX_RATE_BPS", 0))
    parts_bps = int(getattr(settings, "DISPATCH_PARTS_TAX_RATE_BPS", 875))
    for invoice in Invoice.objects.filter(tax_jurisdiction=""):
        lines = list(InvoiceLine.objects.filter(invoice=invoice))
        service = sum(line.total_cents for line in lines if line.kind != "PART" and line.taxable)
        labor_tax = _tax(service, labor_bps)
        for line in lines:
            group = "PARTS" if line.kind == "PART" else "LABOR"
            bps = parts_bps if group == "PARTS" else labor_bps
            line.tax_code = f"DEFAULT:{group}" if line.taxable and bps else "NONTAX"
        InvoiceLine.objects.bulk_update(lines, ["tax_code"])
        # The tax it was issued with stays as it was; only its split is recorded.
        Invoice.objects.filter(pk=invoice.pk).update(
            tax_jurisdiction="DEFAULT",
            labor_tax_bps=labor_bps,
            parts_tax_bps=parts_bps,
            labor_tax_cents=min(labor_tax, invoice.tax_cents),
            parts_tax_cents=invoice.tax_cents - min(labor_tax, invoice.tax_cents),
        )


class Migration(migrations.Migration):
    dependencies = [("closeout", "0007_invoice_versions_billing_packet_versions")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
