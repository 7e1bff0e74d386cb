"""Back-office views of closeout records. Imported by dispatch/closeout/admin.py.

Evidence (admin_evidence.py), submissions, QA reviews, exceptions, closures and autonomy pauses are made by the
services (through the one executor, with their audit events), so the admin shows them and never
edits them. Only the price book is maintained here. Invoices and packets, which finance reviews
and everyone downloads, have their own module (admin_documents.py).
"""

from __future__ import annotations

from django.contrib import admin

from dispatch.common.admin_base import DispatchModelAdmin, ReadOnlyModelAdmin

from .models import (
    AutonomyPause,
    ChecklistResult,
    Closure,
    EvidenceException,
    LaborEntry,
    PartUsage,
    PriceBookItem,
    QaReview,
)


@admin.register(ChecklistResult)
class ChecklistResultAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "tool", "submitted_by", "submitted_by_role")
    list_filter = ("tool",)
    search_fields = ("ticket__id", "submitted_by")
    list_select_related = ("ticket",)


@admin.register(QaReview)
class QaReviewAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "result", "reviewer", "reviewed_at")
    list_filter = ("result",)
    search_fields = ("ticket__id", "reviewer", "notes")
    list_select_related = ("ticket",)


@admin.register(EvidenceException)
class EvidenceExceptionAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "granted_by", "expires_at")
    search_fields = ("ticket__id", "reason", "granted_by")
    list_select_related = ("ticket",)


@admin.register(LaborEntry)
class LaborEntryAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "technician", "minutes", "rate_cents", "description")
    list_select_related = ("ticket", "technician")
    search_fields = ("ticket__id", "description")


@admin.register(PartUsage)
class PartUsageAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "price_book_item", "description", "quantity", "unit_cents")
    list_select_related = ("ticket", "price_book_item")
    search_fields = ("ticket__id", "description", "price_book_item__sku")


@admin.register(PriceBookItem)
class PriceBookItemAdmin(DispatchModelAdmin):
    list_display = ("sku", "name", "unit_cents", "taxable", "active")
    list_filter = ("active", "taxable")
    search_fields = ("sku", "name")

    def has_delete_permission(self, request, obj=None):
        # Used items keep their history; retire an item by unticking "active".
        return False


@admin.register(Closure)
class ClosureAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "packet_id", "forced", "closed_by", "packet_compiled_at")
    list_filter = ("forced",)
    search_fields = ("ticket__id", "packet_id", "reason")
    list_select_related = ("ticket",)


@admin.register(AutonomyPause)
class AutonomyPauseAdmin(ReadOnlyModelAdmin):
    list_display = (
        "created_at",
        "scope_type",
        "incident_type",
        "ticket",
        "paused_by",
        "rolled_back_at",
        "rolled_back_by",
    )
    list_filter = ("scope_type",)
    search_fields = ("incident_type", "ticket__id", "reason")
    list_select_related = ("ticket",)
