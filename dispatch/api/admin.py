"""Back office for API tokens: issue (the plaintext is shown once), look up by prefix, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import ngettext

from dispatch.common.admin_base import DispatchModelAdmin, StringListField
from dispatch.common.errors import DispatchError

from .models import ApiToken
from .services import api_token_issue, api_token_revoke, scope_ids_clean


class ApiTokenForm(forms.ModelForm):
    account_ids = StringListField(required=False, help_text="One account UUID per line; empty means every account.")
    site_ids = StringListField(required=False, help_text="One site UUID per line; empty means every site.")

    class Meta:
        model = ApiToken
        fields = ("name", "role", "user", "account_ids", "site_ids")

    def clean_account_ids(self):
        return self._scope("account_ids")

    def clean_site_ids(self):
        return self._scope("site_ids")

    def _scope(self, field: str) -> list[str]:
        try:
            return scope_ids_clean(self.cleaned_data.get(field) or [], field=field)
        except DispatchError as error:
            raise forms.ValidationError(error.message) from None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("role") == "technician":
            user = cleaned.get("user")
            if user is None or not hasattr(user, "technician"):
                self.add_error("user", "A technician token must belong to a user with a technician profile.")
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(DispatchModelAdmin):
    form = ApiTokenForm
    list_display = (
        "name",
        "role",
        "display_prefix",
        "user",
        "scope_summary",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("role", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ["revoke_tokens"]

    @admin.display(description="token")
    def display_prefix(self, obj: ApiToken) -> str:
        return obj.display_prefix

    @admin.display(description="scope")
    def scope_summary(self, obj: ApiToken) -> str:
        if not obj.account_ids and not obj.site_ids:
            return "all accounts and sites"
        return f"{len(obj.account_ids)} account(s), {len(obj.site_ids)} site(s)"

    def get_readonly_fields(self, request, obj=None):
        # A token's role and scope are what it was issued with: to change them, issue a new one.
        if obj is None:
            return ("display_prefix", "created_at", "last_used_at", "revoked_at")
        return ("role", "user", "account_ids", "site_ids", "display_prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # The form has checked role, user and scope as the service does; the service hashes and saves.
        plaintext = api_token_issue(token=obj)
        self.message_user(
            request,
            f"Token for {obj.name}: {plaintext} — copy it now, it is not stored and will not be shown again.",
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoke instead: the row stays as the record of who held which credential.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token)
            revoked += 1
        self.message_user(
            request, ngettext("%d token revoked.", "%d tokens revoked.", revoked) % revoked, messages.SUCCESS
        )
