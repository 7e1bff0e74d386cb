"""The back office's shared pieces: the admin site, base ModelAdmin classes and the acting user.

Every `dispatch/*/admin.py` builds on these, so that each app's admin reads the same way:

    @admin.register(Thing)
    class ThingAdmin(DispatchModelAdmin):          # or ReadOnlyModelAdmin for rows services write
        list_display = (...)
        list_select_related = (...)                # every FK a column shows: no query per row

State changes never happen through a ModelAdmin's save: an admin button or action builds the
acting user's Actor with `actor_for_request` and calls the service, which audits the change.

This module imports no models, so that `DispatchAdminConfig` can be named in INSTALLED_APPS.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from .actors import Actor, ActorType
from .roles import BACK_OFFICE_ROLES, Role, role_of_user


class DispatchAdminSite(admin.AdminSite):
    """The admin, open only to staff users whose role works in the back office."""

    site_header = "Real Dispatch"
    site_title = "Real Dispatch back office"
    index_title = "Dispatch board"
    # The header's links and the board replace the sidebar, which would take a fifth of the width.
    enable_nav_sidebar = False
    # Apps in the order of a dispatcher's day; any other app follows alphabetically.
    app_order = ("tickets", "scheduling", "technicians", "closeout", "messaging", "intake", "api")

    def has_permission(self, request) -> bool:
        # is_staff alone is not enough: a technician flagged staff by mistake still stays out.
        return super().has_permission(request) and role_of_user(request.user) in BACK_OFFICE_ROLES

    def get_app_list(self, request, app_label=None):
        rank = {label: index for index, label in enumerate(self.app_order)}
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: (rank.get(app["app_label"], len(rank)), app["name"]))

    def index(self, request, extra_context=None):
        # A ModelAdmin with a `dashboard_context(request)` method adds its tiles to the index
        # page; the site itself knows no app (common imports nothing above it).
        context: dict[str, Any] = {}
        for model_admin in self._registry.values():
            provide = getattr(model_admin, "dashboard_context", None)
            if provide is not None and model_admin.has_view_permission(request):
                context.update(provide(request))
        return super().index(request, {**context, **(extra_context or {})})


class DispatchAdminConfig(AdminConfig):
    """Use in INSTALLED_APPS instead of "django.contrib.admin" to make `admin.site` the site above."""

    default_site = "dispatch.common.admin_base.DispatchAdminSite"


class DispatchModelAdmin(admin.ModelAdmin):
    """Defaults for every back-office list: dense pages, a visible empty value, no full-count query."""

    list_per_page = 50
    empty_value_display = "—"
    # The unfiltered total costs a second COUNT(*) on every filtered page; the filtered count is enough.
    show_full_result_count = False


class WarnAfterSaveMixin:
    """For admins that say something after a save without refusing it (a setup gap the save left):
    `after_save_warn(request, obj)` runs once the object, its inlines and its relations are saved."""

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        self.after_save_warn(request, obj)
        return response

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        self.after_save_warn(request, obj)
        return response


class ReadOnlyModelAdmin(DispatchModelAdmin):
    """Rows only services write (audit events, transitions, idempotency records): view, never edit."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def state_badge(state: str, label: str | None = None) -> str:
    """A ticket state as the coloured badge used on every back-office page (colours in dispatch-admin.css)."""
    if not state:
        return format_html('<span class="rd-badge rd-badge--none">{}</span>', label or "created")
    return format_html(
        '<span class="rd-badge rd-state-{}" title="{}">{}</span>',
        state.lower(),
        state,
        label or state.replace("_", " "),
    )


def acting_role(user, command: Any = None) -> Role | None:
    """The role a back-office user acts in for `command`.

    Admins (and superusers) run the dispatch desk too: where the contract gives a command to
    dispatchers but not to admins, an admin takes it as a dispatcher, and the audit says so.
    """
    role = role_of_user(user)
    if (
        role == Role.ADMIN
        and command is not None
        and not command.allows_role(Role.ADMIN)
        and command.allows_role(Role.DISPATCHER)
    ):
        return Role.DISPATCHER
    return role


def actor_for_request(request, command: Any = None) -> Actor:
    """The logged-in user as the Actor services take (actor_id is the user's id, as for technicians)."""
    role = acting_role(request.user, command)
    if role is None:
        raise PermissionDenied("Your account has no role.")
    return Actor(
        actor_type=ActorType.HUMAN,
        actor_id=str(request.user.pk),
        role=role,
        user_id=request.user.pk,
        request_id=str(uuid.uuid4()),
        correlation_id=request.headers.get("X-Correlation-Id", "")[:200],
    )


class StringListField(forms.CharField):
    """A JSON list of short strings edited as one item per line (blank lines and duplicates dropped)."""

    widget = forms.Textarea(attrs={"rows": 6, "class": "rd-lines"})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, (list, tuple)):
            lines = [str(item) for item in value]
        else:
            lines = (value or "").splitlines()
        items: list[str] = []
        for line in lines:
            item = line.strip()
            if item and item not in items:
                items.append(item)
        return items

    def validate(self, value) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial, data) -> bool:
        return self.to_python(initial) != self.to_python(data)
