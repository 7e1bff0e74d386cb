"""Reads of intake: a ticket's messages, what intake read out of them, what an agent's blind
intake reported, and what waits for review."""

from __future__ import annotations

from django.db.models import QuerySet

from dispatch.tickets.models import Ticket

from .models import BlindIntake, ExtractedField, InboundMessage


def ticket_messages(ticket: Ticket) -> list[InboundMessage]:
    """The customer's messages about this ticket, oldest first (one query)."""
    return list(InboundMessage.objects.filter(ticket=ticket).order_by("received_at", "id"))


def extracted_latest(ticket: Ticket) -> dict[str, ExtractedField]:
    """The newest value intake read for each field of this ticket, by field name (one query)."""
    latest: dict[str, ExtractedField] = {}
    for row in (
        ExtractedField.objects.filter(ticket=ticket)
        .select_related("source_message")
        .order_by("name", "-created_at", "-id")
    ):
        latest.setdefault(row.name, row)
    return latest


def time_preferences(ticket: Ticket) -> list[dict]:
    """The customer's latest preferred windows [{"start", "end", "label"}] (ISO-8601), or []."""
    row = (
        ExtractedField.objects.filter(ticket=ticket, name="time_windows")
        .order_by("-created_at", "-id")
        .values_list("value", flat=True)
        .first()
    )
    return list(row or [])


def blind_intake_of(ticket_id) -> BlindIntake | None:
    """What blind intake recorded about this ticket, or None for a ticket opened another way (one query)."""
    return BlindIntake.objects.filter(ticket_id=ticket_id).first()


def messages_for_review() -> QuerySet[InboundMessage]:
    """Messages flagged for a dispatcher (instruction-like content, spam, a possible duplicate), newest first."""
    return InboundMessage.objects.filter(needs_review=True).select_related("ticket").order_by("-received_at")


# The fields in which intake records a customer's time preference.
TIME_PREFERENCE_FIELDS = ("time_windows", "time_preference")


def ticket_time_preference(ticket_id) -> tuple[object, object] | None:
    """The customer's latest stated time preference for a ticket and when it was stated, or None.
    The latest word wins ("actually, Thursday is better")."""
    return (
        ExtractedField.objects.filter(ticket_id=ticket_id, name__in=TIME_PREFERENCE_FIELDS)
        .order_by("-created_at", "-pk")
        .values_list("value", "created_at")
        .first()
    )


def ticket_open_question(ticket: Ticket) -> str:
    """The question intake would ask this ticket's customer now, in their language ("" when
    nothing is missing): what a reminder repeats."""
    from .receive import missing_items, question_text

    items = missing_items(ticket)
    return question_text(items, ticket=ticket) if items else ""
