"""Evidence: the photos, notes, signatures and documents a job leaves behind, and the exceptions
that waive some of what the incident template requires."""

from __future__ import annotations

import re
import uuid

from django.db import transaction
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError
from dispatch.tickets.commands import command
from dispatch.tickets.services import Outcome, ticket_change, ticket_not_found
from dispatch.tickets.states import TicketState

from .. import evidence_files
from ..gate import SIGNATURE_KEY, template_for
from ..models import Evidence, EvidenceException, EvidenceKind
from ..packets import iso
from .autonomy import autonomy_guard
from .inputs import invalid, moment, role_name, string_list
from .inputs import text as text_field

EVIDENCE_ADD = command("closeout.add_evidence", ["dispatcher", "agent", "technician"], None, None, "Add evidence")
EVIDENCE_EXCEPTION = command(
    "closeout.evidence_exception",
    ["dispatcher", "qa", "approver"],
    [TicketState.IN_PROGRESS, TicketState.COMPLETED_PENDING_VERIFICATION, TicketState.VERIFIED, TicketState.INVOICED],
    None,
    "Grant evidence exception",
)

NOTE_MAX_CHARS = 4000
MAX_UPLOADS_PER_POST = 10

KIND_ALIASES = {
    "IMAGE": EvidenceKind.PHOTO,
    "PICTURE": EvidenceKind.PHOTO,
    "PIC": EvidenceKind.PHOTO,
    "TEXT": EvidenceKind.NOTE,
    "PDF": EvidenceKind.DOCUMENT,
    "DOC": EvidenceKind.DOCUMENT,
    "FILE": EvidenceKind.DOCUMENT,
}


# Kinds whose file must be a picture (JPEG, PNG, WebP, HEIC); a document may also be a PDF.
IMAGE_KINDS = frozenset({EvidenceKind.PHOTO, EvidenceKind.SIGNATURE})
# What a technician calls the upload when it could not be saved ("The photo was not saved ...").
UPLOAD_NAMES = {EvidenceKind.PHOTO: "photo", EvidenceKind.SIGNATURE: "signature"}
# Template evidence keys a picture must answer (photo_before_door_edge_and_strike, ...).
PHOTO_KEY_PREFIX = "photo_"


def _kind_fits_key(kind: str, key: str) -> None:
    """A note cannot answer a photo_ key or the signature: the gate counts evidence by key, so a
    few typed words must not stand for a picture or the customer's signature."""
    if kind == EvidenceKind.NOTE and (key == SIGNATURE_KEY or key.startswith(PHOTO_KEY_PREFIX)):
        raise DispatchError(
            "EVIDENCE_KIND_MISMATCH",
            f"Evidence key {key} needs a picture, not a note.",
            status=400,
            dimension="evidence",
            details={"kind": kind, "evidence_key": key},
        )


def evidence_kind_normalize(kind) -> tuple[str, str]:
    """(kind, label): a known kind in any case or with a suffix ("photo_0" is a PHOTO); anything
    else is OTHER, with the caller's word kept as the label."""
    raw = text_field(kind, "kind", required=True, max_length=60)
    upper = raw.upper()
    if upper in EvidenceKind.values:
        return upper, ""
    head = re.split(r"[^A-Z]", upper, maxsplit=1)[0]
    if head in EvidenceKind.values:
        return head, raw
    if head in KIND_ALIASES:
        return KIND_ALIASES[head], raw
    return EvidenceKind.OTHER, raw


def evidence_closed_refusal(ticket) -> DispatchError | None:
    """Why this ticket takes no more evidence (closed: its evidence is final; cancelled), if so.
    The command's own states allow any ticket; this is the rest of evidence_add's rule, which the
    pages ask before they offer an upload."""
    if ticket.state == TicketState.CLOSED:
        return DispatchError(
            "EVIDENCE_LOCKED", "The ticket is closed: its evidence is final.", status=409, dimension="evidence"
        )
    if ticket.state == TicketState.CANCELLED:
        return DispatchError(
            "INVALID_STATE_TRANSITION",
            "A cancelled ticket takes no evidence.",
            status=409,
            dimension="state",
            details={"from_state": ticket.state, "to_state": None, "allowed_next_states": []},
        )
    return None


def evidence_add(
    *,
    actor: Actor,
    ticket_id,
    kind: str,
    uri: str | None = None,
    upload=None,
    evidence_key: str | None = None,
    checksum: str | None = None,
    metadata: dict | None = None,
    text: str | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record one evidence item, given as an object-store URI or as an uploaded file; a NOTE may
    instead be just its `text` (up to 4000 characters, kept in metadata["text"])."""
    kind_value, kind_label = evidence_kind_normalize(kind)
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("Field 'metadata' must be a JSON object.", "metadata")
    meta = dict(metadata or {})
    # The thumbnail's storage name is ours to set (evidence_thumbnail_response serves it).
    meta.pop("thumbnail", None)
    note_text = text_field(text, "text", max_length=NOTE_MAX_CHARS)
    if note_text:
        meta["text"] = note_text
    # The key may come top-level or inside metadata (as upstream clients send it); top-level wins.
    key = text_field(
        evidence_key if evidence_key is not None else meta.get("evidence_key"), "evidence_key", max_length=120
    )
    if key:
        meta["evidence_key"] = key
    _kind_fits_key(kind_value, key)
    if kind_label:
        meta.setdefault("kind_label", kind_label)
    checksum = text_field(checksum, "checksum", max_length=200)
    if upload is not None and uri:
        raise invalid("Send either a 'uri' or a file, not both.", "uri")
    note_only = kind_value == EvidenceKind.NOTE and upload is None and (uri is None or uri == "")
    if note_only and not note_text:
        raise invalid("A note needs its text (or a uri or a file).", "text")
    prepared = evidence_files.upload_prepare(upload, checksum=checksum) if upload is not None else None
    if prepared is not None and kind_value in IMAGE_KINDS and not prepared.sniffed.is_raster:
        # A "photo" or a signature that is a PDF would satisfy a photo requirement with no photo.
        raise evidence_files.not_an_image(kind_value, prepared.sniffed.content_type)
    # A note kept as text has no file anywhere: its uri stays empty.
    clean_uri = "" if prepared or note_only else evidence_files.evidence_uri_check(uri)

    evidence_id = uuid.uuid4()
    stored = None
    if prepared is not None:
        try:
            ticket_key = uuid.UUID(str(ticket_id))
        except ValueError:
            raise ticket_not_found(ticket_id) from None
        # Written before the transaction, so storage I/O (S3 when configured) never runs while
        # the ticket row is locked; removed again below if the change is refused. A store that
        # cannot be reached refuses here (503 STORAGE_UNAVAILABLE): no row, no audit event.
        stored = evidence_files.upload_store(
            prepared, ticket_id=ticket_key, evidence_id=evidence_id, what=UPLOAD_NAMES.get(kind_value, "file")
        )

    audit = {"kind": kind, "uri": uri, "evidence_key": evidence_key, "checksum": checksum or None, "metadata": metadata}
    if note_text:
        audit["text"] = note_text
    if prepared is not None:
        audit["upload"] = {"name": prepared.original_name, "size": len(prepared.data)}
    try:
        with ticket_change(
            actor=actor,
            command=EVIDENCE_ADD,
            ticket_id=ticket_id,
            expected_version=expected_version,
            request=request,
            audit=audit,
        ) as change:
            refusal = evidence_closed_refusal(change.ticket)
            if refusal is not None:
                raise refusal
            autonomy_guard(change)
            item = Evidence(
                id=evidence_id,
                ticket=change.ticket,
                kind=kind_value,
                evidence_key=key,
                uri=clean_uri,
                checksum=checksum,
                metadata=meta,
                created_by=actor.actor_id,
                created_by_role=role_name(actor),
            )
            if prepared is not None:
                item.file.name = stored.name
                item.uri = stored.uri
                item.content_type = prepared.sniffed.content_type
                item.size = len(prepared.data)
                item.sha256 = prepared.sha256
                item.checksum = checksum or f"sha256:{prepared.sha256}"
                item.metadata = {**meta, **prepared.facts, "original_filename": prepared.original_name}
                if stored.thumbnail_name:
                    item.metadata["thumbnail"] = stored.thumbnail_name
            item.save(force_insert=True)
            change.audit_payload.update(
                {
                    "evidence_item_id": str(item.id),
                    "evidence_kind": item.kind,
                    "stored_uri": item.uri,
                    "sha256": item.sha256,
                }
            )
            change.result = item
    except BaseException:
        if stored is not None:
            evidence_files.upload_discard(*stored.names)
        raise
    return change.outcome


def evidence_uploads_add(
    *,
    actor: Actor,
    ticket_id,
    kind: str,
    uploads: list,
    evidence_key: str = "",
    metadata: dict | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> list[Evidence]:
    """Several files sent in one post, one evidence item (and one audit event) each: all of them
    are recorded or none is. `expected_version` is the version the sender saw before the first."""
    if not uploads:
        raise invalid("Choose a file first.", "file")
    if len(uploads) > MAX_UPLOADS_PER_POST:
        raise invalid(f"Send at most {MAX_UPLOADS_PER_POST} files at a time.", "file")
    saved: list[Evidence] = []
    try:
        # When a later file is refused, the rows of the earlier ones roll back with this block,
        # and the files already written for them are removed below.
        with transaction.atomic():
            for index, upload in enumerate(uploads):
                outcome = evidence_add(
                    actor=actor,
                    ticket_id=ticket_id,
                    kind=kind,
                    upload=upload,
                    evidence_key=evidence_key,
                    metadata=metadata,
                    request=request,
                    # Each item moves the version on by one: only the first can be checked
                    # against the page (the rest follow it inside this one transaction).
                    expected_version=expected_version if index == 0 else None,
                )
                saved.append(outcome.result)
    except BaseException:
        for item in saved:
            evidence_files.upload_discard(item.file.name, item.metadata.get("thumbnail", ""))
        raise
    return saved


def evidence_exception_grant(
    *,
    actor: Actor,
    ticket_id,
    exception_reason: str,
    evidence_refs: list[str] | None = None,
    expires_at=None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Waive required evidence keys (all of them when none are named) until `expires_at`."""
    reason = text_field(exception_reason, "exception_reason", required=True)
    refs = list(dict.fromkeys(string_list(evidence_refs, "evidence_refs")))
    until = moment(expires_at, "expires_at", required=False)
    if until is not None and until <= timezone.now():
        raise invalid("Field 'expires_at' must be in the future.", "expires_at")

    with ticket_change(
        actor=actor,
        command=EVIDENCE_EXCEPTION,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit={"exception_reason": reason, "evidence_refs": refs, "expires_at": iso(until)},
    ) as change:
        template = template_for(change.ticket.incident_type)
        if template is not None and refs:
            required = set(template.required_evidence_keys) | {SIGNATURE_KEY}
            unknown = [ref for ref in refs if ref not in required]
            if unknown:
                raise invalid(
                    "These are not evidence keys the incident template requires.",
                    "evidence_refs",
                    unknown_evidence_keys=unknown,
                    required_evidence_keys=sorted(required),
                )
        exception = EvidenceException.objects.create(
            ticket=change.ticket,
            reason=reason,
            evidence_refs=refs,
            expires_at=until,
            granted_by=actor.actor_id,
            granted_by_role=role_name(actor),
        )
        change.audit_payload["evidence_exception_id"] = str(exception.id)
        change.result = exception
    return change.outcome
