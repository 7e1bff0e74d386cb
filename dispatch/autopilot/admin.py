"""Back office for the autopilot: the autonomy ladder (edited here), the suggestions it left for a
dispatcher (applied or dismissed here through the services, never edited), today's numbers on the
admin index, and a section on the ticket page with what the autopilot suggests or decided.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from dispatch.common.admin_base import DispatchModelAdmin, ReadOnlyModelAdmin, acting_role, actor_for_request
from dispatch.common.errors import DispatchError
from dispatch.tickets import policy
from dispatch.tickets.admin import TicketPanel, ticket_panels_register
from dispatch.tickets.catalog import incident_type_names
from dispatch.tickets.models import Priority, Ticket

from .flags import SUGGESTED_STATES, UNDO_STATES, autopilot_marks, suggestion_marks
from .ladder import default_level
from .models import LEVELS, AutonomyLevel, EveningPlan, Suggestion
from .selectors import autopilot_decisions, today_numbers
from .suggestions import SUGGESTION_APPLY, suggestion_apply, suggestion_dismiss

ANY = "any"

# --- the ladder ------------------------------------------------------------------------------------


def incident_type_options(current: str = "") -> list[tuple[str, str]]:
    """Blank (every type), then each incident template's type; a type no template has any more is
    kept as it is, so that opening an old row does not change it."""
    names = incident_type_names()
    options = [("", f"{ANY} (every incident type)")] + [
        (kind, f"{name} ({kind})" if name and name != kind else kind)
        for kind, name in sorted(names.items(), key=lambda item: item[1] or item[0])
    ]
    if current and current not in names:
        options.append((current, f"{current} (no template)"))
    return options


class AutonomyLevelForm(forms.ModelForm):
    incident_type = forms.ChoiceField(choices=(), required=False, help_text="Blank: every incident type.")
    priority = forms.ChoiceField(
        choices=[("", f"{ANY} (every priority)"), *Priority.choices], required=False, help_text="Blank: every priority."
    )

    class Meta:
        model = AutonomyLevel
        fields = ("incident_type", "priority", "level")
        help_texts = {
            "level": "Each level includes the ones below. At no level does the autopilot cancel, force-close, "
            "approve, waive evidence or touch money.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["incident_type"].choices = incident_type_options(self.instance.incident_type or "")

    def clean_incident_type(self) -> str:
        return (self.cleaned_data.get("incident_type") or "").strip().upper()


@admin.register(AutonomyLevel)
class AutonomyLevelAdmin(DispatchModelAdmin):
    """The ladder: one row per incident type and/or priority; the most specific row applies."""

    form = AutonomyLevelForm
    list_display = ("scope", "incident_type_cell", "priority_cell", "level", "updated_at", "updated_by")
    list_display_links = ("scope",)
    list_editable = ("level",)
    list_filter = ("level", "priority")
    ordering = ("incident_type", "priority")
    fields = ("incident_type", "priority", "level", "updated_by", "updated_at")
    readonly_fields = ("updated_by", "updated_at")

    @admin.display(description="applies to")
    def scope(self, row: AutonomyLevel) -> str:
        if not row.incident_type and not row.priority:
            return "Company default"
        kind = getattr(row, "type_name", "") or row.incident_type
        if not row.priority:
            return kind
        if not row.incident_type:
            return f"{row.get_priority_display()} jobs"
        return f"{kind}, {row.get_priority_display().lower()}"

    @admin.display(description="incident type", ordering="incident_type")
    def incident_type_cell(self, row: AutonomyLevel) -> str:
        if not row.incident_type:
            return format_html('<span class="rd-muted">{}</span>', ANY)
        return row.incident_type

    @admin.display(description="priority", ordering="priority")
    def priority_cell(self, row: AutonomyLevel) -> str:
        if not row.priority:
            return format_html('<span class="rd-muted">{}</span>', ANY)
        return row.get_priority_display()

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The templates' names, read once for the page's rows rather than per cell.
        names = incident_type_names()
        for row in changelist.result_list:
            row.type_name = names.get(row.incident_type, "")
        return changelist

    def save_model(self, request, obj: AutonomyLevel, form, change) -> None:
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def changelist_view(self, request, extra_context=None):
        levels = dict(LEVELS)
        note = (
            f"The most specific row applies (type and priority, then type, then priority, then the "
            f"company default). Where no row applies: {levels[default_level()]} "
            "(DISPATCH_AUTOPILOT_DEFAULT_LEVEL). Pauses on the ticket page override every level."
        )
        return super().changelist_view(
            request, {"title": "Autonomy ladder", "ladder_note": note, **(extra_context or {})}
        )


# --- suggestions ---------------------------------------------------------------------------------------


class SuggestionActionFilter(admin.SimpleListFilter):
    """The actions the autopilot suggests, known in code (not DISTINCT over the table)."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return (
            ("schedule.propose", "Propose windows"),
            ("assignment.dispatch", "Dispatch a technician"),
            ("assignment.reassign", "Send another technician"),
        )

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(Suggestion)
class SuggestionAdmin(ReadOnlyModelAdmin):
    """What the autopilot would have done where it may only suggest. Rows are the autopilot's:
    a dispatcher applies (as themselves, through the same service) or dismisses them."""

    list_display = ("created_at", "ticket_cell", "action", "what", "status", "decided")
    list_display_links = ("created_at",)
    list_select_related = ("ticket",)
    list_filter = ("status", SuggestionActionFilter)
    search_fields = ("=ticket__id", "ticket__summary", "reason")
    ordering = ("-created_at",)
    actions = ("apply_selected", "dismiss_selected")
    fields = (
        "ticket_cell",
        "action",
        "reason",
        "payload",
        ("ticket_version", "status"),
        "created_at",
        ("decided_at", "decided_by"),
    )
    readonly_fields = ("ticket_cell",)

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_cell(self, row: Suggestion) -> str:
        ticket = row.ticket
        return format_html(
            '<a class="rd-ref" href="{}">{}</a><div class="rd-sub rd-clip">{}</div>',
            reverse("admin:tickets_ticket_change", args=[ticket.pk]),
            ticket.short_ref,
            ticket.summary,
        )

    @admin.display(description="why")
    def what(self, row: Suggestion) -> str:
        reason = row.reason if len(row.reason) <= 160 else row.reason[:157] + "…"
        return format_html('<span title="{}">{}</span>', row.reason, reason)

    @admin.display(description="decided", ordering="decided_at")
    def decided(self, row: Suggestion) -> str:
        if row.decided_at is None:
            return ""
        return format_html('{}<div class="rd-sub">{}</div>', row.decided_by, f"{row.decided_at:%b %-d, %H:%M}")

    # The dispatch desk answers suggestions (an admin as a dispatcher): the policy says so.
    def has_decide_permission(self, request) -> bool:
        return policy.role_refusal(SUGGESTION_APPLY, acting_role(request.user, SUGGESTION_APPLY)) is None

    def _each(self, request, queryset, run, done: str) -> None:
        actor = actor_for_request(request, SUGGESTION_APPLY)
        counted, refused = 0, []
        for suggestion in queryset.select_related("ticket"):
            try:
                run(actor=actor, suggestion_id=suggestion.pk)
            except DispatchError as error:
                refused.append(f"{suggestion.ticket.short_ref}: {error.message}")
            else:
                counted += 1
        if counted:
            messages.success(request, f"{done} {counted} suggestion{'' if counted == 1 else 's'}.")
        for line in refused:
            messages.error(request, line)

    @admin.action(description="Apply the selected suggestions", permissions=["decide"])
    def apply_selected(self, request, queryset):
        self._each(request, queryset, suggestion_apply, "Applied")

    @admin.action(description="Dismiss the selected suggestions", permissions=["decide"])
    def dismiss_selected(self, request, queryset):
        self._each(request, queryset, suggestion_dismiss, "Dismissed")

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Autopilot suggestions", **(extra_context or {})})

    def dashboard_context(self, request) -> dict:
        """Today's numbers on the admin index (five queries)."""
        return {"today": today_numbers()}


# --- the ticket page -----------------------------------------------------------------------------------


def autopilot_ticket_panel(request: HttpRequest, ticket: Ticket) -> dict | None:
    """What the autopilot suggests for this ticket now (with Apply / Dismiss for the dispatch desk),
    and the decision of its that the ticket stands on; None when there is neither."""
    marks = suggestion_marks([ticket]) if ticket.state in SUGGESTED_STATES else {}
    suggestion = marks.get(ticket.pk)
    decision = autopilot_decisions([ticket.pk]).get(ticket.pk)
    if suggestion is None and decision is None:
        return None
    decided = autopilot_marks([ticket]).get(ticket.pk) if decision is not None else None
    board_url = ""
    if decided is not None and ticket.state in UNDO_STATES and ticket.scheduled_start:
        board_url = reverse("board:day") + f"?day={timezone.localtime(ticket.scheduled_start).date().isoformat()}"
    return {
        "ticket": ticket,
        "suggestion": suggestion,
        "decision": decision,
        "decision_text": f"the autopilot {decided.text} it" if decided else "decided by the autopilot",
        "decision_detail": decided.detail if decided else (decision.reason if decision else ""),
        "board_url": board_url,
        "can_decide": policy.role_refusal(SUGGESTION_APPLY, acting_role(request.user, SUGGESTION_APPLY)) is None,
        "next": request.get_full_path(),
        "autopilot_on": getattr(settings, "DISPATCH_AUTOPILOT", True),
    }


ticket_panels_register(TicketPanel("autopilot", "autopilot/_ticket_panel.html", autopilot_ticket_panel))


@admin.register(EveningPlan)
class EveningPlanAdmin(ReadOnlyModelAdmin):
    """Each evening's re-plan of the next day: what it saved and how many bookings it moved (each
    move is also on its ticket's timeline as schedule.optimize_day)."""

    list_display = ("day", "status", "minutes_saved", "moves", "message", "created_at")
    list_filter = ("status",)
    ordering = ("-day",)
    fields = ("day", "status", "minutes_saved", "moves", "message", "created_at")
