"""The autonomy ladder: how far the built-in dispatcher may go on its own, per incident type and
priority, and the suggestions it leaves for a dispatcher where it may only suggest.

Levels (each includes the ones below):
  0  suggests only: a proposal of times waits for a dispatcher's click on the board;
  1  proposes times to the customer and books the customer's choice;
  2  also dispatches the technician (an emergency at once, a booking before its window);
  3  also verifies finished work (automatic QA) and drafts the invoice.
It never cancels, force-closes, approves, waives evidence or touches money at any level.
"""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dispatch.tickets.models import Priority

SUGGEST_ONLY, PROPOSE_AND_BOOK, DISPATCH, VERIFY_AND_INVOICE = 0, 1, 2, 3
LEVELS = (
    (SUGGEST_ONLY, "0 - suggest only (a dispatcher clicks)"),
    (PROPOSE_AND_BOOK, "1 - propose times and book the customer's choice"),
    (DISPATCH, "2 - also dispatch the technician"),
    (VERIFY_AND_INVOICE, "3 - also verify the work and draft the invoice"),
)


class AutonomyLevel(models.Model):
    """One rung of the ladder: for an incident type and/or a priority (blank: any), the level.
    The most specific row applies: type and priority, then type, then priority, then the row
    with both blank (the company's default)."""

    incident_type = models.CharField(max_length=64, blank=True, help_text="Blank: every incident type.")
    priority = models.CharField(max_length=16, choices=Priority.choices, blank=True, help_text="Blank: every priority.")
    level = models.PositiveSmallIntegerField(
        choices=LEVELS, validators=[MinValueValidator(0), MaxValueValidator(3)], default=PROPOSE_AND_BOOK
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["incident_type", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["incident_type", "priority"], name="autonomy_level_scope_unique"),
        ]

    def __str__(self) -> str:
        scope = " ".join(p for p in (self.incident_type, self.priority) if p) or "default"
        return f"{scope}: level {self.level}"


class Suggestion(models.Model):
    """What the autopilot would have done where its level only lets it suggest: the board shows
    it, a dispatcher applies it (through the same services, as themselves) or dismisses it."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Waiting for a dispatcher"
        APPLIED = "APPLIED", "Applied"
        DISMISSED = "DISMISSED", "Dismissed"
        STALE = "STALE", "No longer applies"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="autopilot_suggestions")
    action = models.CharField(max_length=40)
    # What applying it would send to the service (the proposal's windows), and why, in words.
    payload = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    # The ticket's version when suggested: applied only while the ticket is as it was.
    ticket_version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open suggestion per ticket and action: two passes at once suggest it once.
            models.UniqueConstraint(
                fields=["ticket", "action"],
                condition=models.Q(status="OPEN"),
                name="autopilot_suggestion_open_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.get_status_display()})"


class EveningPlan(models.Model):
    """The autopilot's re-plan of one day, made the evening before (one row per day: two workers
    never plan the same day twice)."""

    day = models.DateField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A plan that failed, or was cut off (a worker stopped mid-plan), is tried again, this often at most.
    attempts = models.PositiveSmallIntegerField(default=1)
    # improved (moves applied), unchanged, fallback (the solver found nothing), refused (a move
    # was refused as the plan was applied: nothing changed), or error.
    status = models.CharField(max_length=16, blank=True)
    minutes_saved = models.IntegerField(default=0)
    moves = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.status or 'planning'}"
