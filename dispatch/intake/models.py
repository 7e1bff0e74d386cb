"""What customers send us: every inbound message as received and as cleaned, the conversation it
belongs to, and each fact intake read out of it with its confidence and source; and what an
agent's blind intake reported.

Rows here are written only by the intake services: `message_receive` (and the helpers it calls)
and `ticket_blind_intake`. A message is never edited after it is stored: the raw original stays
next to the sanitized copy, so a dispatcher can always see exactly what arrived.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from dispatch.tickets.models import Ticket


class InboundChannel(models.TextChoices):
    SMS = "SMS", "SMS"
    EMAIL = "EMAIL", "Email"
    WEB = "WEB", "Web form"
    AGENT = "AGENT", "Agent hand-over"


class Conversation(models.Model):
    """The exchange with one customer about one ticket on one channel."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        CLOSED = "CLOSED", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Found through conversation_ticket_channel_unique (ticket first): no index of its own.
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="conversations", db_index=False)
    channel = models.CharField(max_length=8, choices=InboundChannel.choices)
    customer_phone = models.CharField("customer phone (E.164)", max_length=20, blank=True)
    customer_email = models.EmailField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    # What intake has asked this customer so far ({"address": 1}), so a question is never
    # repeated without end when an answer does not contain what was asked.
    asked = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_message_at"]
        indexes = [
            # Threading: "the most recent open conversation of this phone/email".
            models.Index(fields=["customer_phone", "status", "last_message_at"], name="conv_phone_open"),
            models.Index(fields=["customer_email", "status", "last_message_at"], name="conv_email_open"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "channel"], name="conversation_ticket_channel_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} · {self.customer_phone or self.customer_email or 'unknown sender'}"


class InboundMessage(models.Model):
    """One message as it arrived (raw) and as intake read it (sanitized), deduplicated per provider id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=8, choices=InboundChannel.choices)
    # The provider's id (Twilio MessageSid, email Message-Id, form submission id). Together with
    # the channel it is unique: a retried webhook hits the constraint instead of a second row.
    provider_message_id = models.CharField(max_length=255)
    raw_body = models.TextField(blank=True, help_text="As received (capped in size).")
    body = models.TextField(blank=True, help_text="Sanitized: no markup, no control characters, capped.")
    subject = models.CharField(max_length=300, blank=True)
    sender_phone = models.CharField("sender phone (E.164)", max_length=20, blank=True)
    sender_email = models.EmailField(blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    media = models.JSONField(default=list, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="The provider's fields (capped in size).")
    flags = models.JSONField(default=dict, blank=True)
    # Instruction-like content, spam or anything else a person should look at.
    needs_review = models.BooleanField(default=False)
    # Found through inbound_ticket_received (ticket first): no index of its own.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound_messages", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    # The customer's "1"/"2"/"3" answer to a schedule proposal, recorded for the scheduling face.
    reply_option = models.PositiveSmallIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"], name="inbound_channel_provider_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["sender_phone", "received_at"], name="inbound_phone_received"),
            models.Index(fields=["sender_email", "received_at"], name="inbound_email_received"),
            models.Index(fields=["needs_review", "received_at"], name="inbound_review_received"),
            models.Index(fields=["ticket", "received_at"], name="inbound_ticket_received"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.provider_message_id}"


class ExtractedField(models.Model):
    """One fact intake read out of one message (address, incident type, time preference, ...)."""

    id = models.BigAutoField(primary_key=True)
    # Found through extracted_ticket_name (ticket first): no index of its own.
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="extracted_fields", db_index=False)
    name = models.CharField(max_length=40)
    # Text for most fields; structured for some (time windows are a list of {start, end, label}).
    value = models.JSONField()
    confidence = models.PositiveSmallIntegerField()
    source_message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, related_name="extracted_fields")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ticket", "name", "-created_at"]
        indexes = [models.Index(fields=["ticket", "name", "created_at"], name="extracted_ticket_name")]
        constraints = [
            models.CheckConstraint(condition=models.Q(confidence__lte=100), name="extracted_confidence_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.name} = {self.value!r} ({self.confidence}%)"


class BlindIntake(models.Model):
    """What an agent's blind intake told us about the ticket it opened, and what we judged from it:
    the confidences it reported, the thresholds they were held against, and the SOP handoff.

    Written once by `ticket_blind_intake`, in the transaction that opens the ticket; the triage gate
    reads it (a ticket without one was opened another way and is not gated). Only the SOP
    acknowledgement changes later, when a triage acknowledges the handoff.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.OneToOneField(Ticket, on_delete=models.PROTECT, related_name="blind_intake")
    identity_confidence = models.PositiveSmallIntegerField()
    classification_confidence = models.PositiveSmallIntegerField()
    identity_threshold = models.PositiveSmallIntegerField()
    classification_threshold = models.PositiveSmallIntegerField()
    # Why the ticket was not ready to schedule: IDENTITY_CONFIDENCE, CLASSIFICATION_CONFIDENCE,
    # SOP_HANDOFF_REQUIRED; empty when it was.
    readiness_reasons = models.JSONField(default=list, blank=True)
    identity_signature = models.CharField(max_length=64)
    sop_handoff_required = models.BooleanField(default=False)
    sop_handoff_acknowledged = models.BooleanField(default=False)
    sop_handoff_prompt = models.TextField(blank=True)
    # A default rather than auto_now_add, so that the rows carried over from the audit trail keep
    # the time of the intake.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(identity_confidence__lte=100, classification_confidence__lte=100),
                name="blind_intake_confidence_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"blind intake · identity {self.identity_confidence}% · classification {self.classification_confidence}%"


class ServiceArea(models.Model):
    """Where the company works, one row edited in the admin: the cities and ZIP code prefixes it
    serves. Made from settings.DISPATCH_SERVICE_AREA at first use; empty: everywhere."""

    places = models.TextField(
        blank=True,
        help_text=(
            'Cities ("Portland, OR") and ZIP code prefixes ("972"), one a line or separated by semicolons. '
            "With one city, a street address given without a city is taken to be there. Empty: no limit."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "service area"
        verbose_name_plural = "service area"

    def __str__(self) -> str:
        return "Service area"

    def save(self, *args, **kwargs):
        self.pk = 1  # one row: the company's
        super().save(*args, **kwargs)
