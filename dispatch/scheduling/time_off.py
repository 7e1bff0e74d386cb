"""A technician's calendar: time off, and the booked jobs it falls on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction

from dispatch.common.actors import Actor
from dispatch.common.errors import invalid_request
from dispatch.technicians.models import Technician
from dispatch.tickets.commands import command
from dispatch.tickets.services import audit_only

from .inputs import role_check, uuid_parse, window_json, window_parse
from .models import TimeOff
from .selectors import appointments_booked_overlapping

TIME_OFF_ADD = command("technician.time_off_add", ["dispatcher"], None, None, "Add time off")
TIME_OFF_MAX = timedelta(days=366)


def time_off_add(
    *, actor: Actor, technician_id: Any, start: Any, end: Any, reason: Any = "", request: dict | None = None
) -> dict:
    """Record a technician's time off and list the booked jobs it falls on (it changes no ticket)."""
    role_check(TIME_OFF_ADD, actor)
    start_at, end_at = window_parse(start, end, "", max_length=TIME_OFF_MAX)
    tech_key = uuid_parse(technician_id, "technician_id")
    reason = reason.strip()[:200] if isinstance(reason, str) else ""
    with transaction.atomic():
        technician = Technician.objects.filter(pk=tech_key).first()
        if technician is None:
            raise invalid_request(f"No technician {tech_key}.", field="technician_id")
        time_off = TimeOff.objects.create(
            technician=technician, start=start_at, end=end_at, reason=reason, created_by=actor.actor_id
        )
        # The dispatcher decides what happens to these (move, reassign, tell the customer):
        # time off alone never changes a booked job.
        booked = (
            appointments_booked_overlapping(start=start_at, end=end_at, technician_ids=[technician.pk])
            .select_related("ticket")
            .order_by("start", "id")
        )
        affected = [
            {
                "appointment_id": str(appointment.id),
                "ticket_id": str(appointment.ticket_id),
                "ticket_ref": appointment.ticket.short_ref,
                "ticket_state": appointment.ticket.state,
                "summary": appointment.ticket.summary[:120],
                "window": window_json(appointment.start, appointment.end),
            }
            for appointment in booked
        ]
        record = {
            "time_off_id": str(time_off.id),
            "technician_id": str(technician.pk),
            "window": window_json(start_at, end_at),
            "reason": reason,
            "affected_appointment_ids": [item["appointment_id"] for item in affected],
        }
        if request:
            record["request"] = request
        audit_only(actor=actor, command=TIME_OFF_ADD, payload=record)
    return {"time_off_id": str(time_off.id), "technician_id": str(technician.pk), "affected": affected}
