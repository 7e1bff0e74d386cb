"""Closing a ticket, and the worker that compiles its closeout packet.

A close (ticket.close, or ticket.force_close without QA) locks the evidence and writes the
ticket's Closure in its own transaction: what the close fixed (the packet's id, forced or not,
the reason, the overrides), with the packet still to compile. Once the close commits, the
worker is handed the ticket; it claims the pending closure with one conditional update (an
outbox), compiles the packet and chains the packet's hash into the audit trail. A sweep every
minute claims whatever pending closure a lost hand-off left behind.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from dispatch.common.actors import Actor, service_actor
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_normalize
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.services import Outcome, TicketChange, audit_only, ticket_change
from dispatch.tickets.states import TicketState

from ..models import CloseoutPacket, Closure, Evidence, Invoice
from .completion import qa_verify_refusal
from .inputs import invalid, role_name, text
from .packet_versions import packet_pdf_schedule, packet_pdfs_sweep, packet_version_write

log = logging.getLogger(__name__)

TICKET_CLOSE = command(
    "ticket.close",
    ["dispatcher", "finance", "approver"],
    [TicketState.VERIFIED, TicketState.INVOICED],
    TicketState.CLOSED,
    "Close",
)
TICKET_FORCE_CLOSE = command(
    "ticket.force_close",
    ["dispatcher", "approver"],
    [TicketState.COMPLETED_PENDING_VERIFICATION],
    TicketState.CLOSED,
    "Force close",
)
PACKET_COMPILED = command("closeout.packet_compiled", ["system"], None, None, "Closeout packet compiled")
CLOSE_TOOLS = (TICKET_CLOSE.tool, TICKET_FORCE_CLOSE.tool)
PACKET_BUILD_TASK = "dispatch.closeout.tasks.closeout_packet_build"
# How many pending packets one sweep compiles; the next minute's sweep takes the rest.
PACKET_SWEEP_BATCH = 200

# Who may stand behind a force close (role names or their aliases).
FORCE_CLOSE_APPROVER_ROLES = frozenset({Role.DISPATCHER, Role.APPROVER, Role.ADMIN})
FORCE_CLOSE_MIN_CODE = 5
FORCE_CLOSE_MIN_REASON = 20


def _seal(change: TicketChange, *, reason: str, overrides: list[dict], forced: bool) -> None:
    """Lock the evidence (from here on it never changes), write the closure, and hand the packet
    to the worker once the close commits."""
    ticket = change.ticket
    change.transition(TicketState.CLOSED)
    locked = Evidence.objects.filter(ticket=ticket).update(is_locked=True)
    closure = Closure.objects.create(
        ticket=ticket, forced=forced, reason=reason, overrides=overrides, closed_by=change.actor.actor_id
    )
    change.audit_payload.update(
        {
            "closeout_packet_id": str(closure.packet_id),
            "evidence_locked": locked,
            "close_reason": reason or None,
            "overrides": overrides,
            "forced": forced,
        }
    )
    # After commit: the worker must find the closure written; a rolled-back close hands nothing over.
    change.after_commit(lambda: packet_build_schedule(ticket.id))
    change.result = closure


def ticket_close(
    *,
    actor: Actor,
    ticket_id,
    reason: str = "",
    closeout_override_code: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Close verified or invoiced work: lock the evidence; the closeout packet is compiled once the close commits."""
    reason = text(reason, "reason")
    code = text(closeout_override_code, "closeout_override_code", max_length=100)
    overrides = []
    if code:
        overrides.append(
            {
                "kind": "closeout_override_code",
                "code": code,
                "reason": reason or None,
                "by": actor.actor_id,
                "role": role_name(actor),
            }
        )
    with ticket_change(
        actor=actor,
        command=TICKET_CLOSE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"reason": reason or None, "closeout_override_code": code or None},
    ) as change:
        invoiced = invoice_draft_exists(change.ticket)
        refusal = close_without_invoice_refusal(invoiced=invoiced, reason=reason)
        if refusal is not None:
            raise refusal
        change.audit_payload["invoice_draft"] = invoiced
        _seal(change, reason=reason, overrides=overrides, forced=False)
    return change.outcome


def invoice_draft_exists(ticket) -> bool:
    """Whether the job has a current invoice (a draft, or an approved one)."""
    return Invoice.objects.filter(ticket_id=ticket.id).exclude(status=Invoice.Status.SUPERSEDED).exists()


def close_without_invoice_refusal(*, invoiced: bool, reason: str) -> DispatchError | None:
    """400 INVALID_REQUEST (field `reason`, which the contract already has) for closing a job that
    has no invoice draft without saying why: unbilled work is closed on purpose (warranty, a
    callback, goodwill), and the timeline must say which."""
    if invoiced or reason:
        return None
    return invalid(
        "This job has no invoice draft: say why it is closed without one (reason).",
        "reason",
        requirement="CLOSE_WITHOUT_INVOICE_REASON",
    )


def ticket_force_close(
    *,
    actor: Actor,
    ticket_id,
    override_code: str,
    override_reason: str,
    approver_role: str,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Close completed work without QA: needs an override code, a real reason and an approver role."""
    code = text(override_code, "override_code", required=True, max_length=100)
    if len(code) < FORCE_CLOSE_MIN_CODE:
        raise invalid(f"Field 'override_code' needs at least {FORCE_CLOSE_MIN_CODE} characters.", "override_code")
    why = text(override_reason, "override_reason", required=True)
    if len(why) < FORCE_CLOSE_MIN_REASON:
        raise invalid(f"Field 'override_reason' needs at least {FORCE_CLOSE_MIN_REASON} characters.", "override_reason")
    role = role_normalize(text(approver_role, "approver_role", required=True, max_length=40))
    if role not in FORCE_CLOSE_APPROVER_ROLES:
        raise invalid(
            "Field 'approver_role' must name a role that may approve a force close.",
            "approver_role",
            allowed=sorted(allowed.value for allowed in FORCE_CLOSE_APPROVER_ROLES),
        )
    override = {
        "kind": "force_close",
        "override_code": code,
        "override_reason": why,
        "approver_role": role.value,
        "by": actor.actor_id,
        "role": role_name(actor),
    }
    with ticket_change(
        actor=actor,
        command=TICKET_FORCE_CLOSE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"override_code": code, "override_reason": why, "approver_role": approver_role},
    ) as change:
        refusal = qa_verify_refusal(actor, change.ticket, step="close it without QA")
        if refusal is not None:
            raise refusal
        _seal(change, reason=why, overrides=[override], forced=True)
    return change.outcome


def packet_build_schedule(ticket_id: uuid.UUID) -> None:
    """Hand the packet's compilation to the worker; the sweep catches a hand-off that is lost."""
    from django_q.tasks import async_task

    try:
        async_task(PACKET_BUILD_TASK, str(ticket_id))
    except Exception:  # the broker may be down; the close has committed and the sweep compiles it
        log.exception("Could not queue the closeout packet of ticket %s; the sweep will compile it.", ticket_id)


def closeout_packet_build(*, ticket_id) -> CloseoutPacket | None:
    """Compile and store a closed ticket's packet (once: a later call returns the stored one)
    and chain its hash into the ticket's audit trail. None for a ticket that was never closed."""
    with transaction.atomic():
        # The claim: of two workers given the same ticket (the hand-off and the sweep), one updates
        # the pending row and the other, once the first commits, matches nothing. The claim commits
        # with the packet, so a compilation that fails leaves the closure pending for the next sweep.
        claimed = Closure.objects.filter(ticket_id=ticket_id, packet_compiled_at__isnull=True).update(
            packet_compiled_at=timezone.now()
        )
        if not claimed:
            closure = Closure.objects.filter(ticket_id=ticket_id).only("packet_id").first()
            return CloseoutPacket.objects.filter(pk=closure.packet_id).first() if closure else None
        closure = Closure.objects.get(ticket_id=ticket_id)
        # The ticket's row lock, as every action on the ticket takes it: the version number this
        # packet gets is not also taken by an approval or a re-render running at the same time.
        ticket = Ticket.objects.select_for_update().select_related("site", "account").get(pk=ticket_id)
        close_event = (
            AuditEvent.objects.filter(ticket=ticket, tool_name__in=CLOSE_TOOLS, after_state=TicketState.CLOSED)
            .order_by("-seq")
            .first()
        )
        row = packet_version_write(
            ticket=ticket,
            through_event=close_event,
            closure=closure,
            packet_id=closure.packet_id,
            reason="Force-closed without QA" if closure.forced else "Closed",
            created_by=closure.closed_by,
        )
        audit_only(
            actor=service_actor("closeout-packets"),
            command=PACKET_COMPILED,
            ticket=ticket,
            payload={
                "closeout_packet_id": str(row.id),
                "packet_sha256": row.sha256,
                "close_event_id": str(close_event.id),
                "version": row.version,
            },
        )
        transaction.on_commit(lambda: packet_pdf_schedule(row.id))
    return row


def closeout_packets_sweep() -> int:
    """Compile the packets still pending (hand-offs the worker lost), oldest first, then render the
    PDFs still pending; returns how many packets were compiled."""
    pending = list(
        Closure.objects.filter(packet_compiled_at__isnull=True)
        .order_by("created_at")
        .values_list("ticket_id", flat=True)[:PACKET_SWEEP_BATCH]
    )
    built = 0
    for ticket_id in pending:
        try:
            built += closeout_packet_build(ticket_id=ticket_id) is not None
        except Exception:  # one ticket that cannot be compiled must not hold up the others
            log.exception("Could not compile the closeout packet of ticket %s.", ticket_id)
    packet_pdfs_sweep()
    return built
