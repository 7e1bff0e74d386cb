"""What the packet and the invoice PDFs share: the vendored Unicode font, making any user string
safe to print, money and time as people read them, tables, and a page template whose footer
numbers the pages ("Page 3 of 7") and can carry a line of its own (the packet's SHA-256).

Nothing here touches the database, storage or Django settings: a renderer gets plain dicts and
returns bytes.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from bidi import get_display
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Paragraph, Table, TableStyle

# Binary streams: by default reportlab wraps every stream in ASCII85, in pure Python unless its
# optional C accelerator is installed. For a packet of 20 photos that cost 0.3 s and a quarter
# more bytes, for a PDF that is only ever stored and sent as a binary file anyway.
rl_config.useA85 = 0

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"

PAGE_SIZE = LETTER
MARGIN_X = 0.75 * inch
MARGIN_TOP = 0.75 * inch
MARGIN_BOTTOM = 0.95 * inch  # the footer lives in it
CONTENT_WIDTH = PAGE_SIZE[0] - 2 * MARGIN_X

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
RULE = colors.HexColor("#cbd2d9")
HAIRLINE = colors.HexColor("#e4e7eb")
SHADE = colors.HexColor("#f5f7fa")
ACCENT = colors.HexColor("#1f4e79")
WARN = colors.HexColor("#b42318")

# A long free text is cut into paragraphs of at most this many characters: each one wraps
# quickly, and none can outgrow a frame (platypus re-wraps a paragraph it splits, again and
# again for a very long one).
CHUNK_CHARS = 1500
# What a table cell shows of a free text: a row cannot split across pages, so a cell must stay
# shorter than a page. The full text is in the packet's JSON.
CELL_CHARS = 900

REPLACEMENT = "\ufffd"
_REPLACEMENTS = re.compile("\ufffd{2,}")


class SourceUnavailable(Exception):
    """Raised by a `read_file` whose storage cannot answer at all (an object store that is down),
    as opposed to a file that is not there. The render stops so it can be retried later, instead
    of printing "could not be shown" for a photo that exists."""


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


# --- fonts --------------------------------------------------------------------------------


@functools.cache
def fonts_registered() -> frozenset[int]:
    """Registers DejaVu Sans (vendored, so nothing is read from outside the project) and returns
    the code points both weights have a glyph for and that can be printed."""
    regular = TTFont(FONT, str(FONT_DIR / "DejaVuSans.ttf"))
    bold = TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(bold)
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)
    # Only the Basic Multilingual Plane counts: reportlab writes a code point above U+FFFF into the
    # font's ToUnicode map as invalid hex, so even an emoji DejaVu draws (U+1F600) would break
    # copying and searching the text. It prints as the marker, like any other emoji.
    return frozenset(code for code in regular.face.charToGlyph if code <= 0xFFFF and code in bold.face.charToGlyph)


# --- user text ----------------------------------------------------------------------------

_RTL_CHAR = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_ARABIC = re.compile("[\u0600-\u06ff]")
_FORMS = ("ISOLATED", "FINAL", "INITIAL", "MEDIAL")


@functools.cache
def _arabic_forms() -> dict[str, tuple[str | None, ...]]:
    """Each Arabic letter's contextual forms (isolated, final, initial, medial) from the Unicode
    names of the presentation forms, kept only where the font has the glyph. Built from the
    standard library's unicodedata, so joining Arabic needs no shaping engine."""
    glyphs = fonts_registered()
    table: dict[str, tuple[str | None, ...]] = {}
    for code in [*range(0x0621, 0x064B), *range(0x0671, 0x06D4)]:
        letter = chr(code)
        name = unicodedata.name(letter, "")
        forms = []
        for form in _FORMS:
            try:
                shaped = unicodedata.lookup(f"{name} {form} FORM")
            except KeyError:
                shaped = None
            forms.append(shaped if shaped and ord(shaped) in glyphs else None)
        if any(forms):
            table[letter] = tuple(forms)
    table["\u0640"] = ("\u0640",) * 4  # tatweel joins on both sides and has one shape
    return table


def _lam_alef(alef: str, final: bool) -> str | None:
    name = unicodedata.name(alef, "").removeprefix("ARABIC LETTER ")
    try:
        ligature = unicodedata.lookup(f"ARABIC LIGATURE LAM WITH {name} {'FINAL' if final else 'ISOLATED'} FORM")
    except KeyError:
        return None
    return ligature if ord(ligature) in fonts_registered() else None


def arabic_shape(text: str) -> str:
    """Arabic letters in the shape their neighbours call for (presentation forms), lam-alef as
    its ligature: without this every letter would print in its isolated form, unjoined."""
    if not _ARABIC.search(text):
        return text
    forms = _arabic_forms()

    def joins_forward(char: str | None) -> bool:  # dual-joining: has an initial or medial form
        shapes = forms.get(char or "")
        return bool(shapes and (shapes[2] or shapes[3]))

    def neighbour(index: int, step: int) -> str | None:
        index += step
        while 0 <= index < len(text) and unicodedata.category(text[index]) == "Mn":  # harakat are transparent
            index += step
        return text[index] if 0 <= index < len(text) else None

    out: list[str] = []
    skip = False
    for index, char in enumerate(text):
        if skip:
            skip = False
            continue
        shapes = forms.get(char)
        if shapes is None:
            out.append(char)
            continue
        after_joining = joins_forward(neighbour(index, -1))
        following = neighbour(index, 1)
        if char == "\u0644" and following is not None and text[index + 1 : index + 2] == following:
            ligature = _lam_alef(following, after_joining)
            if ligature:
                out.append(ligature)
                skip = True
                continue
        before_joining = following in forms and joins_forward(char)
        isolated, final, initial, medial = shapes
        if after_joining and before_joining and medial:
            out.append(medial)
        elif after_joining and final:
            out.append(final)
        elif before_joining and initial:
            out.append(initial)
        else:
            out.append(isolated or char)
    return "".join(out)


def clean(value) -> str:
    """Any value as text the font can print: None is empty; control characters and invisible
    format characters (bidi marks, zero-width joiners, variation selectors) go; Arabic is joined.

    A character DejaVu Sans has no glyph for (emoji, CJK) becomes U+FFFD, the replacement
    character, which the font draws as a visible "?" in a diamond. Left alone, reportlab would
    draw the font's empty .notdef box, which a reader cannot tell from a stray rule or a
    checkbox; dropping the character would hide that the writer wrote something there."""
    if value is None:
        return ""
    text = str(value)
    # Lone surrogates (a broken "\\ud83d" in JSON) cannot even be encoded into the PDF.
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = arabic_shape(text)
    glyphs = fonts_registered()
    out = []
    for char in text:
        if char == "\n" or (ord(char) in glyphs and unicodedata.category(char) not in ("Cc", "Cf")):
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf") or 0xFE00 <= ord(char) <= 0xFE0F:
            continue
        else:
            out.append(REPLACEMENT)
    # One marker per unprintable run: a family emoji or a flag is one symbol to the reader.
    return _REPLACEMENTS.sub(REPLACEMENT, "".join(out))


_ACRONYMS = {"nte": "NTE", "qa": "QA", "gps": "GPS", "sms": "SMS"}


def humanize(code) -> str:
    """A code as words: NTE_INCREASE reads "NTE increase", APPROVED reads "Approved"."""
    words = clean(code).replace("_", " ").strip().lower().split()
    words = [_ACRONYMS.get(word, word) for word in words]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


def clip(text: str, limit: int = CELL_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"… [{len(text) - limit:,} more characters in the packet data]"


def _has_rtl(text: str) -> bool:
    return bool(_RTL_CHAR.search(text))


def _base_direction(text: str) -> str:
    """'R' when the first strongly directional character is Hebrew or Arabic, else 'L'."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "R"
        if kind == "L":
            return "L"
    return "L"


class BidiText(Flowable):
    """Text with Hebrew or Arabic in it, laid out right to left where it should be.

    reportlab reorders right-to-left text only through its optional rlbidi package, which is not
    on PyPI, so the lines are broken here in logical order (measured with the font), each line is
    reordered for display by python-bidi, and the visual lines go to a Paragraph that only has to
    stack them. Reordering before breaking would put a paragraph's last words on its first line."""

    def __init__(self, text: str, style: ParagraphStyle):
        super().__init__()
        self.text = text
        self.style = style
        self._paragraph: Paragraph | None = None

    def _lines(self, width: float) -> list[str]:
        font, size = self.style.fontName, self.style.fontSize
        width = max(width - 2, size)
        lines: list[str] = []
        for logical in self.text.split("\n"):
            line = ""
            for word in logical.split(" "):
                candidate = f"{line} {word}" if line else word
                if pdfmetrics.stringWidth(candidate, font, size) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                while pdfmetrics.stringWidth(word, font, size) > width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and pdfmetrics.stringWidth(word[:cut], font, size) > width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        return lines

    def wrap(self, availWidth, availHeight):
        base = _base_direction(self.text)
        visual = [escape(get_display(line, base_dir=base)) for line in self._lines(availWidth - self.style.leftIndent)]
        style = ParagraphStyle(
            f"{self.style.name}-bidi", parent=self.style, alignment=TA_RIGHT if base == "R" else TA_LEFT
        )
        self._paragraph = Paragraph("<br/>".join(visual), style)
        self.width, self.height = self._paragraph.wrap(availWidth, availHeight)
        return self.width, self.height

    def split(self, availWidth, availHeight):
        if self._paragraph is None:
            self.wrap(availWidth, availHeight)
        return self._paragraph.split(availWidth, availHeight)

    def draw(self):
        self._paragraph.drawOn(self.canv, 0, 0)

    def getSpaceBefore(self):
        return self.style.spaceBefore

    def getSpaceAfter(self):
        return self.style.spaceAfter


def _pieces(line: str, limit: int) -> Iterable[str]:
    """A long line as pieces of at most `limit` characters, cut after a sentence where one ends
    late enough, else at a space, else anywhere."""
    while len(line) > limit:
        window = line[:limit]
        cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? ")) + 1
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        yield line[:cut].strip()
        line = line[cut:].strip()
    if line:
        yield line


def text_flowables(value, style: ParagraphStyle, *, limit: int | None = None) -> list[Flowable]:
    """A user's free text as flowables: every string escaped (its markup prints as typed), blank
    lines start a new paragraph, a single line break stays one, and no piece outgrows a page."""
    text = clean(value).strip()
    if limit is not None:
        text = clip(text, limit)
    if not text:
        return []
    flowables: list[Flowable] = []
    for block in re.split(r"\n\s*\n", text):
        pieces: list[list[str]] = [[]]
        size = 0
        for line in block.split("\n"):
            for piece in _pieces(line.strip(), CHUNK_CHARS):
                if pieces[-1] and size + len(piece) > CHUNK_CHARS:
                    pieces.append([])
                    size = 0
                pieces[-1].append(piece)
                size += len(piece)
        pieces = [lines for lines in pieces if lines]
        # The pieces of one block follow each other without the gap that separates paragraphs.
        for index, lines in enumerate(pieces):
            flowables.append(_paragraph(lines, style if index == len(pieces) - 1 else _continued(style)))
    return flowables


@functools.cache
def _continued(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(f"{style.name}-continued", parent=style, spaceAfter=0)


def _paragraph(lines: list[str], style: ParagraphStyle) -> Flowable:
    if any(_has_rtl(line) for line in lines):
        return BidiText("\n".join(lines), style)
    return Paragraph("<br/>".join(escape(line) for line in lines), style)


def text_cell(value, style: ParagraphStyle, *, limit: int = CELL_CHARS) -> list[Flowable] | str:
    """A user's text for a table cell, clipped so the row fits on a page."""
    return text_flowables(value, style, limit=limit) or ""


def label_value(label: str, value, style: ParagraphStyle) -> Flowable:
    """ "Label: value" on one line for fixed labels and a user's value; right-to-left values get
    their own line handling."""
    text = clip(clean(value).strip(), CELL_CHARS)
    if _has_rtl(text):
        return BidiText(f"{label}: {text}", style)
    return Paragraph(f"<b>{escape(label)}:</b> {escape(text).replace(chr(10), '<br/>')}", style)


# --- money, numbers, time -----------------------------------------------------------------


def money(cents, currency: str | None = "USD") -> str:
    """Integer cents as people read them: $1,234.56 for dollars, 1,234.56 EUR for the rest."""
    if cents is None or isinstance(cents, bool):
        return "—"
    try:
        cents = int(cents)
    except (TypeError, ValueError):
        return clean(cents)
    sign = "−" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    amount = f"{whole:,}.{rest:02d}"
    code = clean(currency or "USD").strip().upper() or "USD"
    if code == "USD":
        return f"{sign}${amount}"
    return f"{sign}{amount} {code}"


def quantity(value) -> str:
    """A quantity string ("2.000") as it reads ("2"); anything unparseable as given."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return clean(value)
    if not number.is_finite():
        return clean(value)
    return format(number.normalize(), "f") if number == number.to_integral() else format(number.normalize(), ",f")


def line_cents(qty, unit_cents) -> int | None:
    """Quantity (a decimal string, or an exact Fraction of hours) times the unit price, rounded to
    the cent half up as billing rounds."""
    try:
        if isinstance(qty, Fraction):
            amount = Decimal(qty.numerator * int(unit_cents)) / Decimal(qty.denominator)
        else:
            amount = Decimal(str(qty)) * Decimal(int(unit_cents))
        return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError, TypeError):
        return None


def rate_percent(bps) -> str:
    """Basis points as a percentage: 862.5 bps reads 8.625%."""
    try:
        return f"{format((Decimal(int(bps)) / 100).normalize(), 'f')}%"
    except (InvalidOperation, ValueError, TypeError):
        return ""


def zone(name) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def instant(value) -> datetime | None:
    """An ISO-8601 string as a datetime (aware when the string says its offset), else None."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def local(value, tz: ZoneInfo) -> datetime | None:
    """An instant in the site's time zone. A time without an offset (a camera's EXIF clock) is
    already local time and stays as it is."""
    moment = instant(value)
    if moment is None:
        return None
    return moment.astimezone(tz) if moment.tzinfo else moment


def when(value, tz: ZoneInfo, *, year: bool = True, zone_name: bool = True) -> str:
    """ "Tue 3 Nov 2026, 10:42 PST", or an empty string for no time."""
    moment = local(value, tz)
    if moment is None:
        return ""
    day = f"{moment:%a} {moment.day} {moment:%b}" + (f" {moment.year}" if year else "")
    abbreviation = f" {moment.tzname()}" if zone_name and moment.tzinfo else ""
    return f"{day}, {moment:%H:%M}{abbreviation}"


def short_when(value, tz: ZoneInfo) -> str:
    """ "Tue 3 Nov 10:42", the timeline's form."""
    moment = local(value, tz)
    return f"{moment:%a} {moment.day} {moment:%b} {moment:%H:%M}" if moment else ""


def span(start, end, tz: ZoneInfo) -> str:
    """An appointment window: "Tue 3 Nov 2026, 10:00–12:00 PST" when it stays within one day."""
    first, last = local(start, tz), local(end, tz)
    if first is None:
        return ""
    if last is None:
        return when(start, tz)
    if first.date() == last.date():
        abbreviation = f" {last.tzname()}" if last.tzinfo else ""
        return f"{first:%a} {first.day} {first:%b} {first.year}, {first:%H:%M}–{last:%H:%M}{abbreviation}"
    return f"{when(start, tz)} – {when(end, tz)}"


# --- styles and tables --------------------------------------------------------------------


@functools.cache
def styles() -> dict[str, ParagraphStyle]:
    fonts_registered()
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12.5, textColor=INK, splitLongWords=1)
    return {
        "body": body,
        "strong": ParagraphStyle("strong", parent=body, fontName=FONT_BOLD),
        "small": ParagraphStyle("small", parent=body, fontSize=7.8, leading=10.5),
        "muted": ParagraphStyle("muted", parent=body, fontSize=7.8, leading=10.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8.3, leading=11),
        "cell_warn": ParagraphStyle("cell_warn", parent=body, fontSize=8.3, leading=11, textColor=WARN),
        "cell_right": ParagraphStyle("cell_right", parent=body, fontSize=8.3, leading=11, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=body, fontName=FONT_BOLD, fontSize=7.3, leading=10, textColor=MUTED),
        "head_right": ParagraphStyle(
            "head_right", parent=body, fontName=FONT_BOLD, fontSize=7.3, leading=10, textColor=MUTED, alignment=TA_RIGHT
        ),
        "label": ParagraphStyle("label", parent=body, fontSize=7.5, leading=10, textColor=MUTED),
        "value": ParagraphStyle("value", parent=body, fontSize=9, leading=12),
        "title": ParagraphStyle("title", parent=body, fontName=FONT_BOLD, fontSize=19, leading=23),
        "subtitle": ParagraphStyle("subtitle", parent=body, fontSize=10.5, leading=14, textColor=MUTED),
        "company": ParagraphStyle("company", parent=body, fontName=FONT_BOLD, fontSize=12, leading=15),
        "section": ParagraphStyle(
            "section",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=11,
            leading=14,
            textColor=ACCENT,
            spaceBefore=14,
            spaceAfter=2,
        ),
        "subsection": ParagraphStyle(
            "subsection",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=9,
            leading=12,
            spaceBefore=6,
            spaceAfter=2,
        ),
        "note": ParagraphStyle("note", parent=body, spaceAfter=3),
        "banner": ParagraphStyle("banner", parent=body, fontName=FONT_BOLD, fontSize=10, leading=13, textColor=WARN),
    }


def grid_style(*, header: bool = True, extra: Iterable[tuple] = ()) -> TableStyle:
    """Light rules between rows, a shaded header, no vertical lines."""
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, HAIRLINE),
    ]
    if header:
        commands += [
            ("BACKGROUND", (0, 0), (-1, 0), SHADE),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
            ("LINEABOVE", (0, 0), (-1, 0), 0.6, RULE),
        ]
    return TableStyle(commands + list(extra))


def data_table(
    header: list[str], rows: list[list], widths: list[float], *, right: Iterable[int] = (), extra: Iterable[tuple] = ()
) -> Table:
    """A table of rows under a header that repeats on every page it runs onto; columns in
    `right` (numbers) align right. Header labels are fixed strings; cells are flowables already."""
    right = set(right)
    s = styles()
    head = [
        Paragraph(escape(label), s["head_right"] if index in right else s["head"]) for index, label in enumerate(header)
    ]
    table = Table([head, *rows], colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(grid_style(extra=extra))
    return table


def cell(value, *, right: bool = False, limit: int = CELL_CHARS):
    s = styles()
    return text_cell(value, s["cell_right"] if right else s["cell"], limit=limit)


class Box(Flowable):
    """A bordered box with a message in it: where a photo or signature could not be shown."""

    def __init__(self, width: float, height: float, message: str):
        super().__init__()
        self.width, self.height = width, height
        self.message = message

    def wrap(self, availWidth, availHeight):
        self.width = min(self.width, availWidth)
        return self.width, self.height

    def draw(self):
        canvas = self.canv
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setFillColor(SHADE)
        canvas.setDash(3, 2)
        canvas.roundRect(0, 0, self.width, self.height, 4, stroke=1, fill=1)
        canvas.restoreState()
        style = ParagraphStyle("box", parent=styles()["small"], textColor=MUTED, alignment=1)
        paragraph = Paragraph(escape(clip(clean(self.message), 300)), style)
        _, height = paragraph.wrap(self.width - 24, self.height)
        paragraph.drawOn(canvas, 12, max((self.height - height) / 2, 4))


# --- the document -------------------------------------------------------------------------


@dataclass(frozen=True)
class PageDecor:
    """What every page carries besides the story: a running header from page 2 on, the footer's
    left text, an optional second footer line (the packet's hash), an optional diagonal mark."""

    running_header: str = ""
    footer_left: str = ""
    footer_line: str = ""
    watermark: str = ""


def _decorate(canvas: Canvas, decor: PageDecor, page: int, total: int) -> None:
    width, _ = PAGE_SIZE
    canvas.saveState()
    if decor.watermark:
        canvas.saveState()
        canvas.setFillColor(colors.Color(0.75, 0.1, 0.1, alpha=0.08))
        canvas.setFont(FONT_BOLD, 64)
        canvas.translate(width / 2, PAGE_SIZE[1] / 2)
        canvas.rotate(35)
        canvas.drawCentredString(0, 0, decor.watermark)
        canvas.restoreState()
    if decor.running_header and page > 1:
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN_X, PAGE_SIZE[1] - 0.5 * inch, decor.running_header)
        canvas.setStrokeColor(HAIRLINE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN_X, PAGE_SIZE[1] - 0.5 * inch - 5, width - MARGIN_X, PAGE_SIZE[1] - 0.5 * inch - 5)
    top = MARGIN_BOTTOM - 0.32 * inch
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, top, width - MARGIN_X, top)
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN_X, top - 12, decor.footer_left)
    canvas.setFont(FONT_BOLD, 7.5)
    canvas.setFillColor(INK)
    canvas.drawRightString(width - MARGIN_X, top - 12, f"Page {page} of {total}")
    if decor.footer_line:
        canvas.setFont(FONT, 6.3)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN_X, top - 23, decor.footer_line)
    canvas.restoreState()


def _canvas_class(decor: PageDecor, counted: list[int]) -> type[Canvas]:
    class DecoratedCanvas(Canvas):
        """Holds every page until the end, so each footer can say how many pages there are
        ("Page 3 of 7") from a single layout pass."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._held: list[dict] = []

        def showPage(self):
            self._held.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._held)
            for number, state in enumerate(self._held, start=1):
                self.__dict__.update(state)
                _decorate(self, decor, number, total)
                Canvas.showPage(self)
            counted.append(total)
            Canvas.save(self)

    return DecoratedCanvas


def build_pdf(story: list[Flowable], *, title: str, subject: str, author: str, decor: PageDecor) -> RenderedPdf:
    """Lays the story out on Letter pages with the decor on each; the same input gives the same
    bytes (no creation time or random id in the file)."""
    fonts_registered()
    out = io.BytesIO()
    document = BaseDocTemplate(
        out,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=clean(title),
        subject=clean(subject),
        author=clean(author),
        creator="Real Dispatch",
        invariant=1,
    )
    # No frame padding: tables CONTENT_WIDTH wide line up with the footer's rule.
    frame = Frame(
        MARGIN_X,
        MARGIN_BOTTOM,
        CONTENT_WIDTH,
        PAGE_SIZE[1] - MARGIN_TOP - MARGIN_BOTTOM,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    document.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    counted: list[int] = []
    document.build(story, canvasmaker=_canvas_class(decor, counted))
    return RenderedPdf(data=out.getvalue(), pages=counted[-1] if counted else 0)


def footer_text(*parts: str) -> str:
    """One line for the page decor (drawn straight on the canvas, so reordered here when it holds
    right-to-left text)."""
    text = " · ".join(clean(part).replace("\n", " ").strip() for part in parts if part and clean(part).strip())
    return get_display(text, base_dir="L") if _has_rtl(text) else text
