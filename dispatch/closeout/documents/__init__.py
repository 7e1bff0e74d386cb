"""The closeout's printable documents: the closeout packet and the invoice, as PDFs."""

from .invoice_pdf import invoice_pdf_render
from .packet_pdf import packet_pdf_render
from .pdf_base import RenderedPdf, SourceUnavailable

__all__ = ["RenderedPdf", "SourceUnavailable", "invoice_pdf_render", "packet_pdf_render"]
