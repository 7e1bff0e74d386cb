"""The closeout packet PDF, read back as a person and a machine would: its text with pypdf, its
pages as pictures with pdftoppm, its QR code with zbarimg. No database: the packet is a dict and
the photos are files in tmp_path."""

from __future__ import annotations

import copy
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader

from dispatch.closeout.documents import RenderedPdf, packet_pdf_render

SHA = "3f5a0c9e" * 8
VERIFY_URL = "https://dispatch.example.com/packets/verify?ref=RD-24817&sha256=" + SHA


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> bytes:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle([size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def signature_png() -> bytes:
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 80), (90, 20), (160, 70), (290, 30)], fill="navy", width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def photo(index: int, key: str, file: str | None, **extra) -> dict:
    return {
        "evidence_id": f"evidence-{index}",
        "evidence_key": key,
        "file": file,
        "thumbnail": None,
        "content_type": "image/jpeg",
        "captured_at": "2026-11-03T10:41:00",
        "uploaded_at": "2026-11-03T18:50:00.000Z",
        "gps": {"lat": 37.795021, "lng": -122.398761},
        **extra,
    }


def a_packet() -> dict:
    return {
        "company": {"name": "Bayline Door & Access", "address": "1450 Harrison St", "phone": "(415) 555-0142"},
        "header": {
            "reference": "RD-24817",
            "state": "CLOSED",
            "closed_at": "2026-11-03T20:15:00.000Z",
            "close_reason": "Replaced the worn latch.",
            "priority": "URGENT",
            "incident_type": "DOOR_WONT_LATCH",
            "incident_name": "Door won't latch",
            "through_seq": 12,
        },
        "customer": {"name": "Harbor View Dental", "account": "Harbor View Dental Group"},
        "site": {
            "name": "Embarcadero office",
            "address": "2 Embarcadero Center\nSan Francisco, CA 94111",
            "timezone": "America/Los_Angeles",
            "access_instructions": "Check in with building security.",
            "hours": "Mon–Fri 7:00–18:00",
        },
        "asset": {"name": "Main entrance door", "make": "Stanley", "model": "Dura-Glide 3000", "serial": "SDG-88213"},
        "technician": {"name": "Dana Whitfield"},
        "visit": {
            "scheduled_start": "2026-11-03T18:00:00.000Z",
            "scheduled_end": "2026-11-03T20:00:00.000Z",
            "arrived_at": "2026-11-03T18:42:00.000Z",
            "completed_at": "2026-11-03T20:05:00.000Z",
        },
        "ticket": {
            "summary": "Front door does not latch",
            "description": "The door swings shut but does not latch.",
            "nte_cents": 75000,
            "currency": "USD",
        },
        "timeline_readable": [
            {"at": "2026-11-03T18:42:00.000Z", "who": "Dana", "text": "Dana checked in"},
            {"at": "2026-11-03T20:05:00.000Z", "who": "Dana", "text": "Dana marked the job complete"},
        ],
        "checklist_items": [
            {"key": "door_latches", "label": "Door latches", "done": True, "required": True},
            {"key": "walkthrough", "label": "Customer walkthrough", "done": False, "required": True},
        ],
        "photos": [photo(0, "photo_before", "before.jpg"), photo(1, "photo_after", "after.jpg", gps=None)],
        "notes": [{"evidence_key": "work_notes", "text": "Re-shimmed the strike plate.", "by": "Dana", "at": None}],
        "labor": [
            {
                "minutes": 90,
                "rate_cents": 14500,
                "description": "Replace latch",
                "technician": "Dana Whitfield",
                "worked_at": "2026-11-03T18:45:00.000Z",
            }
        ],
        "parts": [{"sku": "LATCH-DG3", "description": "Latch assembly", "quantity": "2.000", "unit_cents": 123456}],
        "approvals": [
            {
                "kind": "NTE_INCREASE",
                "status": "APPROVED",
                "amount_cents": 300000,
                "reason": "Second latch needed",
                "decided_by": "Pat Morales",
                "decided_at": "2026-11-03T19:05:00.000Z",
            }
        ],
        "invoice": {"number": "INV-2026-0481", "version": 1, "status": "APPROVED", "total_cents": 268467},
        "evidence_exceptions": [
            {
                "reason": "Serial plate is painted over.",
                "evidence_refs": ["serial_plate"],
                "granted_by_name": "Pat",
                "granted_by_role": "DISPATCHER",
                "created_at": "2026-11-03T19:30:00.000Z",
                "expires_at": None,
            }
        ],
        "overrides": [],
        "signature": {
            "captured": True,
            "file": "signature.png",
            "signer_name": "Maria Chen",
            "signed_at": "2026-11-03T20:02:00.000Z",
            "no_signature_reason": None,
        },
        "qa_reviews": [],
    }


@pytest.fixture
def billing():
    """The renderer reads no database: this replaces the closeout conftest's autouse billing
    profile (which needs one), so these tests run without creating the test database."""


@pytest.fixture
def storage(tmp_path):
    """A folder of stored files and the read_file the renderer is given: None for a missing name."""
    folder = tmp_path / "storage"
    folder.mkdir()
    (folder / "before.jpg").write_bytes(jpeg((180, 40, 40)))
    (folder / "after.jpg").write_bytes(jpeg((40, 140, 60)))
    (folder / "signature.png").write_bytes(signature_png())

    def read_file(name: str) -> bytes | None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None

    read_file.folder = folder
    return read_file


def render(packet: dict, read_file) -> RenderedPdf:
    return packet_pdf_render(packet, sha256=SHA, verify_url=VERIFY_URL, read_file=read_file)


def page_texts(pdf: RenderedPdf) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages]


def image_count(pdf: RenderedPdf) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(pdf.data)).pages)


def rasterize(pdf: RenderedPdf, folder: Path, *, first: int = 1, last: int | None = None) -> list[Path]:
    """The pages as PNGs at 100 dpi (a Letter page is 850 x 1100 pixels)."""
    source = folder / "packet.pdf"
    source.write_bytes(pdf.data)
    command = ["pdftoppm", "-r", "100", "-png", "-f", str(first), "-l", str(last or pdf.pages), source, folder / "page"]
    subprocess.run(command, check=True, capture_output=True)
    return sorted(folder.glob("page-*.png"))


def test_packet_shows_the_job_and_its_hash_on_every_page(storage):
    pdf = render(a_packet(), storage)

    texts = page_texts(pdf)
    assert pdf.pages == len(texts) >= 2
    whole = "\n".join(texts)
    for expected in (
        "RD-24817",
        "Harbor View Dental",
        "Embarcadero office",
        "Dana Whitfield",
        "Stanley Dura-Glide 3000",
        "Tue 3 Nov 2026, 10:00–12:00 PST",  # the appointment in the site's time zone
        "Maria Chen",
        "$2,469.12",  # 2 latches at $1,234.56
        "$217.50",  # 1:30 of labor at $145.00/h
        "$750.00",  # the not-to-exceed
        "$3,000.00",  # the approval
        "Waived serial_plate — by Pat (dispatcher)",
        "Serial plate is painted over.",
        "Customer walkthrough",
    ):
        assert expected in whole, expected
    for number, text in enumerate(texts, start=1):
        assert SHA in text
        assert f"Page {number} of {pdf.pages}" in text
    assert image_count(pdf) == 3  # two photos and the signature


def test_timeline_reads_in_the_sites_local_time(storage):
    whole = "\n".join(page_texts(render(a_packet(), storage)))

    assert "Tue 3 Nov 10:42" in whole
    assert "Dana checked in" in whole
    assert "America/Los_Angeles" in whole


def test_photos_are_captioned_with_key_time_and_gps(storage):
    whole = "\n".join(page_texts(render(a_packet(), storage)))

    assert "photo_before" in whole
    assert "Taken Tue 3 Nov 2026, 10:41" in whole  # the camera's own clock, shown as it is
    assert "GPS 37.79502, -122.39876" in whole


def test_cover_qr_code_decodes_to_the_verify_url_and_pages_are_letter(storage, tmp_path):
    pdf = render(a_packet(), storage)

    pages = rasterize(pdf, tmp_path)

    assert len(pages) == pdf.pages
    for page in pages:
        with Image.open(page) as image:
            assert image.size == (850, 1100)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", pages[0]], capture_output=True, text=True, check=True)
    assert decoded.stdout.strip() == VERIFY_URL
    assert "Verify this packet:" in page_texts(pdf)[0]


def test_same_packet_gives_the_same_bytes(storage):
    assert render(a_packet(), storage).data == render(a_packet(), storage).data


def test_markup_in_what_people_typed_prints_as_typed(storage):
    packet = a_packet()
    typed = '<font size=40 color="red">big</font> <para> <b>bold & stuff &amp; 5 < 6 <i>unbalanced'
    packet["notes"][0]["text"] = typed
    packet["customer"]["name"] = "<b>Acme</b> & Sons"
    packet["ticket"]["summary"] = "</para><br/>&nbsp;"

    whole = "\n".join(page_texts(render(packet, storage)))

    assert typed in whole
    assert "<b>Acme</b> & Sons" in whole
    assert "</para><br/>&nbsp;" in whole


def test_emoji_the_font_lacks_print_as_a_visible_marker(storage):
    packet = a_packet()
    packet["notes"][0]["text"] = "All good 👍🏽 door fixed 🚪 family 👨‍👩‍👧 broken \ud83d\x00 end"

    whole = "\n".join(page_texts(render(packet, storage)))

    assert "All good \ufffd door fixed \ufffd family \ufffd broken \ufffd end" in whole


def test_right_to_left_notes_read_in_order(storage):
    packet = a_packet()
    hebrew = "הדלת לא נסגרת כראוי ויש להחליף את המנעול בכניסה הראשית של המשרד. " * 40  # several pieces
    arabic = "الباب لا يغلق بشكل صحيح ويجب استبدال القفل. " * 3
    packet["notes"] = [
        {"evidence_key": "note_he", "text": hebrew, "by": "יוסי", "at": None},
        {"evidence_key": "note_ar", "text": arabic, "by": "أحمد", "at": None},
        {"evidence_key": "note_mixed", "text": "Customer מרים כהן signed off", "by": "Dana", "at": None},
    ]

    pdf = render(packet, storage)
    whole = "\n".join(page_texts(pdf))

    # Laid out right to left line by line, so reading the page back gives the words in order,
    # starting with the first line.
    assert "הדלת לא נסגרת כראוי ויש להחליף את המנעול" in whole
    assert "מרים כהן" in whole
    # Arabic letters are joined: the page holds their contextual forms (U+FE70-U+FEFF).
    assert any("\ufe70" <= char <= "\ufefc" for char in whole)


def test_a_twenty_thousand_character_note_runs_over_pages(storage):
    packet = a_packet()
    sentence = "The strike plate was re-shimmed and the latch tested again. "
    packet["notes"] = [
        {"evidence_key": "long", "text": (sentence * 340)[:19_990] + " END-OF-NOTE", "by": "Dana", "at": None},
        {"evidence_key": "unbroken", "text": "x" * 20_000, "by": "Dana", "at": None},
    ]
    packet["labor"][0]["description"] = "word " * 4_000
    packet["ticket"]["description"] = "\n".join(f"Line {n} of the description" for n in range(400))

    pdf = render(packet, storage)

    texts = page_texts(pdf)
    assert pdf.pages >= 12
    whole = " ".join(" ".join(texts).split())
    assert "END-OF-NOTE" in whole
    assert "Line 399 of the description" in whole
    assert "more characters in the packet data" in whole  # the labor cell is clipped to fit a page
    assert all(SHA in text for text in texts)


def test_sixty_photos_all_print(storage):
    packet = a_packet()
    packet["photos"] = []
    for index in range(60):
        (storage.folder / f"p{index}.jpg").write_bytes(jpeg((index * 4, 255 - index * 4, 90), size=(48, 36)))
        packet["photos"].append(photo(index, f"photo_{index}", f"p{index}.jpg"))

    pdf = render(packet, storage)

    assert image_count(pdf) == 61  # every photo and the signature
    assert "Photos (60)" in "\n".join(page_texts(pdf))
    assert pdf.pages >= 8


def test_photos_that_cannot_be_shown_are_named_in_a_box(storage):
    packet = a_packet()
    (storage.folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg at all" * 20)
    (storage.folder / "thumb.jpg").write_bytes(jpeg((10, 10, 200)))
    packet["photos"] = [
        photo(0, "photo_before", "gone.jpg"),
        photo(1, "photo_after", "corrupt.jpg"),
        photo(2, "serial_plate", "flaky.jpg"),
        photo(3, "hinge_detail", "also-gone.jpg", thumbnail="thumb.jpg"),  # the thumbnail stands in
        photo(4, "closer_arm", None),
    ]

    def read_file(name: str) -> bytes | None:
        if name == "flaky.jpg":
            raise OSError("storage timed out")
        return storage(name)

    pdf = render(packet, read_file)

    whole = " ".join(" ".join(page_texts(pdf)).split())
    assert "Photo photo_before could not be shown: file missing" in whole
    assert "Photo photo_after could not be shown: not a readable image" in whole
    assert "Photo serial_plate could not be shown: file could not be read" in whole
    assert "Photo closer_arm could not be shown: no file was stored" in whole
    assert "hinge_detail could not be shown" not in whole
    assert image_count(pdf) == 2  # the thumbnail and the signature


def test_signature_that_cannot_be_shown_is_named_with_the_signer(storage):
    packet = a_packet()
    packet["signature"]["file"] = "lost-signature.png"

    whole = "\n".join(page_texts(render(packet, storage)))

    assert "Signature could not be shown: file missing" in whole
    assert "Maria Chen" in whole


def test_no_signature_prints_the_reason(storage):
    packet = a_packet()
    packet["signature"] = {
        "captured": False,
        "file": None,
        "signer_name": None,
        "signed_at": None,
        "no_signature_reason": "Customer left before the job was finished.",
    }

    pdf = render(packet, storage)

    whole = "\n".join(page_texts(pdf))
    assert "No signature:" in whole
    assert "Customer left before the job was finished." in whole
    assert image_count(pdf) == 2


@pytest.mark.parametrize(
    "packet",
    [
        {},
        {"header": None, "photos": "not a list", "notes": [None, 3, {"text": None}], "site": {"timezone": "Mars/Base"}},
        {"labor": [{"minutes": "ninety", "rate_cents": None}], "parts": [{"quantity": "two", "unit_cents": "x"}]},
    ],
)
def test_a_packet_with_holes_still_renders(storage, packet):
    pdf = render(copy.deepcopy(packet), storage)

    texts = page_texts(pdf)
    assert pdf.pages == len(texts) >= 1
    assert all(SHA in text for text in texts)


def test_the_tools_the_tests_read_pdfs_with_are_installed():
    # make system-deps installs them (poppler-utils, zbar-tools); a missing one fails, never skips.
    assert shutil.which("pdftoppm") and shutil.which("zbarimg")
