"""Back office for closeout: the incident templates that say what a finished job must leave behind."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from dispatch.common.admin_base import DispatchModelAdmin, StringListField

from .models import IncidentTemplate


class IncidentTemplateForm(forms.ModelForm):
    required_evidence_keys = StringListField(help_text="One key per line, e.g. photo_after_latched_alignment.")
    required_checklist_keys = StringListField(help_text="One key per line, e.g. work_performed.")
    keywords = StringListField(
        required=False, help_text="Words in a customer's message that point at this type, one per line."
    )

    class Meta:
        model = IncidentTemplate
        fields = (
            "incident_type",
            "name",
            "version",
            "high_risk",
            "default_duration_minutes",
            "required_evidence_keys",
            "required_checklist_keys",
            "keywords",
        )


@admin.register(IncidentTemplate)
class IncidentTemplateAdmin(DispatchModelAdmin):
    form = IncidentTemplateForm
    list_display = (
        "incident_type",
        "name",
        "version",
        "high_risk",
        "default_duration_minutes",
        "evidence_count",
        "checklist_count",
        "updated_at",
    )
    list_filter = ("high_risk",)
    search_fields = ("incident_type", "name")
    fieldsets = (
        (None, {"fields": ("incident_type", "name", "version", ("high_risk", "default_duration_minutes"))}),
        ("What a finished job leaves behind", {"fields": ("required_evidence_keys", "required_checklist_keys")}),
        ("Intake", {"fields": ("keywords",)}),
    )

    @admin.display(description="evidence keys")
    def evidence_count(self, template: IncidentTemplate) -> int:
        return len(template.required_evidence_keys or [])

    @admin.display(description="checklist keys")
    def checklist_count(self, template: IncidentTemplate) -> int:
        return len(template.required_checklist_keys or [])


# Evidence, submissions, reviews, invoices, packets and pauses: read-only records, kept in their own module;
# admin_actions registers the ticket page's closeout buttons.
from . import admin_actions, admin_closeout  # noqa: E402,F401
