"""Ticket states and the whole legal transition graph, as the design's table has it."""

from __future__ import annotations

from django.db import models


class TicketState(models.TextChoices):
    NEW = "NEW", "New"
    NEEDS_INFO = "NEEDS_INFO", "Needs info"
    TRIAGED = "TRIAGED", "Triaged"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED", "Approval required"
    READY_TO_SCHEDULE = "READY_TO_SCHEDULE", "Ready to schedule"
    SCHEDULE_PROPOSED = "SCHEDULE_PROPOSED", "Schedule proposed"
    SCHEDULED = "SCHEDULED", "Scheduled"
    PENDING_CUSTOMER_CONFIRMATION = "PENDING_CUSTOMER_CONFIRMATION", "Pending customer confirmation"
    DISPATCHED = "DISPATCHED", "Dispatched"
    ON_SITE = "ON_SITE", "On site"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    ON_HOLD = "ON_HOLD", "On hold"
    COMPLETED_PENDING_VERIFICATION = "COMPLETED_PENDING_VERIFICATION", "Completed, pending verification"
    VERIFIED = "VERIFIED", "Verified"
    INVOICED = "INVOICED", "Invoiced"
    CLOSED = "CLOSED", "Closed"
    CANCELLED = "CANCELLED", "Cancelled"


# States a ticket may be created in.
CREATION_STATES = frozenset({TicketState.NEW, TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE})

TERMINAL_STATES = frozenset({TicketState.CLOSED, TicketState.CANCELLED})
OPEN_STATES = frozenset(set(TicketState) - TERMINAL_STATES)

# The pipeline in the order a job moves along it, by part (the dashboard's columns).
PIPELINE = (
    ("Intake", (TicketState.NEW, TicketState.NEEDS_INFO, TicketState.TRIAGED, TicketState.APPROVAL_REQUIRED)),
    (
        "Scheduling",
        (
            TicketState.READY_TO_SCHEDULE,
            TicketState.SCHEDULE_PROPOSED,
            TicketState.PENDING_CUSTOMER_CONFIRMATION,
            TicketState.SCHEDULED,
        ),
    ),
    ("In the field", (TicketState.DISPATCHED, TicketState.ON_SITE, TicketState.IN_PROGRESS, TicketState.ON_HOLD)),
    ("Closeout", (TicketState.COMPLETED_PENDING_VERIFICATION, TicketState.VERIFIED, TicketState.INVOICED)),
    ("Done", (TicketState.CLOSED, TicketState.CANCELLED)),
)
PIPELINE_STATES = [state for _, states in PIPELINE for state in states]
