"""The buttons of the back office's ticket page: one entry per business action a dispatcher may take.

An entry names the service's Command (who may act, from which states), a label, an optional
form for the input the action needs, and `run`, which calls the service with the acting user's
Actor, the form's cleaned data and the ticket version the page was rendered with. The page
shows an entry's button when dispatch/tickets/policy.py would let the user run its Command on
the ticket; a refused button's page says the policy's refusal, and the service checks again,
under the ticket's row lock.

This module owns the registry and the lifecycle and approval buttons. A phase app registers
its own buttons with `ticket_actions_register` from its `admin_actions` module (imported by
its admin.py), so that `tickets` imports no phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError

from . import approvals, catalog, policy
from . import services as lifecycle
from .commands import Command
from .models import Approval, Priority, Ticket
from .states import TicketState


@dataclass(frozen=True)
class TicketAction:
    key: str
    command: Command
    label: str
    # run(actor=, ticket=, data=, expected_version=) -> the service's Outcome.
    run: Callable[..., Any]
    form_class: type[ActionForm] | None = None
    # "primary" moves the job forward, "danger" ends or stops it; "" is a side step.
    tone: str = ""
    help_text: str = ""
    # Whether the button makes sense for this ticket beyond the policy (e.g. there is a
    # technician to unassign); the page only hides it, the service still decides.
    when: Callable[[Ticket], bool] | None = None
    # A phase's own rule for this actor beyond the command's policy (who may QA a job someone
    # bypassed), which its service raises too: the page says it beside the buttons rather than
    # offering a button that can only be refused.
    blocked: Callable[[Actor, Ticket], DispatchError | None] | None = None

    def refusal(self, *, actor: Actor, ticket: Ticket, expected_version: int | None = None) -> DispatchError | None:
        """Why the service would refuse this actor now (the policy's answer, then the phase's), or None."""
        return policy.command_refusal(self.command, actor, ticket, expected_version=expected_version) or (
            self.blocked(actor, ticket) if self.blocked is not None else None
        )

    def offered(self, *, actor: Actor, ticket: Ticket) -> bool:
        return self.refusal(actor=actor, ticket=ticket) is None and (self.when is None or self.when(ticket))


class ActionForm(forms.Form):
    """The input of one action, built with the ticket so that it can offer the right defaults
    (None when one form serves many tickets, as the bulk cancel does).

    `warnings` are what the dispatcher should read before sending the form (it cannot succeed
    as it stands, or needs more than usual); the pages show them above the fields."""

    def __init__(self, *args, ticket: Ticket | None, **kwargs) -> None:
        self.ticket = ticket
        self.warnings: list[str] = []
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


def incident_type_choices() -> list[tuple[str, str]]:
    """The incident types that have a template (closeout keeps them; read through the catalog)."""
    return [("", "—")] + [
        (incident_type, f"{name} ({incident_type})" if name and name != incident_type else incident_type)
        for incident_type, name in catalog.incident_type_names().items()
    ]


class LocalDateTimeField(forms.DateTimeField):
    """A date and time typed in the back office's time zone (the browser's datetime-local input)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("input_formats", ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
        super().__init__(**kwargs)


def local_zone_note() -> str:
    return f"Local time ({timezone.get_current_timezone_name()})."


def window_text(start, end) -> str:
    """A time window as a dispatcher reads it, in local time ("Tue Mar 3, 08:00–10:00")."""
    start = timezone.localtime(parse_datetime(start) if isinstance(start, str) else start)
    end = timezone.localtime(parse_datetime(end) if isinstance(end, str) else end)
    if end.date() == start.date():
        return f"{start:%a %b %-d, %H:%M}–{end:%H:%M}"
    return f"{start:%a %b %-d, %H:%M} – {end:%a %b %-d, %H:%M}"


# --- forms -------------------------------------------------------------------------------------


class TriageForm(ActionForm):
    priority = forms.ChoiceField(choices=Priority.choices)
    incident_type = forms.ChoiceField(choices=())
    nte = forms.DecimalField(label="Not-to-exceed ($)", required=False, min_value=0, max_digits=12, decimal_places=2)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "priority": ticket.priority,
                "incident_type": ticket.incident_type,
                "nte": None if ticket.nte_cents is None else Decimal(ticket.nte_cents) / 100,
            },
        )
        super().__init__(*args, ticket=ticket, **kwargs)
        choices = incident_type_choices()
        # A type the intake set that has no template yet stays selectable.
        if ticket.incident_type and ticket.incident_type not in dict(choices):
            choices.append((ticket.incident_type, ticket.incident_type))
        self.fields["incident_type"].choices = choices


class TriageForApprovalForm(TriageForm):
    approval_reason = forms.CharField(label="Why approval is needed", widget=forms.Textarea(attrs={"rows": 2}))
    approval_amount_delta = forms.DecimalField(
        label="NTE increase asked ($)", required=False, min_value=0, max_digits=12, decimal_places=2
    )


class RequestInfoForm(ActionForm):
    question = forms.CharField(
        label="What the customer must tell us", widget=forms.Textarea(attrs={"rows": 3}), max_length=1000
    )


class ReasonForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)


class OptionalReasonForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000, required=False)


class CancelForm(ReasonForm):
    cancellation_code = forms.ChoiceField(
        required=False,
        choices=[
            ("", "—"),
            ("CUSTOMER_REQUEST", "Customer asked to cancel"),
            ("DUPLICATE", "Duplicate request"),
            ("NO_ACCESS", "No access to the site"),
            ("OUT_OF_SCOPE", "Not work we do"),
        ],
    )


HOLD_REASONS = [
    ("CUSTOMER_PENDING", "Waiting on the customer"),
    ("CUSTOMER_UNREACHABLE", "Customer unreachable"),
    ("CUSTOMER_CONFIRMATION_STALE", "Customer confirmation went stale"),
]


class HoldForm(ActionForm):
    hold_reason = forms.ChoiceField(choices=[("", "—"), *HOLD_REASONS], required=False)
    reason = forms.CharField(label="Note", widget=forms.Textarea(attrs={"rows": 2}), max_length=1000, required=False)


class DetailsForm(ActionForm):
    """The descriptive fields a dispatcher may correct; the audit event keeps old and new values."""

    summary = forms.CharField(max_length=500)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    customer_name = forms.CharField(required=False, max_length=200)
    customer_phone = forms.CharField(required=False, max_length=20)
    customer_email = forms.EmailField(required=False)
    asset = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "summary": ticket.summary,
                "description": ticket.description,
                "customer_name": ticket.customer_name,
                "customer_phone": ticket.customer_phone,
                "customer_email": ticket.customer_email,
                "asset": ticket.asset_id,
            },
        )
        super().__init__(*args, ticket=ticket, **kwargs)
        self.fields["asset"].queryset = ticket.site.assets.all()

    def changes(self) -> dict:
        """Only the fields whose value differs from the ticket's."""
        names = ("summary", "description", "customer_name", "customer_phone", "customer_email")
        data = {name: self.cleaned_data[name] for name in names}
        asset = self.cleaned_data.get("asset")
        data["asset_id"] = asset.pk if asset else None
        return {
            name: value for name, value in data.items() if str(getattr(self.ticket, name) or "") != str(value or "")
        }

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            data["changes"] = self.changes()
            if not data["changes"]:
                raise forms.ValidationError("Nothing changed.")
        return data


class ReopenForm(ReasonForm):
    reopen_scope = forms.CharField(label="What must be redone", max_length=200, required=False)


class ApprovalDecisionForm(ActionForm):
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, ticket=ticket, **kwargs)
        self.approval = ticket.approvals.filter(status=Approval.Status.PENDING).first()

    def clean(self) -> dict:
        data = super().clean()
        if self.approval is None:
            raise forms.ValidationError("This ticket has no pending approval to decide.")
        data["approval_id"] = str(self.approval.pk)
        return data


# --- the registry --------------------------------------------------------------------------------

# The order of the buttons, by key: moving the job forward first, side steps after, stopping it
# last. The ticket page is this app's, so the order is kept here; the phases' keys are only
# names. A registered key missing from the list goes last, in the order it was registered.
BUTTON_ORDER = (
    "triage-ready",
    "triage",
    "triage-approval",
    "request-info",
    "approve",
    "deny",
    "schedule-propose",
    "schedule-confirm",
    "dispatch",
    "schedule-release",
    "check-in",
    "complete",
    "qa-verify",
    "invoice",
    "close",
    "schedule-hold",
    "schedule-rollback",
    "resume-work",
    "resume-schedule",
    "reopen",
    "edit-details",
    "evidence-exception",
    "manual-bypass",
    "force-unassign",
    "force-hold",
    "force-close",
    "cancel",
)

_registered: dict[str, TicketAction] = {}


def ticket_actions_register(*actions: TicketAction) -> None:
    """Offer these buttons on the ticket page; registering a key again replaces its entry."""
    for action in actions:
        _registered[action.key] = action


def ticket_actions() -> tuple[TicketAction, ...]:
    """Every action the ticket page can offer, in the order its buttons appear."""
    rank = {key: index for index, key in enumerate(BUTTON_ORDER)}
    return tuple(sorted(_registered.values(), key=lambda action: rank.get(action.key, len(rank))))


def ticket_action(key: str) -> TicketAction | None:
    return _registered.get(key)


def service_runner(service: Callable[..., Any], arguments: Callable[[Ticket, dict], dict]) -> Callable[..., Any]:
    """A `run` that calls `service` with the arguments built from the ticket and the form's data;
    the service refuses a ticket changed since the page was rendered (`expected_version`)."""

    def run(*, actor: Actor, ticket: Ticket, data: dict, expected_version: int | None):
        return service(actor=actor, ticket_id=ticket.pk, expected_version=expected_version, **arguments(ticket, data))

    return run


# --- the lifecycle's and approvals' buttons ------------------------------------------------------


def _triage(outcome: str) -> Callable[..., Any]:
    return service_runner(
        lifecycle.ticket_triage,
        lambda ticket, data: {
            "priority": data["priority"],
            "incident_type": data["incident_type"],
            "nte_cents": cents(data.get("nte")),
            "outcome": outcome,
            "approval_reason": data.get("approval_reason", ""),
            "approval_amount_delta_cents": cents(data.get("approval_amount_delta")),
        },
    )


def _resume(to_state: str) -> Callable[..., Any]:
    return service_runner(
        lifecycle.ticket_resume, lambda ticket, data: {"to_state": to_state, "reason": data.get("reason", "")}
    )


def _decide(decision: str) -> Callable[..., Any]:
    return service_runner(
        approvals.approval_decide,
        lambda ticket, data: {"approval_id": data["approval_id"], "decision": decision, "notes": data.get("notes", "")},
    )


ticket_actions_register(
    TicketAction(
        "triage-ready",
        lifecycle.TICKET_TRIAGE,
        "Triage → ready to schedule",
        _triage(TicketState.READY_TO_SCHEDULE),
        TriageForm,
        tone="primary",
        help_text="Set priority, incident type and NTE, and queue the job for scheduling.",
    ),
    TicketAction(
        "triage",
        lifecycle.TICKET_TRIAGE,
        "Triage only",
        _triage(TicketState.TRIAGED),
        TriageForm,
        help_text="Set priority, incident type and NTE; the job stays in TRIAGED.",
    ),
    TicketAction(
        "triage-approval",
        lifecycle.TICKET_TRIAGE,
        "Triage → needs approval",
        _triage(TicketState.APPROVAL_REQUIRED),
        TriageForApprovalForm,
        help_text="Triage, and hold the job until an approver decides.",
    ),
    TicketAction(
        "request-info",
        lifecycle.TICKET_REQUEST_INFO,
        "Ask customer for details",
        service_runner(lifecycle.ticket_request_info, lambda ticket, data: {"question": data["question"]}),
        RequestInfoForm,
    ),
    TicketAction(
        "edit-details",
        lifecycle.TICKET_UPDATE_DETAILS,
        "Edit details",
        service_runner(lifecycle.ticket_update_details, lambda ticket, data: {"changes": data["changes"]}),
        DetailsForm,
        help_text="Correct the summary, description, caller or asset; the audit keeps old and new values.",
    ),
    TicketAction(
        "resume-work",
        lifecycle.TICKET_RESUME,
        "Resume work",
        _resume(TicketState.IN_PROGRESS),
        OptionalReasonForm,
        tone="primary",
        help_text="Back to IN_PROGRESS with the same technician.",
    ),
    TicketAction(
        "resume-schedule",
        lifecycle.TICKET_RESUME,
        "Back to scheduling",
        _resume(TicketState.READY_TO_SCHEDULE),
        OptionalReasonForm,
        help_text="Back to READY_TO_SCHEDULE to book a new visit.",
    ),
    TicketAction(
        "reopen",
        lifecycle.REOPEN_AFTER_VERIFICATION,
        "Reopen",
        service_runner(
            lifecycle.ticket_reopen,
            lambda ticket, data: {"reason": data["reason"], "reopen_scope": data.get("reopen_scope", "")},
        ),
        ReopenForm,
        help_text="Send verified or invoiced work back to IN_PROGRESS.",
    ),
    TicketAction(
        "force-hold",
        lifecycle.DISPATCH_FORCE_HOLD,
        "Put on hold",
        service_runner(
            lifecycle.ticket_force_hold,
            lambda ticket, data: {"hold_reason": data.get("hold_reason", ""), "reason": data.get("reason", "")},
        ),
        HoldForm,
        tone="danger",
    ),
    TicketAction(
        "cancel",
        lifecycle.TICKET_CANCEL,
        "Cancel ticket",
        service_runner(
            lifecycle.ticket_cancel,
            lambda ticket, data: {"reason": data["reason"], "cancellation_code": data.get("cancellation_code", "")},
        ),
        CancelForm,
        tone="danger",
    ),
    TicketAction(
        "approve",
        approvals.APPROVAL_DECIDE,
        "Approve request",
        _decide("APPROVED"),
        ApprovalDecisionForm,
        tone="primary",
        help_text="Grant the pending approval; the job returns to where it was headed.",
    ),
    TicketAction(
        "deny",
        approvals.APPROVAL_DECIDE,
        "Deny request",
        _decide("DENIED"),
        ApprovalDecisionForm,
        help_text="Deny the pending approval; the job goes back to TRIAGED.",
    ),
)
