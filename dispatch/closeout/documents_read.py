"""Reads of a job's closeout documents: its packet versions and invoice versions, as the toolset,
the back office and the customer's status page show them, and their files (PDF, JSON, CSV)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.files.storage import default_storage

from dispatch.common.errors import DispatchError

from .evidence_files import storage_reading
from .exports import invoice_csv, invoice_pdf_bytes
from .models import CloseoutPacket, Invoice
from .packets import invoice_serialize, iso
from .services.packet_versions import packet_canonical_bytes, packet_pdf_build, packet_verify_url

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Document:
    """A file to answer with: its bytes, media type and the name to save it under."""

    data: bytes
    content_type: str
    filename: str


def packet_summary(row: CloseoutPacket) -> dict:
    return {
        "id": str(row.id),
        "version": row.version,
        "reason": row.reason,
        "sha256": row.sha256,
        "verify_url": packet_verify_url(row.sha256),
        "forced": row.forced,
        "through_seq": row.through_seq,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "pdf": {
            "status": row.pdf_status,
            "sha256": row.pdf_sha256 or None,
            "pages": row.pdf_pages,
            "error": row.pdf_error or None,
        },
    }


def packet_versions(ticket) -> list[CloseoutPacket]:
    """Every version of the ticket's packet, newest first."""
    return list(CloseoutPacket.objects.filter(ticket=ticket).defer("packet").order_by("-version"))


def packet_not_found(ticket, version=None) -> DispatchError:
    what = f"version {version} of " if version is not None else ""
    return DispatchError(
        "PACKET_NOT_FOUND",
        f"No {what}closeout packet for ticket {ticket.short_ref} yet: one is issued when the job closes, "
        "when its invoice is approved, or with closeout.render_packet.",
        status=404,
        dimension="request",
        details={"ticket_id": str(ticket.id), "version": version},
    )


def _version_key(raw) -> int | None:
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise DispatchError(
            "INVALID_REQUEST", "Parameter 'version' must be a whole number.", status=400, details={"field": "version"}
        )
    return int(text)


def packet_get(ticket, version=None) -> CloseoutPacket:
    """One version of the ticket's packet (the newest when none is named); 404 when there is none."""
    key = _version_key(version)
    rows = CloseoutPacket.objects.filter(ticket=ticket)
    row = rows.filter(version=key).first() if key is not None else rows.order_by("-version").first()
    if row is None:
        raise packet_not_found(ticket, key)
    return row


def packet_read(ticket, version=None) -> dict:
    """The packet (the newest version, or the one named) with its JSON, and every version's summary."""
    row = packet_get(ticket, version)
    return {
        "ticket_id": str(ticket.id),
        "packet": {**packet_summary(row), "document": row.packet},
        "versions": [packet_summary(other) for other in packet_versions(ticket)],
    }


def packet_pdf(row: CloseoutPacket) -> Document:
    """The version's PDF, rendered now if the worker has not rendered it yet."""
    if row.pdf_status != CloseoutPacket.PdfStatus.READY:
        row = packet_pdf_build(row.id) or row
    if row.pdf_status == CloseoutPacket.PdfStatus.PENDING:
        # Another worker is rendering it right now.
        raise DispatchError(
            "PACKET_PDF_PENDING",
            "The packet's PDF is being rendered; ask again in a few seconds. Its JSON is available now.",
            status=503,
            dimension="request",
            details={"packet_id": str(row.id), "pdf_status": row.pdf_status},
        )
    if row.pdf_status != CloseoutPacket.PdfStatus.READY or not row.pdf_file:
        raise DispatchError(
            "PACKET_PDF_FAILED",
            "The packet's PDF could not be rendered; its JSON is available. The back office shows why.",
            status=503,
            dimension="request",
            details={"packet_id": str(row.id), "pdf_status": row.pdf_status},
        )
    with storage_reading(), default_storage.open(row.pdf_file.name, "rb") as handle:
        data = handle.read()
    return Document(data, "application/pdf", f"closeout-{row.packet['header']['reference']}-v{row.version}.pdf")


def packet_json(row: CloseoutPacket) -> Document:
    """The version's JSON exactly as hashed: its sha256 is the packet's hash."""
    return Document(
        packet_canonical_bytes(row),
        "application/json",
        f"closeout-{row.packet['header']['reference']}-v{row.version}.json",
    )


def packet_verify(sha256: str) -> CloseoutPacket | None:
    """The packet version issued with this hash, if any (a malformed hash finds nothing)."""
    value = (sha256 or "").strip().lower()
    if not SHA256_HEX.match(value):
        return None
    return CloseoutPacket.objects.filter(sha256=value).select_related("ticket").defer("packet").first()


# --- invoices ---------------------------------------------------------------------------------


def invoice_summary(invoice: Invoice) -> dict:
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "version": invoice.version,
        "status": invoice.status,
        "total_cents": invoice.total_cents,
        "currency": invoice.currency,
        "created_at": iso(invoice.created_at),
        "approved_at": iso(invoice.approved_at),
        "superseded_at": iso(invoice.superseded_at),
    }


def invoice_versions(ticket) -> list[Invoice]:
    return list(Invoice.objects.filter(ticket=ticket).order_by("-version"))


def invoice_get(ticket, version=None) -> Invoice:
    """One version of the ticket's invoice (the current one when none is named)."""
    key = _version_key(version)
    rows = Invoice.objects.filter(ticket=ticket).select_related("ticket__site", "ticket__account", "supersedes")
    if key is not None:
        invoice = rows.filter(version=key).first()
    else:
        invoice = rows.exclude(status=Invoice.Status.SUPERSEDED).first()
    if invoice is None:
        raise DispatchError(
            "INVOICE_NOT_FOUND",
            f"No {'version ' + str(key) + ' of the ' if key is not None else ''}invoice for ticket "
            f"{ticket.short_ref}: it is drafted with billing.generate_invoice once the work is verified.",
            status=404,
            dimension="request",
            details={"ticket_id": str(ticket.id), "version": key},
        )
    return invoice


def invoice_read(ticket, version=None) -> dict:
    invoice = invoice_get(ticket, version)
    body = invoice_serialize(invoice)
    body["supersedes_number"] = invoice.supersedes.number if invoice.supersedes_id else None
    return {
        "ticket_id": str(ticket.id),
        "invoice": body,
        "versions": [invoice_summary(other) for other in invoice_versions(ticket)],
    }


def invoice_pdf(invoice: Invoice) -> Document:
    return Document(invoice_pdf_bytes(invoice), "application/pdf", f"{invoice.number}.pdf")


def invoice_csv_document(invoice: Invoice) -> Document:
    return Document(invoice_csv([invoice]).encode("utf-8"), "text/csv; charset=utf-8", f"{invoice.number}.csv")


# --- the customer's ------------------------------------------------------------------------------


def customer_documents(ticket) -> dict:
    """What the customer may download: the approved invoice, and the newest packet that shows it
    (the one issued with the approval, or a later one issued with it still current). A packet that
    shows a draft invoice, or none, is the office's working copy."""
    invoice = Invoice.objects.filter(ticket=ticket, status=Invoice.Status.APPROVED).only("number", "pdf").first()
    packet = None
    if invoice is not None:
        for row in CloseoutPacket.objects.filter(ticket=ticket, pdf_status=CloseoutPacket.PdfStatus.READY).order_by(
            "-version"
        ):
            shown = (row.packet.get("invoice") or {}).get("id")
            if shown == str(invoice.id):
                packet = row
                break
    return {"invoice": invoice, "packet": packet}
