"""django-q2 entry points of closeout; each parses its argument and calls one service."""

from __future__ import annotations

from . import services


def closeout_packet_build(ticket_id: str) -> str:
    """Compile a closed ticket's packet (queued on commit by ticket.close and ticket.force_close)."""
    row = services.closeout_packet_build(ticket_id=ticket_id)
    return row.sha256 if row is not None else "NOT_CLOSED"


def closeout_packet_pdf(packet_id: str) -> str:
    """Render a packet version's PDF (queued on commit by whatever compiled the version)."""
    row = services.packet_pdf_build(packet_id)
    return row.pdf_status if row is not None else "NOT_FOUND"


def closeout_packets_sweep() -> int:
    """Every minute: compile the packets, and render the PDFs, whose hand-off to the worker was lost."""
    return services.closeout_packets_sweep()
