"""Reads of the outbox, for the back office, the board and the toolset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from dispatch.common.languages import ENGLISH, language_clean

from .models import MessageTemplate, OutboundMessage


def message_templates(*, codes: Iterable[str], language: str = ENGLISH) -> dict[str, MessageTemplate]:
    """The stored templates with these codes, by code, in one query (a missing code is absent):
    each in `language` when it has a row in it, in English otherwise."""
    wanted = tuple(sorted(set(codes)))
    if not wanted:
        return {}
    languages = {ENGLISH, language_clean(language)}
    found: dict[str, MessageTemplate] = {}
    for template in MessageTemplate.objects.filter(code__in=wanted, language__in=languages):
        if template.code not in found or template.language != ENGLISH:
            found[template.code] = template
    return found


def message_template(code: str, *, language: str = ENGLISH) -> MessageTemplate | None:
    """One template by code, in `language` when it has a row in it (see message_templates)."""
    return message_templates(codes=[code], language=language).get(code)


def outbox_messages(*, status: str | None = None, ticket_id: Any = None) -> QuerySet[OutboundMessage]:
    """Outbound messages, newest first, optionally of one status and/or one ticket."""
    messages = OutboundMessage.objects.all()
    if status:
        messages = messages.filter(status=status)
    if ticket_id:
        messages = messages.filter(ticket_id=ticket_id)
    return messages.order_by("-created_at", "-id")


def outbox_status_counts() -> dict[str, int]:
    """How many messages are in each status (every status listed, zero included)."""
    counts = dict(OutboundMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in OutboundMessage.Status.values}


def outbox_message_summary(message: OutboundMessage) -> dict[str, Any]:
    """A message's delivery facts as JSON-ready data (no body or recipient: those stay in the back office)."""

    def iso(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(message.pk),
        "channel": message.channel,
        "template": message.template,
        "ticket_id": str(message.ticket_id) if message.ticket_id else None,
        "status": message.status,
        "attempts": message.attempts,
        "next_attempt_at": iso(message.next_attempt_at),
        "last_error": message.last_error,
        "provider_message_id": message.provider_message_id,
        "created_at": iso(message.created_at),
        "sent_at": iso(message.sent_at),
    }
