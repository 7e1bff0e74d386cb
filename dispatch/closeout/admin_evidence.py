"""Evidence in the back office, and what a technician reports by phone. Imported by
dispatch/closeout/admin.py.

- The evidence list and page, read-only: a photo's thumbnail and its original as a download,
  never the stored file's own address (media is not served, and an S3 address would hand the
  bucket's object to the browser as it was uploaded).
- The file routes: a thumbnail shown inline, the original as an attachment. The one policy
  decides who gets them (evidence_visible: the office for any ticket; the admin site admits no
  technician), and anything else is the same 404.
- The ticket page's "Evidence and work" section: the photos, notes and files, the labor and
  parts logged, and the forms a dispatcher records a technician's phone call with. Each form
  posts to one view that calls the service the technician's own page calls (evidence_add,
  evidence_uploads_add, labor_add, part_add), which checks the role, the ticket's state and the
  input again and writes the audit event; the event says who reported it and by what means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from dispatch.common.actors import Actor
from dispatch.common.admin_base import ReadOnlyModelAdmin, actor_for_request
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.parsing import dollars_parse, uuid_parse, whole_number_parse, zone_or_default
from dispatch.technicians.models import Technician
from dispatch.tickets import catalog, policy
from dispatch.tickets.admin import TicketPanel, money, refusal_message, ticket_panels_register
from dispatch.tickets.commands import Command
from dispatch.tickets.models import Ticket

from .admin_common import actor_names, page_version, visible_ticket
from .evidence_files import evidence_file_response, evidence_thumbnail_response, file_refusal_response
from .gate import SIGNATURE_KEY, template_for
from .models import Evidence, EvidenceKind
from .selectors import evidence_visible, labor_and_parts, price_book_search
from .services import (
    EVIDENCE_ADD,
    LABOR_ADD,
    PART_ADD,
    evidence_add,
    evidence_closed_refusal,
    evidence_uploads_add,
    labor_add,
    part_add,
)

NOTE_PREFIX = "note_"  # a template key answered by a written note, as on the technician's page
PICTURE_KINDS = (EvidenceKind.PHOTO, EvidenceKind.SIGNATURE)
# How a technician's report reached the office; recorded with what it changed.
REPORTED_BY_PHONE = "phone"
# A refused form gets back what was typed (a file cannot be), up to this much of each field.
KEPT_FIELD_CHARS = 4000
PRICE_BOOK_CHOICES = 100  # the price book's search answers at most this many


def key_label(key: str) -> str:
    """'photo_before_door' -> 'Photo before door': a template key as a person reads it."""
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# --- the evidence list and page, and the file routes ----------------------------------------------


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "ticket", "kind", "evidence_key", "content_type", "is_locked", "created_by")
    list_filter = ("kind", "is_locked")
    search_fields = ("evidence_key", "uri", "sha256", "ticket__id")
    list_select_related = ("ticket",)
    date_hierarchy = "created_at"
    # The stored file's own field would link to its storage address (/media/..., or the bucket):
    # the page offers the routes below instead.
    exclude = ("file",)
    readonly_fields = ("preview", "file_link")

    @admin.display(description="picture")
    def preview(self, obj: Evidence):
        if not (obj.file and obj.kind in PICTURE_KINDS):
            return "—"
        return format_html(
            '<img class="rd-evidence-preview" src="{}" alt="{}">',
            reverse("admin:closeout_evidence_thumbnail", args=[obj.pk]),
            key_label(obj.evidence_key) or obj.get_kind_display(),
        )

    @admin.display(description="file")
    def file_link(self, obj: Evidence):
        if not obj.file:
            return "—"
        return format_html(
            '<a href="{}">Download the original</a> <span class="rd-muted">{} · {} bytes</span>',
            reverse("admin:closeout_evidence_file", args=[obj.pk]),
            obj.content_type,
            obj.size,
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "record/<str:ticket_id>/<slug:what>/",
                view(self.record_view),
                name="closeout_evidence_record",
            ),
            path("<path:object_id>/file/", view(self.file_download), name="closeout_evidence_file"),
            # The browser may keep a thumbnail (privately, for an hour): the ticket page shows the
            # same pictures on every visit. Originals and forms are never cached.
            path(
                "<path:object_id>/thumbnail/",
                view(self.thumbnail_view, cacheable=True),
                name="closeout_evidence_thumbnail",
            ),
            *super().get_urls(),
        ]

    def _visible(self, request, object_id) -> Evidence:
        if not self.has_view_permission(request):
            raise Http404("No such evidence.")
        try:
            return evidence_visible(actor_for_request(request), object_id)
        except DispatchError:
            raise Http404("No such evidence.") from None

    def file_download(self, request, object_id):
        """The stored original, as a download only (evidence_files.evidence_file_response)."""
        item = self._visible(request, object_id)
        if not item.file:
            raise Http404("No stored file for this evidence.")
        try:
            return evidence_file_response(item)
        except DispatchError as refusal:  # the file store cannot be reached, or lost the file
            return file_refusal_response(refusal)

    def thumbnail_view(self, request, object_id):
        """A picture's thumbnail, shown inline on the ticket page and here."""
        item = self._visible(request, object_id)
        try:
            return evidence_thumbnail_response(item)
        except DispatchError as refusal:
            return file_refusal_response(refusal)

    def record_view(self, request, ticket_id, what):
        return ticket_record(self, request, ticket_id, what)


# --- recording what a technician reported --------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One form's post: its fields, its files, the technician who reported it."""

    post: dict[str, str]
    files: list
    technician: Technician

    def text(self, name: str) -> str:
        return self.post.get(name, "").strip()

    @property
    def request(self) -> dict:
        """What the audit event keeps of the post, and that a dispatcher recorded it for someone."""
        return {
            **{name: value[:500] for name, value in self.post.items() if value.strip()},
            **({"file": [str(getattr(f, "name", ""))[:200] for f in self.files]} if self.files else {}),
            "reported_by": {"technician_id": str(self.technician.pk), "name": self.technician.display_name},
            "reported_via": REPORTED_BY_PHONE,
            "reason": f"Reported by {self.technician.display_name} by phone; recorded by dispatch on their behalf.",
        }

    @property
    def metadata(self) -> dict:
        return {"reported_by": {"technician_id": str(self.technician.pk), "name": self.technician.display_name}}


@dataclass(frozen=True)
class Recorder:
    """One of the section's forms: the command its service runs under, the fields it reads and
    how it calls the service; `run` answers what the dispatcher reads when it worked."""

    key: str
    label: str
    command: Command
    fields: tuple[str, ...]
    run: Callable[[Actor, Ticket, Report, int], str]
    files: bool = False


def _record_files(actor: Actor, ticket: Ticket, report: Report, version: int) -> str:
    key = report.text("evidence_key")
    if key.startswith(NOTE_PREFIX) or key == SIGNATURE_KEY:
        raise invalid_request("A photo or file cannot stand for a note or the signature.", field="evidence_key")
    kind = report.text("kind") or EvidenceKind.PHOTO
    if kind not in (EvidenceKind.PHOTO, EvidenceKind.DOCUMENT):
        raise invalid_request("Choose a photo or a document.", field="kind")
    items = evidence_uploads_add(
        actor=actor,
        ticket_id=ticket.pk,
        kind=kind,
        uploads=report.files,
        evidence_key="" if key == "other" else key,
        metadata=report.metadata,
        request=report.request,
        expected_version=version,
    )
    what = "photo" if kind == EvidenceKind.PHOTO else "file"
    return f"{len(items)} {what}{'s' if len(items) != 1 else ''} added for {report.technician.display_name}."


def _record_note(actor: Actor, ticket: Ticket, report: Report, version: int) -> str:
    key = report.text("evidence_key")
    evidence_add(
        actor=actor,
        ticket_id=ticket.pk,
        kind=EvidenceKind.NOTE,
        text=report.text("text"),
        evidence_key="" if key == "other" else key,
        metadata=report.metadata,
        request=report.request,
        expected_version=version,
    )
    return f"Note added for {report.technician.display_name}."


def _minutes(report: Report) -> int:
    """Hours and minutes as typed, in minutes; labor_add checks the total's range."""
    hours = whole_number_parse(report.post.get("hours"), field="hours")
    minutes = whole_number_parse(report.post.get("minutes"), field="minutes")
    if hours is None and minutes is None:
        raise invalid_request("How many minutes?", field="minutes")
    for name, value in (("hours", hours), ("minutes", minutes)):
        if value is not None and value < 0:
            raise invalid_request(f"'{name}' cannot be negative.", field=name)
    return (hours or 0) * 60 + (minutes or 0)


def _started(ticket: Ticket, report: Report) -> str | None:
    """When the work started, typed in the site's time (a datetime-local field), as ISO-8601;
    labor_add refuses a time in the future or before the job was opened."""
    raw = report.text("worked_at")
    if not raw:
        return None
    try:
        typed = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid_request("'worked_at' must be a date and time like 2026-03-02T09:15.", field="worked_at") from None
    if timezone.is_aware(typed):
        return typed.isoformat()
    return timezone.make_aware(typed, zone_or_default(ticket.site.timezone)).isoformat()


def _record_labor(actor: Actor, ticket: Ticket, report: Report, version: int) -> str:
    minutes = _minutes(report)
    labor_add(
        actor=actor,
        ticket_id=ticket.pk,
        minutes=minutes,
        technician_id=report.technician.pk,
        description=report.text("description"),
        worked_at=_started(ticket, report),
        request=report.request,
        expected_version=version,
    )
    return f"{time_spent(minutes)} logged for {report.technician.display_name}."


def _record_part(actor: Actor, ticket: Ticket, report: Report, version: int) -> str:
    usage = part_add(
        actor=actor,
        ticket_id=ticket.pk,
        sku=report.text("sku"),
        description=report.text("description"),
        unit_cents=dollars_parse(report.post.get("price"), field="price"),
        quantity=report.text("quantity") or "1",
        request=report.request,
        expected_version=version,
    ).result
    name = usage.description or (usage.price_book_item.name if usage.price_book_item else "Part")
    return f"{name} × {usage.quantity.normalize():f} added for {report.technician.display_name}."


RECORDERS = {
    recorder.key: recorder
    for recorder in (
        Recorder(
            "files",
            "Add photos or a file",
            EVIDENCE_ADD,
            ("evidence_key", "kind"),
            _record_files,
            files=True,
        ),
        Recorder("note", "Add a note", EVIDENCE_ADD, ("evidence_key", "text"), _record_note),
        Recorder("labor", "Log time", LABOR_ADD, ("hours", "minutes", "worked_at", "description"), _record_labor),
        Recorder("part", "Add a part", PART_ADD, ("sku", "description", "quantity", "price"), _record_part),
    )
}


def recorder_offered(recorder: Recorder, actor: Actor, ticket: Ticket) -> bool:
    """Whether the policy lets this user record this on this ticket now (and, for evidence, the
    ticket still takes it): the same answer the service would give."""
    if not policy.command_allowed(recorder.command, actor, ticket):
        return False
    return recorder.command is not EVIDENCE_ADD or evidence_closed_refusal(ticket) is None


def job_technicians(ticket: Ticket):
    """The active technicians on this job: the assigned one and, for a crew or multi-day job, its
    crew. Only they can report work on it (and their labor is billed at their rate)."""
    on_crew = Exists(catalog.crew_ticket_ids(OuterRef("pk")).filter(ticket_id=ticket.pk))
    return Technician.objects.filter(Q(pk=ticket.assigned_tech_id) | on_crew, is_active=True)


def reporting_technician(raw: str | None, ticket: Ticket) -> Technician:
    technician_id = uuid_parse((raw or "").strip(), field="technician_id") if (raw or "").strip() else None
    technician = job_technicians(ticket).filter(pk=technician_id).first() if technician_id else None
    if technician is None:
        raise invalid_request("Choose the technician on this job who reported it.", field="technician_id")
    return technician


def time_spent(minutes: int) -> str:
    """90 -> "1 h 30 min", 45 -> "45 min", 120 -> "2 h"."""
    hours, rest = divmod(minutes, 60)
    return " ".join(
        part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest or not hours else "") if part
    )


def _flash_key(ticket: Ticket) -> str:
    return f"closeout:record:{ticket.pk}"


def ticket_record(model_admin, request, ticket_id, what: str):
    """One of the section's forms, posted: run its service, come back to the ticket page. A
    refusal comes back with the form open, what was typed in it and the service's message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    ticket = visible_ticket(model_admin, request, ticket_id)
    recorder = RECORDERS.get(what)
    if recorder is None:
        raise Http404("No such form.")
    actor = actor_for_request(request, recorder.command)
    posted = {name: request.POST.get(name, "") for name in ("technician_id", *recorder.fields) if name in request.POST}
    try:
        version = page_version(request)
        report = Report(
            post={name: value for name, value in posted.items() if name != "technician_id"},
            files=request.FILES.getlist("file") if recorder.files else [],
            technician=reporting_technician(posted.get("technician_id"), ticket),
        )
        done = recorder.run(actor, ticket, report, version)
    except DispatchError as error:
        request.session[_flash_key(ticket)] = {
            "form": recorder.key,
            # What was typed goes back into the form (the session holds no megabyte of it).
            "values": {name: value[:KEPT_FIELD_CHARS] for name, value in posted.items()},
            "error": {"code": error.code, "message": error.message, "field": error.details.get("field", "")},
        }
        messages.error(request, refusal_message(error))
        anchor = f"record-{recorder.key}"
    else:
        model_admin.log_change(request, ticket, f"{recorder.label} (reported by {report.technician.display_name})")
        messages.success(request, f"{ticket.short_ref}: {done}")
        anchor = "evidence-h"
    return HttpResponseRedirect(f"{reverse('admin:tickets_ticket_change', args=[ticket.pk])}#{anchor}")


# --- the ticket page's section ---------------------------------------------------------------------


def people_names(actor_ids: set[str]) -> dict[str, str]:
    """Who added each row, by the actor id they act under: a technician by their full working
    name, another user by theirs (actor_names), anything else (an agent) as its id."""
    names = actor_names(actor_ids)
    user_ids = [int(value) for value in actor_ids if value and value.isascii() and value.isdigit()]
    technicians = Technician.objects.filter(user_id__in=user_ids).only("user_id", "display_name")
    names.update({str(technician.user_id): technician.display_name for technician in technicians})
    return names


def _reported_by(item: Evidence) -> str:
    reporter = (item.metadata or {}).get("reported_by")
    return str(reporter.get("name") or "") if isinstance(reporter, dict) else ""


def _evidence_row(item: Evidence, names: dict[str, str]) -> dict:
    return {
        "item": item,
        "label": key_label(item.evidence_key) if item.evidence_key else item.get_kind_display(),
        "who": names.get(item.created_by, item.created_by),
        "reported_by": _reported_by(item),
        "file_url": reverse("admin:closeout_evidence_file", args=[item.pk]) if item.file else "",
        "thumbnail_url": reverse("admin:closeout_evidence_thumbnail", args=[item.pk])
        if item.file and item.kind in PICTURE_KINDS
        else "",
        "text": str((item.metadata or {}).get("text") or ""),
    }


def _forms(request, ticket: Ticket, template, present: set[str]) -> list[dict]:
    flash = request.session.pop(_flash_key(ticket), None)
    if ticket.assigned_tech_id is None:
        # No technician on the job yet: there is nobody whose report to record.
        return []
    offered = [
        recorder
        for recorder in RECORDERS.values()
        if recorder_offered(recorder, actor_for_request(request, recorder.command), ticket)
    ]
    if not offered:
        return []
    required = [key for key in (template.required_evidence_keys if template else []) if key != SIGNATURE_KEY]
    photo_keys = [key for key in required if not key.startswith(NOTE_PREFIX)]
    note_keys = [key for key in required if key.startswith(NOTE_PREFIX)]
    forms = []
    for recorder in offered:
        mine = flash if flash and flash.get("form") == recorder.key else None
        values = mine["values"] if mine else {}
        keys = photo_keys if recorder.key == "files" else note_keys if recorder.key == "note" else []
        missing = [key for key in keys if key not in present]
        forms.append(
            {
                "key": recorder.key,
                "label": recorder.label,
                "tool": recorder.command.tool,
                "url": reverse("admin:closeout_evidence_record", args=[ticket.pk, recorder.key]),
                "values": values,
                "error": mine["error"] if mine else None,
                "technician_id": values.get("technician_id") or str(ticket.assigned_tech_id or ""),
                # The first key still missing is the one a report most likely answers.
                "evidence_key": values.get("evidence_key") or (missing[0] if missing else "other"),
                "keys": [
                    {"key": key, "label": key_label(key.removeprefix(NOTE_PREFIX)), "present": key in present}
                    for key in keys
                ],
            }
        )
    return forms


def evidence_panel(request, ticket: Ticket) -> dict | None:
    """The section's context: the ticket's evidence, labor and parts, and the forms this user may
    record a technician's report with; None when there is nothing to show or record."""
    items = list(
        Evidence.objects.filter(ticket=ticket)
        .only(
            "id",
            "ticket_id",
            "kind",
            "evidence_key",
            "uri",
            "file",
            "content_type",
            "size",
            "metadata",
            "created_by",
            "created_at",
        )
        .order_by("created_at", "id")
    )
    log = labor_and_parts(ticket)
    template = template_for(ticket.incident_type)
    present = {item.evidence_key for item in items if item.evidence_key}
    forms = _forms(request, ticket, template, present)
    if not items and not log["labor"] and not log["parts"] and not forms:
        return None
    names = people_names(
        {item.created_by for item in items} | {row["created_by"] for row in log["labor"] + log["parts"]}
    )
    rows = [_evidence_row(item, names) for item in items]
    currency = ticket.currency
    technicians = list(job_technicians(ticket).only("id", "display_name").order_by("display_name"))
    return {
        "ticket": ticket,
        "pictures": [row for row in rows if row["thumbnail_url"]],
        "notes": [row for row in rows if row["item"].kind == EvidenceKind.NOTE and row["text"]],
        "files": [
            row
            for row in rows
            if not row["thumbnail_url"] and not (row["item"].kind == EvidenceKind.NOTE and row["text"])
        ],
        "required": [
            {"key": key, "label": key_label(key), "present": key in present}
            for key in (template.required_evidence_keys if template else [])
        ],
        "labor": [
            {
                **row,
                "spent": time_spent(row["minutes"]),
                "amount": money(row["line_total_cents"], currency),
                "who": names.get(row["created_by"], row["created_by"]),
            }
            for row in log["labor"]
        ],
        "parts": [
            {
                **row,
                "unit": money(row["unit_cents"], currency),
                "amount": money(row["line_total_cents"], currency),
                "who": names.get(row["created_by"], row["created_by"]),
            }
            for row in log["parts"]
        ],
        "labor_total": money(log["labor_cents"], currency),
        "parts_total": money(log["parts_cents"], currency),
        "forms": forms,
        "technicians": technicians,
        "price_book": price_book_search("", limit=PRICE_BOOK_CHOICES) if any(f["key"] == "part" for f in forms) else [],
    }


ticket_panels_register(TicketPanel("evidence", "admin/closeout/ticket_evidence.html", evidence_panel))
