"""Back office for intake: what customers sent (raw next to sanitized), conversations, the
facts intake read, and what agents' blind intakes reported. Everything is read-only; the one
change, clearing a review mark, goes through `message_review_clear`, which audits it. The one
setting, the company's service area, is edited here."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import ngettext

from dispatch.common.admin_base import DispatchModelAdmin, ReadOnlyModelAdmin, actor_for_request
from dispatch.common.errors import DispatchError

from .models import BlindIntake, Conversation, ExtractedField, InboundMessage, ServiceArea
from .services import INTAKE_REVIEW, message_review_clear


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ("received_at", "channel", "sender", "preview", "needs_review", "flag_list", "ticket")
    list_filter = ("needs_review", "channel")
    search_fields = ("sender_phone", "sender_email", "provider_message_id", "=id", "=ticket__id")
    date_hierarchy = "received_at"
    list_select_related = ("ticket",)
    actions = ["mark_reviewed"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "channel",
                    "provider_message_id",
                    "received_at",
                    "ticket",
                    "conversation",
                    "reply_option",
                )
            },
        ),
        ("Sender", {"fields": ("sender_name", "sender_phone", "sender_email")}),
        ("Review", {"fields": ("needs_review", "flags_pretty")}),
        ("Message", {"fields": ("subject", "side_by_side", "media", "raw_pretty")}),
    )
    readonly_fields = (
        "id",
        "channel",
        "provider_message_id",
        "received_at",
        "ticket",
        "conversation",
        "reply_option",
        "sender_name",
        "sender_phone",
        "sender_email",
        "needs_review",
        "flags_pretty",
        "subject",
        "side_by_side",
        "media",
        "raw_pretty",
    )

    @admin.display(description="from")
    def sender(self, obj: InboundMessage) -> str:
        return obj.sender_name or obj.sender_phone or obj.sender_email or "—"

    @admin.display(description="message")
    def preview(self, obj: InboundMessage) -> str:
        text = obj.body or obj.subject
        return text[:80] + ("…" if len(text) > 80 else "")

    @admin.display(description="flags")
    def flag_list(self, obj: InboundMessage) -> str:
        return ", ".join(sorted(obj.flags or {})) or "—"

    @admin.display(description="flags")
    def flags_pretty(self, obj: InboundMessage) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.flags or {}, indent=2, sort_keys=True))

    @admin.display(description="provider fields")
    def raw_pretty(self, obj: InboundMessage) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.raw or {}, indent=2, sort_keys=True)[:20_000])

    @admin.display(description="as received | as intake read it")
    def side_by_side(self, obj: InboundMessage) -> str:
        # Both columns are escaped text: the raw original is shown, never rendered.
        return format_html(
            '<div class="rd-side-by-side">'
            '<div><strong>Raw ({} characters)</strong><pre class="rd-message-text">{}</pre></div>'
            '<div><strong>Sanitized ({} characters)</strong><pre class="rd-message-text">{}</pre></div>'
            "</div>",
            len(obj.raw_body),
            obj.raw_body[:20_000],
            len(obj.body),
            obj.body,
        )

    @admin.action(description="Mark reviewed")
    def mark_reviewed(self, request, queryset):
        try:
            cleared = message_review_clear(
                actor=actor_for_request(request, INTAKE_REVIEW),
                message_ids=list(queryset.values_list("pk", flat=True)),
                request={"via": "admin"},
            )
        except DispatchError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            ngettext("%d message marked reviewed.", "%d messages marked reviewed.", cleared) % cleared,
            messages.SUCCESS,
        )


class MessageInline(admin.TabularInline):
    model = InboundMessage
    fields = ("received_at", "body", "needs_review")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyModelAdmin):
    list_display = ("last_message_at", "channel", "customer_phone", "customer_email", "status", "ticket", "asked")
    list_filter = ("status", "channel")
    search_fields = ("customer_phone", "customer_email", "=ticket__id")
    list_select_related = ("ticket",)
    readonly_fields = (
        "id",
        "ticket",
        "channel",
        "customer_phone",
        "customer_email",
        "status",
        "asked",
        "created_at",
        "last_message_at",
    )
    inlines = [MessageInline]


@admin.register(ExtractedField)
class ExtractedFieldAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "name", "shown_value", "confidence", "source_message")
    list_filter = ("name",)
    search_fields = ("=ticket__id",)
    list_select_related = ("ticket", "source_message")
    readonly_fields = ("ticket", "name", "value", "confidence", "source_message", "created_at")

    @admin.display(description="value")
    def shown_value(self, obj: ExtractedField) -> str:
        text = obj.value if isinstance(obj.value, str) else json.dumps(obj.value)
        return text[:120]


@admin.register(BlindIntake)
class BlindIntakeAdmin(ReadOnlyModelAdmin):
    list_display = (
        "created_at",
        "ticket",
        "identity_confidence",
        "classification_confidence",
        "readiness_reasons",
        "sop_handoff_acknowledged",
    )
    list_filter = ("sop_handoff_required", "sop_handoff_acknowledged")
    search_fields = ("=ticket__id", "identity_signature")
    list_select_related = ("ticket",)
    readonly_fields = (
        "ticket",
        "identity_confidence",
        "classification_confidence",
        "identity_threshold",
        "classification_threshold",
        "readiness_reasons",
        "identity_signature",
        "sop_handoff_required",
        "sop_handoff_acknowledged",
        "sop_handoff_prompt",
        "created_at",
    )


# Registers the ticket page's triage-ready button (through the blind-intake gate).
from . import admin_actions  # noqa: E402,F401


@admin.register(ServiceArea)
class ServiceAreaAdmin(DispatchModelAdmin):
    """The company's one row of service area: edited, never added twice, never deleted."""

    list_display = ("__str__", "places", "updated_at")
    fields = ("places",)

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not ServiceArea.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
