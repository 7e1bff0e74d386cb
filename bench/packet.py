"""Benchmark of the closeout packet PDF: a packet with 20 phone photos (12-megapixel JPEGs with
noise at several scales, so they compress like real photos), rendered N times, and a normal
invoice rendered N times.

    .venv/bin/python bench/packet.py [--photos 20] [--runs 5] [--invoice-runs 20] [--keep out.pdf]

Budgets: the packet in under 2 s and under 5 MB, the invoice in under 200 ms. Needs no database.
Ends by printing one JSON object (photos, render_seconds_p50, pdf_bytes, pages,
invoice_render_ms_p50, budgets_met). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKET_SECONDS = 2.0
PACKET_BYTES = 5_000_000
INVOICE_MS = 200.0


def log(message: str) -> None:
    print(f"[packet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def django_setup() -> None:
    # The renderers need no settings; set up as the other benches do so imports behave the same.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def phone_photo(seed: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A 12-megapixel JPEG at quality 90 (2.5-3 MB, as phones save them): gradients, coloured
    shapes and noise at three scales, so detail survives downscaling as it does in a photo."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    width, height = size
    base = Image.linear_gradient("L").resize((width // 8, height // 8)).convert("RGB")
    draw = ImageDraw.Draw(base)
    for _ in range(60):
        x, y = rng.randrange(width // 8), rng.randrange(height // 8)
        box = [x, y, x + rng.randrange(5, 120), y + rng.randrange(5, 90)]
        draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    image = base.resize(size, Image.BILINEAR)
    for divisor, sigma, alpha in ((16, 60, 0.25), (4, 50, 0.2), (1, 30, 0.12)):
        noise = Image.effect_noise((width // divisor, height // divisor), sigma + seed % 7)
        image = Image.blend(image, noise.resize(size, Image.BILINEAR).convert("RGB"), alpha)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def signature_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (900, 300), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        [(30, 220), (180, 80), (300, 210), (450, 70), (630, 220), (840, 110)], fill="navy", width=7
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def packet(photos: int) -> dict:
    keys = ("photo_before", "photo_after", "serial_plate", "hinge_detail", "closer_arm")
    phrases = (
        "checked in",
        "added a photo",
        "logged 0:45 of labor",
        "added a part: latch assembly",
        "completed the checklist",
        "marked the job complete",
    )
    return {
        "company": {
            "name": "Bayline Door & Access",
            "address": "1450 Harrison St, Suite 200\nSan Francisco, CA 94103",
            "phone": "(415) 555-0142",
            "email": "service@bayline.example",
        },
        "header": {
            "reference": "RD-24817",
            "state": "CLOSED",
            "closed_at": "2026-11-03T20:15:00.000Z",
            "close_reason": "Replaced the worn latch and adjusted the closer.",
            "priority": "URGENT",
            "incident_type": "DOOR_WONT_LATCH",
            "incident_name": "Door won't latch",
        },
        "customer": {"name": "Harbor View Dental", "account": "Harbor View Dental Group"},
        "site": {
            "name": "Harbor View Dental — Embarcadero",
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
            "summary": "Front entrance door does not latch",
            "description": "The door swings shut but does not latch; the office cannot be secured overnight.",
            "nte_cents": 75000,
            "currency": "USD",
        },
        "timeline_readable": [
            {
                "at": f"2026-11-03T{18 + n // 30:02d}:{(n * 2) % 60:02d}:00.000Z",
                "who": "Dana",
                "text": f"Dana {phrases[n % len(phrases)]}",
            }
            for n in range(60)
        ],
        "checklist_items": [
            {"key": f"step_{n}", "label": f"Checklist step {n}", "done": n != 3, "required": n < 5} for n in range(8)
        ],
        "photos": [
            {
                "evidence_id": f"evidence-{n}",
                "evidence_key": keys[n % len(keys)],
                "file": f"photo-{n}.jpg",
                "thumbnail": None,
                "content_type": "image/jpeg",
                "captured_at": f"2026-11-03T10:{n:02d}:00",
                "uploaded_at": "2026-11-03T18:50:00.000Z",
                "gps": {"lat": 37.79502, "lng": -122.39876},
            }
            for n in range(photos)
        ],
        "notes": [{"evidence_key": "work_notes", "text": "Re-shimmed the strike plate. " * 20, "by": "Dana"}],
        "labor": [{"minutes": 95, "rate_cents": 14500, "description": "Diagnose and repair", "technician": "Dana"}],
        "parts": [{"sku": "LATCH-DG3", "description": "Latch assembly", "quantity": "1.000", "unit_cents": 21840}],
        "approvals": [
            {"kind": "NTE_INCREASE", "status": "APPROVED", "amount_cents": 90000, "reason": "Latch replacement"}
        ],
        "invoice": None,
        "evidence_exceptions": [],
        "overrides": [],
        "signature": {
            "captured": True,
            "file": "signature.png",
            "signer_name": "Maria Chen",
            "signed_at": "2026-11-03T20:02:00.000Z",
        },
        "qa_reviews": [],
    }


def invoice_document() -> dict:
    lines = [
        ("LABOR", "LAB-STD", "Diagnose latch, re-shim strike, replace latch assembly", "1.25", 14500, False),
        ("LABOR", "LAB-STD", "Adjust closer sweep and latch speed", "0.5", 14500, False),
        ("PART", "LATCH-DG3", "Dura-Glide latch assembly", "1", 21840, True),
        ("PART", "SHIM-SS-1MM", "Stainless shim, 1 mm", "3", 275, True),
        ("FEE", None, "Trip charge", "1", 4500, False),
    ]
    return {
        "company": {"name": "Bayline Door & Access", "address": "1450 Harrison St\nSan Francisco, CA 94103"},
        "bill_to": {"name": "Harbor View Dental", "account": "Harbor View Dental Group", "email": "ap@example.com"},
        "site": {"name": "Harbor View Dental", "address": "2 Embarcadero Center\nSan Francisco, CA 94111"},
        "job": {"reference": "RD-24817", "summary": "Door won't latch", "completed_at": "2026-11-03T20:05:00.000Z"},
        "issued_on": "2026-12-06",
        "due_on": "2027-01-05",
        "terms": "Net 30.",
        "timezone": "America/Los_Angeles",
        "invoice": {
            "number": "INV-2026-0481",
            "version": 1,
            "status": "APPROVED",
            "currency": "USD",
            "labor_cents": 25375,
            "parts_cents": 22665,
            "fees_cents": 4500,
            "subtotal_cents": 52540,
            "labor_tax_cents": 0,
            "parts_tax_cents": 1956,
            "tax_cents": 1956,
            "total_cents": 54496,
            "tax_jurisdiction": "CA-SF",
            "labor_tax_bps": 0,
            "parts_tax_bps": 863,
            "nte_cents": 75000,
            "exceeds_nte": False,
            "approval_refs": [],
            "notes": [],
            "lines": [
                {
                    "position": n,
                    "kind": kind,
                    "item_code": code,
                    "description": description,
                    "quantity": qty,
                    "unit_cents": unit,
                    "total_cents": round(float(qty) * unit),
                    "taxable": taxable,
                    "tax_code": None,
                }
                for n, (kind, code, description, qty, unit, taxable) in enumerate(lines, start=1)
            ],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--invoice-runs", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="write the last packet PDF here")
    args = parser.parse_args()
    django_setup()
    from dispatch.closeout.documents import invoice_pdf_render, packet_pdf_render

    with tempfile.TemporaryDirectory(prefix="bench-packet-") as tmp:
        store = Path(tmp)
        log(f"making {args.photos} 12-megapixel photos")
        originals = 0
        for n in range(args.photos):
            data = phone_photo(n)
            originals += len(data)
            (store / f"photo-{n}.jpg").write_bytes(data)
        (store / "signature.png").write_bytes(signature_png())

        def read_file(name: str) -> bytes | None:
            path = store / name
            return path.read_bytes() if path.is_file() else None

        document = packet(args.photos)
        sha = "0" * 64
        times, rendered = [], None
        for run in range(args.runs):
            start = time.perf_counter()
            rendered = packet_pdf_render(
                document, sha256=sha, verify_url="https://dispatch.example.com/p/RD-24817", read_file=read_file
            )
            times.append(time.perf_counter() - start)
            log(f"packet run {run + 1}: {times[-1]:.3f} s, {len(rendered.data):,} bytes, {rendered.pages} pages")
        if args.keep:
            args.keep.write_bytes(rendered.data)

    invoice = invoice_document()
    invoice_pdf_render(invoice)  # the first render registers the fonts
    invoice_times = []
    for _ in range(args.invoice_runs):
        start = time.perf_counter()
        invoice_pdf_render(invoice)
        invoice_times.append((time.perf_counter() - start) * 1000)

    packet_p50 = statistics.median(times)
    invoice_p50 = statistics.median(invoice_times)
    result = {
        "photos": args.photos,
        "original_photo_bytes": originals,
        "render_seconds_p50": round(packet_p50, 3),
        "render_seconds_max": round(max(times), 3),
        "pdf_bytes": len(rendered.data),
        "pages": rendered.pages,
        "invoice_render_ms_p50": round(invoice_p50, 1),
        "budgets": {"packet_seconds": PACKET_SECONDS, "packet_bytes": PACKET_BYTES, "invoice_ms": INVOICE_MS},
        "budgets_met": {
            "packet_time": packet_p50 < PACKET_SECONDS,
            "packet_size": len(rendered.data) < PACKET_BYTES,
            "invoice_time": invoice_p50 < INVOICE_MS,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
