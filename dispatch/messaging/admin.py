"""Back office for the outbox: watch deliveries, replay dead letters, edit message texts.

Outbound messages are history: the admin shows them read-only and changes them only through
`outbox_replay`, which checks the role and writes the audit event.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import ngettext

from dispatch.common.admin_base import DispatchModelAdmin, ReadOnlyModelAdmin, actor_for_request
from dispatch.common.errors import DispatchError

from .models import MessageTemplate, OutboundMessage
from .rendering import placeholders_of
from .services import OUTBOX_REPLAY, outbox_replay


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "status", "channel", "recipient", "template", "attempts", "next_attempt_at", "ticket")
    list_filter = ("status", "channel", "template")
    search_fields = ("recipient", "provider_message_id", "=id", "=ticket__id")
    date_hierarchy = "created_at"
    list_select_related = ("ticket",)
    actions = ["replay_dead_letters"]
    fieldsets = (
        (None, {"fields": ("id", "channel", "recipient", "subject", "body", "template", "ticket")}),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "provider_message_id",
                    "claimed_at",
                    "created_at",
                    "sent_at",
                )
            },
        ),
    )
    readonly_fields = (
        "id",
        "channel",
        "recipient",
        "subject",
        "body",
        "template",
        "ticket",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "provider_message_id",
        "claimed_at",
        "created_at",
        "sent_at",
    )

    @admin.action(description="Replay dead-lettered messages")
    def replay_dead_letters(self, request, queryset):
        actor = actor_for_request(request, OUTBOX_REPLAY)
        replayed, refused = 0, []
        for message_id in queryset.values_list("pk", flat=True):
            try:
                outbox_replay(actor=actor, outbox_id=message_id, request={"outbox_id": str(message_id), "via": "admin"})
            except DispatchError as exc:
                refused.append(f"{message_id}: {exc.message}")
            else:
                replayed += 1
        if replayed:
            self.message_user(
                request,
                ngettext("%d message queued again.", "%d messages queued again.", replayed) % replayed,
                messages.SUCCESS,
            )
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("code", "language", "channel", "subject", "body")

    def _placeholders_checked(self, field: str) -> str:
        text = self.cleaned_data.get(field, "")
        try:
            names = placeholders_of(text)
        except DispatchError as exc:
            raise forms.ValidationError(exc.message) from None
        bad = [name for name in names if not name.isidentifier()]
        if bad:
            raise forms.ValidationError(
                "Placeholders must be plain names like {company} or {ticket_ref}; not: "
                + ", ".join("{" + name + "}" for name in bad)
            )
        return text

    def clean_subject(self) -> str:
        return self._placeholders_checked("subject")

    def clean_body(self) -> str:
        return self._placeholders_checked("body")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(DispatchModelAdmin):
    form = MessageTemplateForm
    list_display = ("code", "language", "channel", "body", "updated_at")
    list_filter = ("language", "channel")
    search_fields = ("code", "body")
    readonly_fields = ("placeholders", "updated_at")

    @admin.display(description="Placeholders used")
    def placeholders(self, obj: MessageTemplate) -> str:
        try:
            names = placeholders_of(obj.subject + "\n" + obj.body)
        except DispatchError as exc:
            return exc.message
        return ", ".join("{" + name + "}" for name in names) or "none"
