"""Closeout: what a job must leave behind (templates, evidence, checklist), what it costs (labor,
parts, invoice draft) and the record it ends with (closeout packet); plus the autonomy pauses."""

from __future__ import annotations

import uuid
from datetime import time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# What an incident template may ask intake to collect (IncidentTemplate.intake_needs).
INTAKE_NEEDS = (
    ("access", "How the technician gets in (who to ask for, a gate code, opening hours)"),
    ("time_window", "When someone will be there"),
)
# The largest crew and the longest run of days a job type may ask for.
MAX_CREW_SIZE = 4
MAX_JOB_DAYS = 5

DURATION_REFUSED = "A job type needs a typical duration of at least 1 minute: the slot engine books this much time."


class IncidentTemplate(models.Model):
    """Per incident type: required evidence and checklist keys, risk flag, typical duration."""

    incident_type = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=20, default="1.0.0")
    required_evidence_keys = models.JSONField(default=list)
    required_checklist_keys = models.JSONField(default=list)
    # High-risk work may not be closed out by an agent: it needs a human's review.
    high_risk = models.BooleanField(default=False)
    # The slot engine books each job of this type for this long: zero would have it fall back to a
    # guess, so a template must say how long the work takes (the database refuses zero too).
    default_duration_minutes = models.PositiveIntegerField(
        "typical duration (minutes)",
        default=90,
        validators=[MinValueValidator(1, message=DURATION_REFUSED)],
        help_text="How long a job of this type usually takes on site; the slot engine books this much time.",
    )
    # A heavy door or a two-person install needs several technicians at once; a storefront
    # replacement runs over consecutive working days. The slot engine books the whole crew, the
    # same crew every day, at one start.
    crew_size = models.PositiveSmallIntegerField(
        "technicians needed",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CREW_SIZE)],
        help_text=f"How many technicians the job needs at once (1–{MAX_CREW_SIZE}).",
    )
    days = models.PositiveSmallIntegerField(
        "working days",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_JOB_DAYS)],
        help_text=f"Consecutive working days the job takes, the duration each day (1–{MAX_JOB_DAYS}).",
    )
    # What a visit for this job type bills for getting there; empty means the company's default.
    trip_charge_cents = models.PositiveBigIntegerField("trip charge (cents)", null=True, blank=True)
    # Words in a customer's message that point at this incident type (used by intake).
    keywords = models.JSONField(default=list, blank=True)
    # What intake asks a customer for, beyond the address and the problem, before a ROUTINE job of
    # this type is schedulable: "access" (how the technician gets to the door) and/or
    # "time_window" (when someone will be there). An urgent job goes on without them.
    intake_needs = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["incident_type"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(default_duration_minutes__gte=1),
                name="incident_template_duration_positive",
                violation_error_message=DURATION_REFUSED,
            ),
            models.CheckConstraint(
                condition=models.Q(crew_size__gte=1, crew_size__lte=MAX_CREW_SIZE), name="incident_crew_size_1_4"
            ),
            models.CheckConstraint(condition=models.Q(days__gte=1, days__lte=MAX_JOB_DAYS), name="incident_days_1_5"),
        ]

    def __str__(self) -> str:
        return self.name or self.incident_type


# --- Evidence ---------------------------------------------------------------------------------


class EvidenceKind(models.TextChoices):
    PHOTO = "PHOTO", "Photo"
    NOTE = "NOTE", "Note"
    SIGNATURE = "SIGNATURE", "Signature"
    DOCUMENT = "DOCUMENT", "Document"
    VIDEO = "VIDEO", "Video"
    AUDIO = "AUDIO", "Audio"
    OTHER = "OTHER", "Other"


class EvidenceLocked(PermissionError):
    """Raised on any attempt to change or delete evidence of a closed ticket."""


class EvidenceQuerySet(models.QuerySet):
    """Bulk writes obey the same rule as single rows: locked evidence never changes again."""

    def update(self, **kwargs):
        # The one bulk write allowed on locked rows is the lock itself (idempotent).
        if kwargs != {"is_locked": True} and self.filter(is_locked=True).exists():
            raise EvidenceLocked("Evidence of a closed ticket is immutable.")
        return super().update(**kwargs)

    def delete(self):
        if self.filter(is_locked=True).exists():
            raise EvidenceLocked("Evidence of a closed ticket is immutable.")
        return super().delete()


def evidence_upload_path(instance: Evidence, filename: str) -> str:
    """evidence/<ticket>/<evidence id>.<ext>: names never collide and never carry user input."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"evidence/{instance.ticket_id}/{instance.id}.{extension}"


class Evidence(models.Model):
    """A photo, note, signature or document a job left behind, by URI or as a stored file."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=16, choices=EvidenceKind.choices)
    # The template requirement this item satisfies (e.g. photo_after_latched_alignment).
    evidence_key = models.CharField(max_length=120, blank=True, db_index=True)
    uri = models.CharField(max_length=1000)
    file = models.FileField(upload_to=evidence_upload_path, max_length=300, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    # What the client said the checksum is (free form, as the contract has it).
    checksum = models.CharField(max_length=200, blank=True)
    # What the server computed over the stored bytes (uploads only).
    sha256 = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200)
    created_by_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    is_locked = models.BooleanField(default=False)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "evidence"
        indexes = [models.Index(fields=["ticket", "created_at"], name="evidence_ticket_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.evidence_key or self.uri}"

    def save(self, *args, **kwargs):
        # A forced insert is a new item (evidence_add): there is no stored row to ask.
        if not kwargs.get("force_insert") and self.stored_locked():
            raise EvidenceLocked("Evidence of a closed ticket is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_locked or self.stored_locked():
            raise EvidenceLocked("Evidence of a closed ticket is immutable.")
        return super().delete(*args, **kwargs)

    def stored_locked(self) -> bool:
        """Whether the stored row is locked: it decides, not this instance, which may have been
        read before the close."""
        return Evidence.objects.filter(pk=self.pk, is_locked=True).exists()


class ChecklistResult(models.Model):
    """One completion submission (tech.complete, closeout.candidate or a dispatcher's manual
    bypass): the checklist as answered and what the evidence gate said about it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="checklist_results")
    tool = models.CharField(max_length=60)
    checklist_status = models.JSONField(default=dict, blank=True)
    no_signature_reason = models.TextField(blank=True)
    evidence_refs = models.JSONField(default=list, blank=True)
    # The gate's evaluation at submission time (for a bypass: what was bypassed).
    gate = models.JSONField(default=dict, blank=True)
    bypass_rationale = models.TextField(blank=True)
    submitted_by = models.CharField(max_length=200)
    submitted_by_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.tool} by {self.submitted_by}"

    @property
    def is_bypass(self) -> bool:
        return bool(self.bypass_rationale)


class QaReview(models.Model):
    """A QA verdict on completed work. FAIL rows are kept even though the request is refused."""

    class Result(models.TextChoices):
        PASS = "PASS", "Pass"
        FAIL = "FAIL", "Fail"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="qa_reviews")
    result = models.CharField(max_length=4, choices=Result.choices)
    notes = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(help_text="When QA says the review happened.")
    reviewer = models.CharField(max_length=200)
    reviewer_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "QA review"

    def __str__(self) -> str:
        return f"QA {self.result}"


class EvidenceException(models.Model):
    """Permission to close without some required evidence, with who granted it and why."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="evidence_exceptions")
    reason = models.TextField()
    # Evidence keys waived; empty means every required evidence key of the template.
    evidence_refs = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.CharField(max_length=200)
    granted_by_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Exception: {', '.join(self.evidence_refs) or 'all evidence'}"

    def is_active(self, at) -> bool:
        return self.expires_at is None or self.expires_at > at


# --- Labor, parts, invoice ----------------------------------------------------------------------


class PriceBookItem(models.Model):
    """A part or fixed-price item the company sells, at its current price."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit_cents = models.PositiveBigIntegerField()
    taxable = models.BooleanField(default=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} · {self.name}"


class LaborEntry(models.Model):
    """Time a technician spent on a job; no rate means the company's standard labor rate."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="labor_entries")
    technician = models.ForeignKey(
        "technicians.Technician", on_delete=models.PROTECT, null=True, blank=True, related_name="labor_entries"
    )
    minutes = models.PositiveIntegerField()
    rate_cents = models.PositiveBigIntegerField("hourly rate (cents)", null=True, blank=True)
    description = models.CharField(max_length=300, blank=True)
    # When the work started (it decides the rate class); empty means when it was logged.
    worked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "labor entries"

    def __str__(self) -> str:
        return f"{self.minutes} min {self.description}".strip()


class PartUsage(models.Model):
    """A part used on a job; its price comes from the price book unless one is given here."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="part_usages")
    price_book_item = models.ForeignKey(
        PriceBookItem, on_delete=models.PROTECT, null=True, blank=True, related_name="usages"
    )
    description = models.CharField(max_length=300, blank=True)
    quantity = models.DecimalField(max_digits=10, decimal_places=2, default=1)
    unit_cents = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description or self.price_book_item}"


class BillingSettings(models.Model):
    """The company's billing rules, one row edited in the admin: who bills (the invoice header),
    the standard labor rate and the multipliers of the other rate classes, business hours (work
    outside them is after-hours), the default trip charge and the payment terms."""

    company_name = models.CharField(max_length=200, blank=True, help_text="Empty: the site-wide company name.")
    company_address = models.TextField(blank=True)
    company_phone = models.CharField(max_length=40, blank=True)
    company_email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3, default="USD")
    standard_rate_cents = models.PositiveBigIntegerField("standard hourly rate (cents)", default=12500)
    after_hours_multiplier = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("1.50"))
    emergency_multiplier = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("2.00"))
    business_hours_start = models.TimeField(default=time(8, 0))
    business_hours_end = models.TimeField(default=time(18, 0))
    weekends_after_hours = models.BooleanField("weekends bill as after-hours", default=True)
    default_trip_charge_cents = models.PositiveBigIntegerField("default trip charge (cents)", default=0)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    invoice_terms = models.TextField(blank=True, help_text="Printed at the foot of every invoice.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "billing settings"
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return "Billing settings"

    def save(self, *args, **kwargs):
        self.pk = 1  # one row: the company's
        super().save(*args, **kwargs)

    def clean(self):
        # Hours that end before they start would bill every job after-hours; a multiplier under 1
        # would bill after-hours and emergency work below the standard rate.
        errors = {}
        if self.business_hours_start >= self.business_hours_end:
            errors["business_hours_end"] = "Business hours must end after they start."
        for name in ("after_hours_multiplier", "emergency_multiplier"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                errors[name] = "A multiplier is 1.00 or more: these rates are never below the standard one."
        if errors:
            raise ValidationError(errors)


class TaxRate(models.Model):
    """Sales tax of one jurisdiction, labor and parts separately, in basis points (875 = 8.75%).
    A site names its jurisdiction; a site that names none is taxed at the default row."""

    jurisdiction = models.CharField(max_length=40, unique=True, help_text="Code, e.g. CA-ALAMEDA.")
    name = models.CharField(max_length=120)
    labor_bps = models.PositiveIntegerField("labor tax (basis points)", default=0)
    parts_bps = models.PositiveIntegerField("parts tax (basis points)", default=0)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["jurisdiction"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="tax_one_default")
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction} · {self.name}"


class InvoiceLocked(PermissionError):
    """Raised on any attempt to change an approved or superseded invoice or its lines."""


class InvoiceQuerySet(models.QuerySet):
    """Bulk writes obey the rule single rows do: approved and superseded invoices never change."""

    def update(self, **kwargs):
        if self.exclude(status="DRAFT").exists():
            raise InvoiceLocked("An approved invoice never changes: issue a new version.")
        return super().update(**kwargs)

    def delete(self):
        raise InvoiceLocked("Invoices are never deleted: a correction is a new version.")


class Invoice(models.Model):
    """One version of a job's invoice; amounts are integer cents in one currency. A draft is
    edited by finance, then approved: from then on it never changes, and a correction is a new
    version that supersedes it."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        APPROVED = "APPROVED", "Approved"
        SUPERSEDED = "SUPERSEDED", "Superseded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, unique=True)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    currency = models.CharField(max_length=3, default="USD")
    labor_cents = models.BigIntegerField(default=0)
    parts_cents = models.BigIntegerField(default=0)
    fees_cents = models.BigIntegerField(default=0)
    subtotal_cents = models.BigIntegerField(default=0)
    labor_tax_cents = models.BigIntegerField(default=0)
    parts_tax_cents = models.BigIntegerField(default=0)
    tax_cents = models.BigIntegerField(default=0)
    total_cents = models.BigIntegerField(default=0)
    tax_jurisdiction = models.CharField(max_length=40, blank=True)
    labor_tax_bps = models.PositiveIntegerField(default=0)
    parts_tax_bps = models.PositiveIntegerField(default=0)
    nte_cents = models.BigIntegerField(null=True, blank=True)
    exceeds_nte = models.BooleanField(default=False)
    # The approvals (NTE increases, proposals) this invoice relies on.
    approval_refs = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=200, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    # The customer-facing PDF as approved (drafts are rendered on request).
    pdf = models.FileField(max_length=300, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "version"], name="invoice_ticket_version_unique"),
            # At most one invoice of a job is current (a draft or the approved one).
            models.UniqueConstraint(
                fields=["ticket"], condition=~models.Q(status="SUPERSEDED"), name="invoice_one_current_per_ticket"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, **kwargs):
        # The stored row decides: an approved invoice changes only to become superseded, and a
        # superseded one never again.
        if not kwargs.get("force_insert") and self.pk is not None:
            stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            fields = set(kwargs.get("update_fields") or ())
            superseding = (
                stored == self.Status.APPROVED
                and self.status == self.Status.SUPERSEDED
                and fields
                and fields <= {"status", "superseded_at", "updated_at"}
            )
            if stored in (self.Status.APPROVED, self.Status.SUPERSEDED) and not superseding:
                raise InvoiceLocked("An approved invoice never changes: issue a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise InvoiceLocked("Invoices are never deleted: a correction is a new version.")

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class InvoiceLineQuerySet(models.QuerySet):
    """Bulk writes obey the rule single rows do: only a draft's lines change."""

    def _refuse_locked(self):
        if self.exclude(invoice__status=Invoice.Status.DRAFT).exists():
            raise InvoiceLocked("Lines of an approved invoice never change.")

    def update(self, **kwargs):
        self._refuse_locked()
        return super().update(**kwargs)

    def delete(self):
        self._refuse_locked()
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        invoice_ids = {obj.invoice_id for obj in objs}
        if Invoice.objects.filter(pk__in=invoice_ids).exclude(status="DRAFT").exists():
            raise InvoiceLocked("Lines of an approved invoice never change.")
        return super().bulk_create(objs, *args, **kwargs)


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        LABOR = "LABOR", "Labor"
        PART = "PART", "Part"
        FEE = "FEE", "Fee"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The price book SKU, the labor rate class (LABOR-STANDARD, ...) or the fee's code.
    item_code = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=10, decimal_places=2)
    unit_cents = models.BigIntegerField()
    total_cents = models.BigIntegerField()
    taxable = models.BooleanField(default=False)
    # What an accounting import books the line's tax under, e.g. CA-ALAMEDA:PARTS or NONTAX.
    tax_code = models.CharField(max_length=60, blank=True)

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.description}"

    def save(self, *args, **kwargs):
        self._refuse_locked()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_locked()
        return super().delete(*args, **kwargs)

    def _refuse_locked(self):
        if Invoice.objects.filter(pk=self.invoice_id).exclude(status=Invoice.Status.DRAFT).exists():
            raise InvoiceLocked("Lines of an approved invoice never change.")


# --- Closure and closeout packet ---------------------------------------------------------------


class Closure(models.Model):
    """What a close fixed when it committed: the id its packet will carry, whether it was forced,
    the reason and the overrides. Also the packet worker's outbox: written in the close's own
    transaction with `packet_compiled_at` empty, and claimed by the worker that compiles the packet."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.OneToOneField("tickets.Ticket", on_delete=models.PROTECT, related_name="closure")
    packet_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    forced = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    overrides = models.JSONField(default=list, blank=True)
    closed_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Empty while the packet is still to compile; set by the worker's claim.
    packet_compiled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweep reads only the pending rows, oldest first, however many closes came before.
            models.Index(
                fields=["created_at"],
                condition=models.Q(packet_compiled_at__isnull=True),
                name="closure_packet_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Closure of {self.ticket_id}{' (forced)' if self.forced else ''}"


def packet_file_path(instance: CloseoutPacket, filename: str) -> str:
    """packets/<ticket>/v<version>-<packet id>.<ext>: one name per version, never reused."""
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"packets/{instance.ticket_id}/v{instance.version}-{instance.id}.{extension}"


class CloseoutPacket(models.Model):
    """One version of a job's closeout record: the JSON document, its sha256 (of the canonical
    JSON, stored byte for byte beside it) and the PDF rendered from it. A new version is compiled
    when the job closes, when its invoice is approved and on request; old versions stay."""

    class PdfStatus(models.TextChoices):
        PENDING = "PENDING", "Rendering"
        READY = "READY", "Ready"
        FAILED = "FAILED", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="closeout_packets")
    version = models.PositiveIntegerField(default=1)
    # Why this version was compiled ("Closed", "Invoice INV-… approved", "Re-rendered: …").
    reason = models.CharField(max_length=300, blank=True)
    packet = models.JSONField()
    sha256 = models.CharField(max_length=64, db_index=True)
    # The audit trail up to this event is in the packet.
    through_seq = models.BigIntegerField(null=True, blank=True)
    forced = models.BooleanField(default=False)
    json_file = models.FileField(upload_to=packet_file_path, max_length=300, blank=True)
    pdf_file = models.FileField(upload_to=packet_file_path, max_length=300, blank=True)
    pdf_status = models.CharField(max_length=8, choices=PdfStatus.choices, default=PdfStatus.PENDING)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_pages = models.PositiveIntegerField(null=True, blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    pdf_error = models.TextField(blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["ticket", "version"], name="packet_ticket_version_unique")]
        indexes = [
            # The render sweep reads only the packets whose PDF is still to make.
            models.Index(fields=["created_at"], condition=models.Q(pdf_status="PENDING"), name="packet_pdf_pending")
        ]

    def __str__(self) -> str:
        return f"Packet v{self.version} {self.sha256[:12]}"


# --- Autonomy controls -------------------------------------------------------------------------


class AutonomyScope(models.TextChoices):
    GLOBAL = "GLOBAL", "Global"
    INCIDENT = "INCIDENT", "Incident type"
    TICKET = "TICKET", "Ticket"


class AutonomyPause(models.Model):
    """A dispatcher's stop on agent closeout actions. Never deleted: rollback stamps the row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope_type = models.CharField(max_length=10, choices=AutonomyScope.choices)
    incident_type = models.CharField(max_length=64, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="autonomy_pauses"
    )
    reason = models.TextField(blank=True)
    paused_by = models.CharField(max_length=200)
    paused_by_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.CharField(max_length=200, blank=True)
    rollback_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["scope_type", "rolled_back_at"], name="autonomy_scope_active")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope_type="GLOBAL", ticket__isnull=True, incident_type="")
                    | models.Q(scope_type="INCIDENT", ticket__isnull=True) & ~models.Q(incident_type="")
                    | models.Q(scope_type="TICKET", ticket__isnull=False, incident_type="")
                ),
                name="autonomy_pause_scope_fields",
            )
        ]

    def __str__(self) -> str:
        target = {"GLOBAL": "everything", "INCIDENT": self.incident_type, "TICKET": str(self.ticket_id)}[
            self.scope_type
        ]
        return f"Pause {target}{' (rolled back)' if self.rolled_back_at else ''}"

    @property
    def is_active(self) -> bool:
        return self.rolled_back_at is None
