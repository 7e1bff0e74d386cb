"""Back office for closeout's rules: the incident templates that say what a finished job must leave
behind and what a visit bills for getting there, the company's billing settings and the tax rates.
These are configuration, edited here as the price book is; the invoices they price are written by
the services only (admin_documents.py)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html

from dispatch.common.admin_base import DispatchModelAdmin, StringListField, WarnAfterSaveMixin
from dispatch.technicians.admin_setup import setup_problems_warn
from dispatch.technicians.setup_health import job_setup_gap
from dispatch.tickets.admin import money
from dispatch.tickets.models import Site

from .admin_documents import percent
from .models import DURATION_REFUSED, INTAKE_NEEDS, BillingSettings, IncidentTemplate, TaxRate

MAX_DURATION_MINUTES = 30 * 24 * 60


class IncidentTemplateForm(forms.ModelForm):
    # The model refuses zero too; declared here so that the page's number box starts at 1 and a
    # negative number gets the same sentence as zero.
    default_duration_minutes = forms.IntegerField(
        label="Typical duration (minutes)",
        min_value=1,
        # A month: anything longer is a typing slip, not a job.
        max_value=MAX_DURATION_MINUTES,
        initial=90,
        help_text="How long a job of this type usually takes on site; the slot engine books this much time.",
        error_messages={
            "min_value": DURATION_REFUSED,
            "max_value": f"A job type lasts at most {MAX_DURATION_MINUTES} minutes (30 days).",
        },
    )
    required_evidence_keys = StringListField(help_text="One key per line, e.g. photo_after_latched_alignment.")
    required_checklist_keys = StringListField(help_text="One key per line, e.g. work_performed.")
    keywords = StringListField(
        required=False, help_text="Words in a customer's message that point at this type, one per line."
    )
    intake_needs = forms.TypedMultipleChoiceField(
        choices=INTAKE_NEEDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also ask the customer for",
        help_text="Asked before a routine job of this type is scheduled; an urgent or emergency job goes on "
        "without it.",
    )

    class Meta:
        model = IncidentTemplate
        fields = (
            "incident_type",
            "name",
            "version",
            "high_risk",
            "default_duration_minutes",
            "crew_size",
            "days",
            "trip_charge_cents",
            "required_evidence_keys",
            "required_checklist_keys",
            "keywords",
            "intake_needs",
        )
        help_texts = {"trip_charge_cents": "Billed once per visit for this job type; empty: the company's default."}


@admin.register(IncidentTemplate)
class IncidentTemplateAdmin(WarnAfterSaveMixin, DispatchModelAdmin):
    form = IncidentTemplateForm
    list_display = (
        "incident_type",
        "name",
        "version",
        "high_risk",
        "default_duration_minutes",
        "crew_size",
        "days",
        "trip_charge",
        "evidence_count",
        "checklist_count",
        "updated_at",
    )
    list_filter = ("high_risk",)
    search_fields = ("incident_type", "name")
    fieldsets = (
        (None, {"fields": ("incident_type", "name", "version", ("high_risk", "default_duration_minutes"))}),
        ("Crew and days", {"fields": (("crew_size", "days"),)}),
        ("What a finished job leaves behind", {"fields": ("required_evidence_keys", "required_checklist_keys")}),
        ("Billing", {"fields": ("trip_charge_cents",)}),
        ("Intake", {"fields": ("keywords", "intake_needs")}),
    )

    def after_save_warn(self, request, template: IncidentTemplate) -> None:
        # A new job type usually comes before anyone is trained for it: saved, and said so.
        gap = job_setup_gap(incident_type=template.incident_type)
        setup_problems_warn(request, [gap] if gap else [])

    @admin.display(description="trip charge", ordering="trip_charge_cents")
    def trip_charge(self, template: IncidentTemplate) -> str:
        if template.trip_charge_cents is None:
            return format_html('<span class="rd-muted">{}</span>', "default")
        return money(template.trip_charge_cents)

    @admin.display(description="evidence keys")
    def evidence_count(self, template: IncidentTemplate) -> int:
        return len(template.required_evidence_keys or [])

    @admin.display(description="checklist keys")
    def checklist_count(self, template: IncidentTemplate) -> int:
        return len(template.required_checklist_keys or [])


@admin.register(BillingSettings)
class BillingSettingsAdmin(DispatchModelAdmin):
    """The company's one row of billing rules: edited, never added twice, never deleted."""

    list_display = (
        "company",
        "standard_rate",
        "multipliers",
        "hours",
        "trip_charge",
        "payment_terms_days",
        "updated_at",
    )
    list_display_links = ("company",)
    fieldsets = (
        ("On every invoice", {"fields": ("company_name", "company_address", ("company_phone", "company_email"))}),
        (
            "Labor rates",
            {
                "fields": ("currency", "standard_rate_cents", ("after_hours_multiplier", "emergency_multiplier")),
                "description": "After-hours and emergency labor bill at the standard rate times their multiplier.",
            },
        ),
        (
            "Business hours",
            {
                "fields": (("business_hours_start", "business_hours_end"), "weekends_after_hours"),
                "description": "Work started outside these hours (in the site's local time) bills as after-hours.",
            },
        ),
        ("Trip charge and terms", {"fields": ("default_trip_charge_cents", "payment_terms_days", "invoice_terms")}),
    )

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not BillingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="company")
    def company(self, row: BillingSettings) -> str:
        return row.company_name or "(the site's company name)"

    @admin.display(description="standard rate")
    def standard_rate(self, row: BillingSettings) -> str:
        return f"{money(row.standard_rate_cents, row.currency)}/h"

    @admin.display(description="after-hours · emergency")
    def multipliers(self, row: BillingSettings) -> str:
        return f"×{row.after_hours_multiplier} · ×{row.emergency_multiplier}"

    @admin.display(description="business hours")
    def hours(self, row: BillingSettings) -> str:
        return f"{row.business_hours_start:%H:%M}–{row.business_hours_end:%H:%M}"

    @admin.display(description="trip charge")
    def trip_charge(self, row: BillingSettings) -> str:
        return money(row.default_trip_charge_cents, row.currency)


@admin.register(TaxRate)
class TaxRateAdmin(DispatchModelAdmin):
    list_display = ("jurisdiction", "name", "labor_rate", "parts_rate", "is_default", "site_count")
    list_filter = ("is_default",)
    search_fields = ("jurisdiction", "name")

    def get_queryset(self, request):
        naming = (
            Site.objects.filter(tax_jurisdiction=OuterRef("jurisdiction"))
            .order_by()
            .values("tax_jurisdiction")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(sites_naming=Coalesce(Subquery(naming), 0))

    @admin.display(description="labor tax", ordering="labor_bps")
    def labor_rate(self, rate: TaxRate) -> str:
        return percent(rate.labor_bps)

    @admin.display(description="parts tax", ordering="parts_bps")
    def parts_rate(self, rate: TaxRate) -> str:
        return percent(rate.parts_bps)

    @admin.display(description="sites", ordering="sites_naming")
    def site_count(self, rate: TaxRate) -> int:
        return rate.sites_naming

    def has_delete_permission(self, request, obj=None) -> bool:
        # A jurisdiction that sites name stays: deleting it would quietly tax them at the default.
        if obj is not None and Site.objects.filter(tax_jurisdiction=obj.jurisdiction).exists():
            return False
        return super().has_delete_permission(request, obj)


# Evidence, with the ticket page's section of evidence and work, in its own module (imported before
# the documents, so the section comes before theirs on the ticket page); submissions, reviews and
# pauses, read-only records, in theirs; invoices and packets in theirs; admin_actions registers the
# ticket page's closeout buttons.
from . import admin_actions, admin_closeout, admin_evidence, admin_documents  # noqa: E402,F401,I001
