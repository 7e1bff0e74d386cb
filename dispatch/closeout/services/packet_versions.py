"""Versions of a job's closeout packet: compiled (JSON, hashed, stored byte for byte) inside the
action that asks for one, and rendered to PDF by the worker once that action commits.

A version is compiled when the job closes (the close's own packet), when its invoice is approved
(the packet the customer receives) and on request (`closeout.render_packet`). Versions are never
changed or deleted; the newest is the job's current record and the older ones stay listed.
The PDF comes after the JSON because rendering a packet with photos takes seconds, which must
not be spent while the ticket's row is locked; the hash is the JSON's, so it is known at once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import Outcome, ticket_change
from dispatch.tickets.states import TicketState

from ..documents.pdf_base import SourceUnavailable
from ..evidence_files import NOT_STORED, storage_call, storage_missing
from ..models import CloseoutPacket, Closure
from ..packets import canonical_json, packet_compile
from .inputs import text

log = logging.getLogger(__name__)

RENDER_PACKET = command(
    "closeout.render_packet",
    ["dispatcher", "qa", "finance", "approver"],
    [
        TicketState.COMPLETED_PENDING_VERIFICATION,
        TicketState.VERIFIED,
        TicketState.INVOICED,
        TicketState.CLOSED,
    ],
    None,
    "Issue a closeout packet",
)
PDF_TASK = "dispatch.closeout.tasks.closeout_packet_pdf"
# A render that has not finished after this long is taken to have died with its worker.
PDF_RENDER_LEASE = timedelta(minutes=10)
# A render takes up to a few seconds: a batch stays well inside the worker's 60 s task timeout.
PDF_SWEEP_BATCH = 10


def packet_verify_url(sha256: str) -> str:
    """The public page that says whether a packet with this hash was issued (the QR code's target)."""
    return settings.DISPATCH_PUBLIC_URL + reverse("customer:packet_verify", args=[sha256])


def packet_version_write(
    *,
    ticket,
    through_event: AuditEvent | None,
    reason: str,
    created_by: str,
    closure: Closure | None = None,
    packet_id: uuid.UUID | None = None,
) -> CloseoutPacket:
    """Compile the next version of the ticket's packet and store its JSON (call inside the
    transaction that holds the ticket's lock, which also serialises the version numbers). The
    PDF is the worker's: schedule `packet_pdf_schedule` once the transaction commits."""
    packet = packet_compile(ticket=ticket, through_event=through_event, closure=closure)
    data = canonical_json(packet)
    version = (CloseoutPacket.objects.filter(ticket=ticket).aggregate(last=Max("version"))["last"] or 0) + 1
    row = CloseoutPacket(
        id=packet_id or uuid.uuid4(),
        ticket=ticket,
        version=version,
        reason=reason[:300],
        packet=packet,
        sha256=hashlib.sha256(data).hexdigest(),
        through_seq=through_event.seq if through_event else None,
        forced=bool(closure and closure.forced),
        created_by=created_by,
    )
    # The canonical bytes are kept as a file: the database's JSON may come back with its keys
    # or numbers normalised (PostgreSQL jsonb), the file is exactly what was hashed.
    with storage_call(NOT_STORED):
        row.json_file.save("packet.json", ContentFile(data), save=False)
    row.save(force_insert=True)
    return row


def packet_pdf_schedule(packet_id) -> None:
    """Hand the PDF to the worker; the sweep renders whatever a lost hand-off leaves pending."""
    from django_q.tasks import async_task

    try:
        async_task(PDF_TASK, str(packet_id))
    except Exception:  # the broker may be down; the packet is stored and the sweep renders it
        log.exception("Could not queue the PDF of closeout packet %s; the sweep will render it.", packet_id)


def storage_read(name: str) -> bytes | None:
    """A stored file's bytes, or None when it is not there. A storage that cannot answer (an
    object store that is down, refused credentials) raises SourceUnavailable: a packet rendered
    then would show a photo that exists as missing, for good."""
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    except Exception as exc:
        if storage_missing(exc):
            return None
        raise SourceUnavailable(f"Storage could not read {name}: {type(exc).__name__}") from exc


def packet_canonical_bytes(row: CloseoutPacket) -> bytes:
    """The exact bytes the packet's hash is over: the stored file; for a packet without one (issued
    before files were kept), the canonical form of the database's copy, but only if it still hashes
    the same (a jsonb copy may not: it normalises numbers)."""
    stored = storage_read(row.json_file.name) if row.json_file else None
    data = stored if stored is not None else canonical_json(row.packet)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise DispatchError(
            "PACKET_JSON_UNAVAILABLE",
            "The packet's JSON as it was hashed is not available; its PDF and hash still are.",
            status=503,
            dimension="request",
            details={"packet_id": str(row.id)},
        )
    return data


def packet_pdf_build(packet_id) -> CloseoutPacket | None:
    """Render a packet version's PDF and store it (once: a rendered version is returned as it is)."""
    stale = timezone.now() - PDF_RENDER_LEASE
    # The claim: one worker stamps the start; another one (the hand-off and the sweep) matches
    # nothing until the lease has run out, which only happens when the first one died.
    claimed = (
        CloseoutPacket.objects.filter(pk=packet_id, pdf_status=CloseoutPacket.PdfStatus.PENDING)
        .filter(Q(pdf_rendered_at__isnull=True) | Q(pdf_rendered_at__lt=stale))
        .update(pdf_rendered_at=timezone.now())
    )
    row = CloseoutPacket.objects.filter(pk=packet_id).first()
    if not claimed or row is None:
        return row
    return packet_pdf_store(row)


def packet_pdf_store(row: CloseoutPacket) -> CloseoutPacket:
    """Render the version's PDF and store it beside its JSON; a render that fails is recorded on
    the row (FAILED, with the error) for the back office to see, never raised to the caller."""
    from ..documents.packet_pdf import packet_pdf_render

    try:
        rendered = packet_pdf_render(
            row.packet, sha256=row.sha256, verify_url=packet_verify_url(row.sha256), read_file=storage_read
        )
    except SourceUnavailable:
        # Not the packet's fault: it stays PENDING and is tried again once its claim's lease runs
        # out, after the packets never tried (so one unreachable file cannot hold up the others).
        log.warning(
            "Storage unavailable while rendering closeout packet %s; it will be retried.", row.id, exc_info=True
        )
        return row
    except Exception as exc:
        log.exception("Could not render the PDF of closeout packet %s.", row.id)
        row.pdf_status = CloseoutPacket.PdfStatus.FAILED
        row.pdf_error = f"{type(exc).__name__}: {exc}"[:2000]
        row.save(update_fields=["pdf_status", "pdf_error"])
        return row
    row.pdf_file.save("packet.pdf", ContentFile(rendered.data), save=False)
    row.pdf_sha256 = hashlib.sha256(rendered.data).hexdigest()
    row.pdf_pages = rendered.pages
    row.pdf_status = CloseoutPacket.PdfStatus.READY
    row.pdf_rendered_at = timezone.now()
    row.pdf_error = ""
    row.save(update_fields=["pdf_file", "pdf_sha256", "pdf_pages", "pdf_status", "pdf_rendered_at", "pdf_error"])
    return row


def packet_pdfs_sweep() -> int:
    """Render the PDFs still pending (hand-offs lost, renders whose worker died), oldest first."""
    stale = timezone.now() - PDF_RENDER_LEASE
    pending = list(
        CloseoutPacket.objects.filter(pdf_status=CloseoutPacket.PdfStatus.PENDING)
        .filter(Q(pdf_rendered_at__isnull=True) | Q(pdf_rendered_at__lt=stale))
        .order_by(F("pdf_rendered_at").asc(nulls_first=True), "created_at")
        .values_list("id", flat=True)[:PDF_SWEEP_BATCH]
    )
    rendered = 0
    for packet_id in pending:
        try:
            row = packet_pdf_build(packet_id)
            rendered += bool(row and row.pdf_status == CloseoutPacket.PdfStatus.READY)
        except Exception:  # one packet that cannot be rendered must not hold up the others
            log.exception("Could not render the PDF of closeout packet %s.", packet_id)
    return rendered


def packet_render(
    *, actor: Actor, ticket_id, reason: str = "", request: dict | None = None, expected_version: int | None = None
) -> Outcome:
    """Issue a new version of the job's closeout packet now (after a reopen and new work, or to
    send the customer the record as it stands). Changes no state."""
    reason = text(reason, "reason", max_length=250)
    with ticket_change(
        actor=actor,
        command=RENDER_PACKET,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"reason": reason or None},
    ) as change:
        last = AuditEvent.objects.filter(ticket=change.ticket).order_by("-seq").first()
        row = packet_version_write(
            ticket=change.ticket,
            through_event=last,
            reason=f"Issued on request: {reason}" if reason else "Issued on request",
            created_by=actor.actor_id,
        )
        change.audit_payload.update(
            {"closeout_packet_id": str(row.id), "version": row.version, "packet_sha256": row.sha256}
        )
        change.after_commit(lambda: packet_pdf_schedule(row.id))
        change.result = row
    return change.outcome


def packet_issue_in(change, *, reason: str) -> CloseoutPacket:
    """Within another action's change (an invoice approval, whose email carries the packet):
    compile a version from the trail so far and render its PDF at once. The one render done while
    the ticket's row is locked, deliberately: the email written in the same transaction must carry
    the packet, and finance's approval of a finished job contends with no one for its row."""
    last = AuditEvent.objects.filter(ticket=change.ticket).order_by("-seq").first()
    row = packet_version_write(
        ticket=change.ticket, through_event=last, reason=reason, created_by=change.actor.actor_id
    )
    row = packet_pdf_store(row)
    if row.pdf_status == CloseoutPacket.PdfStatus.PENDING:
        # The customer's email must carry the whole packet: the action is refused and rolled back.
        raise DispatchError(
            "STORAGE_UNAVAILABLE",
            "File storage is not answering, so the closeout packet cannot be issued; try again shortly.",
            status=503,
            dimension="request",
        )
    return row
