"""Back office for scheduling: history (bookings, proposals, holds, recommendations, check-ins)
and working time (shifts, time off).

History rows are written only by the scheduling services (inside the ticket executor, with their
audit event), so the admin shows them read-only: booking, holding or unassigning is done
through the services' tools, never by editing a row here. Shifts are plain configuration;
time off is added through `time_off_add`, which lists the booked jobs it falls on.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from dispatch.common.admin_base import DispatchModelAdmin, ReadOnlyModelAdmin, actor_for_request
from dispatch.common.errors import DispatchError
from dispatch.technicians.admin_setup import setup_problems_warn
from dispatch.technicians.setup_health import TECHNICIAN_NO_SHIFTS, setup_problems

from .models import Appointment, CheckIn, RecommendationSnapshot, ScheduleHold, ScheduleProposal, Shift, TimeOff


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyModelAdmin):
    list_display = ("start", "end", "technician", "status", "ticket", "cancelled_reason")
    list_select_related = ("technician", "ticket")
    list_filter = ("status", "technician")
    search_fields = ("=id", "=ticket__id", "technician__display_name", "ticket__summary")
    date_hierarchy = "start"
    ordering = ("-start",)
    fields = (
        "id",
        "ticket",
        "technician",
        ("start", "end"),
        "status",
        "proposal",
        "created_by",
        ("created_at", "updated_at"),
        ("cancelled_at", "cancelled_reason"),
    )


@admin.register(ScheduleProposal)
class ScheduleProposalAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "status", "window_count", "accepted_option", "created_by")
    list_select_related = ("ticket",)
    list_filter = ("status",)
    search_fields = ("=id", "=ticket__id", "ticket__summary")
    date_hierarchy = "created_at"
    fields = ("id", "ticket", "status", "options", "accepted_option", "created_by", "created_at", "decided_at")

    @admin.display(description="windows")
    def window_count(self, proposal: ScheduleProposal) -> int:
        return len(proposal.options or [])


@admin.register(ScheduleHold)
class ScheduleHoldAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "hold_reason", "status", "confirmation_end", "released_at")
    list_select_related = ("ticket",)
    list_filter = ("status", "hold_reason")
    search_fields = ("=id", "=ticket__id", "ticket__summary")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "ticket",
        "hold_reason",
        "status",
        ("confirmation_start", "confirmation_end"),
        "snapshot",
        "created_by",
        "created_at",
        ("released_at", "released_by"),
        "release_reason",
    )


@admin.register(RecommendationSnapshot)
class RecommendationSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "service_type", "recommended_tech_id", "created_by")
    list_select_related = ("ticket",)
    list_filter = ("service_type",)
    search_fields = ("=id", "=ticket__id")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "ticket",
        "service_type",
        ("window_start", "window_end"),
        "recommended_tech_id",
        "candidates",
        "created_by",
        "created_at",
    )


@admin.register(CheckIn)
class CheckInAdmin(ReadOnlyModelAdmin):
    list_display = ("arrived_at", "technician", "ticket", "recorded_by")
    list_select_related = ("technician", "ticket")
    list_filter = ("technician",)
    search_fields = ("=id", "=ticket__id", "technician__display_name")
    date_hierarchy = "arrived_at"
    fields = ("id", "ticket", "appointment", "technician", "arrived_at", "location", "recorded_by", "created_at")


@admin.register(Shift)
class ShiftAdmin(DispatchModelAdmin):
    list_display = ("technician", "weekday", "start_time", "end_time", "timezone")
    list_select_related = ("technician",)
    list_filter = ("weekday", "technician")
    search_fields = ("technician__display_name",)
    ordering = ("technician__display_name", "weekday", "start_time")
    autocomplete_fields = ("technician",)
    fields = ("technician", "weekday", ("start_time", "end_time"), "timezone")

    def delete_model(self, request, obj: Shift) -> None:
        super().delete_model(request, obj)
        self._setup_warn(request, [obj.technician_id])

    def delete_queryset(self, request, queryset) -> None:
        technician_ids = set(queryset.values_list("technician_id", flat=True))
        super().delete_queryset(request, queryset)
        self._setup_warn(request, technician_ids)

    def _setup_warn(self, request, technician_ids) -> None:
        # Taking away a technician's last shift is allowed (they may be leaving), but said.
        problems = setup_problems(technician_ids=technician_ids)
        setup_problems_warn(request, [p for p in problems if p.kind == TECHNICIAN_NO_SHIFTS])


@admin.register(TimeOff)
class TimeOffAdmin(DispatchModelAdmin):
    """Time off is added through the service (audited, affected jobs listed); it can be removed, not edited."""

    list_display = ("technician", "start", "end", "reason", "created_by", "created_at")
    list_select_related = ("technician",)
    list_filter = ("technician",)
    search_fields = ("technician__display_name", "reason")
    date_hierarchy = "start"
    ordering = ("-start",)
    autocomplete_fields = ("technician",)
    fields = ("technician", ("start", "end"), "reason")

    def has_change_permission(self, request, obj=None) -> bool:
        # Editing the dates would skip the affected-jobs check; remove it and add it again instead.
        return False

    def save_model(self, request, obj: TimeOff, form, change) -> None:
        from .time_off import TIME_OFF_ADD, time_off_add

        try:
            result = time_off_add(
                actor=actor_for_request(request, TIME_OFF_ADD),
                technician_id=obj.technician_id,
                start=obj.start,
                end=obj.end,
                reason=obj.reason,
            )
        except DispatchError as error:
            # Re-raised as the form's error by add_view below.
            raise _Refused(error.message) from None
        # The row the service wrote: the admin's log entry and redirect name it.
        obj.pk = result["time_off_id"]
        affected = result["affected"]
        if affected:
            items = format_html_join(
                "",
                "<li>{} · {} – {} · {} ({})</li>",
                (
                    (
                        a["ticket_ref"],
                        _local(a["window"]["start"]),
                        _local(a["window"]["end"]),
                        a["summary"],
                        a["ticket_state"],
                    )
                    for a in affected
                ),
            )
            messages.warning(
                request,
                format_html(
                    "{} booked job(s) fall in this time off and still need another technician or time:<ul>{}</ul>",
                    len(affected),
                    items,
                ),
            )
        else:
            messages.info(request, "No booked jobs fall in this time off.")

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused as refused:
            messages.error(request, str(refused))
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())


def _local(iso: str) -> str:
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    return f"{timezone.localtime(parse_datetime(iso)):%a %b %d %H:%M}"


class _Refused(Exception):
    """The time-off service refused the form's values."""


# Registers the ticket page's scheduling buttons.
from . import admin_actions  # noqa: E402,F401
