"""The ticket page's scheduling buttons: propose, confirm, dispatch, holds, check-in, unassign.

Registered with the ticket page's registry (dispatch/tickets/admin_actions.py) when this
module is imported, which scheduling's admin.py does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone

from dispatch.technicians.models import Technician
from dispatch.technicians.selectors import technician_fit_annotations
from dispatch.tickets.admin_actions import (
    HOLD_REASONS,
    ActionForm,
    LocalDateTimeField,
    TicketAction,
    local_zone_note,
    service_runner,
    ticket_actions_register,
    window_text,
)
from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState

from . import services as scheduling
from .engine import slots_suggest
from .onsite import booked_visit_start, early_check_in_margin, early_check_in_warning, span_text
from .selectors import appointments_booked_for_ticket, hold_active_for_ticket, proposal_open_for_ticket


def _at(days: int, hour: int):
    """Today (plus `days`) at `hour`:00 local time: a sensible first guess for a window."""
    moment = timezone.localtime() + timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


def _technician_choices():
    return Technician.objects.filter(is_active=True).prefetch_related("regions", "skills").order_by("display_name")


class TechnicianChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, technician) -> str:
        regions = ", ".join(region.code for region in technician.regions.all())
        skills = ", ".join(skill.incident_type for skill in technician.skills.all())
        return " · ".join(part for part in (technician.display_name, regions, skills) if part)


class ProposeForm(ActionForm):
    """Up to three windows to offer the customer, each with the technician who would take it; the
    first window is required. Confirming a window later assigns its technician to the job."""

    start_1 = LocalDateTimeField(label="Window 1 from")
    end_1 = LocalDateTimeField(label="to")
    technician_1 = TechnicianChoiceField(queryset=None, required=False, label="technician")
    start_2 = LocalDateTimeField(label="Window 2 from", required=False)
    end_2 = LocalDateTimeField(label="to", required=False)
    technician_2 = TechnicianChoiceField(queryset=None, required=False, label="technician")
    start_3 = LocalDateTimeField(label="Window 3 from", required=False)
    end_3 = LocalDateTimeField(label="to", required=False)
    technician_3 = TechnicianChoiceField(queryset=None, required=False, label="technician")

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        # The slot engine's best windows, each with its technician, are the starting point; the
        # dispatcher may change them.
        suggestion = slots_suggest(ticket=ticket, limit=3)
        initial: dict[str, Any] = {f"technician_{n}": ticket.assigned_tech_id for n in (1, 2, 3)}
        reasons: dict[int, str] = {}
        if suggestion.windows:
            for n, window in enumerate(suggestion.windows, start=1):
                initial[f"start_{n}"] = timezone.localtime(window.start)
                initial[f"end_{n}"] = timezone.localtime(window.end)
                initial[f"technician_{n}"] = window.technician_id
                reasons[n] = f"Suggested by the slot engine: {window.reason}"
        else:
            initial.update(start_1=_at(1, 8), end_1=_at(1, 10), start_2=_at(1, 13), end_2=_at(1, 15))
            reasons[1] = f"The slot engine found no window: {suggestion.explanation}"
        kwargs.setdefault("initial", initial)
        super().__init__(*args, ticket=ticket, **kwargs)
        technicians = _technician_choices()
        for n in (1, 2, 3):
            self.fields[f"technician_{n}"].queryset = technicians
            self.fields[f"technician_{n}"].empty_label = "— anyone (assign when dispatching)"
        for n, reason in reasons.items():
            self.fields[f"start_{n}"].help_text = reason
        self.fields["start_1"].help_text = f"{local_zone_note()} {reasons[1]}"

    def clean(self) -> dict:
        data = super().clean()
        options = []
        for n in (1, 2, 3):
            start, end = data.get(f"start_{n}"), data.get(f"end_{n}")
            if bool(start) != bool(end):
                raise forms.ValidationError(f"Window {n} needs both a start and an end.")
            if start and end:
                option = {"start": start.isoformat(), "end": end.isoformat()}
                technician = data.get(f"technician_{n}")
                if technician is not None:
                    option["tech_id"] = str(technician.pk)
                options.append(option)
        data["options"] = options
        return data


class ConfirmForm(ActionForm):
    """Pick the window the customer agreed to, out of the open proposal."""

    window = forms.ChoiceField(label="Window the customer agreed to", widget=forms.RadioSelect)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
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
            label = window_text(option["start"], option["end"])
            if option.get("tech_id"):
                label += f" · {names.get(Technician._meta.pk.to_python(option['tech_id']), 'technician')}"
            choices.append((str(index), label))
        self.fields["window"].choices = choices
        if choices:
            self.fields["window"].initial = "0"
        else:
            self.fields["window"].help_text = "There is no open proposal: propose windows first."
            self.warnings = [self.fields["window"].help_text]

    def clean(self) -> dict:
        data = super().clean()
        if "window" in data:
            data["option"] = self.options[int(data["window"])]
        return data


def _technicians_eligible(ticket: Ticket, also: Any = None):
    """Active technicians with the job's skill who cover its site's region (what assignment.dispatch
    accepts), plus `also` (the booked technician, whom the service then judges itself)."""
    incident_type = (ticket.incident_type or "").upper()
    region = (ticket.site.service_region or "").upper()
    fit = Technician.objects.filter(is_active=True)
    if incident_type or region:
        fit = fit.annotate(**technician_fit_annotations(incident_type=incident_type, region_code=region))
        if incident_type:
            fit = fit.filter(skill_level__isnull=False)
        if region:
            fit = fit.filter(covers=True)
    wanted = Q(pk__in=fit.values("pk"))
    if also is not None:
        wanted |= Q(pk=also)
    return Technician.objects.filter(wanted).prefetch_related("regions", "skills").order_by("display_name")


def _nobody_fits(ticket: Ticket) -> str:
    needs = [f"the {ticket.incident_type} skill" if ticket.incident_type else ""]
    if ticket.site.service_region:
        needs.append(f"covers region {ticket.site.service_region}")
    return (
        f"No active technician has {' and '.join(n for n in needs if n) or 'what this job needs'}: "
        "add the skill or region to a technician (Technicians), then dispatch."
    )


class DispatchForm(ActionForm):
    technician = TechnicianChoiceField(
        queryset=None, help_text="Technicians with the job's skill who cover its region; the booked one is chosen."
    )
    dispatch_mode = forms.ChoiceField(
        choices=[("STANDARD", "Standard (booked visit)"), ("EMERGENCY_BYPASS", "Emergency bypass (skip scheduling)")],
        help_text="From TRIAGED only an emergency bypass, with a rationale and confirmation, may dispatch.",
    )
    dispatch_rationale = forms.CharField(label="Rationale", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    dispatch_confirmation = forms.BooleanField(label="I confirm this emergency dispatch", required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        # The technician of the confirmed window, else whoever holds the booking.
        booked = ticket.assigned_tech_id
        if booked is None:
            appointment = appointments_booked_for_ticket(ticket_id=ticket.pk).first()
            booked = appointment.technician_id if appointment else None
        kwargs.setdefault(
            "initial",
            {
                "technician": booked,
                "dispatch_mode": "EMERGENCY_BYPASS" if ticket.state == TicketState.TRIAGED else "STANDARD",
            },
        )
        super().__init__(*args, ticket=ticket, **kwargs)
        technicians = _technicians_eligible(ticket, also=booked)
        self.fields["technician"].queryset = technicians
        if not technicians.exists():
            # Said before anyone presses the button, not after a refusal.
            self.warnings = [_nobody_fits(ticket)]
            self.fields["technician"].help_text = _nobody_fits(ticket)


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
        super().__init__(*args, ticket=ticket, **kwargs)
        hold = hold_active_for_ticket(ticket_id=ticket.pk)
        choices = []
        if hold is not None:
            window = window_text(hold.confirmation_start, hold.confirmation_end)
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
    reason = forms.CharField(
        label="Why this early",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        now = timezone.localtime().replace(second=0, microsecond=0)
        kwargs.setdefault("initial", {"arrived_at": now})
        super().__init__(*args, ticket=ticket, **kwargs)
        self.visit_start = booked_visit_start(ticket)
        self.site_timezone = ticket.site.timezone if ticket.site_id else ""
        self.fields["reason"].help_text = (
            f"Needed when the arrival is more than {span_text(early_check_in_margin())} before the booked visit; "
            "kept in the audit."
        )
        warning = early_check_in_warning(arrived_at=now, visit_start=self.visit_start, site_timezone=self.site_timezone)
        if warning:
            self.warnings = [warning + " Go ahead only with a reason."]

    def clean(self) -> dict:
        data = super().clean()
        arrived = data.get("arrived_at")
        if arrived is not None and not data.get("reason"):
            warning = early_check_in_warning(
                arrived_at=arrived, visit_start=self.visit_start, site_timezone=self.site_timezone
            )
            if warning:
                self.add_error("reason", f"{warning} Say why to go ahead.")
        return data


ticket_actions_register(
    TicketAction(
        "schedule-propose",
        scheduling.SCHEDULE_PROPOSE,
        "Propose windows",
        service_runner(scheduling.schedule_propose, lambda ticket, data: {"options": data["options"]}),
        ProposeForm,
        tone="primary",
        help_text="Offer the customer up to three appointment windows.",
    ),
    TicketAction(
        "schedule-confirm",
        scheduling.SCHEDULE_CONFIRM,
        "Confirm a window",
        service_runner(
            scheduling.schedule_confirm,
            lambda ticket, data: {
                "start": data["option"]["start"],
                "end": data["option"]["end"],
                "tech_id": data["option"].get("tech_id"),
            },
        ),
        ConfirmForm,
        tone="primary",
    ),
    TicketAction(
        "dispatch",
        scheduling.ASSIGNMENT_DISPATCH,
        "Dispatch technician",
        service_runner(
            scheduling.assignment_dispatch,
            lambda ticket, data: {
                "tech_id": str(data["technician"].pk),
                "dispatch_mode": data["dispatch_mode"],
                "dispatch_rationale": data.get("dispatch_rationale", ""),
                "dispatch_confirmation": bool(data.get("dispatch_confirmation")),
            },
        ),
        DispatchForm,
        tone="primary",
    ),
    TicketAction(
        "schedule-release",
        scheduling.SCHEDULE_RELEASE,
        "Customer confirmed",
        service_runner(scheduling.schedule_release, lambda ticket, data: {"customer_confirmation_id": data["hold"]}),
        ActiveHoldForm,
        tone="primary",
        help_text="Release the hold: the booking stands as it was.",
    ),
    TicketAction(
        "check-in",
        scheduling.TECH_CHECK_IN,
        "Check in (for the technician)",
        service_runner(
            scheduling.tech_check_in,
            lambda ticket, data: {"timestamp": data["arrived_at"], "reason": data.get("reason", "")},
        ),
        CheckInForm,
        tone="primary",
        help_text="Record the technician's arrival: the job goes to IN_PROGRESS.",
    ),
    TicketAction(
        "schedule-hold",
        scheduling.SCHEDULE_HOLD,
        "Hold for customer confirmation",
        service_runner(
            scheduling.schedule_hold,
            lambda ticket, data: {
                "hold_reason": data["hold_reason"],
                "confirmation_window": {
                    "start": data["confirm_from"].isoformat(),
                    "end": data["confirm_until"].isoformat(),
                },
            },
        ),
        ScheduleHoldForm,
    ),
    TicketAction(
        "schedule-rollback",
        scheduling.SCHEDULE_ROLLBACK,
        "Roll back hold",
        service_runner(
            scheduling.schedule_rollback,
            lambda ticket, data: {"confirmation_id": data["hold"], "reason": data.get("reason", "")},
        ),
        RollbackForm,
    ),
    TicketAction(
        "force-unassign",
        scheduling.DISPATCH_FORCE_UNASSIGN,
        "Unassign technician",
        service_runner(
            scheduling.dispatch_force_unassign,
            lambda ticket, data: {"reason": data.get("reason", ""), "reassign_type": data.get("reassign_type", "")},
        ),
        UnassignForm,
        tone="danger",
        when=lambda ticket: ticket.assigned_tech_id is not None,
    ),
)
