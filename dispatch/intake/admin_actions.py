"""The ticket page's "Triage → ready to schedule" button, through intake's triage service.

Registered with the ticket page's registry (dispatch/tickets/admin_actions.py) under the same
key as the lifecycle's plain triage button, which it replaces, when this module is imported
(intake's admin.py does). It calls `intake_triage`, the service the API's ticket.triage calls,
so the blind-intake gate refuses here as it does there; a dispatcher may override it with a
reason, which the triage's audit event keeps.
"""

from __future__ import annotations

from django import forms

from dispatch.tickets.admin_actions import TicketAction, TriageForm, cents, service_runner, ticket_actions_register
from dispatch.tickets.services import TICKET_TRIAGE
from dispatch.tickets.states import TicketState

from .services import intake_triage


class TriageReadyForm(TriageForm):
    gate_override = forms.BooleanField(
        label="Override the blind-intake confidence gate",
        required=False,
        help_text="Only when you have confirmed the customer and the incident yourself.",
    )
    override_reason = forms.CharField(label="Why the gate is overridden", max_length=500, required=False)


ticket_actions_register(
    TicketAction(
        "triage-ready",
        TICKET_TRIAGE,
        "Triage → ready to schedule",
        service_runner(
            intake_triage,
            lambda ticket, data: {
                "priority": data["priority"],
                "incident_type": data["incident_type"],
                "nte_cents": cents(data.get("nte")),
                "outcome": TicketState.READY_TO_SCHEDULE,
                "gate_override": data.get("gate_override", False),
                "override_reason": data.get("override_reason", ""),
            },
        ),
        TriageReadyForm,
        tone="primary",
        help_text="Set priority, incident type and NTE, and queue the job for scheduling.",
    ),
)
