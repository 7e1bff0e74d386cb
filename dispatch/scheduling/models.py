"""Scheduling: proposed windows, booked appointments, customer-confirmation holds, recommendations.

Rows here are history. An appointment is never deleted: it is cancelled (with a reason) or
completed, so the board and the audit can always say who was booked when. The scheduling
services (proposals, assignment, onsite, booking) write them inside the ticket executor's
transaction; nothing else does.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models


class AppointmentStatus(models.TextChoices):
    PROPOSED = "PROPOSED", "Proposed"
    HELD = "HELD", "Held for the customer"
    CONFIRMED = "CONFIRMED", "Confirmed"
    CANCELLED = "CANCELLED", "Cancelled"
    COMPLETED = "COMPLETED", "Completed"


# Statuses that reserve a technician's time. The PostgreSQL exclusion constraint (migration
# 0002) and the locked check in appointments.py both forbid two of these overlapping for one technician.
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
    # The arrival window the customer was told, kept when the day plan moved the job inside it
    # (the technician now arrives later within it, or another technician comes): what reminders
    # keep saying and what no later plan may leave. Empty: the window follows from `start`
    # (appointments.told_window).
    promised_start = models.DateTimeField(null=True, blank=True)
    promised_end = models.DateTimeField(null=True, blank=True)
    # One visit of a crew or multi-day job: every part (one per technician per day) carries the
    # same key, so the board links them, the day planner keeps them together and a move or a
    # cancellation takes them all. Empty for a one-technician, one-day booking.
    visit = models.UUIDField(null=True, blank=True, db_index=True)
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


# =============================================================================================
# Working time (helper S1): when each technician works and when they are off. The slot engine
# (engine.py) places jobs only inside shifts and never over time off.
# =============================================================================================

DEFAULT_WORK_TIMEZONE = "America/Los_Angeles"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class Shift(models.Model):
    """A weekly working period of a technician, in their working timezone.

    A technician may have several per weekday (a split shift); an end at or before the start
    means the shift runs past midnight into the next day.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    technician = models.ForeignKey("technicians.Technician", on_delete=models.CASCADE, related_name="shifts")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()
    # Wall-clock times are read in this zone, so 07:00 stays 07:00 across daylight-saving changes.
    timezone = models.CharField(max_length=64, default=DEFAULT_WORK_TIMEZONE)

    class Meta:
        ordering = ["technician", "weekday", "start_time"]
        indexes = [models.Index(fields=["technician", "weekday"], name="shift_tech_weekday")]
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__gte=0, weekday__lte=6), name="shift_weekday_0_6"),
            models.CheckConstraint(condition=~models.Q(end_time=models.F("start_time")), name="shift_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    def clean(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": f"Unknown timezone {self.timezone!r} (use e.g. America/Los_Angeles)."})


class TimeOff(models.Model):
    """A period a technician cannot be booked (vacation, training, sick leave)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    technician = models.ForeignKey("technicians.Technician", on_delete=models.CASCADE, related_name="time_off")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]
        verbose_name = "time off"
        verbose_name_plural = "time off"
        indexes = [models.Index(fields=["technician", "start"], name="timeoff_tech_start")]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="timeoff_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.technician} off {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"


# =============================================================================================
# Wake-ups and customer communication (helper S3): escalations raised by the scheduled
# wake-ups, the technician's acknowledgement and departure for a dispatch, and the ledger of
# customer notices that keeps every automatic message to at most one per occasion.
# =============================================================================================

from django.utils import timezone as _timezone  # noqa: E402


class EscalationKind(models.TextChoices):
    STALE_PROPOSAL = "STALE_PROPOSAL", "Proposal unanswered"
    UNACKNOWLEDGED_DISPATCH = "UNACKNOWLEDGED_DISPATCH", "Dispatch not acknowledged"
    SLA_RISK = "SLA_RISK", "At risk of missing the SLA"
    TECHNICIAN_MESSAGE = "TECHNICIAN_MESSAGE", "Message from the technician"
    # The autopilot stopped and handed the job to a person; details["reason"] says why.
    HANDOVER = "HANDOVER", "Needs a person"


class Escalation(models.Model):
    """Something a dispatcher must look at, raised by a wake-up (or a technician's text) and shown
    on the board until resolved."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="escalations")
    kind = models.CharField(max_length=32, choices=EscalationKind.choices)
    # What exactly this is about ("proposal:<id>", "dispatch:<transition id>", "sla:<due>",
    # "inbound:<message id>"): a wake-up that runs twice finds the same key and does nothing,
    # and the unique constraint below makes that hold for two workers racing too.
    trigger_key = models.CharField(max_length=120)
    # Plain facts for the board: due time, minutes waiting, the reason in words.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=_timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True)
    resolution = models.TextField(blank=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The board's question: which escalations are still open?
            models.Index(fields=["resolved_at", "created_at"], name="escalation_open_created"),
            models.Index(fields=["ticket", "kind"], name="escalation_ticket_kind"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "kind", "trigger_key"], name="escalation_once_per_trigger")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({'resolved' if self.resolved_at else 'open'})"

    def delete(self, *args, **kwargs):
        raise PermissionError("Escalations are history; resolve them instead of deleting them.")

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class DispatchAcknowledgement(models.Model):
    """The technician saw the dispatch and took the job; one per dispatch (its state transition)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="dispatch_acknowledgements")
    technician = models.ForeignKey(
        "technicians.Technician", on_delete=models.PROTECT, null=True, blank=True, related_name="acknowledgements"
    )
    # The ticket's transition into DISPATCHED that this acknowledges: a re-dispatch is a new
    # transition and needs a new acknowledgement.
    dispatch_transition = models.OneToOneField(
        "tickets.StateTransition", on_delete=models.PROTECT, related_name="acknowledgement"
    )
    acknowledged_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=200)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["acknowledged_at", "id"]

    def __str__(self) -> str:
        return f"{self.technician or 'technician'} acknowledged {self.acknowledged_at:%Y-%m-%d %H:%M}"


class Departure(models.Model):
    """The technician set off to the site ("on my way"), with the arrival estimate kept current."""

    class OriginSource(models.TextChoices):
        DEVICE = "DEVICE", "Reported location"
        PREVIOUS_SITE = "PREVIOUS_SITE", "Previous job's site"
        HOME_BASE = "HOME_BASE", "Home base"
        REPORTED_ETA = "REPORTED_ETA", "Technician's own estimate"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="departures")
    technician = models.ForeignKey(
        "technicians.Technician", on_delete=models.PROTECT, null=True, blank=True, related_name="departures"
    )
    dispatch_transition = models.OneToOneField(
        "tickets.StateTransition", on_delete=models.PROTECT, related_name="departure"
    )
    departed_at = models.DateTimeField()
    # {"lat", "lng"} the estimate started from (empty when the technician gave minutes only).
    origin = models.JSONField(default=dict, blank=True)
    origin_source = models.CharField(max_length=16, choices=OriginSource.choices)
    # The latest arrival estimate, and the one the customer was last told: a delay notice goes
    # out only when the first runs later than the second by more than the configured margin.
    eta_at = models.DateTimeField()
    notified_eta_at = models.DateTimeField()
    delay_notices = models.PositiveSmallIntegerField(default=0)
    recorded_by = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["departed_at", "id"]

    def __str__(self) -> str:
        return f"{self.technician or 'technician'} on the way, ETA {self.eta_at:%H:%M}"


class CustomerNotice(models.Model):
    """One automatic message to the customer for one occasion; the unique key keeps it to one."""

    class Kind(models.TextChoices):
        PROPOSAL = "PROPOSAL", "Proposed windows"
        PROPOSAL_REMINDER = "PROPOSAL_REMINDER", "Proposal reminder"
        BOOKING = "BOOKING", "Booking confirmation"
        REMINDER = "REMINDER", "Day-before reminder"
        ON_MY_WAY = "ON_MY_WAY", "On my way"
        DELAY = "DELAY", "Delay notice"
        REPLY_HELP = "REPLY_HELP", "Reply not understood"
        REPLY_UNAVAILABLE = "REPLY_UNAVAILABLE", "Chosen window no longer available"
        ALREADY_BOOKED = "ALREADY_BOOKED", "Already booked"
        EMERGENCY_DISPATCH = "EMERGENCY_DISPATCH", "Emergency: who is coming"
        QUESTION_REMINDER = "QUESTION_REMINDER", "Question not answered"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="customer_notices")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The occasion: a proposal, appointment, departure or inbound message id (plus a counter or
    # a start time where one thing can warrant several notices).
    occasion = models.CharField(max_length=120)
    # Null when the ticket has no usable phone or email: the occasion still counts as handled.
    message = models.ForeignKey(
        "messaging.OutboundMessage", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(default=_timezone.now)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["kind", "occasion"], name="customer_notice_once")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.channel or 'not sent'})"
