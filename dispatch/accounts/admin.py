"""The back office's side of sign-ins: the record (read-only), lifting a lockout, resetting 2FA."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, Max, OuterRef, Subquery, Sum
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.formats import date_format
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from dispatch.common.admin_base import ReadOnlyModelAdmin

from .models import SignInEvent, SignInKind
from .record import signin_record
from .two_factor import two_factor_reset


@admin.register(SignInEvent)
class SignInEventAdmin(ReadOnlyModelAdmin):
    list_display = ("at", "kind", "username", "address", "path", "by_username", "detail")
    list_filter = ("kind",)
    search_fields = ("=username", "=address")
    date_hierarchy = "at"
    list_per_page = 100


@admin.register(AccessAttempt)
class LockoutAdmin(ReadOnlyModelAdmin):
    """Failed sign-ins counting toward a lockout, per username and address. Unlocking clears them,
    through the action (which records who did it), never by deleting rows by hand."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "locked_until", "path_info")
    search_fields = ("=username", "=ip_address")
    ordering = ("-attempt_time",)
    actions = ["unlock"]
    fields = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info", "user_agent")
    readonly_fields = fields

    def get_queryset(self, request):
        # django-axes keeps one row per username, address and browser; the lock is on the sum of
        # a username and address's recent rows, so each row shows that pair's sum and latest try.
        recent = AccessAttempt.objects.filter(
            username=OuterRef("username"),
            ip_address=OuterRef("ip_address"),
            attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
        ).values("username", "ip_address")
        return (
            super()
            .get_queryset(request)
            .annotate(
                pair_failures=Subquery(recent.annotate(total=Sum("failures_since_start")).values("total")),
                pair_latest=Subquery(recent.annotate(latest=Max("attempt_time")).values("latest")),
            )
        )

    @admin.display(description="Locked until")
    def locked_until(self, attempt) -> str:
        if not attempt.pair_latest or (attempt.pair_failures or 0) < settings.AXES_FAILURE_LIMIT:
            return "not locked"
        return date_format(timezone.localtime(attempt.pair_latest + settings.AXES_COOLOFF_TIME), "TIME_FORMAT")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("axes.delete_accessattempt"):
            actions.pop("unlock", None)
        return actions

    @admin.action(description="Unlock the selected sign-ins")
    def unlock(self, request, queryset):
        pairs = set(queryset.values_list("username", "ip_address"))
        for username, address in pairs:
            # Every row of the pair (one per browser it used), and only that pair's.
            AccessAttempt.objects.filter(username=username, ip_address=address).delete()
            signin_record(
                SignInKind.UNLOCKED, request=request, username=username, by=request.user, detail=f"for {address}"
            )
        self.message_user(request, f"Unlocked {len(pairs)} sign-in{pluralize(len(pairs))}.", messages.SUCCESS)


# django-otp's own device pages show the secret keys, to auditors too: people manage their own
# second factor on their account page, and admins reset it from the user list.
for device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class DispatchUserAdmin(UserAdmin):
    actions = ["reset_two_factor"]
    list_display = (*UserAdmin.list_display, "two_factor")

    def get_queryset(self, request):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_two_factor=Exists(enrolled))

    @admin.display(description="Two-factor", boolean=True)
    def two_factor(self, user) -> bool:
        return user.has_two_factor

    @admin.action(description="Reset two-factor (lost phone): they set it up again", permissions=["change"])
    def reset_two_factor(self, request, queryset):
        reset = two_factor_reset(list(queryset), by=request.user, request=request)
        self.message_user(request, f"Reset two-factor for {len(reset)} user{pluralize(len(reset))}.", messages.SUCCESS)
