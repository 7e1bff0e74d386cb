"""The buttons of the back office's ticket page: one entry per business action a dispatcher may take.

An entry names the service's Command (who may act, from which states), a label, an optional
form for the input the action needs, and `run`, which calls the service with the acting user's
Actor, the form's cleaned data and the ticket version the page was rendered with. The page shows
an entry's button when its Command allows the ticket's state and the user's role; the service
checks both again, under the ticket's row lock, and its DispatchError is what the user reads.

Adding an action is one more entry in `ticket_actions()`. Services of phase apps are imported
inside that function, and only when their module exists, so the admin keeps working while an
app is still being written.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError

from .commands import Command
from .models import Approval, Priority, Ticket
from .states import TicketState

S = TicketState


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
    # Whether the button makes sense for this ticket beyond its state (e.g. there is a
    # technician to unassign); the page only hides it, the service still decides.
    when: Callable[[Ticket], bool] | None = None

    def offered(self, *, ticket: Ticket, role) -> bool:
        return (
            self.command.allows_state(ticket.state)
            and self.command.allows_role(role)
            and (self.when is None or self.when(ticket))
        )


class ActionForm(forms.Form):
    """The input of one action, built with the ticket so that it can offer the right defaults
    (None when one form serves many tickets, as the bulk cancel does)."""

    def __init__(self, *args, ticket: Ticket | None, **kwargs) -> None:
        self.ticket = ticket
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


def incident_type_choices() -> list[tuple[str, str]]:
    from dispatch.closeout.models import IncidentTemplate

    return [("", "—")] + [
        (incident_type, f"{name} ({incident_type})" if name and name != incident_type else incident_type)
        for incident_type, name in IncidentTemplate.objects.values_list("incident_type", "name")
    ]


# --- forms -------------------------------------------------------------------------------------


class TriageForm(ActionForm):
    priority = forms.ChoiceField(choices=Priority.choices)
    incident_type = forms.ChoiceField(choices=())
    nte = forms.DecimalField(
        label="Not-to-exceed ($)", required=False, min_value=0, max_digits=12, decimal_places=2
    )

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
    reason = forms.CharField(
        label="Note", widget=forms.Textarea(attrs={"rows": 2}), max_length=1000, required=False
    )


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
        data = {name: self.cleaned_data[name] for name in ("summary", "description", "customer_name", "customer_phone", "customer_email")}
        asset = self.cleaned_data.get("asset")
        data["asset_id"] = asset.pk if asset else None
        return {name: value for name, value in data.items() if str(getattr(self.ticket, name) or "") != str(value or "")}

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            data["changes"] = self.changes()
            if not data["changes"]:
                raise forms.ValidationError("Nothing changed.")
        return data


class ReopenForm(ReasonForm):
    reopen_scope = forms.CharField(label="What must be redone", max_length=200, required=False)


# --- calling a service with the page's version ---------------------------------------------------


def call_with_version(service: Callable[..., Any], *, ticket_id, expected_version: int | None, **kwargs) -> Any:
    """Call `service` so that it refuses to act on a ticket changed since the page was rendered.

    Services that take `expected_version` check it themselves, under their row lock. For one
    that does not (yet), the check and the call run in one transaction that holds the ticket's
    row lock, so no other change can land between them.
    """
    if "expected_version" in inspect.signature(service).parameters:
        return service(ticket_id=ticket_id, expected_version=expected_version, **kwargs)
    if expected_version is None:
        return service(ticket_id=ticket_id, **kwargs)
    with transaction.atomic():
        current = Ticket.objects.select_for_update().filter(pk=ticket_id).values_list("version", flat=True).first()
        if current is not None and current != expected_version:
            raise DispatchError(
                "CONCURRENT_MODIFICATION",
                f"The ticket changed since you loaded it (version {expected_version}, now {current}). "
                "Reload and try again.",
                status=409,
                dimension="state",
                details={"expected_version": expected_version, "current_version": current},
            )
        return service(ticket_id=ticket_id, **kwargs)


# --- forms of the phase apps' actions ------------------------------------------------------------


def _local_zone_note() -> str:
    return f"Local time ({timezone.get_current_timezone_name()})."


class LocalDateTimeField(forms.DateTimeField):
    """A date and time typed in the back office's time zone (the browser's datetime-local input)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("input_formats", ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
        super().__init__(**kwargs)


def _at(days: int, hour: int):
    """Today (plus `days`) at `hour`:00 local time: a sensible first guess for a window."""
    moment = timezone.localtime() + timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


def _window_text(start, end) -> str:
    start = timezone.localtime(parse_datetime(start) if isinstance(start, str) else start)
    end = timezone.localtime(parse_datetime(end) if isinstance(end, str) else end)
    if end.date() == start.date():
        return f"{start:%a %b %-d, %H:%M}–{end:%H:%M}"
    return f"{start:%a %b %-d, %H:%M} – {end:%a %b %-d, %H:%M}"


def _technician_choices():
    from dispatch.technicians.models import Technician

    return Technician.objects.filter(is_active=True).prefetch_related("regions", "skills").order_by("display_name")


class TechnicianChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, technician) -> str:
        regions = ", ".join(region.code for region in technician.regions.all())
        skills = ", ".join(skill.incident_type for skill in technician.skills.all())
        return " · ".join(part for part in (technician.display_name, regions, skills) if part)


class ProposeForm(ActionForm):
    """Up to three windows to offer the customer; the first is required."""

    technician = TechnicianChoiceField(queryset=None, required=False, help_text="Optional: who would take these windows.")
    start_1 = LocalDateTimeField(label="Window 1 from")
    end_1 = LocalDateTimeField(label="to")
    start_2 = LocalDateTimeField(label="Window 2 from", required=False)
    end_2 = LocalDateTimeField(label="to", required=False)
    start_3 = LocalDateTimeField(label="Window 3 from", required=False)
    end_3 = LocalDateTimeField(label="to", required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        from dispatch.scheduling.engine import slots_suggest

        # The slot engine's best windows are the starting point; the dispatcher may change them.
        suggestion = slots_suggest(ticket=ticket, limit=3)
        initial: dict[str, Any] = {"technician": ticket.assigned_tech_id}
        reasons: dict[int, str] = {}
        if suggestion.windows:
            technicians = {window.technician_id for window in suggestion.windows}
            if len(technicians) == 1:
                initial["technician"] = technicians.pop()
            for n, window in enumerate(suggestion.windows, start=1):
                initial[f"start_{n}"] = timezone.localtime(window.start)
                initial[f"end_{n}"] = timezone.localtime(window.end)
                reasons[n] = f"Suggested by the slot engine: {window.reason}"
        else:
            initial.update(start_1=_at(1, 8), end_1=_at(1, 10), start_2=_at(1, 13), end_2=_at(1, 15))
            reasons[1] = f"The slot engine found no window: {suggestion.explanation}"
        kwargs.setdefault("initial", initial)
        super().__init__(*args, ticket=ticket, **kwargs)
        self.fields["technician"].queryset = _technician_choices()
        for n, reason in reasons.items():
            self.fields[f"start_{n}"].help_text = reason
        self.fields["start_1"].help_text = f"{_local_zone_note()} {reasons[1]}"

    def clean(self) -> dict:
        data = super().clean()
        options = []
        for n in (1, 2, 3):
            start, end = data.get(f"start_{n}"), data.get(f"end_{n}")
            if bool(start) != bool(end):
                raise forms.ValidationError(f"Window {n} needs both a start and an end.")
            if start and end:
                options.append({"start": start.isoformat(), "end": end.isoformat()})
        technician = data.get("technician")
        if technician is not None:
            for option in options:
                option["tech_id"] = str(technician.pk)
        data["options"] = options
        return data


class ConfirmForm(ActionForm):
    """Pick the window the customer agreed to, out of the open proposal."""

    window = forms.ChoiceField(label="Window the customer agreed to", widget=forms.RadioSelect)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        from dispatch.scheduling.selectors import proposal_open_for_ticket
        from dispatch.technicians.models import Technician

        super().__init__(*args, ticket=ticket, **kwargs)
        proposal = proposal_open_for_ticket(ticket_id=ticket.pk)
        self.options = list(proposal.options) if proposal else []
        names = dict(
            Technician.objects.filter(pk__in=[o["tech_id"] for o in self.options if o.get("tech_id")]).values_list(
                "pk", "display_name"
            )
        )
        choices = []
        for index, option in enumerate(self.options):
            label = _window_text(option["start"], option["end"])
            if option.get("tech_id"):
                label += f" · {names.get(Technician._meta.pk.to_python(option['tech_id']), 'technician')}"
            choices.append((str(index), label))
        self.fields["window"].choices = choices
        if choices:
            self.fields["window"].initial = "0"
        else:
            self.fields["window"].help_text = "There is no open proposal: propose windows first."

    def clean(self) -> dict:
        data = super().clean()
        if "window" in data:
            data["option"] = self.options[int(data["window"])]
        return data


class DispatchForm(ActionForm):
    technician = TechnicianChoiceField(queryset=None)
    dispatch_mode = forms.ChoiceField(
        choices=[("STANDARD", "Standard (booked visit)"), ("EMERGENCY_BYPASS", "Emergency bypass (skip scheduling)")],
        help_text="From TRIAGED only an emergency bypass, with a rationale and confirmation, may dispatch.",
    )
    dispatch_rationale = forms.CharField(label="Rationale", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    dispatch_confirmation = forms.BooleanField(label="I confirm this emergency dispatch", required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "technician": ticket.assigned_tech_id,
                "dispatch_mode": "EMERGENCY_BYPASS" if ticket.state == S.TRIAGED else "STANDARD",
            },
        )
        super().__init__(*args, ticket=ticket, **kwargs)
        self.fields["technician"].queryset = _technician_choices()


class ScheduleHoldForm(ActionForm):
    hold_reason = forms.ChoiceField(choices=HOLD_REASONS)
    confirm_from = LocalDateTimeField(label="Customer confirms between")
    confirm_until = LocalDateTimeField(label="and")

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        now = timezone.localtime().replace(second=0, microsecond=0)
        kwargs.setdefault("initial", {"confirm_from": now, "confirm_until": now + timedelta(hours=24)})
        super().__init__(*args, ticket=ticket, **kwargs)


class ActiveHoldForm(ActionForm):
    """Names the ticket's active customer-confirmation hold (there is at most one)."""

    hold = forms.ChoiceField(label="Hold", widget=forms.RadioSelect)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        from dispatch.scheduling.selectors import hold_active_for_ticket

        super().__init__(*args, ticket=ticket, **kwargs)
        hold = hold_active_for_ticket(ticket_id=ticket.pk)
        choices = []
        if hold is not None:
            window = _window_text(hold.confirmation_start, hold.confirmation_end)
            choices.append((str(hold.pk), f"{hold.get_hold_reason_display()} · confirm {window}"))
            self.fields["hold"].initial = str(hold.pk)
        self.fields["hold"].choices = choices


class RollbackForm(ActiveHoldForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)


class UnassignForm(ActionForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    reassign_type = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("REASSIGN", "Send someone else"), ("RESCHEDULE", "Book a new visit")],
    )


class CheckInForm(ActionForm):
    arrived_at = LocalDateTimeField(label="Arrived at")

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        kwargs.setdefault("initial", {"arrived_at": timezone.localtime().replace(second=0, microsecond=0)})
        super().__init__(*args, ticket=ticket, **kwargs)


def _template(ticket: Ticket):
    from dispatch.closeout.gate import template_for

    return template_for(ticket.incident_type)


class CompleteForm(ActionForm):
    """The incident template's checklist, ticked on the technician's behalf."""

    no_signature_reason = forms.CharField(
        label="No signature because", required=False, max_length=500,
        help_text="Leave empty when the customer's signature is on file.",
    )

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, ticket=ticket, **kwargs)
        template = _template(ticket)
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
    bypass_rationale = forms.CharField(label="Why the evidence gate is bypassed", widget=forms.Textarea(attrs={"rows": 2}))


class QaVerifyForm(ActionForm):
    result = forms.ChoiceField(choices=[("PASS", "Pass"), ("FAIL", "Fail")], widget=forms.RadioSelect, initial="PASS")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class CloseForm(ActionForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    closeout_override_code = forms.CharField(label="Override code", required=False, max_length=100)


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
        label="Waive", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked waives every required evidence key.",
    )
    expires_at = LocalDateTimeField(label="Until", required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        from dispatch.closeout.gate import SIGNATURE_KEY

        super().__init__(*args, ticket=ticket, **kwargs)
        template = _template(ticket)
        keys = list(dict.fromkeys([*(template.required_evidence_keys if template else []), SIGNATURE_KEY]))
        self.fields["evidence_refs"].choices = [(key, key) for key in keys]


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


# --- the table ---------------------------------------------------------------------------------

# The order of the buttons: moving the job forward first, side steps after, stopping it last.
BUTTON_ORDER = (
    "triage-ready", "triage", "triage-approval", "request-info",
    "approve", "deny",
    "schedule-propose", "schedule-confirm", "dispatch", "schedule-release", "check-in",
    "complete", "qa-verify", "invoice", "close",
    "schedule-hold", "schedule-rollback", "resume-work", "resume-schedule", "reopen",
    "edit-details", "evidence-exception", "manual-bypass", "force-unassign", "force-hold", "force-close", "cancel",
)


def ticket_actions() -> tuple[TicketAction, ...]:
    """Every action the ticket page can offer, in the order its buttons appear."""
    actions = [*_lifecycle_actions(), *_approval_actions(), *_scheduling_actions(), *_closeout_actions()]
    rank = {key: index for index, key in enumerate(BUTTON_ORDER)}
    return tuple(sorted(actions, key=lambda action: rank.get(action.key, len(rank))))


def ticket_action(key: str) -> TicketAction | None:
    return next((action for action in ticket_actions() if action.key == key), None)


def _runner(service: Callable[..., Any], arguments: Callable[[Ticket, dict], dict]) -> Callable[..., Any]:
    """A `run` that calls `service` with the arguments built from the ticket and the form's data."""

    def run(*, actor: Actor, ticket: Ticket, data: dict, expected_version: int | None):
        return call_with_version(
            service, ticket_id=ticket.pk, expected_version=expected_version, actor=actor, **arguments(ticket, data)
        )

    return run


def _lifecycle_actions() -> list[TicketAction]:
    from . import services as lifecycle

    def triage(outcome: str):
        return _runner(
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

    def resume(to_state: str):
        return _runner(lifecycle.ticket_resume, lambda ticket, data: {"to_state": to_state, "reason": data.get("reason", "")})

    return [
        TicketAction(
            "triage-ready", lifecycle.TICKET_TRIAGE, "Triage → ready to schedule", triage(S.READY_TO_SCHEDULE),
            TriageForm, tone="primary",
            help_text="Set priority, incident type and NTE, and queue the job for scheduling.",
        ),
        TicketAction(
            "triage", lifecycle.TICKET_TRIAGE, "Triage only", triage(S.TRIAGED), TriageForm,
            help_text="Set priority, incident type and NTE; the job stays in TRIAGED.",
        ),
        TicketAction(
            "triage-approval", lifecycle.TICKET_TRIAGE, "Triage → needs approval", triage(S.APPROVAL_REQUIRED),
            TriageForApprovalForm, help_text="Triage, and hold the job until an approver decides.",
        ),
        TicketAction(
            "request-info", lifecycle.TICKET_REQUEST_INFO, "Ask customer for details",
            _runner(lifecycle.ticket_request_info, lambda ticket, data: {"question": data["question"]}),
            RequestInfoForm,
        ),
        TicketAction(
            "edit-details", lifecycle.TICKET_UPDATE_DETAILS, "Edit details",
            _runner(lifecycle.ticket_update_details, lambda ticket, data: {"changes": data["changes"]}),
            DetailsForm, help_text="Correct the summary, description, caller or asset; the audit keeps old and new values.",
        ),
        TicketAction(
            "resume-work", lifecycle.TICKET_RESUME, "Resume work", resume(S.IN_PROGRESS), OptionalReasonForm,
            tone="primary", help_text="Back to IN_PROGRESS with the same technician.",
        ),
        TicketAction(
            "resume-schedule", lifecycle.TICKET_RESUME, "Back to scheduling", resume(S.READY_TO_SCHEDULE),
            OptionalReasonForm, help_text="Back to READY_TO_SCHEDULE to book a new visit.",
        ),
        TicketAction(
            "reopen", lifecycle.REOPEN_AFTER_VERIFICATION, "Reopen",
            _runner(
                lifecycle.ticket_reopen,
                lambda ticket, data: {"reason": data["reason"], "reopen_scope": data.get("reopen_scope", "")},
            ),
            ReopenForm, help_text="Send verified or invoiced work back to IN_PROGRESS.",
        ),
        TicketAction(
            "force-hold", lifecycle.DISPATCH_FORCE_HOLD, "Put on hold",
            _runner(
                lifecycle.ticket_force_hold,
                lambda ticket, data: {"hold_reason": data.get("hold_reason", ""), "reason": data.get("reason", "")},
            ),
            HoldForm, tone="danger",
        ),
        TicketAction(
            "cancel", lifecycle.TICKET_CANCEL, "Cancel ticket",
            _runner(
                lifecycle.ticket_cancel,
                lambda ticket, data: {"reason": data["reason"], "cancellation_code": data.get("cancellation_code", "")},
            ),
            CancelForm, tone="danger",
        ),
    ]


def _approval_actions() -> list[TicketAction]:
    from . import approvals

    def decide(decision: str):
        return _runner(
            approvals.approval_decide,
            lambda ticket, data: {"approval_id": data["approval_id"], "decision": decision, "notes": data.get("notes", "")},
        )

    return [
        TicketAction(
            "approve", approvals.APPROVAL_DECIDE, "Approve request", decide("APPROVED"), ApprovalDecisionForm,
            tone="primary", help_text="Grant the pending approval; the job returns to where it was headed.",
        ),
        TicketAction(
            "deny", approvals.APPROVAL_DECIDE, "Deny request", decide("DENIED"), ApprovalDecisionForm,
            help_text="Deny the pending approval; the job goes back to TRIAGED.",
        ),
    ]


def _scheduling_actions() -> list[TicketAction]:
    from dispatch.scheduling import services as scheduling

    return [
        TicketAction(
            "schedule-propose", scheduling.SCHEDULE_PROPOSE, "Propose windows",
            _runner(scheduling.schedule_propose, lambda ticket, data: {"options": data["options"]}),
            ProposeForm, tone="primary", help_text="Offer the customer up to three appointment windows.",
        ),
        TicketAction(
            "schedule-confirm", scheduling.SCHEDULE_CONFIRM, "Confirm a window",
            _runner(
                scheduling.schedule_confirm,
                lambda ticket, data: {
                    "start": data["option"]["start"], "end": data["option"]["end"],
                    "tech_id": data["option"].get("tech_id"),
                },
            ),
            ConfirmForm, tone="primary",
        ),
        TicketAction(
            "dispatch", scheduling.ASSIGNMENT_DISPATCH, "Dispatch technician",
            _runner(
                scheduling.assignment_dispatch,
                lambda ticket, data: {
                    "tech_id": str(data["technician"].pk),
                    "dispatch_mode": data["dispatch_mode"],
                    "dispatch_rationale": data.get("dispatch_rationale", ""),
                    "dispatch_confirmation": bool(data.get("dispatch_confirmation")),
                },
            ),
            DispatchForm, tone="primary",
        ),
        TicketAction(
            "schedule-release", scheduling.SCHEDULE_RELEASE, "Customer confirmed",
            _runner(scheduling.schedule_release, lambda ticket, data: {"customer_confirmation_id": data["hold"]}),
            ActiveHoldForm, tone="primary", help_text="Release the hold: the booking stands as it was.",
        ),
        TicketAction(
            "check-in", scheduling.TECH_CHECK_IN, "Check in (for the technician)",
            _runner(scheduling.tech_check_in, lambda ticket, data: {"timestamp": data["arrived_at"]}),
            CheckInForm, tone="primary", help_text="Record the technician's arrival: the job goes to IN_PROGRESS.",
        ),
        TicketAction(
            "schedule-hold", scheduling.SCHEDULE_HOLD, "Hold for customer confirmation",
            _runner(
                scheduling.schedule_hold,
                lambda ticket, data: {
                    "hold_reason": data["hold_reason"],
                    "confirmation_window": {"start": data["confirm_from"].isoformat(), "end": data["confirm_until"].isoformat()},
                },
            ),
            ScheduleHoldForm,
        ),
        TicketAction(
            "schedule-rollback", scheduling.SCHEDULE_ROLLBACK, "Roll back hold",
            _runner(
                scheduling.schedule_rollback,
                lambda ticket, data: {"confirmation_id": data["hold"], "reason": data.get("reason", "")},
            ),
            RollbackForm,
        ),
        TicketAction(
            "force-unassign", scheduling.DISPATCH_FORCE_UNASSIGN, "Unassign technician",
            _runner(
                scheduling.dispatch_force_unassign,
                lambda ticket, data: {"reason": data.get("reason", ""), "reassign_type": data.get("reassign_type", "")},
            ),
            UnassignForm, tone="danger", when=lambda ticket: ticket.assigned_tech_id is not None,
        ),
    ]


def _closeout_actions() -> list[TicketAction]:
    from dispatch.closeout import services as closeout

    return [
        TicketAction(
            "complete", closeout.TECH_COMPLETE, "Complete work",
            _runner(
                closeout.tech_complete,
                lambda ticket, data: {
                    "checklist_status": data["checklist_status"],
                    "no_signature_reason": data.get("no_signature_reason") or None,
                },
            ),
            CompleteForm, tone="primary",
            help_text="Checked against the incident template: missing evidence or checklist items are refused.",
        ),
        TicketAction(
            "qa-verify", closeout.QA_VERIFY, "QA verify",
            _runner(
                closeout.qa_verify,
                lambda ticket, data: {"timestamp": timezone.now(), "result": data["result"], "notes": data.get("notes", "")},
            ),
            QaVerifyForm, tone="primary",
        ),
        TicketAction(
            "invoice", closeout.BILLING_GENERATE_INVOICE, "Generate invoice draft",
            _runner(closeout.invoice_generate, lambda ticket, data: {}),
            None, tone="primary",
        ),
        TicketAction(
            "close", closeout.TICKET_CLOSE, "Close ticket",
            _runner(
                closeout.ticket_close,
                lambda ticket, data: {
                    "reason": data.get("reason", ""), "closeout_override_code": data.get("closeout_override_code", ""),
                },
            ),
            CloseForm, tone="primary",
        ),
        TicketAction(
            "evidence-exception", closeout.EVIDENCE_EXCEPTION, "Waive evidence",
            _runner(
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
            "manual-bypass", closeout.DISPATCH_MANUAL_BYPASS, "Complete without evidence gate",
            _runner(closeout.dispatch_manual_bypass, lambda ticket, data: {"bypass_rationale": data["bypass_rationale"]}),
            ManualBypassForm, tone="danger",
            help_text="Recorded with what the gate would have refused.",
        ),
        TicketAction(
            "force-close", closeout.TICKET_FORCE_CLOSE, "Force close",
            _runner(
                closeout.ticket_force_close,
                lambda ticket, data: {
                    "override_code": data["override_code"],
                    "override_reason": data["override_reason"],
                    "approver_role": data["approver_role"],
                },
            ),
            ForceCloseForm, tone="danger", help_text="Close completed work without QA verification.",
        ),
    ]
