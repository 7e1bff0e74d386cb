"""The customer's pages that show more than intake knows: the status page with the job's closeout
packet and invoice once they are issued, their downloads behind the same signed link, and the
public page that verifies a packet's hash (the target of the packet's QR code)."""

from __future__ import annotations

import hashlib

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from dispatch.closeout import documents_read as documents
from dispatch.closeout.documents_read import customer_documents
from dispatch.closeout.evidence_files import file_refusal_response
from dispatch.closeout.models import CloseoutPacket
from dispatch.common.downloads import document_response
from dispatch.common.errors import DispatchError
from dispatch.intake.views import customer_status, status_ticket, unknown_link

# A file checked against the issued packets is read whole to hash it: a packet PDF with 60 photos
# stays well below this.
VERIFY_MAX_BYTES = 25 * 1024 * 1024


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


def _download(document: documents.Document) -> HttpResponse:
    response = document_response(document.data, document.content_type, document.filename, inline=True)
    # The link carries the customer's token: the PDF's own links must not pass it on.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_GET
def status_invoice_pdf(request: HttpRequest, token: str) -> HttpResponse:
    return _customer_pdf(token, "invoice", documents.invoice_pdf, "No invoice for this link.")


@never_cache
@require_GET
def status_packet_pdf(request: HttpRequest, token: str) -> HttpResponse:
    return _customer_pdf(token, "packet", documents.packet_pdf, "No closeout packet for this link.")


def _customer_pdf(token: str, kind: str, pdf, missing: str) -> HttpResponse:
    """The customer's approved document of this kind behind a signed link, or 404."""
    ticket = status_ticket(token)
    row = customer_documents(ticket)[kind] if ticket is not None else None
    if row is None:
        raise Http404(missing)
    try:
        return _download(pdf(row))
    except DispatchError as refusal:  # the file store out of reach, the PDF still rendering
        return file_refusal_response(refusal)


def _checked_file(request: HttpRequest, packet: CloseoutPacket) -> dict:
    """Whether an uploaded file is, byte for byte, this packet's JSON or PDF as issued."""
    # No packet file comes near this size: refused without hashing it. (The CSRF check has read the
    # body already; the body limit of the proxy in front is what keeps huge uploads out.)
    if int(request.META.get("CONTENT_LENGTH") or 0) > VERIFY_MAX_BYTES:
        return {"error": "That file is larger than any packet we issue."}
    upload = request.FILES.get("file")
    if upload is None:
        return {"error": "Choose the packet's PDF or JSON file to check."}
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    value = digest.hexdigest()
    return {"name": upload.name[:120], "sha256": value, "matches": value in {packet.sha256, packet.pdf_sha256}}


@never_cache
@require_http_methods(["GET", "POST"])
def packet_verify(request: HttpRequest, sha256: str) -> HttpResponse:
    """/verify/<sha256>/: whether a packet with this hash was issued, for which job and when, and
    nothing more; a posted file is checked against it (a changed byte changes its hash)."""
    packet = documents.packet_verify(sha256)
    # Only a packet that was issued has anything to check a file against.
    checked = _checked_file(request, packet) if request.method == "POST" and packet is not None else None
    context = {
        "sha256": sha256[:64],
        "packet": packet,
        "reference": packet.ticket.short_ref if packet else None,
        "checked": checked,
    }
    return render(request, "customer/verify.html", context, status=200 if packet else 404)
