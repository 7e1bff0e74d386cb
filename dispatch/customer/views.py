"""The customer's pages that show more than intake knows: the status page with the job's closeout
packet and invoice once they are issued, their downloads behind the same signed link, and the
public page that verifies a packet's hash (the target of the packet's QR code)."""

from __future__ import annotations

import hashlib

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from dispatch.closeout import documents_read as documents
from dispatch.closeout.models import CloseoutPacket, Invoice
from dispatch.intake.views import customer_status, status_ticket, unknown_link
from dispatch.tickets.states import TicketState

# A file checked against the issued packets is read whole to hash it: a packet PDF with 60 photos
# stays well below this.
VERIFY_MAX_BYTES = 25 * 1024 * 1024


def customer_documents(ticket) -> dict:
    """What the customer may download: the approved invoice, and the newest packet once the job is
    closed or its invoice approved (packets issued earlier are the office's working copies)."""
    invoice = Invoice.objects.filter(ticket=ticket, status=Invoice.Status.APPROVED).only("number", "pdf").first()
    packet = None
    if invoice is not None or ticket.state == TicketState.CLOSED:
        packet = (
            CloseoutPacket.objects.filter(ticket=ticket, pdf_status=CloseoutPacket.PdfStatus.READY)
            .only("version", "sha256", "created_at", "pdf_file")
            .order_by("-version")
            .first()
        )
    return {"invoice": invoice, "packet": packet}


@never_cache
@require_GET
def status_page(request: HttpRequest, token: str) -> HttpResponse:
    """/s/<token>/: the ticket's state, reference, appointment window and technician's first name,
    and its closeout packet and invoice once the customer may have them."""
    ticket = status_ticket(token)
    if ticket is None:
        return unknown_link(request)
    context = {"status": customer_status(ticket), "documents": customer_documents(ticket), "token": token}
    return render(request, "intake/status.html", context)


def _download(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_GET
def status_invoice_pdf(request: HttpRequest, token: str) -> HttpResponse:
    ticket = status_ticket(token)
    invoice = customer_documents(ticket)["invoice"] if ticket is not None else None
    if invoice is None:
        raise Http404("No invoice for this link.")
    return _download(documents.invoice_pdf(invoice).data, f"{invoice.number}.pdf")


@never_cache
@require_GET
def status_packet_pdf(request: HttpRequest, token: str) -> HttpResponse | FileResponse:
    ticket = status_ticket(token)
    packet = customer_documents(ticket)["packet"] if ticket is not None else None
    if packet is None:
        raise Http404("No closeout packet for this link.")
    with packet.pdf_file.open("rb") as handle:
        data = handle.read()
    return _download(data, f"closeout-{ticket.short_ref}-v{packet.version}.pdf")


def _checked_file(request: HttpRequest, packet: CloseoutPacket | None) -> dict | None:
    """Whether an uploaded file is, byte for byte, this packet's JSON or PDF as issued."""
    upload = request.FILES.get("file")
    if upload is None:
        return {"error": "Choose the packet's PDF or JSON file to check."}
    if upload.size > VERIFY_MAX_BYTES:
        return {"error": "That file is larger than any packet we issue."}
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    value = digest.hexdigest()
    matches = packet is not None and value in {packet.sha256, packet.pdf_sha256}
    return {"name": upload.name[:120], "sha256": value, "matches": matches}


@never_cache
@require_http_methods(["GET", "POST"])
def packet_verify(request: HttpRequest, sha256: str) -> HttpResponse:
    """/verify/<sha256>/: whether a packet with this hash was issued, for which job and when, and
    nothing more; a posted file is checked against it (a changed byte changes its hash)."""
    packet = documents.packet_verify(sha256)
    checked = _checked_file(request, packet) if request.method == "POST" else None
    context = {
        "sha256": sha256[:64],
        "packet": packet,
        "reference": packet.ticket.short_ref if packet else None,
        "checked": checked,
    }
    return render(request, "customer/verify.html", context, status=200 if packet else 404)
