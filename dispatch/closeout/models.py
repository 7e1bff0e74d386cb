"""Closeout: incident templates name what a job must leave behind before it can be completed."""
from __future__ import annotations

from django.db import models


class IncidentTemplate(models.Model):
    """Per incident type: required evidence and checklist keys, risk flag, typical duration."""

    incident_type = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=20, default="1.0.0")
    required_evidence_keys = models.JSONField(default=list)
    required_checklist_keys = models.JSONField(default=list)
    # High-risk work may not be closed out by an agent: it needs a human's review.
    high_risk = models.BooleanField(default=False)
    default_duration_minutes = models.PositiveIntegerField(default=90)
    # Words in a customer's message that point at this incident type (used by intake).
    keywords = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["incident_type"]

    def __str__(self) -> str:
        return self.name or self.incident_type
