"""Back office for technicians: who they are, what they can fix, where they work."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import path

from dispatch.common.admin_base import DispatchModelAdmin, WarnAfterSaveMixin

from .admin_setup import setup_health_groups, setup_health_panel, setup_problems_warn
from .models import Region, Technician, TechnicianSkill
from .setup_health import REGION_UNCOVERED, TECHNICIAN_KINDS, setup_problems


@admin.register(Region)
class RegionAdmin(WarnAfterSaveMixin, DispatchModelAdmin):
    list_display = ("code", "name", "technician_count")
    search_fields = ("code", "name")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(active_technicians=Count("technicians", filter=Q(technicians__is_active=True)))
        )

    @admin.display(description="active technicians", ordering="active_technicians")
    def technician_count(self, region: Region) -> int:
        return region.active_technicians

    def after_save_warn(self, request, region: Region) -> None:
        # A new region has nobody yet: saved, and said so, as the technicians come next.
        problems = setup_problems(technician_ids=())
        setup_problems_warn(
            request, [p for p in problems if p.kind == REGION_UNCOVERED and p.key == region.code.upper()]
        )


class TechnicianSkillInline(admin.TabularInline):
    model = TechnicianSkill
    fields = ("incident_type", "level")
    extra = 1


@admin.register(Technician)
class TechnicianAdmin(WarnAfterSaveMixin, DispatchModelAdmin):
    list_display = ("display_name", "phone", "region_list", "skill_list", "is_active", "user")
    list_select_related = ("user",)
    list_filter = ("is_active", "regions")
    search_fields = ("display_name", "phone", "user__username", "user__email", "skills__incident_type")
    autocomplete_fields = ("user",)
    filter_horizontal = ("regions",)
    inlines = (TechnicianSkillInline,)
    fieldsets = (
        (None, {"fields": ("display_name", "user", "phone", "is_active")}),
        ("Where they work", {"fields": ("regions", ("home_lat", "home_lng"))}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Linking a login is for those who may see user accounts (admins), not every dispatcher.
        return () if request.user.has_perm("auth.view_user") else ("user",)

    def get_queryset(self, request):
        # One query each for regions and skills, however many technicians the page lists.
        return super().get_queryset(request).prefetch_related("regions", "skills")

    def get_urls(self):
        page = path(
            "setup-health/", self.admin_site.admin_view(self.setup_health_view), name="technicians_setup_health"
        )
        return [page, *super().get_urls()]

    def setup_health_view(self, request):
        """Every gap in the company's setup, grouped, each with a link to fix it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        count, groups = setup_health_groups(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Setup health",
            "count": count,
            "groups": groups,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/technicians/setup_health.html", context)

    def dashboard_context(self, request) -> dict:
        """The setup health panel on the admin index (six queries)."""
        return {"setup_health": setup_health_panel(request)}

    def save_model(self, request, obj, form, change):
        # The company-wide gaps before this save, so that afterwards only the ones it opened are
        # named (taking away the last East Bay technician) and not every gap already known.
        request.setup_gaps_before = {(p.kind, p.key) for p in setup_problems(technician_ids=())}
        super().save_model(request, obj, form, change)

    def after_save_warn(self, request, technician: Technician) -> None:
        """After the technician, their regions and their skills are saved: what the save leaves
        missing for them, the gaps it opened, and how many others the Setup health page lists."""
        before = getattr(request, "setup_gaps_before", set())
        problems = setup_problems()
        own = [p for p in problems if p.kind in TECHNICIAN_KINDS and p.key == str(technician.pk)]
        opened = [p for p in problems if p.kind not in TECHNICIAN_KINDS and (p.kind, p.key) not in before]
        setup_problems_warn(request, own + opened, others=len(problems) - len(own) - len(opened))

    @admin.display(description="regions")
    def region_list(self, technician: Technician) -> str:
        return ", ".join(region.code for region in technician.regions.all())

    @admin.display(description="skills")
    def skill_list(self, technician: Technician) -> str:
        return ", ".join(f"{skill.incident_type} ({skill.level})" for skill in technician.skills.all())


@admin.register(TechnicianSkill)
class TechnicianSkillAdmin(DispatchModelAdmin):
    list_display = ("technician", "incident_type", "level")
    list_select_related = ("technician",)
    list_filter = ("incident_type", "level")
    search_fields = ("technician__display_name", "incident_type")
    autocomplete_fields = ("technician",)
