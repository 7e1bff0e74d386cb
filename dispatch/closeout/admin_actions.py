"""The ticket page's closeout buttons: complete, QA, invoice, close, waive evidence, bypass, force
close, and "Issue packet" (which the page's closeout documents section shows, admin_documents.py).

Registered with the ticket page's registry (dispatch/tickets/admin_actions.py) when this
module is imported, which closeout's admin.py does.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone

from dispatch.tickets.admin_actions import (
    ActionForm,
    LocalDateTimeField,
    TicketAction,
    service_runner,
    ticket_actions_register,
)
from dispatch.tickets.models import Ticket

from . import services as closeout
from .gate import SIGNATURE_KEY, template_for


class CompleteForm(ActionForm):
    """The incident template's checklist, ticked on the technician's behalf."""

    no_signature_reason = forms.CharField(
        label="No signature because",
        required=False,
        max_length=500,
        help_text="Leave empty when the customer's signature is on file.",
    )

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, ticket=ticket, **kwargs)
        template = template_for(ticket.incident_type)
        self.checklist_keys = list(template.required_checklist_keys) if template else []
        for key in self.checklist_keys:
            self.fields[f"check_{key}"] = forms.BooleanField(label=key.replace("_", " ").capitalize(), required=False)
        # The checklist first, then the signature note.
        self.order_fields([f"check_{key}" for key in self.checklist_keys])

    def clean(self) -> dict:
        data = super().clean()
        data["checklist_status"] = {key: bool(data.get(f"check_{key}")) for key in self.checklist_keys}
        return data


class ManualBypassForm(ActionForm):
    bypass_rationale = forms.CharField(
        label="Why the evidence gate is bypassed",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=4000,
        help_text="Offered once per job; someone else must then QA-verify it.",
    )


class QaVerifyForm(ActionForm):
    result = forms.ChoiceField(choices=[("PASS", "Pass"), ("FAIL", "Fail")], widget=forms.RadioSelect, initial="PASS")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class CloseForm(ActionForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    closeout_override_code = forms.CharField(label="Override code", required=False, max_length=100)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, ticket=ticket, **kwargs)
        if not closeout.invoice_draft_exists(ticket):
            # ticket_close refuses this close without a reason; asked here before anyone presses.
            self.fields["reason"].required = True
            self.fields["reason"].label = "Why close without an invoice"
            self.fields["reason"].help_text = "Kept in the timeline, e.g. “warranty callback, not billed”."
            self.warnings = ["This job has no invoice draft: closing it now closes it unbilled. Say why."]


class PacketRenderForm(ActionForm):
    reason = forms.CharField(
        label="Why (optional)",
        required=False,
        max_length=250,
        help_text="Kept with the new version, e.g. “photos added after the reopen”.",
    )


class ForceCloseForm(ActionForm):
    override_code = forms.CharField(min_length=5, max_length=100)
    override_reason = forms.CharField(min_length=20, widget=forms.Textarea(attrs={"rows": 3}))
    approver_role = forms.ChoiceField(
        choices=[("dispatcher", "Dispatcher"), ("approver", "Approver"), ("admin", "Admin")],
        help_text="Who approved closing without QA.",
    )


class EvidenceExceptionForm(ActionForm):
    exception_reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    evidence_refs = forms.MultipleChoiceField(
        label="Waive",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked waives every required evidence key.",
    )
    expires_at = LocalDateTimeField(label="Until", required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, ticket=ticket, **kwargs)
        template = template_for(ticket.incident_type)
        keys = list(dict.fromkeys([*(template.required_evidence_keys if template else []), SIGNATURE_KEY]))
        self.fields["evidence_refs"].choices = [(key, key) for key in keys]


ticket_actions_register(
    TicketAction(
        "complete",
        closeout.TECH_COMPLETE,
        "Complete work",
        service_runner(
            closeout.tech_complete,
            lambda ticket, data: {
                "checklist_status": data["checklist_status"],
                "no_signature_reason": data.get("no_signature_reason") or None,
            },
        ),
        CompleteForm,
        tone="primary",
        help_text="Checked against the incident template: missing evidence or checklist items are refused.",
    ),
    TicketAction(
        "qa-verify",
        closeout.QA_VERIFY,
        "QA verify",
        service_runner(
            closeout.qa_verify,
            lambda ticket, data: {
                "timestamp": timezone.now(),
                "result": data["result"],
                "notes": data.get("notes", ""),
            },
        ),
        QaVerifyForm,
        tone="primary",
        blocked=closeout.qa_verify_refusal,
    ),
    TicketAction(
        "invoice",
        closeout.BILLING_GENERATE_INVOICE,
        "Generate invoice draft",
        service_runner(closeout.invoice_generate, lambda ticket, data: {}),
        None,
        tone="primary",
    ),
    TicketAction(
        "close",
        closeout.TICKET_CLOSE,
        "Close ticket",
        service_runner(
            closeout.ticket_close,
            lambda ticket, data: {
                "reason": data.get("reason", ""),
                "closeout_override_code": data.get("closeout_override_code", ""),
            },
        ),
        CloseForm,
        tone="primary",
    ),
    TicketAction(
        "evidence-exception",
        closeout.EVIDENCE_EXCEPTION,
        "Waive evidence",
        service_runner(
            closeout.evidence_exception_grant,
            lambda ticket, data: {
                "exception_reason": data["exception_reason"],
                "evidence_refs": data.get("evidence_refs") or None,
                "expires_at": data.get("expires_at"),
            },
        ),
        EvidenceExceptionForm,
    ),
    TicketAction(
        "manual-bypass",
        closeout.DISPATCH_MANUAL_BYPASS,
        "Complete without evidence gate",
        service_runner(
            closeout.dispatch_manual_bypass, lambda ticket, data: {"bypass_rationale": data["bypass_rationale"]}
        ),
        ManualBypassForm,
        tone="danger",
        help_text="Recorded with what the gate would have refused.",
        # Once used it is no longer offered; the service refuses a second one anyway.
        when=lambda ticket: closeout.manual_bypass_refusal(ticket) is None,
    ),
    TicketAction(
        "packet-render",
        closeout.RENDER_PACKET,
        "Issue packet",
        service_runner(closeout.packet_render, lambda ticket, data: {"reason": data.get("reason", "")}),
        PacketRenderForm,
        help_text="A new version of the closeout packet from the record as it stands; earlier versions stay.",
    ),
    TicketAction(
        "force-close",
        closeout.TICKET_FORCE_CLOSE,
        "Force close",
        service_runner(
            closeout.ticket_force_close,
            lambda ticket, data: {
                "override_code": data["override_code"],
                "override_reason": data["override_reason"],
                "approver_role": data["approver_role"],
            },
        ),
        ForceCloseForm,
        tone="danger",
        help_text="Close completed work without QA verification.",
    ),
)
