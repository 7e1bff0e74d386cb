"""Back office for scheduling history: bookings, proposals, holds, recommendations and check-ins.

These rows are written only by the scheduling services (inside the ticket executor, with their
audit event), so the admin shows them read-only: booking, holding or unassigning is done
through the services' tools, never by editing a row here.
"""
from __future__ import annotations

from django.contrib import admin

from dispatch.common.admin_base import ReadOnlyModelAdmin

from .models import Appointment, CheckIn, RecommendationSnapshot, ScheduleHold, ScheduleProposal


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
