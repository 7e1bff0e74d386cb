"""Closures: what a close fixed (the packet's id, forced, reason, overrides), stored in a table
instead of read back from the close's audit payload, and the packet worker's outbox.

Existing closes are carried forward from their audit events: a ticket whose packet is compiled
gets a closure stamped with the packet's time; one whose packet is still missing gets a pending
closure, which the sweep then compiles. Reversed, the table goes; the audit events keep the facts.
"""
import uuid

import django.db.models.deletion
from django.db import migrations, models

CLOSE_TOOLS = ("ticket.close", "ticket.force_close")


def closures_from_audit(apps, schema_editor):
    AuditEvent = apps.get_model("tickets", "AuditEvent")
    CloseoutPacket = apps.get_model("closeout", "CloseoutPacket")
    Closure = apps.get_model("closeout", "Closure")
    packets = {row.ticket_id: row for row in CloseoutPacket.objects.all()}
    seen = set()
    # Latest close first per ticket: a ticket is closed once, but the newest event is the one that held.
    closes = AuditEvent.objects.filter(
        tool_name__in=CLOSE_TOOLS, after_state="CLOSED", ticket__state="CLOSED"
    ).order_by("ticket_id", "-seq")
    for event in closes.iterator():
        if event.ticket_id in seen:
            continue
        seen.add(event.ticket_id)
        payload = event.payload or {}
        packet = packets.get(event.ticket_id)
        closure = Closure.objects.create(
            ticket_id=event.ticket_id,
            packet_id=packet.id if packet else payload.get("closeout_packet_id") or uuid.uuid4(),
            forced=packet.forced if packet else bool(payload.get("forced")),
            reason=payload.get("close_reason") or "",
            overrides=payload.get("overrides") or [],
            closed_by=event.actor_id,
            packet_compiled_at=packet.created_at if packet else None,
        )
        # created_at is stamped on insert; the closure dates from its close.
        Closure.objects.filter(pk=closure.pk).update(created_at=event.created_at)


class Migration(migrations.Migration):
    dependencies = [
        ("closeout", "0005_packets_sweep"),
        ("tickets", "0010_email_matched_case_insensitively"),
    ]

    operations = [
        migrations.CreateModel(
            name="Closure",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("packet_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("forced", models.BooleanField(default=False)),
                ("reason", models.TextField(blank=True)),
                ("overrides", models.JSONField(blank=True, default=list)),
                ("closed_by", models.CharField(max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("packet_compiled_at", models.DateTimeField(blank=True, null=True)),
                (
                    "ticket",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="closure", to="tickets.ticket"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("packet_compiled_at__isnull", True)),
                        fields=["created_at"],
                        name="closure_packet_pending",
                    )
                ],
            },
        ),
        migrations.RunPython(closures_from_audit, migrations.RunPython.noop),
    ]
