"""The shared schema: customers, sites, tickets with their state machine, and the audit trail.

Models declare; `services.py` acts. Transition methods below only change fields in memory:
they never save, send or enqueue. The executor in `services.py` is their only caller.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Upper
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from dispatch.common import geocode
from dispatch.common.actors import ActorType
from dispatch.common.languages import ENGLISH, LANGUAGES
from dispatch.common.roles import Role

from .states import PIPELINE_STATES, TERMINAL_STATES, TicketState

ANY_OPEN = [s for s in TicketState if s not in (TicketState.CLOSED, TicketState.CANCELLED)]


class Priority(models.TextChoices):
    EMERGENCY = "EMERGENCY", "Emergency"
    URGENT = "URGENT", "Urgent"
    ROUTINE = "ROUTINE", "Routine"


class Account(models.Model):
    """A customer company or household."""

    class Kind(models.TextChoices):
        COMPANY = "COMPANY", "Company"
        HOUSEHOLD = "HOUSEHOLD", "Household"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COMPANY)
    # Opened by intake for an unknown sender; a dispatcher confirms or merges it.
    is_provisional = models.BooleanField(default=False)
    billing_email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A place where work happens: address, coordinates, timezone, access and hours."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField("state/province", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="US")
    lat = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    lng = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # How exact lat/lng are: travel estimates from a ZIP or city centroid are rough.
    geo_precision = models.CharField(
        "coordinates precision",
        max_length=16,
        blank=True,
        choices=geocode.PRECISION_CHOICES,
        help_text="How exact the coordinates are; empty: not known (typed in, or none).",
    )
    timezone = models.CharField(max_length=64, default="America/Los_Angeles")
    # Code of the service region technicians cover (matches technicians.Region.code).
    service_region = models.CharField(max_length=32, blank=True, db_index=True)
    access_instructions = models.TextField(blank=True)
    access_code = models.CharField(max_length=64, blank=True)
    hours = models.CharField(max_length=200, blank=True)
    # The sales-tax jurisdiction (closeout.TaxRate.jurisdiction); empty: the default rate.
    tax_jurisdiction = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} — {self.address_line1}, {self.city}"

    @property
    def address(self) -> str:
        parts = [self.address_line1, self.address_line2, self.city, f"{self.region} {self.postal_code}".strip()]
        return ", ".join(p for p in parts if p)


class Contact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contacts")
    site = models.ForeignKey(Site, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts")
    name = models.CharField(max_length=200)
    phone = models.CharField("phone (E.164)", max_length=20, blank=True, db_index=True)
    # Matched case-insensitively (contact_email_upper), as customers type addresses as they like.
    email = models.EmailField(blank=True)
    is_authorized_requester = models.BooleanField(default=True)
    is_approver = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(Upper("email"), name="contact_email_upper")]

    def __str__(self) -> str:
        return self.name


class Asset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="assets")
    name = models.CharField(max_length=200, help_text="What it is, e.g. 'Front entrance sliding door'.")
    make = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    serial = models.CharField(max_length=100, blank=True)
    warranty_until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return " ".join(p for p in (self.name, f"({self.make} {self.model})".replace("( )", "")) if p.strip())


PRIORITY_QUEUE_ORDER = (Priority.EMERGENCY, Priority.URGENT, Priority.ROUTINE)


def ticket_queue_rank(state: str, priority: str) -> int:
    """Where a ticket stands in the queue a dispatcher works: open before done, emergencies first,
    then along the pipeline (newest first within a rank, by created_at). Kept on the row by the
    executor, so the back office's list is one index scan at any size. Changing this formula
    needs a migration that recomputes the rows (see 0012_ticket_queue_rank)."""
    done = 1 if state in TERMINAL_STATES else 0
    urgency = PRIORITY_QUEUE_ORDER.index(priority) if priority in PRIORITY_QUEUE_ORDER else len(PRIORITY_QUEUE_ORDER)
    stage = PIPELINE_STATES.index(state) if state in PIPELINE_STATES else len(PIPELINE_STATES)
    return done * 10_000 + urgency * 100 + stage


class Ticket(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """A job, from first message to closeout. Its state moves only through the executor."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="tickets")
    # Found through ticket_site_incident (site first): no index of its own.
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="tickets", db_index=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets")
    state = FSMField(default=TicketState.NEW, choices=TicketState.choices, protected=True, max_length=40)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    incident_type = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    customer_phone = models.CharField(max_length=20, blank=True)
    customer_email = models.EmailField(blank=True)
    # The language the customer writes in (read by intake); messages to them are written in it.
    customer_language = models.CharField(max_length=8, choices=LANGUAGES, default=ENGLISH)
    nte_cents = models.PositiveBigIntegerField("not-to-exceed (cents)", null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    identity_confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    classification_confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    # A string reference keeps `tickets` free of imports from the phase apps.
    # Found through ticket_tech_state (technician first): no index of its own.
    assigned_tech = models.ForeignKey(
        "technicians.Technician",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        db_index=False,
    )
    version = models.PositiveIntegerField(default=0)
    # The seq of this ticket's last StateTransition row. Kept on the locked row so the executor
    # numbers new transitions without another query on every change.
    transition_seq = models.PositiveIntegerField(default=0, editable=False)
    # The head of this ticket's audit chain (seq and hash of its last AuditEvent) and a keyed
    # seal over both. Kept on the row the executor already locks and saves, so appending to
    # the chain costs no extra lock or query, and rewinding the head by SQL shows.
    audit_seq = models.PositiveIntegerField(default=0, editable=False)
    audit_hash = models.CharField(max_length=64, blank=True, editable=False)
    audit_seal = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # ticket_queue_rank(state, priority), written by the executor with every change of either.
    queue_rank = models.PositiveIntegerField(default=200, editable=False)
    # When the ticket was closed or cancelled (null while open), written by the executor: "done
    # lately" is this, not updated_at, which an invoice approved months later also moves.
    done_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The admin adds -id to make its order total: the index carries it too.
            models.Index(fields=["queue_rank", "-created_at", "-id"], name="ticket_queue_order"),
            models.Index(fields=["state", "priority"], name="ticket_state_priority"),
            # The dashboard's "done lately" tiles: closed or cancelled since a date.
            models.Index(fields=["state", "done_at"], name="ticket_state_done"),
            models.Index(fields=["assigned_tech", "state"], name="ticket_tech_state"),
            models.Index(fields=["customer_phone", "created_at"], name="ticket_phone_created"),
            # Email is matched case-insensitively (`customer_email__iexact` is UPPER(...) = UPPER(...)).
            models.Index(Upper("customer_email"), "created_at", name="ticket_email_upper_created"),
            models.Index(fields=["site", "incident_type", "created_at"], name="ticket_site_incident"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(identity_confidence__isnull=True) | models.Q(identity_confidence__lte=100),
                name="ticket_identity_confidence_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(classification_confidence__isnull=True)
                | models.Q(classification_confidence__lte=100),
                name="ticket_classification_confidence_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.short_ref} · {self.summary[:60]}"

    @property
    def short_ref(self) -> str:
        return f"RD-{str(self.id)[:8].upper()}"

    # --- the transition graph (the design's table, grouped by target state) ----------------
    # Creation may also put a ticket straight into NEW, TRIAGED or READY_TO_SCHEDULE
    # (states.CREATION_STATES); that is not a transition, so it is not declared here.

    @transition(field=state, source=[TicketState.NEW], target=TicketState.NEEDS_INFO)
    def to_needs_info(self) -> None:
        pass

    @transition(
        field=state,
        source=[TicketState.NEW, TicketState.NEEDS_INFO, TicketState.APPROVAL_REQUIRED],
        target=TicketState.TRIAGED,
    )
    def to_triaged(self) -> None:
        pass

    @transition(
        field=state, source=[TicketState.TRIAGED, TicketState.IN_PROGRESS], target=TicketState.APPROVAL_REQUIRED
    )
    def to_approval_required(self) -> None:
        pass

    @transition(
        field=state,
        source=[
            TicketState.TRIAGED,
            TicketState.APPROVAL_REQUIRED,
            TicketState.PENDING_CUSTOMER_CONFIRMATION,
            TicketState.ON_HOLD,
        ],
        target=TicketState.READY_TO_SCHEDULE,
    )
    def to_ready_to_schedule(self) -> None:
        pass

    @transition(
        field=state,
        source=[TicketState.READY_TO_SCHEDULE, TicketState.PENDING_CUSTOMER_CONFIRMATION],
        target=TicketState.SCHEDULE_PROPOSED,
    )
    def to_schedule_proposed(self) -> None:
        pass

    @transition(
        field=state,
        source=[
            TicketState.SCHEDULE_PROPOSED,
            TicketState.PENDING_CUSTOMER_CONFIRMATION,
            TicketState.DISPATCHED,
            TicketState.ON_SITE,
            TicketState.IN_PROGRESS,
            TicketState.ON_HOLD,
        ],
        target=TicketState.SCHEDULED,
    )
    def to_scheduled(self) -> None:
        pass

    @transition(
        field=state,
        source=[TicketState.READY_TO_SCHEDULE, TicketState.SCHEDULE_PROPOSED, TicketState.SCHEDULED],
        target=TicketState.PENDING_CUSTOMER_CONFIRMATION,
    )
    def to_pending_customer_confirmation(self) -> None:
        pass

    # From TRIAGED only as an emergency bypass; the dispatch service enforces that rule.
    @transition(field=state, source=[TicketState.TRIAGED, TicketState.SCHEDULED], target=TicketState.DISPATCHED)
    def to_dispatched(self) -> None:
        pass

    @transition(field=state, source=[TicketState.DISPATCHED], target=TicketState.ON_SITE)
    def to_on_site(self) -> None:
        pass

    # From VERIFIED or INVOICED this is a reopen.
    @transition(
        field=state,
        source=[
            TicketState.APPROVAL_REQUIRED,
            TicketState.ON_SITE,
            TicketState.ON_HOLD,
            TicketState.VERIFIED,
            TicketState.INVOICED,
        ],
        target=TicketState.IN_PROGRESS,
    )
    def to_in_progress(self) -> None:
        pass

    @transition(
        field=state,
        source=[TicketState.DISPATCHED, TicketState.ON_SITE, TicketState.IN_PROGRESS],
        target=TicketState.ON_HOLD,
    )
    def to_on_hold(self) -> None:
        pass

    @transition(field=state, source=[TicketState.IN_PROGRESS], target=TicketState.COMPLETED_PENDING_VERIFICATION)
    def to_completed_pending_verification(self) -> None:
        pass

    @transition(field=state, source=[TicketState.COMPLETED_PENDING_VERIFICATION], target=TicketState.VERIFIED)
    def to_verified(self) -> None:
        pass

    @transition(field=state, source=[TicketState.VERIFIED], target=TicketState.INVOICED)
    def to_invoiced(self) -> None:
        pass

    # From COMPLETED_PENDING_VERIFICATION only as a force close with an override.
    @transition(
        field=state,
        source=[TicketState.COMPLETED_PENDING_VERIFICATION, TicketState.VERIFIED, TicketState.INVOICED],
        target=TicketState.CLOSED,
    )
    def to_closed(self) -> None:
        pass

    @transition(field=state, source=ANY_OPEN, target=TicketState.CANCELLED)
    def to_cancelled(self) -> None:
        pass


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are append-only: bulk updates and deletes are refused too."""

    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only; they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are append-only; they cannot be deleted.")


class AuditEvent(models.Model):
    """One row per state-changing action. Never updated, never deleted; rows form hash chains.

    A ticket's events form that ticket's chain (`seq` 1, 2, ...; head on the ticket row). The
    event that opens a ticket, and every event about no ticket, is also a link of one of the
    audit lanes (`lane`, `lane_seq`; heads in AuditChainHead), so erasing a whole ticket with
    all its events still leaves a gap in a lane.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Found through audit_ticket_seq_unique (ticket first): no index of its own.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events", db_index=False
    )
    # Position in the ticket's chain: gapless from 1, so a deleted row shows. Null without a ticket.
    seq = models.PositiveIntegerField(null=True, blank=True)
    # Position in a lane, for ticket openings and events about no ticket; null otherwise.
    lane = models.PositiveSmallIntegerField(null=True, blank=True)
    lane_seq = models.PositiveBigIntegerField(null=True, blank=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.CHOICES)
    actor_id = models.CharField(max_length=200)
    actor_role = models.CharField(max_length=32, choices=Role.choices)
    tool_name = models.CharField(max_length=100)
    request_id = models.CharField(max_length=100, blank=True)
    correlation_id = models.CharField(max_length=200, blank=True)
    trace_id = models.CharField(max_length=100, blank=True)
    before_state = models.CharField(max_length=40, blank=True)
    after_state = models.CharField(max_length=40, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    prev_hash = models.CharField(max_length=64)
    # Unique through audit_hash_unique: a constraint, not unique=True, which on PostgreSQL also
    # builds a pattern-matching index nobody queries.
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The back office's audit list, newest first, and its tool filter over a million rows.
            models.Index(fields=["-created_at", "-id"], name="audit_recent"),
            models.Index(fields=["tool_name", "-created_at", "-id"], name="audit_tool_recent"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "seq"], name="audit_ticket_seq_unique"),
            models.UniqueConstraint(fields=["lane", "lane_seq"], name="audit_lane_seq_unique"),
            models.UniqueConstraint(fields=["hash"], name="audit_hash_unique"),
        ]

    def __str__(self) -> str:
        where = f"#{self.seq}" if self.ticket_id else f"lane {self.lane} #{self.lane_seq}"
        return f"{where} {self.tool_name} {self.before_state}→{self.after_state}"

    # An event read from the database, or already saved once, is never written again.
    written = False

    def save(self, *args, **kwargs):
        if self.written:
            raise PermissionError("Audit events are append-only; an existing event cannot be saved again.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)
        self.written = True

    @classmethod
    def from_db(cls, db, field_names, values):
        event = super().from_db(db, field_names, values)
        event.written = True
        return event

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only; they cannot be deleted.")


class AuditChainHead(models.Model):
    """The tip of one audit lane. Locking this row serialises appends to that lane only."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    # Keyed digest of (lane, last_seq, last_hash): rewinding the head to hide deleted tail
    # events would need the chain key, not just SQL access.
    seal = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit lane {self.id} at #{self.last_seq}"


class StateTransition(models.Model):
    """One row per state change; `seq` orders the changes of one ticket (check-in writes two)."""

    # Found through transition_ticket_seq_unique (ticket first): no index of its own.
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="transitions", db_index=False)
    seq = models.PositiveIntegerField()
    from_state = models.CharField(max_length=40, blank=True, help_text="Blank when the ticket was created.")
    to_state = models.CharField(max_length=40)
    audit_event = models.ForeignKey(AuditEvent, on_delete=models.PROTECT, related_name="transitions")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["ticket", "seq"]
        constraints = [models.UniqueConstraint(fields=["ticket", "seq"], name="transition_ticket_seq_unique")]

    def __str__(self) -> str:
        return f"{self.from_state or '(created)'} → {self.to_state}"


class Approval(models.Model):
    """A change a technician asked for (NTE increase, proposal) waiting on an approver."""

    class Kind(models.TextChoices):
        NTE_INCREASE = "NTE_INCREASE", "NTE increase"
        PROPOSAL = "PROPOSAL", "Proposal"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        DENIED = "DENIED", "Denied"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="approvals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # Where the ticket goes back to when the approval is granted.
    return_state = models.CharField(max_length=40, choices=TicketState.choices)
    amount_cents = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=200)
    decided_by = models.CharField(max_length=200, blank=True)
    decision_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(status="PENDING"), name="approval_one_pending_per_ticket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class IdempotencyRecord(models.Model):
    """The stored answer to a command, so that a retried request replays instead of acting twice."""

    id = models.BigAutoField(primary_key=True)
    actor_id = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200)
    key = models.UUIDField()
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["actor_id", "endpoint", "key"], name="idempotency_actor_endpoint_key")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"
