"""Back office for technicians: who they are, what they can fix, where they work."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q

from dispatch.common.admin_base import DispatchModelAdmin

from .models import Region, Technician, TechnicianSkill


@admin.register(Region)
class RegionAdmin(DispatchModelAdmin):
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


class TechnicianSkillInline(admin.TabularInline):
    model = TechnicianSkill
    fields = ("incident_type", "level")
    extra = 1


@admin.register(Technician)
class TechnicianAdmin(DispatchModelAdmin):
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
