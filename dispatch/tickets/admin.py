"""The dispatch back office for the shared schema.

Customers, sites, contacts and assets are plain records a dispatcher keeps up to date. Tickets
are not: a ticket is opened through `ticket_create` and every later change goes through a
service, from the buttons of the ticket page (`admin_actions.py`) or the "Cancel selected"
action. The ticket page itself has no Save button, and no admin path saves a ticket row.
Audit events, transitions, approvals and idempotency records are written by services only.
The phases add to the ticket list (flags: a column and a filter each) and to the ticket page
(sections) through the registries below, as they add buttons through admin_actions.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.timezone import localtime

from dispatch.common.admin_base import (
    DispatchModelAdmin,
    ReadOnlyModelAdmin,
    acting_role,
    actor_for_request,
    state_badge,
)
from dispatch.common.errors import DispatchError

from . import policy
from .admin_actions import CancelForm, cents, incident_type_choices, ticket_action, ticket_actions
from .catalog import TicketFlag, incident_type_names, ticket_flags, ticket_marks
from .commands import tool_names
from .models import (
    Account,
    Approval,
    Asset,
    AuditEvent,
    Contact,
    IdempotencyRecord,
    Site,
    StateTransition,
    Ticket,
)
from .search import tickets_search
from .selectors import timeline_names
from .services import TICKET_CANCEL, TICKET_CREATE, ticket_cancel, ticket_create
from .states import OPEN_STATES, PIPELINE, TERMINAL_STATES, TicketState
from .timeline import TimelineNames, event_sentence

# Done tiles count what finished lately: all-time totals grow with history, and the count with it.
DONE_TILE_DAYS = 30


def _tile_filter(state: TicketState) -> dict[str, str]:
    # A done tile opens the same tickets it counts, not the whole history of that state.
    if state in TERMINAL_STATES:
        return {"state__exact": state.value, FinishedFilter.parameter_name: str(DONE_TILE_DAYS)}
    return {"state__exact": state.value}


def ticket_state_tiles() -> list[dict]:
    """Ticket counts per state (and how many of them are emergencies): every open ticket, and the
    tickets closed or cancelled in the last DONE_TILE_DAYS days. Two grouped queries over index
    ranges (state+priority, state+done_at), so the cost follows the work in hand, not history."""
    counts: dict[str, int] = {}
    emergencies: dict[str, int] = {}
    # order_by() drops the model's default ordering, which would otherwise split the groups.
    open_rows = (
        Ticket.objects.order_by()
        .filter(state__in=list(OPEN_STATES))
        .values("state", "priority")
        .annotate(n=Count("pk"))
    )
    for row in open_rows:
        counts[row["state"]] = counts.get(row["state"], 0) + row["n"]
        if row["priority"] == "EMERGENCY":
            emergencies[row["state"]] = emergencies.get(row["state"], 0) + row["n"]
    since = timezone.now() - timedelta(days=DONE_TILE_DAYS)
    done_rows = (
        Ticket.objects.order_by()
        .filter(state__in=list(TERMINAL_STATES), done_at__gte=since)
        .values("state")
        .annotate(n=Count("pk"))
    )
    for row in done_rows:
        counts[row["state"]] = row["n"]
    changelist = reverse("admin:tickets_ticket_changelist")
    return [
        {
            "phase": phase,
            "total": sum(counts.get(state, 0) for state in states),
            "recent_days": DONE_TILE_DAYS if all(state in TERMINAL_STATES for state in states) else None,
            "states": [
                {
                    "state": state.value,
                    "css": state.value.lower(),
                    "label": state.label,
                    "count": counts.get(state, 0),
                    "emergencies": emergencies.get(state, 0),
                    "url": f"{changelist}?{urlencode(_tile_filter(state))}",
                }
                for state in states
            ],
        }
        for phase, states in PIPELINE
    ]


def money(amount_cents: int | None, currency: str = "USD") -> str:
    if amount_cents is None:
        return ""
    return f"{'$' if currency == 'USD' else currency + ' '}{Decimal(amount_cents) / 100:,.2f}"


def ticket_link(ticket: Ticket | None) -> str:
    if ticket is None:
        return "—"
    return format_html(
        '<a class="rd-ref" href="{}">{}</a>', reverse("admin:tickets_ticket_change", args=[ticket.pk]), ticket.short_ref
    )


def refusal_message(error: DispatchError) -> str:
    """A DispatchError as the one line a dispatcher reads."""
    text = f"Refused — {error.message} [{error.code}]"
    allowed = error.details.get("allowed_next_states")
    if allowed is not None:
        text += f" Allowed next states: {', '.join(allowed) or 'none'}."
    return text


# --- customers, sites, contacts, assets ----------------------------------------------------------


class SiteInline(admin.TabularInline):
    model = Site
    fields = ("name", "address_line1", "city", "service_region", "timezone")
    extra = 0
    show_change_link = True


class ContactInline(admin.TabularInline):
    model = Contact
    fields = ("name", "site", "phone", "email", "is_authorized_requester", "is_approver")
    autocomplete_fields = ("site",)
    extra = 0


@admin.register(Account)
class AccountAdmin(DispatchModelAdmin):
    list_display = ("name", "kind", "is_provisional", "site_count", "open_ticket_count", "billing_email")
    list_filter = ("kind", "is_provisional")
    search_fields = ("name", "billing_email")
    inlines = (SiteInline, ContactInline)

    def get_queryset(self, request):
        # Two counts over two joins: distinct, or each would be multiplied by the other.
        return (
            super()
            .get_queryset(request)
            .annotate(
                site_total=Count("sites", distinct=True),
                open_total=Count("tickets", filter=Q(tickets__state__in=list(OPEN_STATES)), distinct=True),
            )
        )

    @admin.display(description="sites", ordering="site_total")
    def site_count(self, account: Account) -> int:
        return account.site_total

    @admin.display(description="open tickets", ordering="open_total")
    def open_ticket_count(self, account: Account) -> str:
        if not account.open_total:
            return "0"
        url = reverse("admin:tickets_ticket_changelist") + "?" + urlencode({"account__id__exact": account.pk})
        return format_html('<a href="{}">{}</a>', url, account.open_total)


@admin.register(Site)
class SiteAdmin(DispatchModelAdmin):
    list_display = ("name", "account", "address", "service_region", "timezone", "has_access_notes")
    list_select_related = ("account",)
    list_filter = ("service_region", "timezone")
    search_fields = ("name", "address_line1", "city", "postal_code", "account__name")
    autocomplete_fields = ("account",)
    fieldsets = (
        (None, {"fields": ("account", "name")}),
        ("Address", {"fields": ("address_line1", "address_line2", ("city", "region", "postal_code"), "country")}),
        ("Map and time", {"fields": (("lat", "lng", "geo_precision"), "timezone", "service_region")}),
        ("Access", {"fields": ("access_instructions", "access_code", "hours")}),
    )

    @admin.display(description="access notes", boolean=True)
    def has_access_notes(self, site: Site) -> bool:
        return bool(site.access_instructions or site.access_code)


@admin.register(Contact)
class ContactAdmin(DispatchModelAdmin):
    list_display = ("name", "account", "site", "phone", "email", "is_authorized_requester", "is_approver")
    list_select_related = ("account", "site")
    list_filter = ("is_authorized_requester", "is_approver")
    search_fields = ("name", "phone", "email", "account__name")
    autocomplete_fields = ("account", "site")


@admin.register(Asset)
class AssetAdmin(DispatchModelAdmin):
    list_display = ("name", "site", "make", "model", "serial", "warranty_until")
    list_select_related = ("site",)
    list_filter = ("make",)
    search_fields = ("name", "make", "model", "serial", "site__name", "site__address_line1")
    autocomplete_fields = ("site",)


# --- what the phases add to the ticket list and the ticket page -----------------------------------
# tickets imports no phase. A phase registers its flags in the catalog (catalog.ticket_flags_register,
# read by the ticket list here and by the dispatch board alike) and its sections of the ticket page
# here, from its admin module, as it registers its buttons (admin_actions.ticket_actions_register).


@dataclass(frozen=True)
class TicketPanel:
    """A section a phase adds to the ticket page: its template, and its context for a ticket and
    a request (None leaves the section out). `action_keys` names buttons the section offers
    itself, which the "Next step" card then leaves out."""

    key: str
    template: str
    context: Callable[[HttpRequest, Ticket], dict | None]
    action_keys: tuple[str, ...] = ()


_panels: dict[str, TicketPanel] = {}


def ticket_panels_register(*panels: TicketPanel) -> None:
    for panel in panels:
        _panels[panel.key] = panel


def ticket_panels() -> tuple[TicketPanel, ...]:
    return tuple(_panels.values())


def action_offered(request: HttpRequest, ticket: Ticket, key: str) -> dict | None:
    """A registered button as the ticket page offers it ({"action", "form"}), or None when there
    is no such button or the policy refuses it to this user on this ticket now."""
    action = ticket_action(key)
    if action is None or not action.offered(actor=actor_for_request(request, action.command), ticket=ticket):
        return None
    return {"action": action, "form": action.form_class(ticket=ticket) if action.form_class else None}


def action_blocked(request: HttpRequest, ticket: Ticket, key: str) -> DispatchError | None:
    """The phase's refusal of a button the policy would otherwise offer this user now (what the
    page says in its place), or None."""
    action = ticket_action(key)
    if action is None or action.blocked is None or (action.when is not None and not action.when(ticket)):
        return None
    actor = actor_for_request(request, action.command)
    if policy.command_refusal(action.command, actor, ticket) is not None:
        return None
    return action.blocked(actor, ticket)


def _flag_column(flag: TicketFlag) -> Callable[[Ticket], str | None]:
    """The list column of a flag; it reads the marks the changelist put on its rows."""

    def column(ticket: Ticket) -> str | None:
        mark = next((mark for other, mark in getattr(ticket, "flag_marks", ()) if other.key == flag.key), None)
        if mark is None:
            return None
        # A narrow cell wraps between the mark's parts ("2 photos · signature"), never inside one.
        text = "\u00a0· ".join(part.replace(" ", "\u00a0") for part in mark.text.split(" · "))
        return format_html('<span class="rd-flag rd-flag--{}" title="{}">{}</span>', flag.key, mark.detail, text)

    column.__name__ = f"flag_{flag.key}"
    return admin.display(description=flag.label)(column)


class FinishedFilter(admin.SimpleListFilter):
    """Closed or cancelled lately (by when, not by the last change to the row)."""

    title = "finished"
    parameter_name = "finished_within"

    def lookups(self, request, model_admin):
        return [("1", "Today"), ("7", "Last 7 days"), (str(DONE_TILE_DAYS), f"Last {DONE_TILE_DAYS} days")]

    def queryset(self, request, queryset):
        days = self.value()
        if not days or not days.isdigit() or not 1 <= int(days) <= 3660:
            return queryset
        return queryset.filter(done_at__gte=timezone.now() - timedelta(days=int(days)))


class IncidentTypeFilter(admin.SimpleListFilter):
    """The incident types the templates define (a small table), not DISTINCT over every ticket."""

    title = "incident type"
    parameter_name = "incident_type"

    def lookups(self, request, model_admin):
        return sorted(incident_type_names().items(), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(incident_type=self.value()) if self.value() else queryset


class ToolNameFilter(admin.SimpleListFilter):
    """The toolset's command names, known in code, not DISTINCT over a million audit events."""

    title = "tool"
    parameter_name = "tool_name"

    def lookups(self, request, model_admin):
        return [(name, name) for name in tool_names()]

    def queryset(self, request, queryset):
        return queryset.filter(tool_name=self.value()) if self.value() else queryset


def _flag_filter(flag: TicketFlag) -> type[admin.SimpleListFilter]:
    """The list filter of a flag: "yes" is the flagged tickets, "no" the others in its states."""

    class FlagFilter(admin.SimpleListFilter):
        title = flag.label
        parameter_name = flag.key

        def lookups(self, request, model_admin):
            return (("yes", "Yes"), ("no", "No"))

        def queryset(self, request, queryset):
            if self.value() == "yes":
                return queryset.filter(pk__in=list(flag.flagged_ids(queryset)))
            if self.value() == "no":
                flagged = list(flag.flagged_ids(queryset))
                return queryset.filter(state__in=list(flag.states)).exclude(pk__in=flagged)
            return queryset

    return FlagFilter


# --- tickets ---------------------------------------------------------------------------------------


class TicketCreateForm(forms.ModelForm):
    """What a dispatcher types to open a ticket; the account follows from the site."""

    incident_type = forms.ChoiceField(choices=(), required=False)
    nte = forms.DecimalField(label="Not-to-exceed ($)", required=False, min_value=0, max_digits=12, decimal_places=2)

    class Meta:
        model = Ticket
        fields = (
            "site",
            "asset",
            "summary",
            "description",
            "priority",
            "incident_type",
            "customer_name",
            "customer_phone",
            "customer_email",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["incident_type"].choices = incident_type_choices()

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        site = data["site"]
        return {
            "account_id": site.account_id,
            "site_id": site.pk,
            "asset_id": data["asset"].pk if data.get("asset") else None,
            "summary": data["summary"],
            "description": data.get("description", ""),
            "nte_cents": cents(data.get("nte")),
            "priority": data["priority"],
            "incident_type": data.get("incident_type", ""),
            "customer_name": data.get("customer_name", ""),
            "customer_phone": data.get("customer_phone", ""),
            "customer_email": data.get("customer_email", ""),
        }


class TicketCancelSelectedForm(CancelForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, ticket=None, **kwargs)


@admin.register(Ticket)
class TicketAdmin(DispatchModelAdmin):
    list_display = (
        "ref",
        "summary_cell",
        "state_display",
        "priority_display",
        "customer_cell",
        "tech",
        "schedule",
        "updated",
    )
    list_display_links = ("ref", "summary_cell")
    # Every FK a column shows is joined here: the list costs the same queries for 5 rows or 500.
    list_select_related = ("account", "site", "assigned_tech")
    list_filter = ("state", "priority", FinishedFilter, IncidentTypeFilter, "assigned_tech", "site__service_region")
    # What the search box covers; get_search_results (tickets/search.py) does the searching.
    search_fields = (
        "summary",
        "customer_name",
        "customer_phone",
        "customer_email",
        "account__name",
        "site__name",
        "site__address_line1",
        "site__city",
    )
    search_help_text = "Ref (RD-1A2B3C4D), summary, caller, customer or address."
    autocomplete_fields = ("site", "asset")
    form = TicketCreateForm
    add_fieldsets = (
        ("Where", {"fields": ("site", "asset")}),
        ("What", {"fields": ("summary", "description", ("priority", "incident_type"), "nte")}),
        ("Who called", {"fields": ("customer_name", ("customer_phone", "customer_email"))}),
    )
    # The ticket page is drawn by templates/admin/tickets/ticket/change_form.html; these are
    # the plain fields Django's view-only form would otherwise list.
    fieldsets = ((None, {"fields": ("summary", "state", "version")}),)
    actions = ("cancel_selected",)

    # --- permissions: a ticket changes only through services --------------------------------

    def has_change_permission(self, request, obj=None) -> bool:
        # No admin form may save a ticket row: that would bypass the executor and the audit.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_cancel_permission(self, request) -> bool:
        return policy.role_refusal(TICKET_CANCEL, acting_role(request.user, TICKET_CANCEL)) is None

    def get_queryset(self, request):
        # Only what the list shows: the asset (on the ticket page only) is read there, once.
        return super().get_queryset(request).select_related("account", "site", "assigned_tech")

    # --- the phases' flags: a column and a filter each ------------------------------------------

    def get_list_display(self, request):
        return (*self.list_display, *(_flag_column(flag) for flag in ticket_flags() if flag.column))

    def get_list_filter(self, request):
        return (*self.list_filter, *(_flag_filter(flag) for flag in ticket_flags()))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The flags' marks for this page's rows, read once for all of them rather than per cell:
        # evaluating the page here fills the queryset's cache, which the template then iterates.
        rows = list(changelist.result_list)
        marks = ticket_marks(rows)
        for ticket in rows:
            ticket.flag_marks = marks.get(ticket.pk, [])
        return changelist

    def get_ordering(self, request):
        # The queue a dispatcher works: open before done, emergencies first, then along the
        # pipeline, newest first (ticket_queue_rank, kept on the row: one index serves the list).
        return ["queue_rank", "-created_at", "-id"]

    # --- list columns ---------------------------------------------------------------------

    @admin.display(description="ref", ordering="created_at")
    def ref(self, ticket: Ticket) -> str:
        return ticket.short_ref

    @admin.display(description="summary", ordering="summary")
    def summary_cell(self, ticket: Ticket) -> str:
        summary = ticket.summary if len(ticket.summary) <= 80 else ticket.summary[:77] + "…"
        return format_html('{}<div class="rd-sub">{}</div>', summary, ticket.incident_type or "type not set")

    @admin.display(description="state", ordering="state")
    def state_display(self, ticket: Ticket) -> str:
        badge = state_badge(ticket.state, ticket.get_state_display())
        # The marks of the flags without a column of their own (the autopilot's), under the state.
        chips = [
            (flag.key, mark.detail or mark.text, f"{flag.label}: {mark.text}")
            for flag, mark in getattr(ticket, "flag_marks", ())
            if not flag.column
        ]
        if not chips:
            return badge
        return format_html(
            "{}{}",
            badge,
            format_html_join(
                "", '<div class="rd-sub"><span class="rd-flag rd-flag--{}" title="{}">{}</span></div>', chips
            ),
        )

    @admin.display(description="priority", ordering="priority")
    def priority_display(self, ticket: Ticket) -> str:
        return format_html(
            '<span class="rd-prio rd-prio-{}">{}</span>', ticket.priority.lower(), ticket.get_priority_display()
        )

    @admin.display(description="customer · site", ordering="account__name")
    def customer_cell(self, ticket: Ticket) -> str:
        place = f"{ticket.site.name} · {ticket.site.city}"
        return format_html(
            '<div class="rd-clip" title="{}">{}</div><div class="rd-sub rd-clip" title="{}">{}</div>',
            ticket.account.name,
            ticket.account.name,
            place,
            place,
        )

    @admin.display(description="scheduled", ordering="scheduled_start")
    def schedule(self, ticket: Ticket) -> str:
        if not ticket.scheduled_start:
            return ""
        start = localtime(ticket.scheduled_start)
        hours = start.strftime("%H:%M")
        if ticket.scheduled_end:
            hours += localtime(ticket.scheduled_end).strftime("–%H:%M")
        return format_html('{}<div class="rd-sub">{}</div>', start.strftime("%a %b %-d"), hours)

    @admin.display(description="tech", ordering="assigned_tech__display_name")
    def tech(self, ticket: Ticket) -> str:
        return ticket.assigned_tech.display_name if ticket.assigned_tech else ""

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, ticket: Ticket) -> str:
        return format_html(
            '<span title="{}">{}</span>', localtime(ticket.updated_at).strftime("%b %-d, %H:%M"), ago(ticket.updated_at)
        )

    def get_search_results(self, request, queryset, search_term):
        # A reference is a primary-key range; words search the ticket's text and, through small
        # id lists, its site's and customer's (tickets/search.py). No join, so no duplicates.
        if not search_term.strip():
            return queryset, False
        return tickets_search(queryset, search_term), False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Tickets", **(extra_context or {})})

    def dashboard_context(self, request) -> dict:
        return {"state_tiles": ticket_state_tiles()}

    # --- opening a ticket: through ticket_create, never a ModelForm save -------------------

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        TicketForm = self.get_form(request, None, change=False)
        form = TicketForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = ticket_create(actor=actor_for_request(request, TICKET_CREATE), **form.service_arguments())
            except DispatchError as error:
                form.add_error(
                    error.details.get("field") if error.details.get("field") in form.fields else None,
                    refusal_message(error),
                )
            else:
                ticket = outcome.ticket
                self.log_addition(request, ticket, [{"added": {}}])
                messages.success(request, f"Opened {ticket.short_ref} in {ticket.state}.")
                return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
        adminform = helpers.AdminForm(form, list(self.add_fieldsets), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Open a ticket",
            "subtitle": None,
            "adminform": adminform,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    # --- the ticket page --------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.ticket_page_context(request, obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {"title": "Ticket", **(extra_context or {})})

    def ticket_page_context(self, request, ticket: Ticket) -> dict:
        events = list(ticket.audit_events.order_by("seq"))
        names = timeline_names(events)
        panels = []
        claimed: set[str] = set()
        for panel in ticket_panels():
            claimed.update(panel.action_keys)
            panel_context = panel.context(request, ticket)
            if panel_context is not None:
                panels.append({"template": panel.template, "context": panel_context})
        offered = [
            button
            for action in ticket_actions()
            if action.key not in claimed and (button := action_offered(request, ticket, action.key)) is not None
        ]
        blocked = [
            {"action": action, "message": refusal.message}
            for action in ticket_actions()
            if action.key not in claimed and (refusal := action_blocked(request, ticket, action.key)) is not None
        ]
        pending = ticket.approvals.filter(status=Approval.Status.PENDING).first()
        return {
            "ticket": ticket,
            "state_badge": state_badge(ticket.state, ticket.get_state_display()),
            "nte": money(ticket.nte_cents, ticket.currency),
            "schedule": schedule_text(ticket),
            "site_contacts": list(
                Contact.objects.filter(account_id=ticket.account_id)
                .filter(Q(site_id=ticket.site_id) | Q(site__isnull=True))
                .order_by("-is_approver", "name")[:5]
            ),
            "pending_approval": pending,
            "pending_approval_amount": money(pending.amount_cents, ticket.currency) if pending else "",
            "ticket_actions": offered,
            "ticket_actions_blocked": blocked,
            "ticket_panels": panels,
            "ticket_marks": [{"flag": flag, "mark": mark} for flag, mark in ticket_marks([ticket]).get(ticket.pk, [])],
            "timeline": [timeline_entry(event, names) for event in events],
            "timeline_zone": str(names.zone).replace("_", " "),
            "incident_name": names.incident_types.get(ticket.incident_type, ticket.incident_type),
        }

    def get_urls(self):
        transition = self.admin_site.admin_view(self.transition_view)
        return [
            path("<path:object_id>/transition/<slug:action_key>/", transition, name="tickets_ticket_transition"),
            *super().get_urls(),
        ]

    def transition_view(self, request, object_id, action_key):
        """One button of the ticket page: show its form (GET), or run its service (POST)."""
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None:
            raise Http404("No such ticket.")
        if not self.has_view_permission(request, ticket):
            raise PermissionDenied
        action = ticket_action(action_key)
        if action is None:
            raise Http404("No such action.")
        change_url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
        actor = actor_for_request(request, action.command)

        if request.method == "POST":
            version = _version(request.POST.get("expected_version"))
            if version is None:
                messages.error(
                    request, "This page did not say which version of the ticket it showed. Reload and try again."
                )
                return HttpResponseRedirect(change_url)
        else:
            version = _version(request.GET.get("version")) or ticket.version
        # The policy's refusal before any form: the same answer the service would give.
        refusal = action.refusal(actor=actor, ticket=ticket, expected_version=version)
        if refusal is not None:
            messages.error(request, refusal_message(refusal))
            return HttpResponseRedirect(change_url)

        if request.method != "POST":
            if action.form_class is None:
                # Acting is POST-only; a GET of an action without input just goes back.
                return HttpResponseRedirect(change_url)
            return self._transition_form(request, ticket, action, action.form_class(ticket=ticket), version)

        form = action.form_class(request.POST, ticket=ticket) if action.form_class else None
        if form is not None and not form.is_valid():
            return self._transition_form(request, ticket, action, form, version)
        try:
            # The service checks the policy again, under the ticket's row lock.
            outcome = action.run(
                actor=actor,
                ticket=ticket,
                data=form.cleaned_data if form is not None else {},
                expected_version=version,
            )
        except DispatchError as error:
            messages.error(request, refusal_message(error))
        else:
            event = outcome.event
            moved = (
                f"{event.before_state} → {event.after_state}"
                if event.before_state != event.after_state
                else event.after_state
            )
            self.log_change(request, outcome.ticket, f"{action.label} ({event.tool_name}, audit #{event.seq})")
            messages.success(request, f"{ticket.short_ref}: {action.label} — {moved}.")
        return HttpResponseRedirect(change_url)

    def _transition_form(self, request, ticket, action, form, version):
        context = {
            **self.admin_site.each_context(request),
            "title": action.label,
            "subtitle": ticket.short_ref,
            "opts": self.opts,
            "ticket": ticket,
            "state_badge": state_badge(ticket.state, ticket.get_state_display()),
            "action": action,
            "form": form,
            "expected_version": version,
            "change_url": reverse("admin:tickets_ticket_change", args=[ticket.pk]),
        }
        return TemplateResponse(request, "admin/tickets/ticket/transition_form.html", context)

    # --- changelist action -------------------------------------------------------------------

    @admin.action(description="Cancel selected tickets", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        form = TicketCancelSelectedForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = actor_for_request(request, TICKET_CANCEL)
            cancelled = 0
            for ticket in queryset:
                try:
                    ticket_cancel(
                        actor=actor,
                        ticket_id=ticket.pk,
                        reason=form.cleaned_data["reason"],
                        cancellation_code=form.cleaned_data.get("cancellation_code", ""),
                    )
                except DispatchError as error:
                    messages.error(request, f"{ticket.short_ref}: {refusal_message(error)}")
                else:
                    cancelled += 1
                    self.log_change(request, ticket, "Cancelled (ticket.cancel)")
            if cancelled:
                messages.success(request, f"Cancelled {cancelled} ticket{'s' if cancelled != 1 else ''}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel tickets",
            "opts": self.opts,
            "tickets": list(queryset),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/tickets/ticket/cancel_selected.html", context)


def ago(moment) -> str:
    """How long ago, in the fewest characters a busy list can spare: "now", "12 min", "3 h", "5 d"."""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _version(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def schedule_text(ticket: Ticket) -> str:
    if not ticket.scheduled_start:
        return ""
    start = localtime(ticket.scheduled_start)
    text = start.strftime("%a %b %-d, %H:%M")
    if ticket.scheduled_end:
        end = localtime(ticket.scheduled_end)
        text += end.strftime("–%H:%M") if end.date() == start.date() else end.strftime(" – %a %b %-d, %H:%M")
    return text


def timeline_entry(event: AuditEvent, names: TimelineNames) -> dict:
    """One audit event as the timeline shows it: a sentence in people's words (timeline.py), when
    in the company's time zone, the state it moved the ticket to, and the raw record a click away.

    The raw payload is shown as stored, that is already redacted."""
    said = event_sentence(event, names)
    when = event.created_at.astimezone(names.zone)
    return {
        "event": event,
        "said": said,
        "day": f"{when:%b} {when.day}",
        "time": f"{when:%H:%M}",
        "datetime": when.isoformat(timespec="seconds"),
        "zone": f"{when:%Z}",
        "machine": event.actor_type != "HUMAN",
        "agent": event.actor_type == "AGENT",
        "role": _role_words(event) if event.actor_type == "HUMAN" else "",
        "before": _state_badge(event.before_state),
        "after": _state_badge(event.after_state),
        "moved": event.before_state != event.after_state,
        "raw": json.dumps(event.payload, indent=2, ensure_ascii=False) if event.payload else "",
    }


def _role_words(event: AuditEvent) -> str:
    label = event.get_actor_role_display()
    return label if label.isupper() else label.lower()


def _state_badge(state: str) -> str:
    if not state:
        return ""
    return state_badge(state, TicketState(state).label if state in TicketState.values else None)


# --- rows only services write --------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """The append-only audit trail: searchable, never added to, changed or deleted here."""

    list_display = ("created_at", "ticket_ref", "seq", "tool_name", "actor_id", "actor_role", "state_change")
    list_display_links = ("created_at",)
    list_select_related = ("ticket",)
    ordering = ("-created_at", "-id")
    list_filter = (ToolNameFilter, "actor_role", "actor_type")
    search_fields = ("tool_name", "actor_id", "request_id", "correlation_id", "trace_id", "ticket__summary")
    fields = (
        "created_at",
        ("ticket_ref", "seq"),
        ("lane", "lane_seq"),
        "tool_name",
        ("actor_type", "actor_id", "actor_role"),
        ("before_state", "after_state"),
        ("request_id", "correlation_id", "trace_id"),
        "payload_pretty",
        "prev_hash",
        "hash",
    )
    readonly_fields = ("ticket_ref", "payload_pretty")

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_ref(self, event: AuditEvent) -> str:
        return ticket_link(event.ticket)

    @admin.display(description="before → after")
    def state_change(self, event: AuditEvent) -> str:
        if event.before_state == event.after_state:
            return state_badge(event.after_state) if event.after_state else ""
        return format_html("{} → {}", state_badge(event.before_state), state_badge(event.after_state))

    @admin.display(description="payload (redacted)")
    def payload_pretty(self, event: AuditEvent) -> str:
        return format_html('<pre class="rd-json">{}</pre>', json.dumps(event.payload, indent=2, ensure_ascii=False))


@admin.register(StateTransition)
class StateTransitionAdmin(ReadOnlyModelAdmin):
    list_display = ("ticket_ref", "seq", "from_display", "to_display", "audit_seq", "created_at")
    list_select_related = ("ticket", "audit_event")
    list_filter = ("to_state", "from_state")
    search_fields = ("ticket__summary",)

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_ref(self, row: StateTransition) -> str:
        return ticket_link(row.ticket)

    @admin.display(description="from", ordering="from_state")
    def from_display(self, row: StateTransition) -> str:
        return state_badge(row.from_state)

    @admin.display(description="to", ordering="to_state")
    def to_display(self, row: StateTransition) -> str:
        return state_badge(row.to_state)

    @admin.display(description="audit event", ordering="audit_event__created_at")
    def audit_seq(self, row: StateTransition) -> str:
        url = reverse("admin:tickets_auditevent_change", args=[row.audit_event_id])
        return format_html('<a href="{}">#{}</a>', url, row.audit_event.seq)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyModelAdmin):
    """Approvals are asked for and decided through services (the ticket page's buttons)."""

    list_display = ("created_at", "ticket_ref", "kind", "status", "amount", "requested_by", "decided_by", "decided_at")
    list_select_related = ("ticket",)
    list_filter = ("status", "kind")
    search_fields = ("ticket__summary", "reason", "requested_by", "decided_by")

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_ref(self, approval: Approval) -> str:
        return ticket_link(approval.ticket)

    @admin.display(description="amount", ordering="amount_cents")
    def amount(self, approval: Approval) -> str:
        return money(approval.amount_cents)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "actor_id", "endpoint", "key", "status_code")
    list_filter = ("status_code",)
    search_fields = ("actor_id", "endpoint", "key")
    date_hierarchy = "created_at"
