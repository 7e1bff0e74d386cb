"""A generated document (a PDF, a CSV, a JSON file) as an HTTP answer, the same way for every
face: our own file name, never re-typed by the browser (nosniff), never kept in a shared cache."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header


def document_response(data: bytes, content_type: str, filename: str, *, inline: bool) -> HttpResponse:
    """`inline` opens it in the browser (a PDF for a reader), otherwise it is saved."""
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(not inline, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
