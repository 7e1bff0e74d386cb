"""Everything the company sends: one outbox of SMS and email messages, and their templates.

A message row is written in the same transaction as the business change that causes it and
delivered by a worker after commit (see `tasks.py`). Rows are claimed with a conditional
UPDATE, so two workers never send the same message, and the provider's message id is recorded
before a row counts as sent, so a crashed worker's retry never sends it twice.
"""

from __future__ import annotations

import uuid

from django.db import models

from dispatch.common.languages import ENGLISH, LANGUAGES


class Channel(models.TextChoices):
    SMS = "SMS", "SMS"
    EMAIL = "EMAIL", "Email"


class MessageTemplate(models.Model):
    """The text of one kind of message; `{placeholders}` are filled from the sender's context."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.SlugField(max_length=64)
    # One text per code and language; a customer who writes in Spanish is written to from the
    # Spanish row of a code when there is one, from the English row otherwise.
    language = models.CharField(max_length=8, choices=LANGUAGES, default=ENGLISH)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.SMS)
    # Used only for email; an SMS has no subject.
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(help_text="Plain text. Use {name} placeholders, e.g. {company}, {ticket_ref}.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code", "language"]
        constraints = [
            models.UniqueConstraint(fields=["code", "language"], name="message_template_code_language_unique"),
        ]

    def __str__(self) -> str:
        return self.code if self.language == ENGLISH else f"{self.code} ({self.language})"


class OutboundMessage(models.Model):
    """One SMS or email to one recipient, with its delivery state."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENDING = "SENDING", "Sending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed (will retry)"
        DEAD_LETTER = "DEAD_LETTER", "Dead letter"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    # The MessageTemplate code the body was rendered from, kept as text: editing or removing a
    # template later must not change what the history says was sent.
    template = models.CharField(max_length=64, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="outbound_messages"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set when a worker claims the row; a SENDING row older than the lease may be reclaimed.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    # The last attempt may have reached the provider without our hearing back: its worker died
    # mid-send, or the request went out and the answer was lost. The next attempt asks the
    # provider whether it has the message before sending it again.
    outcome_unknown = models.BooleanField(default=False)
    # Files sent with an email: [{"name", "content_type", "storage_name"}], read from the default
    # storage when the message is delivered (so a retry sends the same bytes).
    attachments = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweep's question: which rows in this status are due?
            models.Index(fields=["status", "next_attempt_at"], name="outbox_status_due_idx"),
        ]
        constraints = [
            # A provider's id names one message: two rows never record the same send (a look-up
            # after a lost answer must not take a twin's id for its own).
            models.UniqueConstraint(
                fields=["provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="outbox_provider_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({self.status})"
