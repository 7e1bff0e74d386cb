"""How sure intake must be of the customer and of the incident before a ticket goes to the
scheduling queue on its own: one pair of settings, read by blind intake, its triage gate and
intake from customers' messages alike."""

from __future__ import annotations

from django.conf import settings

DEFAULT_CONFIDENCE_THRESHOLD = 85


def identity_threshold() -> int:
    return int(getattr(settings, "DISPATCH_INTAKE_IDENTITY_CONFIDENCE_THRESHOLD", DEFAULT_CONFIDENCE_THRESHOLD))


def classification_threshold() -> int:
    return int(getattr(settings, "DISPATCH_INTAKE_CLASSIFICATION_CONFIDENCE_THRESHOLD", DEFAULT_CONFIDENCE_THRESHOLD))
