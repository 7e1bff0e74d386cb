"""Move recorded events from the single global chain onto per-ticket chains and lanes.

Events are taken in their old global order: each ticket's events are numbered 1, 2, ... on its
own chain; a ticket's first event and every event about no ticket become links of a lane. All
hashes are recomputed with the chain key, the heads sealed.
"""
from django.db import migrations

BATCH = 1000


def rechain(apps, schema_editor):
    from dispatch.tickets import audit

    Event = apps.get_model("tickets", "AuditEvent")
    Head = apps.get_model("tickets", "AuditChainHead")
    Ticket = apps.get_model("tickets", "Ticket")
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
            lane = audit.lane_of(event.ticket_id or event.id)
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

    operations = [migrations.RunPython(rechain, migrations.RunPython.noop)]
