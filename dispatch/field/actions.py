"""What each button on a job page does: the service it calls (the same one as the matching
toolset tool) and how it reads the form. One table; the views route, guard and answer.

A form's fields are read here and handed to the service as they are: the services validate
them and refuse bad input with their stable codes, exactly as they do for the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from dispatch.closeout import services as closeout
from dispatch.closeout.gate import SIGNATURE_KEY
from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.parsing import dollars_parse, whole_number_parse
from dispatch.scheduling import eta
from dispatch.scheduling import services as scheduling
from dispatch.scheduling.selectors import dispatch_transition_current
from dispatch.tickets import approvals
from dispatch.tickets.commands import Command
from dispatch.tickets.states import TicketState

NOTE_PREFIX = "note_"  # a template's evidence key answered by a written note, not a photo
# A check-in queued offline is sent later: the time the button was pressed is kept when it is
# within this long before the server receives it.
CLIENT_TIME_TRUSTED_FOR = timedelta(hours=24)
MAX_FILES_PER_POST = 10
DEPARTURE_STALE_AFTER = timedelta(minutes=10)
# What the audit event keeps of each form field: enough to read, never a megabyte.
RECORDED_FIELD_CHARS = 500


@dataclass(frozen=True)
class Form:
    """The posted fields and files of one action (only the names the action reads)."""

    fields: dict[str, str]
    lists: dict[str, list[str]]
    files: dict[str, list]

    @classmethod
    def of(cls, action: FieldAction, post, files) -> Form:
        names = [name for name in action.fields if name in post]
        return cls(
            fields={name: post.get(name, "") for name in names},
            lists={name: post.getlist(name) for name in names},
            files={name: files.getlist(name) for name in action.fields if name in files},
        )


@dataclass(frozen=True)
class FieldAction:
    name: str
    command: Command
    run: Callable[[Actor, object, Form, dict], object]
    done: str  # what the technician reads when it worked
    fields: tuple[str, ...] = ()  # the form fields (and file fields) it reads; others are ignored
    uploads: bool = False


# A job the technician has finished (or that was cancelled) is read-only on their phone: what
# changes after completion goes through dispatch and QA.
CLOSED_TO_TECHNICIANS = frozenset(
    {
        TicketState.COMPLETED_PENDING_VERIFICATION,
        TicketState.VERIFIED,
        TicketState.INVOICED,
        TicketState.CLOSED,
        TicketState.CANCELLED,
    }
)


def job_refusal(ticket) -> DispatchError | None:
    """Why no button of the technician pages may act on this job now, if none may."""
    if ticket.state in CLOSED_TO_TECHNICIANS:
        return DispatchError(
            "JOB_FINISHED",
            "This job is finished; nothing more can be added from the phone. Call dispatch to change it.",
            status=409,
            dimension="state",
        )
    return None


def _text(form: Form, name: str) -> str:
    return form.fields.get(name, "").strip()


def _whole(form: Form, name: str) -> int | None:
    return whole_number_parse(form.fields.get(name), field=name)


def _location(form: Form) -> dict | None:
    """The phone's position when the browser gave it (lat, lng, accuracy in metres), as numbers;
    the service checks that it is on the map."""
    if not _text(form, "lat") and not _text(form, "lng"):
        return None
    try:
        where = {"lat": float(_text(form, "lat")), "lng": float(_text(form, "lng"))}
        if _text(form, "accuracy"):
            where["accuracy_m"] = float(_text(form, "accuracy"))
    except ValueError:
        raise invalid_request("The position must be numbers.", field="lat") from None
    return where


def _pressed_at(form: Form) -> datetime:
    """When the technician pressed the button: the phone's clock for a queued post, when plausible."""
    now = timezone.now()
    raw = _text(form, "pressed_at")
    if raw:
        try:
            pressed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pressed = None
        if pressed is not None and pressed.tzinfo is not None and now - CLIENT_TIME_TRUSTED_FOR <= pressed <= now:
            return pressed
    return now


def _cents(form: Form, name: str) -> int | None:
    """Dollars as typed ("125", "125.50") to whole cents."""
    return dollars_parse(form.fields.get(name), field=name)


def _uploads(form: Form, name: str) -> list:
    uploads = form.files.get(name) or []
    if not uploads:
        raise invalid_request("Choose a file first.", field=name)
    if len(uploads) > MAX_FILES_PER_POST:
        raise invalid_request(f"Send at most {MAX_FILES_PER_POST} photos at a time.", field=name)
    return uploads


# --- the buttons ----------------------------------------------------------------------------


def _acknowledge(actor, ticket_id, form, request):
    return eta.dispatch_acknowledge(actor=actor, ticket_id=ticket_id, request=request)


def _depart(actor, ticket_id, form, request):
    # An "on my way" that waited in a basement for its network is news no more: telling the
    # customer now, maybe after the technician arrived, would only confuse them.
    waited = timezone.now() - _pressed_at(form)
    if waited > DEPARTURE_STALE_AFTER:
        raise DispatchError(
            "DEPARTURE_TOO_OLD",
            f"'On my way' was pressed {int(waited.total_seconds() // 60)} minutes ago with no network; "
            "the customer was not told. Check in when you arrive.",
            status=409,
            dimension="state",
        )
    return eta.tech_depart(
        actor=actor,
        ticket_id=ticket_id,
        location=_location(form),
        eta_minutes=_whole(form, "eta_minutes"),
        request=request,
    )


def _check_in(actor, ticket_id, form, request):
    # A check-in queued offline keeps the moment it was pressed, but never earlier than the
    # dispatch it answers: the arrival time feeds the SLA clock.
    dispatch = dispatch_transition_current(ticket_id)
    arrived = _pressed_at(form)
    if dispatch is not None:
        arrived = max(arrived, dispatch.created_at)
    return scheduling.tech_check_in(
        actor=actor,
        ticket_id=ticket_id,
        timestamp=arrived.isoformat(),
        location=_location(form),
        reason=form.fields.get("reason") or None,
        request=request,
    )


def _pause(actor, ticket_id, form, request):
    return scheduling.tech_pause(actor=actor, ticket_id=ticket_id, reason=_text(form, "reason"), request=request)


def _resume(actor, ticket_id, form, request):
    return scheduling.tech_resume(actor=actor, ticket_id=ticket_id, request=request)


def _request_change(actor, ticket_id, form, request):
    return approvals.change_request(
        actor=actor,
        ticket_id=ticket_id,
        approval_type=_text(form, "approval_type"),
        reason=_text(form, "reason"),
        amount_delta_cents=_cents(form, "amount"),
        request=request,
    )


def _note(actor, ticket_id, form, request):
    key = _text(form, "evidence_key")
    return closeout.evidence_add(
        actor=actor,
        ticket_id=ticket_id,
        kind="NOTE",
        text=_text(form, "text"),
        evidence_key=key,
        request=request,
    )


def _photo(actor, ticket_id, form, request):
    key = _text(form, "evidence_key")
    if key.startswith(NOTE_PREFIX) or key == SIGNATURE_KEY:
        raise invalid_request("A photo cannot stand for a note or the signature.", field="evidence_key")
    # Several photos sent in one post (a form sent without scripts) are all saved or none are.
    return closeout.evidence_uploads_add(
        actor=actor,
        ticket_id=ticket_id,
        kind="PHOTO",
        uploads=_uploads(form, "file"),
        evidence_key="" if key == "other" else key,
        request=request,
    )


def _no_signature(actor, ticket_id, form, request):
    reason = _text(form, "no_signature_reason")
    if not reason:
        raise invalid_request("Say why the customer cannot sign.", field="no_signature_reason")
    return closeout.checklist_save(
        actor=actor, ticket_id=ticket_id, checklist_status={}, no_signature_reason=reason, request=request
    )


def _signature(actor, ticket_id, form, request):
    signer = _text(form, "signer_name")
    if not signer:
        raise invalid_request("Type the name of the person who signed.", field="signer_name")
    return closeout.evidence_add(
        actor=actor,
        ticket_id=ticket_id,
        kind="SIGNATURE",
        upload=_uploads(form, "file")[0],
        evidence_key=SIGNATURE_KEY,
        metadata={"signer_name": signer[:200], "signed_at": _pressed_at(form).isoformat()},
        request=request,
    )


def _checklist(actor, ticket_id, form, request):
    # Every key on the form is sent, ticked or not, so unticking is recorded too.
    answers = {key: key in form.lists.get("done", []) for key in form.lists.get("key", [])}
    return closeout.checklist_save(actor=actor, ticket_id=ticket_id, checklist_status=answers, request=request)


def _labor(actor, ticket_id, form, request):
    minutes = _whole(form, "minutes")
    if minutes is None:
        raise invalid_request("How many minutes?", field="minutes")
    return closeout.labor_add(
        actor=actor, ticket_id=ticket_id, minutes=minutes, description=_text(form, "description"), request=request
    )


def _labor_edit(actor, ticket_id, form, request):
    return closeout.labor_update(
        actor=actor,
        ticket_id=ticket_id,
        labor_entry_id=_text(form, "labor_entry_id"),
        minutes=_whole(form, "minutes"),
        description=form.fields.get("description"),
        request=request,
    )


def _part(actor, ticket_id, form, request):
    return closeout.part_add(
        actor=actor,
        ticket_id=ticket_id,
        sku=_text(form, "sku"),
        quantity=_text(form, "quantity") or "1",
        request=request,
    )


def _complete(actor, ticket_id, form, request):
    # No checklist in the form: completion uses the answers the technician saved on the page.
    return closeout.tech_complete(actor=actor, ticket_id=ticket_id, checklist_status=None, request=request)


POSITION = ("lat", "lng", "accuracy")

ACTIONS: dict[str, FieldAction] = {
    action.name: action
    for action in (
        FieldAction("acknowledge", eta.TECH_ACKNOWLEDGE, _acknowledge, "Job acknowledged."),
        FieldAction(
            "depart",
            eta.TECH_DEPART,
            _depart,
            "On your way: the customer has your ETA.",
            (*POSITION, "eta_minutes", "pressed_at"),
        ),
        FieldAction(
            "check-in",
            scheduling.TECH_CHECK_IN,
            _check_in,
            "Checked in. Work has started.",
            (*POSITION, "pressed_at", "reason"),
        ),
        FieldAction("pause", scheduling.TECH_PAUSE, _pause, "Job paused.", ("reason",)),
        FieldAction("resume", scheduling.TECH_RESUME, _resume, "Back at work."),
        FieldAction(
            "request-change",
            approvals.TECH_REQUEST_CHANGE,
            _request_change,
            "Sent for approval.",
            ("approval_type", "amount", "reason"),
        ),
        FieldAction("note", closeout.EVIDENCE_ADD, _note, "Note saved.", ("evidence_key", "text")),
        FieldAction("photo", closeout.EVIDENCE_ADD, _photo, "Photo saved.", ("evidence_key", "file"), uploads=True),
        FieldAction(
            "signature",
            closeout.EVIDENCE_ADD,
            _signature,
            "Signature saved.",
            ("signer_name", "pressed_at", "file"),
            uploads=True,
        ),
        FieldAction("no-signature", closeout.CHECKLIST_SAVE, _no_signature, "Reason saved.", ("no_signature_reason",)),
        FieldAction("checklist", closeout.CHECKLIST_SAVE, _checklist, "Checklist saved.", ("key", "done")),
        FieldAction("labor", closeout.LABOR_ADD, _labor, "Time logged.", ("minutes", "description")),
        FieldAction(
            "labor-edit",
            closeout.LABOR_UPDATE,
            _labor_edit,
            "Time corrected.",
            ("labor_entry_id", "minutes", "description"),
        ),
        FieldAction("part", closeout.PART_ADD, _part, "Part added.", ("sku", "quantity")),
        FieldAction("complete", closeout.TECH_COMPLETE, _complete, "Job complete. Thank you!"),
    )
}


def action_run(action: FieldAction, *, actor: Actor, ticket_id, form: Form) -> None:
    """Run one button's service. The audit event keeps the form as sent: the fields the action
    reads, each cut to a readable length, and files by name only."""
    request = {
        **{
            name: [value[:RECORDED_FIELD_CHARS] for value in values]
            if len(values) > 1
            else values[0][:RECORDED_FIELD_CHARS]
            for name, values in form.lists.items()
            if values
        },
        **{name: [getattr(upload, "name", "")[:200] for upload in uploads] for name, uploads in form.files.items()},
    }
    action.run(actor, ticket_id, form, request)
