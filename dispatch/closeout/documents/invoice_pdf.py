"""The customer's invoice as a PDF: who bills whom for which job, the lines, subtotal, labor and
parts tax at their rates, the total, the not-to-exceed and the approvals that cleared it, and the
terms. A draft says it is not a demand for payment; a superseded invoice says so; a correction
names the invoice it replaces.

A pure function of the invoice document the billing service assembles.
"""

from __future__ import annotations

from datetime import date
from xml.sax.saxutils import escape

from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, Paragraph, Spacer, Table

from .pdf_base import (
    CONTENT_WIDTH,
    INK,
    RULE,
    SHADE,
    WARN,
    PageDecor,
    RenderedPdf,
    build_pdf,
    cell,
    clean,
    data_table,
    footer_text,
    humanize,
    local,
    money,
    quantity,
    rate_percent,
    styles,
    text_flowables,
    zone,
)

__all__ = ["RenderedPdf", "invoice_pdf_render"]


def invoice_pdf_render(document: dict) -> RenderedPdf:
    """The invoice's PDF from its document (company, bill_to, site, job, dates, terms, invoice)."""
    document = document if isinstance(document, dict) else {}
    invoice = _dict(document.get("invoice"))
    company = _dict(document.get("company"))
    number = clean(invoice.get("number")) or "—"
    status = clean(invoice.get("status")).upper()
    version = invoice.get("version") if isinstance(invoice.get("version"), int) else 1

    story: list[Flowable] = []
    story += _header(document, invoice, number, version)
    story += _banner(invoice, status, version)
    story += _parties(document)
    story += _lines(invoice)
    story += _totals(invoice)
    story += _nte_and_approvals(invoice, zone(document.get("timezone")))
    story += _notes_and_terms(document, invoice)

    label = f"Invoice {number}" + (f" v{version}" if version > 1 else "")
    decor = PageDecor(
        running_header=footer_text(clean(company.get("name")), label),
        footer_left=footer_text(clean(company.get("name")), label),
        watermark={"DRAFT": "DRAFT", "SUPERSEDED": "SUPERSEDED"}.get(status, ""),
    )
    return build_pdf(story, title=label, subject=label, author=clean(company.get("name")), decor=decor)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _day(value) -> str:
    """A calendar date ("2026-12-06") as "6 Dec 2026"; anything else as given."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return clean(value)
    return f"{day.day} {day:%b %Y}"


def _local_day(value, tz) -> str:
    """The day an instant falls on at the site: "3 Nov 2026"."""
    moment = local(value, tz)
    return f"{moment.day} {moment:%b %Y}" if moment else ""


def _header(document: dict, invoice: dict, number: str, version: int) -> list[Flowable]:
    s = styles()
    company = _dict(document.get("company"))
    job = _dict(document.get("job"))
    contact = "\n".join(
        part
        for part in [clean(company.get("address")), clean(company.get("phone")), clean(company.get("email"))]
        if part.strip()
    )
    left = text_flowables(company.get("name") or "—", s["company"]) + text_flowables(contact, s["muted"], limit=400)
    facts = [
        ("Invoice", number + (f" (version {version})" if version > 1 else "")),
        ("Issued", _day(document.get("issued_on"))),
        ("Due", _day(document.get("due_on"))),
        ("Job", clean(job.get("reference"))),
    ]
    fact_rows = [
        [Paragraph(escape(label), s["label"]), cell(value, limit=120)] for label, value in facts if value.strip()
    ]
    fact_table = Table(fact_rows, colWidths=[0.7 * inch, 1.9 * inch], hAlign="RIGHT")
    fact_table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]
    )
    title = ParagraphStyle("invoice-title", parent=s["title"], fontSize=22, leading=26)
    right = [Paragraph("INVOICE", title), Spacer(1, 4), fact_table]
    top = Table([[left, right]], colWidths=[CONTENT_WIDTH - 2.6 * inch, 2.6 * inch])
    top.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ]
    )
    return [top, Spacer(1, 10)]


def _banner(invoice: dict, status: str, version: int) -> list[Flowable]:
    """What kind of paper this is, when it is not a plain invoice: draft, superseded, correction."""
    s = styles()
    lines = []
    if status == "DRAFT":
        lines.append(("DRAFT — not a demand for payment", WARN))
    elif status == "SUPERSEDED":
        lines.append(("Superseded — a corrected invoice replaces this one", WARN))
    if version > 1:
        replaces = clean(invoice.get("supersedes_number")).strip() or "an earlier invoice"
        lines.append((f"Corrected invoice, replaces {replaces}", INK))
    if not lines:
        return []
    rows = [
        [Paragraph(escape(text), ParagraphStyle("banner-line", parent=s["banner"], textColor=color))]
        for text, color in lines
    ]
    banner = Table(rows, colWidths=[CONTENT_WIDTH])
    banner.setStyle(
        [
            ("BACKGROUND", (0, 0), (-1, -1), SHADE),
            ("BOX", (0, 0), (-1, -1), 0.8, lines[0][1]),
            ("LEFTPADDING", (0, 0), (-1, -1), 8),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ("TOPPADDING", (0, 0), (-1, 0), 5),
            ("BOTTOMPADDING", (0, -1), (-1, -1), 5),
        ]
    )
    return [banner, Spacer(1, 10)]


def _parties(document: dict) -> list[Flowable]:
    s = styles()
    bill_to = _dict(document.get("bill_to"))
    site = _dict(document.get("site"))
    job = _dict(document.get("job"))
    tz = zone(document.get("timezone"))

    def block(title: str, parts: list) -> list[Flowable]:
        text = "\n".join(clean(part) for part in parts if clean(part).strip())
        return [Paragraph(escape(title), s["head"]), *(text_flowables(text, s["cell"], limit=500) or [Spacer(1, 1)])]

    account = bill_to.get("account") if bill_to.get("account") != bill_to.get("name") else ""
    completed = _local_day(job.get("completed_at"), tz)
    job_lines = [
        job.get("summary"),
        job.get("incident_name"),
        f"Completed {completed}" if completed else "",
        f"Technician: {clean(job.get('technician'))}" if clean(job.get("technician")).strip() else "",
    ]
    row = [
        block("BILL TO", [bill_to.get("name"), account, bill_to.get("email")]),
        block("SERVICE SITE", [site.get("name"), site.get("address")]),
        block("JOB " + clean(job.get("reference")), job_lines),
    ]
    width = CONTENT_WIDTH / 3
    table = Table([row], colWidths=[width] * 3)
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 12),
            ("LINEABOVE", (0, 0), (-1, 0), 0.6, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 6),
        ]
    )
    return [table, Spacer(1, 10)]


def _lines(invoice: dict) -> list[Flowable]:
    s = styles()
    currency = invoice.get("currency") or "USD"
    lines = [line for line in invoice.get("lines") or [] if isinstance(line, dict)]
    if not lines:
        return [Paragraph("This invoice has no lines.", s["muted"]), Spacer(1, 8)]

    def position(line: dict):
        return line.get("position") if isinstance(line.get("position"), int) else 0

    rows = []
    for line in sorted(lines, key=position):
        item = clean(line.get("item_code")).strip() or humanize(line.get("kind")) or "—"
        rows.append(
            [
                cell(item, limit=60),
                cell(line.get("description") or "—"),
                cell(quantity(line.get("quantity")), right=True),
                cell(money(line.get("unit_cents"), currency), right=True),
                cell("No" if line.get("taxable") is False else "Yes", right=True),
                cell(money(line.get("total_cents"), currency), right=True),
            ]
        )
    return [
        data_table(
            ["Item", "Description", "Qty", "Rate", "Taxed", "Amount"],
            rows,
            [1.35 * inch, CONTENT_WIDTH - 4.8 * inch, 0.6 * inch, 1.0 * inch, 0.7 * inch, 1.15 * inch],
            right=(2, 3, 4, 5),
        ),
        Spacer(1, 8),
    ]


def _totals(invoice: dict) -> list[Flowable]:
    s = styles()
    currency = invoice.get("currency") or "USD"
    jurisdiction = clean(invoice.get("tax_jurisdiction")).strip()
    rows: list[tuple[str, object]] = [
        ("Labor", invoice.get("labor_cents")),
        ("Parts", invoice.get("parts_cents")),
    ]
    if invoice.get("fees_cents"):
        rows.append(("Fees", invoice.get("fees_cents")))
    rows.append(("Subtotal", invoice.get("subtotal_cents")))
    for label, cents_key, bps_key in (
        ("Labor tax", "labor_tax_cents", "labor_tax_bps"),
        ("Parts tax", "parts_tax_cents", "parts_tax_bps"),
    ):
        rate = rate_percent(invoice.get(bps_key))
        rows.append((f"{label} ({rate})" if rate else label, invoice.get(cents_key)))
    total_style = ParagraphStyle("total", parent=s["body"], fontName=s["title"].fontName, fontSize=11, leading=14)
    total_right = ParagraphStyle("total-right", parent=total_style, alignment=2)
    data = [[Paragraph(escape(label), s["cell"]), cell(money(value, currency), right=True)] for label, value in rows]
    data.append(
        [
            Paragraph("Total due", total_style),
            Paragraph(escape(money(invoice.get("total_cents"), currency)), total_right),
        ]
    )
    subtotal_row = next(index for index, (label, _) in enumerate(rows) if label == "Subtotal")
    table = Table(data, colWidths=[1.9 * inch, 1.6 * inch], hAlign="RIGHT")
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ("LINEABOVE", (0, subtotal_row), (-1, subtotal_row), 0.4, RULE),
            ("LINEABOVE", (0, -1), (-1, -1), 0.9, INK),
            ("TOPPADDING", (0, -1), (-1, -1), 6),
        ]
    )
    block: list[Flowable] = [table]
    if jurisdiction:
        note = ParagraphStyle("jurisdiction", parent=s["muted"], alignment=2)
        block.append(Paragraph(escape(f"Tax jurisdiction: {jurisdiction}"), note))
    return [KeepTogether(block), Spacer(1, 8)]


def _nte_and_approvals(invoice: dict, tz) -> list[Flowable]:
    s = styles()
    currency = invoice.get("currency") or "USD"
    nte = invoice.get("nte_cents")
    refs = [ref for ref in invoice.get("approval_refs") or [] if isinstance(ref, dict)]
    if nte is None and not refs:
        return []
    story: list[Flowable] = [CondPageBreak(1.0 * inch), Paragraph("Not-to-exceed and approvals", s["subsection"])]
    if nte is not None:
        text = f"<b>Not-to-exceed:</b> {escape(money(nte, currency))}"
        if invoice.get("exceeds_nte"):
            text += " — this invoice exceeds it" + (", as approved below." if refs else ".")
        story.append(Paragraph(text, s["body"]))
    if refs:
        rows = [
            [
                cell(humanize(ref.get("kind")) or "Approval", limit=60),
                cell(
                    money(ref.get("amount_cents"), currency) if ref.get("amount_cents") is not None else "—", right=True
                ),
                cell(ref.get("decided_by_name") or ref.get("decided_by") or "—", limit=120),
                cell(_local_day(ref.get("decided_at"), tz) or "—"),
                cell(ref.get("id") or "—", limit=60),
            ]
            for ref in refs
        ]
        story += [
            Spacer(1, 4),
            data_table(
                ["Approval", "Amount", "Approved by", "When", "Reference"],
                rows,
                [1.2 * inch, 1.0 * inch, 1.3 * inch, 1.6 * inch, CONTENT_WIDTH - 5.1 * inch],
                right=(1,),
            ),
        ]
    return story + [Spacer(1, 10)]


def _notes_and_terms(document: dict, invoice: dict) -> list[Flowable]:
    s = styles()
    story: list[Flowable] = []
    notes = [note for note in invoice.get("notes") or [] if clean(note).strip()]
    if notes:
        story += [CondPageBreak(0.6 * inch), Paragraph("Notes", s["subsection"])]
        for note in notes:
            story += text_flowables(note, s["note"], limit=2000)
        story.append(Spacer(1, 8))
    terms = clean(document.get("terms")).strip()
    if terms:
        box = Table([[text_flowables(f"Terms: {terms}", s["small"], limit=2000)]], colWidths=[CONTENT_WIDTH])
        box.setStyle(
            [
                ("LINEABOVE", (0, 0), (-1, 0), 0.6, RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
            ]
        )
        story.append(box)
    return story
