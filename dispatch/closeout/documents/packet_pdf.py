"""The closeout packet as a PDF a customer or an auditor reads: the cover with the job's facts and
a QR code to verify the packet, scope and notes, checklist, photos, labor and parts, the
not-to-exceed and its approvals, waived evidence and overrides, the customer's signature, QA and
the whole timeline. Every page carries the packet's SHA-256 and "Page n of N".

A pure function of the packet's JSON: photos come through `read_file`, and anything that cannot
be read or decoded prints as a box saying so. Bad input never stops the render.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction
from xml.sax.saxutils import escape

from PIL import Image as PILImage
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import inch
from reportlab.platypus import CondPageBreak, Flowable, HRFlowable, Image, KeepTogether, Paragraph, Spacer, Table

from dispatch.common.files import raster_thumbnail

from .pdf_base import (
    CONTENT_WIDTH,
    INK,
    RULE,
    Box,
    PageDecor,
    RenderedPdf,
    SourceUnavailable,
    build_pdf,
    cell,
    clean,
    data_table,
    footer_text,
    grid_style,
    humanize,
    label_value,
    line_cents,
    local,
    money,
    quantity,
    short_when,
    span,
    styles,
    text_flowables,
    when,
    zone,
)

__all__ = ["RenderedPdf", "packet_pdf_render"]

# A photo prints at most 3.4 x 2.55 in in the two-column grid: 750 px is 220 ppi there, sharp on
# paper. 750 is also where a 4000x3000 phone photo decodes at a quarter of its size straight from
# the JPEG (draft mode), ~50 ms instead of ~80 ms for any larger size, and at quality 80 it
# weighs 60-150 KB. bench/packet.py: 20 such photos render in 1.1 s into a 1.5 MB packet.
# Photos are decoded one after another: raster_thumbnail's decompression-bomb guard swaps
# process-wide state (Pillow's pixel limit, the warnings filters), which threads would race on.
PHOTO_MAX_PX = 750
PHOTO_QUALITY = 80
SIGNATURE_MAX_PX = 800
PHOTO_COLUMNS = 2
PHOTO_GAP = 12
PHOTO_WIDTH = (CONTENT_WIDTH - PHOTO_GAP * (PHOTO_COLUMNS - 1)) / PHOTO_COLUMNS
PHOTO_HEIGHT = PHOTO_WIDTH * 3 / 4
QR_SIZE = 1.2 * inch

ReadFile = Callable[[str], bytes | None]


def packet_pdf_render(packet: dict, *, sha256: str, verify_url: str, read_file: ReadFile) -> RenderedPdf:
    """The packet's PDF: `sha256` goes in every page's footer, `verify_url` in the cover's QR code."""
    packet = packet if isinstance(packet, dict) else {}
    header = _dict(packet.get("header"))
    company = _dict(packet.get("company"))
    reference = clean(header.get("reference")) or "—"
    tz = zone(_dict(packet.get("site")).get("timezone"))
    images = _images(packet, read_file)

    story: list[Flowable] = []
    story += _cover(packet, reference, verify_url, tz)
    story += _scope(packet, tz)
    story += _checklist(packet)
    story += _photos(packet, images, tz)
    story += _labor_and_parts(packet, tz)
    story += _approvals(packet, tz)
    story += _exceptions(packet, tz)
    story += _signature(packet, images, tz)
    story += _qa(packet, tz)
    story += _timeline(packet, tz)

    customer = clean(_dict(packet.get("customer")).get("name"))
    decor = PageDecor(
        running_header=footer_text(clean(company.get("name")), f"Closeout packet {reference}", customer),
        footer_left=footer_text(clean(company.get("name")), f"Closeout packet {reference}"),
        footer_line=f"Packet SHA-256 {clean(sha256)}",
    )
    return build_pdf(
        story,
        title=f"Closeout packet {reference}",
        subject=f"Closeout packet {reference}, SHA-256 {clean(sha256)}",
        author=clean(company.get("name")),
        decor=decor,
    )


# --- reading the input defensively --------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _section(title: str, room: float = 1.3 * inch) -> list[Flowable]:
    """A section's heading; it starts a new page when less than `room` is left below it, so a
    heading never sits alone at the foot of a page."""
    return [
        CondPageBreak(room),
        Paragraph(escape(title), styles()["section"]),
        HRFlowable(width="100%", thickness=0.6, color=RULE, spaceBefore=1, spaceAfter=6),
    ]


def _subsection(title: str) -> list[Flowable]:
    return [CondPageBreak(0.9 * inch), Paragraph(escape(title), styles()["subsection"])]


def _none(text: str) -> Paragraph:
    return Paragraph(escape(text), styles()["muted"])


# --- images -------------------------------------------------------------------------------


class _Picture:
    """A photo or signature ready to print (a downscaled JPEG and its size) or why it is not."""

    def __init__(self, jpeg: bytes | None = None, size: tuple[int, int] = (0, 0), problem: str = ""):
        self.jpeg, self.size, self.problem = jpeg, size, problem


def _picture(names: list, read_file: ReadFile, max_px: int) -> _Picture:
    """The first of `names` (the original, then the stored thumbnail) that reads and decodes; the
    problem with the first one otherwise."""
    problems = []
    for name in names:
        if not name or not isinstance(name, str):
            continue
        try:
            data = read_file(name)
        except SourceUnavailable:
            raise
        except Exception:  # any other error reading this one file: the packet still renders
            data, problem = None, "file could not be read"
        else:
            problem = "file missing"
        if not data:
            problems.append(problem)
            continue
        try:
            jpeg = raster_thumbnail(bytes(data), max_px=max_px, quality=PHOTO_QUALITY)
            with PILImage.open(io.BytesIO(jpeg)) as image:
                return _Picture(jpeg, image.size)
        except Exception:  # UnreadableImage, and whatever else a hostile file manages to raise
            problems.append("not a readable image")
    return _Picture(problem=problems[0] if problems else "no file was stored")


def _images(packet: dict, read_file: ReadFile) -> dict[str, _Picture]:
    """Every photo (the original, else its stored thumbnail) and the signature, ready to print."""
    pictures = {
        f"photo:{index}": _picture([photo.get("file"), photo.get("thumbnail")], read_file, PHOTO_MAX_PX)
        for index, photo in enumerate(_list(packet.get("photos")))
    }
    signature = _dict(packet.get("signature"))
    if signature.get("file"):
        pictures["signature"] = _picture([signature.get("file")], read_file, SIGNATURE_MAX_PX)
    return pictures


def _fit(picture: _Picture, width: float, height: float) -> Image:
    pixels_w, pixels_h = picture.size
    scale = min(width / pixels_w, height / pixels_h)
    image = Image(io.BytesIO(picture.jpeg), width=pixels_w * scale, height=pixels_h * scale)
    image.hAlign = "LEFT"
    return image


def _qr(url: str) -> Flowable:
    """The verification URL as a QR code drawn by reportlab itself (vector, no image to embed)."""
    try:
        widget = QrCodeWidget(url, barLevel="M")
        x0, y0, x1, y1 = widget.getBounds()
    except Exception:  # a URL longer than a QR code holds: the printed URL still verifies
        return Box(QR_SIZE, QR_SIZE, "No QR code: the address is too long")
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


# --- sections -----------------------------------------------------------------------------


def _cover(packet: dict, reference: str, verify_url: str, tz) -> list[Flowable]:
    s = styles()
    company = _dict(packet.get("company"))
    header = _dict(packet.get("header"))
    customer = _dict(packet.get("customer"))
    site = _dict(packet.get("site"))
    asset = _dict(packet.get("asset"))
    technician = _dict(packet.get("technician"))
    visit = _dict(packet.get("visit"))

    contact = [
        clean(company.get("address")),
        "  ·  ".join(filter(None, [clean(company.get(k)) for k in ("phone", "email")])),
    ]
    company_block = text_flowables(company.get("name") or "—", s["company"]) + text_flowables(
        "\n".join(part for part in contact if part.strip()), s["muted"], limit=400
    )
    url = clean(verify_url)
    verify = Table(
        [
            [
                _qr(verify_url or ""),
                [Paragraph("<b>Verify this packet:</b>", s["small"]), Paragraph(escape(url), s["muted"])],
            ]
        ],
        colWidths=[QR_SIZE + 6, 2.0 * inch],
        style=[("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0)],
    )
    top = Table(
        [[company_block, verify]],
        colWidths=[CONTENT_WIDTH - QR_SIZE - 2.1 * inch - 6, QR_SIZE + 2.1 * inch + 6],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ],
    )

    closed = when(header.get("closed_at"), tz)
    status = f"Closed {closed}" if closed else humanize(header.get("state"))
    title = [
        Spacer(1, 14),
        Paragraph("CLOSEOUT PACKET", s["label"]),
        Paragraph(escape(reference), s["title"]),
        *text_flowables(header.get("incident_name") or header.get("incident_type"), s["subtitle"], limit=200),
        *text_flowables(status, s["muted"]),
        Spacer(1, 10),
    ]

    asset_text = ""
    if asset:
        make_model = " ".join(filter(None, [clean(asset.get("make")), clean(asset.get("model"))]))
        serial = clean(asset.get("serial"))
        asset_text = "\n".join(
            filter(None, [clean(asset.get("name")), make_model, f"Serial {serial}" if serial.strip() else ""])
        )
    left = [
        ("Customer", customer.get("name")),
        ("Account", customer.get("account") if customer.get("account") != customer.get("name") else ""),
        ("Site", site.get("name")),
        ("Address", site.get("address")),
        ("Access", site.get("access_instructions")),
        ("Hours", site.get("hours")),
    ]
    right = [
        ("Technician", technician.get("name") if technician else "Not assigned"),
        ("Asset", asset_text or "None recorded"),
        ("Priority", clean(header.get("priority")).capitalize()),
        ("Appointment", span(visit.get("scheduled_start"), visit.get("scheduled_end"), tz) or "Not scheduled"),
        ("Arrived", when(visit.get("arrived_at"), tz) or "Not recorded"),
        ("Completed", when(visit.get("completed_at"), tz) or "Not recorded"),
    ]
    left = [(label, value) for label, value in left if clean(value).strip()]
    rows = []
    for index in range(max(len(left), len(right))):
        row = []
        for pairs in (left, right):
            if index < len(pairs):
                label, value = pairs[index]
                row += [Paragraph(escape(label), s["label"]), cell(value, limit=600)]
            else:
                row += ["", ""]
        rows.append(row)
    facts = Table(rows, colWidths=[0.85 * inch, 2.65 * inch, 0.95 * inch, 2.55 * inch], hAlign="LEFT")
    facts.setStyle(
        grid_style(
            header=False,
            extra=[
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("LINEABOVE", (0, 0), (-1, 0), 0.6, RULE),
                ("LINEBELOW", (0, -1), (-1, -1), 0.6, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ],
        )
    )
    return [top, *title, facts]


def _scope(packet: dict, tz) -> list[Flowable]:
    s = styles()
    ticket = _dict(packet.get("ticket"))
    header = _dict(packet.get("header"))
    story = _section("Scope and resolution")
    summary = text_flowables(ticket.get("summary"), s["subsection"], limit=400)
    story += summary or [_none("No summary was recorded.")]
    story += text_flowables(ticket.get("description"), s["note"])
    if clean(header.get("close_reason")).strip():
        story += _subsection("Resolution")
        story += text_flowables(header.get("close_reason"), s["note"])
    notes = _list(packet.get("notes"))
    story += _subsection("Notes")
    if not notes:
        story.append(_none("No notes were added."))
    for note in notes:
        who = clean(note.get("by_name") or note.get("by"))
        meta = " · ".join(filter(None, [clean(note.get("evidence_key")), who, when(note.get("at"), tz)]))
        block = [Paragraph(escape(meta), s["muted"])] if meta else []
        block += text_flowables(note.get("text"), s["note"]) or [_none("(empty note)")]
        story += [*block, Spacer(1, 4)]
    return story


def _checklist(packet: dict) -> list[Flowable]:
    s = styles()
    items = _list(packet.get("checklist_items"))
    story = _section("Checklist")
    if not items:
        return story + [_none("This job had no checklist.")]
    rows = []
    for item in items:
        done = item.get("done") is True
        required = item.get("required") is True
        if done:
            result = Paragraph("✓ Done", s["cell"])
        else:  # a required item left undone stands out
            result = Paragraph("✗ Not done" if required else "Not done", s["cell_warn"] if required else s["cell"])
        rows.append(
            [
                cell(item.get("label") or item.get("key"), limit=300),
                cell("Required" if required else "Optional"),
                result,
            ]
        )
    return story + [data_table(["Item", "", "Result"], rows, [CONTENT_WIDTH - 2.2 * inch, 1.0 * inch, 1.2 * inch])]


def _photos(packet: dict, images: dict[str, _Picture], tz) -> list[Flowable]:
    s = styles()
    photos = _list(packet.get("photos"))
    story = _section(f"Photos ({len(photos)})" if photos else "Photos", room=PHOTO_HEIGHT + 1.2 * inch)
    if not photos:
        return story + [_none("No photos were taken.")]
    cells = []
    for index, photo in enumerate(photos):
        key = clean(photo.get("evidence_key")) or "photo"
        picture = images.get(f"photo:{index}") or _Picture(problem="no file was stored")
        if picture.jpeg:
            shown: Flowable = _fit(picture, PHOTO_WIDTH, PHOTO_HEIGHT)
        else:
            shown = Box(PHOTO_WIDTH, PHOTO_HEIGHT * 0.6, f"Photo {key} could not be shown: {picture.problem}")
        captured = when(photo.get("captured_at"), tz, zone_name=True)
        uploaded = when(photo.get("uploaded_at"), tz)
        timing = f"Taken {captured}" if captured else (f"Uploaded {uploaded}" if uploaded else "Time not recorded")
        gps = _dict(photo.get("gps"))
        place = _gps(gps)
        caption = [Paragraph(f"<b>{escape(key)}</b>", s["small"]), Paragraph(escape(timing), s["muted"])]
        if place:
            caption.append(Paragraph(escape(f"GPS {place}"), s["muted"]))
        cells.append([shown, Spacer(1, 3), *caption])
    rows = [cells[i : i + PHOTO_COLUMNS] for i in range(0, len(cells), PHOTO_COLUMNS)]
    if len(rows[-1]) < PHOTO_COLUMNS:
        rows[-1] += [""] * (PHOTO_COLUMNS - len(rows[-1]))
    grid = Table(rows, colWidths=[PHOTO_WIDTH + PHOTO_GAP / 2] * PHOTO_COLUMNS, hAlign="LEFT")
    grid.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), PHOTO_GAP / 2),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 10),
        ]
    )
    return story + [grid]


def _gps(gps: dict) -> str:
    try:
        lat, lng = float(gps["lat"]), float(gps["lng"])
    except (KeyError, TypeError, ValueError):
        return ""
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return ""
    return f"{lat:.5f}, {lng:.5f}"


def _labor_and_parts(packet: dict, tz) -> list[Flowable]:
    currency = _dict(packet.get("ticket")).get("currency") or "USD"
    story = _section("Labor and parts")
    labor = _list(packet.get("labor"))
    story += _subsection("Labor")
    if labor:
        rows, total_minutes, total_cents = [], 0, 0
        for row in labor:
            minutes = row.get("minutes") if isinstance(row.get("minutes"), int) else 0
            rate = row.get("rate_cents")
            # Billing's rule: the amount comes from the minutes, rounded to the cent half up.
            amount = line_cents(Fraction(minutes, 60), rate) if isinstance(rate, int) else None
            total_minutes += minutes
            total_cents += amount or 0
            rows.append(
                [
                    cell(short_when(row.get("worked_at"), tz)),
                    cell(row.get("technician") or "—", limit=120),
                    cell(row.get("description") or "—"),
                    cell(_duration(minutes), right=True),
                    cell(f"{money(rate, currency)}/h" if isinstance(rate, int) else "—", right=True),
                    cell(money(amount, currency), right=True),
                ]
            )
        rows.append(
            [
                "",
                "",
                cell("Total labor"),
                cell(_duration(total_minutes), right=True),
                "",
                cell(money(total_cents, currency), right=True),
            ]
        )
        story.append(
            data_table(
                ["Date", "Technician", "Work", "Time", "Rate", "Amount"],
                rows,
                [1.2 * inch, 1.15 * inch, CONTENT_WIDTH - 5.05 * inch, 0.6 * inch, 1.0 * inch, 1.1 * inch],
                right=(3, 4, 5),
                extra=[("LINEABOVE", (0, -1), (-1, -1), 0.6, RULE)],
            )
        )
    else:
        story.append(_none("No labor was recorded."))
    parts = _list(packet.get("parts"))
    story += _subsection("Parts")
    if parts:
        rows, total_cents = [], 0
        for row in parts:
            amount = line_cents(row.get("quantity"), row.get("unit_cents"))
            total_cents += amount or 0
            rows.append(
                [
                    cell(row.get("sku") or "—", limit=60),
                    cell(row.get("description") or "—"),
                    cell(quantity(row.get("quantity")), right=True),
                    cell(money(row.get("unit_cents"), currency), right=True),
                    cell(money(amount, currency), right=True),
                ]
            )
        rows.append(["", cell("Total parts"), "", "", cell(money(total_cents, currency), right=True)])
        story.append(
            data_table(
                ["SKU", "Part", "Qty", "Unit", "Amount"],
                rows,
                [1.2 * inch, CONTENT_WIDTH - 4.1 * inch, 0.6 * inch, 1.1 * inch, 1.2 * inch],
                right=(2, 3, 4),
                extra=[("LINEABOVE", (0, -1), (-1, -1), 0.6, RULE)],
            )
        )
    else:
        story.append(_none("No parts were used."))
    return story


def _duration(minutes: int) -> str:
    hours, rest = divmod(max(minutes, 0), 60)
    return f"{hours}:{rest:02d}"


def _approvals(packet: dict, tz) -> list[Flowable]:
    s = styles()
    ticket = _dict(packet.get("ticket"))
    currency = ticket.get("currency") or "USD"
    story = _section("Not-to-exceed and approvals")
    nte = ticket.get("nte_cents")
    story.append(
        Paragraph(
            f"<b>Not-to-exceed:</b> {escape(money(nte, currency))}"
            if nte is not None
            else "No not-to-exceed amount was set.",
            s["body"],
        )
    )
    approvals = _list(packet.get("approvals"))
    if approvals:
        rows = [
            [
                cell(humanize(row.get("kind")), limit=60),
                cell(humanize(row.get("status")), limit=40),
                cell(
                    money(row.get("amount_cents"), currency) if row.get("amount_cents") is not None else "—", right=True
                ),
                cell(row.get("reason") or "—"),
                cell(
                    "\n".join(
                        filter(
                            None,
                            [
                                clean(row.get("decided_by_name") or row.get("decided_by")),
                                when(row.get("decided_at"), tz),
                            ],
                        )
                    )
                    or "Not decided"
                ),
            ]
            for row in approvals
        ]
        story += [
            Spacer(1, 4),
            data_table(
                ["Approval", "Status", "Amount", "Reason", "Decided"],
                rows,
                [1.1 * inch, 0.85 * inch, 0.95 * inch, CONTENT_WIDTH - 4.7 * inch, 1.8 * inch],
                right=(2,),
            ),
        ]
    else:
        story.append(_none("No approvals were requested."))
    invoice = _dict(packet.get("invoice"))
    if invoice:
        status = clean(invoice.get("status")).capitalize()
        number = clean(invoice.get("number")) or "—"
        version = invoice.get("version")
        total = money(invoice.get("total_cents"), invoice.get("currency") or currency)
        label = f"Invoice {number}" + (f" (version {version})" if isinstance(version, int) and version > 1 else "")
        story.append(Spacer(1, 6))
        story.append(
            Paragraph(f"<b>{escape(label)}:</b> {escape(status)}, total {escape(total)}", s["body"]),
        )
    return story


def _exceptions(packet: dict, tz) -> list[Flowable]:
    s = styles()
    exceptions = _list(packet.get("evidence_exceptions"))
    overrides = _list(packet.get("overrides"))
    if not exceptions and not overrides:
        return []
    story = _section("Waived evidence and overrides")
    for row in exceptions:
        refs = row.get("evidence_refs")
        waived = ", ".join(clean(ref) for ref in refs) if isinstance(refs, list) and refs else "evidence"
        who = clean(row.get("granted_by_name") or row.get("granted_by")) or "someone"
        role = clean(row.get("granted_by_role")).replace("_", " ").lower()
        granted = when(row.get("created_at"), tz)
        expires = when(row.get("expires_at"), tz)
        line = f"Waived {waived} — by {who}" + (f" ({role})" if role else "") + (f", {granted}" if granted else "")
        block = text_flowables(line, s["strong"])
        block += text_flowables(f"Why: {clean(row.get('reason')) or 'no reason given'}", s["note"])
        if expires:
            block.append(Paragraph(escape(f"Waiver expires {expires}"), s["muted"]))
        story += [*block, Spacer(1, 5)]
    for row in overrides:
        kind = humanize(row.get("kind")) or "Override"
        who = clean(row.get("by_name") or row.get("by")) or "someone"
        role = clean(row.get("role") or row.get("approver_role")).replace("_", " ").lower()
        at = when(row.get("at"), tz)
        line = f"{kind} — by {who}" + (f" ({role})" if role else "") + (f", {at}" if at else "")
        reason = row.get("reason") or row.get("override_reason") or row.get("bypass_rationale")
        # The override code itself is an authorisation secret and stays out of a document that is emailed.
        block = text_flowables(line, s["strong"])
        block += text_flowables(f"Why: {clean(reason) or 'no reason given'}", s["note"])
        bypassed = _dict(row.get("bypassed"))
        missing = [
            clean(key)
            for key in (bypassed.get("missing_evidence_keys") or []) + (bypassed.get("missing_checklist_keys") or [])
        ]
        if missing:
            block.append(Paragraph(escape("Bypassed while missing: " + ", ".join(missing)), s["muted"]))
        story += [*block, Spacer(1, 5)]
    return story


def _signature(packet: dict, images: dict[str, _Picture], tz) -> list[Flowable]:
    s = styles()
    signature = _dict(packet.get("signature"))
    story = _section("Customer signature")
    signer = clean(signature.get("signer_name")).strip()
    signed_at = when(signature.get("signed_at"), tz)
    reason = clean(signature.get("no_signature_reason")).strip()
    picture = images.get("signature")
    block: list[Flowable] = []
    if picture is not None and picture.jpeg:
        block.append(_fit(picture, 3.2 * inch, 1.1 * inch))
    elif picture is not None:
        block.append(Box(3.2 * inch, 0.8 * inch, f"Signature could not be shown: {picture.problem}"))
        block[-1].hAlign = "LEFT"
    if signature.get("captured") or picture is not None:
        block.append(HRFlowable(width=3.2 * inch, thickness=0.6, color=INK, hAlign="LEFT", spaceBefore=2, spaceAfter=3))
        who = signer or "Signer's name not recorded"
        block.append(label_value("Signed by", who, s["body"]))
        if signed_at:
            block.append(Paragraph(escape(signed_at), s["muted"]))
    if reason:
        block.append(Paragraph("<b>No signature:</b>", s["body"]))
        block += text_flowables(reason, s["note"])
    if not block:
        block.append(_none("No signature was captured and no reason was given."))
    return story + [KeepTogether(block)]


def _qa(packet: dict, tz) -> list[Flowable]:
    s = styles()
    reviews = _list(packet.get("qa_reviews"))
    if not reviews:
        return []
    story = _section("Quality review")
    for row in reviews:
        result = humanize(row.get("result")) or "Reviewed"
        who = clean(row.get("reviewer_name") or row.get("reviewer"))
        meta = " · ".join(filter(None, [who, when(row.get("reviewed_at"), tz)]))
        story += text_flowables(result + (f" — {meta}" if meta else ""), s["strong"])
        story += text_flowables(row.get("notes"), s["note"])
        story.append(Spacer(1, 4))
    return story


def _timeline(packet: dict, tz) -> list[Flowable]:
    rows = _list(packet.get("timeline_readable"))
    story = _section("Timeline")
    if not rows:
        return story + [_none("No events were recorded.")]
    moment = next((local(row.get("at"), tz) for row in rows if local(row.get("at"), tz)), None)
    zone_note = (
        f"Times are the site's local time ({tz.key}{', ' + moment.tzname() if moment and moment.tzinfo else ''})."
    )
    table_rows = [[cell(short_when(row.get("at"), tz) or "—"), cell(row.get("text"), limit=600)] for row in rows]
    return story + [
        Paragraph(escape(zone_note), styles()["muted"]),
        Spacer(1, 4),
        data_table(["When", "What happened"], table_rows, [1.3 * inch, CONTENT_WIDTH - 1.3 * inch]),
    ]
