"""Move recorded events from the single global chain onto per-ticket chains and lanes.

The old chain is verified first, exactly as the previous release's verify_audit did: re-keying a
chain someone had already tampered with would launder the tampering, so a broken chain stops the
migration. Events are then taken in their old global order: each ticket's events are numbered
1, 2, ... on its own chain; a ticket's first event and every event about no ticket become lane
links. All hashes are recomputed with the chain key, the heads sealed. There is no way back.
"""
import hashlib
import hmac
import json
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import migrations

BATCH = 1000
GENESIS = "0" * 64


def _old_digest(event) -> str:
    """The previous release's digest of one event (global seq, no lanes)."""
    created_at = event.created_at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")
    body = json.dumps(
        [
            str(event.id), event.seq, str(event.ticket_id) if event.ticket_id else "", event.actor_type,
            event.actor_id, event.actor_role, event.tool_name, event.request_id, event.correlation_id,
            event.trace_id, event.before_state, event.after_state, event.payload, created_at, event.prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hmac.new(settings.DISPATCH_AUDIT_CHAIN_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()


def _old_chain_verify(Event, Head) -> None:
    head = Head.objects.filter(pk=1).first()
    last_seq = head.last_seq if head else 0
    last_hash = head.last_hash if head else GENESIS
    # A head written before heads were sealed has no seal yet; its events are still walked below.
    if last_seq and head.seal:
        seal = hmac.new(
            settings.DISPATCH_AUDIT_CHAIN_KEY.encode(), f"head:{last_seq}:{last_hash}".encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(head.seal, seal):
            raise RuntimeError("The audit chain head was altered; run verify_audit on the previous release first.")
    expected, prev = 1, GENESIS
    for event in Event.objects.order_by("seq").iterator(chunk_size=BATCH):
        if event.seq != expected or event.prev_hash != prev or not hmac.compare_digest(_old_digest(event), event.hash):
            raise RuntimeError(
                f"The audit chain is broken at event #{expected} ({event.id}); "
                "run verify_audit on the previous release and resolve it before upgrading."
            )
        prev, expected = event.hash, expected + 1
    if expected - 1 != last_seq or prev != last_hash:
        raise RuntimeError("The audit chain does not end where its head says; run verify_audit on the previous release.")


def rechain(apps, schema_editor):
    from dispatch.tickets import audit

    Event = apps.get_model("tickets", "AuditEvent")
    Head = apps.get_model("tickets", "AuditChainHead")
    Ticket = apps.get_model("tickets", "Ticket")
    _old_chain_verify(Event, Head)
    lanes = {lane: [0, audit.GENESIS_HASH] for lane in range(audit.AUDIT_LANES)}
    tickets: dict = {}
    pending = []

    def flush():
        Event.objects.bulk_update(pending, ["seq", "lane", "lane_seq", "prev_hash", "hash"])
        pending.clear()

    for event in Event.objects.order_by("seq").iterator(chunk_size=BATCH):
        opening = event.ticket_id is not None and event.ticket_id not in tickets
        event.lane = event.lane_seq = None
        if event.ticket_id is None or opening:
            lane = audit.lane_of(event.ticket_id) if event.ticket_id is not None else audit.TICKETLESS_LANE
            head = lanes[lane]
            event.lane, event.lane_seq, event.prev_hash = lane, head[0] + 1, head[1]
        if event.ticket_id is not None:
            head = tickets.setdefault(event.ticket_id, [0, audit.GENESIS_HASH])
            event.seq = head[0] + 1
            if not opening:
                event.prev_hash = head[1]
        else:
            event.seq = None
        event.hash = audit._event_digest(event)
        if event.lane is not None:
            lanes[event.lane] = [event.lane_seq, event.hash]
        if event.ticket_id is not None:
            tickets[event.ticket_id] = [event.seq, event.hash]
        pending.append(event)
        if len(pending) >= BATCH:
            flush()
    if pending:
        flush()
    Head.objects.all().delete()
    Head.objects.bulk_create(
        Head(pk=lane, last_seq=seq, last_hash=last, seal=audit._lane_seal(lane, seq, last))
        for lane, (seq, last) in lanes.items()
    )
    for ticket_id, (seq, last) in tickets.items():
        Ticket.objects.filter(pk=ticket_id).update(
            audit_seq=seq, audit_hash=last, audit_seal=audit._ticket_seal(ticket_id, seq, last)
        )


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0006_audit_chains_per_ticket'),
    ]

    operations = [migrations.RunPython(rechain)]
