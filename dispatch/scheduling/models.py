"""Scheduling: proposed windows, booked appointments, customer-confirmation holds, recommendations.

Rows here are history. An appointment is never deleted: it is cancelled (with a reason) or
completed, so the board and the audit can always say who was booked when. Services in
`services.py` write them inside the ticket executor's transaction; nothing else does.
"""
from __future__ import annotations

import uuid

from django.db import models


class AppointmentStatus(models.TextChoices):
    PROPOSED = "PROPOSED", "Proposed"
    HELD = "HELD", "Held for the customer"
    CONFIRMED = "CONFIRMED", "Confirmed"
    CANCELLED = "CANCELLED", "Cancelled"
    COMPLETED = "COMPLETED", "Completed"


# Statuses that reserve a technician's time. The PostgreSQL exclusion constraint (migration
# 0002) and the locked check in services.py both forbid two of these overlapping for one technician.
BOOKED_STATUSES = (AppointmentStatus.HELD, AppointmentStatus.CONFIRMED)


class HistoryQuerySet(models.QuerySet):
    """Scheduling history is kept: rows are cancelled or superseded, never deleted."""

    def delete(self):
        raise PermissionError("Scheduling history is kept; cancel the appointment instead of deleting it.")


class Appointment(models.Model):
    """A technician's (or a not-yet-assigned) booking of a ticket's work window."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="appointments")
    technician = models.ForeignKey(
        "technicians.Technician", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=AppointmentStatus.choices, default=AppointmentStatus.CONFIRMED)
    # The proposal this booking was confirmed from, when it came from one.
    proposal = models.ForeignKey(
        "ScheduleProposal", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.TextField(blank=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            # "Is this technician free then?" and the board's lanes.
            models.Index(fields=["technician", "start"], name="appointment_tech_start"),
            models.Index(fields=["ticket", "status"], name="appointment_ticket_status"),
            # The board's day view across all technicians.
            models.Index(fields=["status", "start"], name="appointment_status_start"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="appointment_end_after_start"),
        ]

    def __str__(self) -> str:
        who = self.technician or "unassigned"
        return f"{self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} {who} ({self.get_status_display()})"

    def delete(self, *args, **kwargs):
        raise PermissionError("Scheduling history is kept; cancel the appointment instead of deleting it.")

    @property
    def is_booked(self) -> bool:
        return self.status in BOOKED_STATUSES


class ScheduleProposal(models.Model):
    """The windows offered to a customer for one ticket; a newer proposal supersedes the open one."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        ACCEPTED = "ACCEPTED", "Accepted"
        SUPERSEDED = "SUPERSEDED", "Superseded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="schedule_proposals")
    # [{"start": ISO, "end": ISO, "tech_id": UUID or null, ...anything the proposer added}], in offer order.
    options = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    accepted_option = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["ticket", "status"], name="proposal_ticket_status"),
            # Wake-ups look for open proposals older than a threshold.
            models.Index(fields=["status", "created_at"], name="proposal_status_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(status="OPEN"), name="proposal_one_open_per_ticket"
            )
        ]

    def __str__(self) -> str:
        return f"{len(self.options)} window(s), {self.get_status_display()}"


class ScheduleHold(models.Model):
    """A ticket parked for customer confirmation, with a snapshot of exactly what the hold changed.

    `id` is the confirmation id returned to callers; release and rollback name it.
    """

    class Reason(models.TextChoices):
        CUSTOMER_PENDING = "CUSTOMER_PENDING", "Customer pending"
        CUSTOMER_UNREACHABLE = "CUSTOMER_UNREACHABLE", "Customer unreachable"
        CUSTOMER_CONFIRMATION_STALE = "CUSTOMER_CONFIRMATION_STALE", "Customer confirmation stale"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        RELEASED = "RELEASED", "Released (customer confirmed)"
        ROLLED_BACK = "ROLLED_BACK", "Rolled back"
        # Ended by another action (a force-unassign) rather than by release or rollback.
        CANCELLED = "CANCELLED", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="schedule_holds")
    hold_reason = models.CharField(max_length=40, choices=Reason.choices)
    confirmation_start = models.DateTimeField()
    confirmation_end = models.DateTimeField()
    # {"state", "scheduled_start", "scheduled_end", "assigned_tech_id",
    #  "appointments": [{"id", "status"}]} as they were just before the hold.
    snapshot = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=200, blank=True)
    release_reason = models.TextField(blank=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ticket", "status"], name="hold_ticket_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(status="ACTIVE"), name="hold_one_active_per_ticket"
            ),
            models.CheckConstraint(
                condition=models.Q(confirmation_end__gt=models.F("confirmation_start")),
                name="hold_confirmation_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_hold_reason_display()} ({self.get_status_display()})"


class RecommendationSnapshot(models.Model):
    """What assignment.recommend answered, kept so a dispatch can cite it and an audit can replay it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="recommendation_snapshots")
    service_type = models.CharField(max_length=64)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    # The top candidate's id (null when no technician qualified): a dispatch citing this
    # snapshot must pick this technician.
    recommended_tech_id = models.UUIDField(null=True, blank=True)
    candidates = models.JSONField(default=list)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="recommendation_ticket_created")]

    def __str__(self) -> str:
        return f"{self.service_type}: {len(self.candidates)} candidate(s)"


class CheckIn(models.Model):
    """A technician's arrival on site: when and where, as reported."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="check_ins")
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="check_ins"
    )
    technician = models.ForeignKey(
        "technicians.Technician", on_delete=models.PROTECT, null=True, blank=True, related_name="check_ins"
    )
    arrived_at = models.DateTimeField()
    # As sent by the device: {"lat", "lng", "accuracy_m", ...}.
    location = models.JSONField(default=dict, blank=True)
    recorded_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["arrived_at", "id"]
        indexes = [models.Index(fields=["ticket", "arrived_at"], name="checkin_ticket_arrived")]

    def __str__(self) -> str:
        return f"{self.technician or 'technician'} arrived {self.arrived_at:%Y-%m-%d %H:%M}"
