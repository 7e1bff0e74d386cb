"""The invoice PDF, read back with pypdf and looked at with pdftoppm. No database: the invoice
document is a dict."""

from __future__ import annotations

import io
import subprocess

import pytest
from PIL import Image
from pypdf import PdfReader

from dispatch.closeout.documents import RenderedPdf, invoice_pdf_render


@pytest.fixture
def billing():
    """The renderer reads no database: this replaces the closeout conftest's autouse billing
    profile (which needs one), so these tests run without creating the test database."""


def line(position: int, kind: str, code: str | None, description: str, qty: str, unit: int, taxable: bool) -> dict:
    return {
        "position": position,
        "kind": kind,
        "item_code": code,
        "description": description,
        "quantity": qty,
        "unit_cents": unit,
        "total_cents": round(float(qty) * unit),
        "taxable": taxable,
        "tax_code": "TPP" if taxable else None,
    }


def a_document(**invoice) -> dict:
    return {
        "company": {
            "name": "Bayline Door & Access",
            "address": "1450 Harrison St\nSan Francisco, CA 94103",
            "phone": "(415) 555-0142",
            "email": "billing@bayline.example",
        },
        "bill_to": {"name": "Harbor View Dental", "account": "Harbor View Dental Group", "email": "ap@example.com"},
        "site": {"name": "Embarcadero office", "address": "2 Embarcadero Center\nSan Francisco, CA 94111"},
        "job": {
            "reference": "RD-24817",
            "summary": "Front door does not latch",
            "incident_name": "Door won't latch",
            "completed_at": "2026-11-04T06:30:00.000Z",
            "technician": "Dana Whitfield",
        },
        "issued_on": "2026-12-06",
        "due_on": "2027-01-05",
        "terms": "Net 30. Please quote the invoice number with your payment.",
        "timezone": "America/Los_Angeles",
        "invoice": {
            "number": "INV-2026-0481",
            "version": 1,
            "status": "APPROVED",
            "supersedes": None,
            "supersedes_number": None,
            "currency": "USD",
            "labor_cents": 21750,
            "parts_cents": 246912,
            "fees_cents": 4500,
            "subtotal_cents": 273162,
            "labor_tax_cents": 0,
            "parts_tax_cents": 20370,
            "tax_cents": 20370,
            "total_cents": 293532,
            "tax_jurisdiction": "CA-SF",
            "labor_tax_bps": 0,
            "parts_tax_bps": 825,
            "nte_cents": 300000,
            "exceeds_nte": False,
            "approval_refs": [
                {
                    "id": "apr_7f3c21",
                    "kind": "NTE_INCREASE",
                    "amount_cents": 300000,
                    "decided_by": "Pat Morales",
                    "decided_at": "2026-11-03T19:05:00.000Z",
                }
            ],
            "notes": ["Second latch approved by the customer on site."],
            "lines": [
                line(1, "LABOR", "LAB-STD", "Replace latch assembly", "1.5", 14500, False),
                line(2, "PART", "LATCH-DG3", "Dura-Glide latch assembly", "2.000", 123456, True),
                line(3, "FEE", None, "Trip charge", "1", 4500, False),
            ],
            **invoice,
        },
    }


def texts(pdf: RenderedPdf) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages]


def words(pdf: RenderedPdf) -> str:
    """All the text, with the line breaks of narrow columns read as spaces."""
    return " ".join(" ".join(texts(pdf)).split())


def test_invoice_shows_lines_taxes_and_total():
    pdf = invoice_pdf_render(a_document())

    whole = words(pdf)
    for expected in (
        "Bayline Door & Access",
        "INVOICE",
        "INV-2026-0481",
        "Harbor View Dental",
        "Embarcadero office",
        "RD-24817",
        "6 Dec 2026",
        "5 Jan 2027",
        "Completed 3 Nov 2026",  # the job's day at the site (it was the 4th in UTC)
        "Dura-Glide latch assembly",
        "$1,234.56",
        "$2,469.12",
        "Labor tax (0%)",
        "Parts tax (8.25%)",
        "$203.70",
        "Total due",
        "$2,935.32",
        "Not-to-exceed: $3,000.00",
        "apr_7f3c21",
        "Second latch approved by the customer on site.",
        "Terms: Net 30.",
        "Page 1 of 1",
    ):
        assert expected in whole, expected
    assert "DRAFT" not in whole
    assert pdf.pages == 1


def test_draft_says_it_is_not_a_demand_for_payment():
    whole = words(invoice_pdf_render(a_document(status="DRAFT")))

    assert "DRAFT — not a demand for payment" in whole


def test_superseded_invoice_says_so():
    whole = words(invoice_pdf_render(a_document(status="SUPERSEDED")))

    assert "Superseded" in whole


def test_correction_names_the_invoice_it_replaces():
    document = a_document(version=2, supersedes="5b0d", supersedes_number="INV-2026-0480")

    whole = words(invoice_pdf_render(document))

    assert "Corrected invoice, replaces INV-2026-0480" in whole
    assert "INV-2026-0481 (version 2)" in whole


def test_other_currencies_print_their_code():
    whole = words(invoice_pdf_render(a_document(currency="EUR")))

    assert "2,935.32 EUR" in whole
    assert "$" not in whole


def test_typed_markup_prints_as_typed():
    document = a_document()
    document["bill_to"]["name"] = "<b>Acme</b> & Sons <font size=60>"
    document["invoice"]["lines"][0]["description"] = "Labor & <para>travel</para> &amp; 5 < 6"

    whole = words(invoice_pdf_render(document))

    assert "<b>Acme</b> & Sons <font size=60>" in whole
    assert "Labor & <para>travel</para> &amp; 5 < 6" in whole


def test_a_long_invoice_runs_over_pages_with_numbers():
    document = a_document()
    document["invoice"]["lines"] = [
        line(n, "PART", f"SKU-{n}", f"Part number {n}", "1", 1000 + n, True) for n in range(1, 121)
    ]

    pdf = invoice_pdf_render(document)

    pages = texts(pdf)
    assert pdf.pages == len(pages) >= 3
    assert all(f"Page {n} of {pdf.pages}" in text for n, text in enumerate(pages, start=1))
    assert "Part number 120" in pages[-1] or "Part number 120" in "\n".join(pages)
    assert "Description" in pages[1]  # the table's header repeats


def test_invoice_page_is_letter(tmp_path):
    source = tmp_path / "invoice.pdf"
    source.write_bytes(invoice_pdf_render(a_document(status="DRAFT")).data)

    subprocess.run(["pdftoppm", "-r", "100", "-png", source, tmp_path / "page"], check=True, capture_output=True)

    with Image.open(tmp_path / "page-1.png") as image:
        assert image.size == (850, 1100)
