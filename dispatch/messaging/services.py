"""Writes of the outbox: queue a message, deliver it, sweep for lost work, replay a dead letter.

Queueing happens inside the caller's business transaction, so a rolled-back change sends
nothing. Delivery happens after commit, in a worker, and never holds a transaction open while
it talks to a provider: the row is claimed with one conditional UPDATE (so two workers never
both send it), the provider is called with no transaction open, and the outcome is written
with another conditional UPDATE that only succeeds for the claim that sent it.

When an attempt may have reached the provider without our hearing back (its worker died, or
the answer was lost), the row is flagged `outcome_unknown` and the next attempt first asks the
provider whether it has the message: found, it is recorded as sent and never sent again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.languages import ENGLISH
from dispatch.tickets.commands import command
from dispatch.tickets.models import Ticket
from dispatch.tickets.services import audit_only, role_forbidden

from . import adapters
from .models import Channel, MessageTemplate, OutboundMessage
from .rendering import template_render
from .selectors import message_template

log = logging.getLogger(__name__)

Status = OutboundMessage.Status

OUTBOX_REPLAY = command("outbox.replay", ["finance", "admin"], None, None, "Replay an outbound message")

# A message that failed this many times stops retrying and waits for a person (outbox.replay).
MAX_ATTEMPTS = 6
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# A new row's own on_commit enqueue normally delivers it within a second or two; the sweep
# leaves it alone for this long so it does not queue a second task for every fresh message.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 500
DELIVER_TASK = "dispatch.messaging.tasks.outbox_deliver"

MAX_BODY_CHARS = {Channel.SMS: 1600, Channel.EMAIL: 100_000}


def _default_context(ticket: Ticket | None) -> dict[str, str]:
    """Values every template may use without the sender passing them: {company}, and {ticket_ref} with a ticket."""
    values = {"company": getattr(settings, "DISPATCH_COMPANY_NAME", "Real Dispatch")}
    if ticket is not None:
        values["ticket_ref"] = ticket.short_ref
    return values


def _recipient_clean(channel: str, recipient: str) -> str:
    recipient = (recipient or "").strip()
    if not recipient:
        raise invalid_request("A recipient is required.", field="recipient")
    if channel == Channel.EMAIL:
        try:
            validate_email(recipient)
        except ValidationError:
            raise invalid_request(f"{recipient!r} is not an email address.", field="recipient") from None
        return recipient
    region = getattr(settings, "DISPATCH_DEFAULT_PHONE_REGION", "US")
    try:
        number = phonenumbers.parse(recipient, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise invalid_request(f"{recipient!r} is not a valid phone number.", field="recipient")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outbox_enqueue(
    *,
    channel: str,
    recipient: str,
    body: str = "",
    template: str = "",
    ticket: Ticket | None = None,
    context: Mapping[str, Any] | None = None,
    subject: str = "",
    templates: Mapping[str, MessageTemplate] | None = None,
    attachments: list[dict] | None = None,
    language: str = ENGLISH,
) -> OutboundMessage:
    """Queue one message in the caller's transaction; it is delivered only if that transaction commits.

    Every refusal (DispatchError) is raised before anything is written, so a caller may catch it
    and go on in the same transaction. `templates` are templates the caller already read by code
    (`message_templates`), so one that sends several messages reads them in one query.
    `attachments` ({"name", "content_type", "storage_name"} each, files already in the default
    storage) go with an email; an SMS carries none. `language`: the recipient's; the template's
    row in it is used when there is one (English otherwise).
    """
    if channel not in Channel.values:
        raise invalid_request(f"Unknown channel {channel!r}; use SMS or EMAIL.", field="channel")
    recipient = _recipient_clean(channel, recipient)
    if template and not body:
        stored = (templates or {}).get(template) or message_template(template, language=language)
        if stored is None:
            raise DispatchError("TEMPLATE_NOT_FOUND", f"No message template {template!r}.", status=404)
        values = {**_default_context(ticket), **(context or {})}
        body = template_render(stored.body, values)
        if channel == Channel.EMAIL and not subject:
            subject = template_render(stored.subject, values) if stored.subject else ""
    body = (body or "").strip()
    if not body:
        raise invalid_request("A message needs a body or a template.", field="body")
    if len(body) > MAX_BODY_CHARS[channel]:
        raise invalid_request(
            f"The message is {len(body)} characters; {channel} allows {MAX_BODY_CHARS[channel]}.", field="body"
        )
    if channel == Channel.EMAIL and not subject:
        subject = getattr(settings, "DISPATCH_COMPANY_NAME", "Real Dispatch")
    if attachments and channel != Channel.EMAIL:
        raise invalid_request("Only an email carries attachments.", field="attachments")
    attached = [
        {
            "name": str(item["name"]),
            "content_type": str(item["content_type"]),
            "storage_name": str(item["storage_name"]),
        }
        for item in attachments or []
    ]
    # No savepoint inside the caller's transaction: nothing is left to refuse once the row is
    # written, and a savepoint costs two round trips per message.
    with transaction.atomic(savepoint=False):
        message = OutboundMessage(
            channel=channel,
            recipient=recipient,
            subject=subject[:200] if channel == Channel.EMAIL else "",
            body=body,
            template=template,
            ticket=ticket,
            attachments=attached,
            status=Status.PENDING,
            next_attempt_at=timezone.now(),
        )
        message.save(force_insert=True)
        # After commit, never before: a worker must not pick up a row the business change
        # may still roll back, and a rolled-back change must send nothing.
        transaction.on_commit(lambda: _delivery_schedule(message.pk))
    return message


def _delivery_schedule(message_id: uuid.UUID) -> None:
    """Hand one message to a worker. Losing this hand-off is survivable: the sweep finds the row."""
    from django_q.tasks import async_task

    try:
        async_task(DELIVER_TASK, str(message_id))
    except Exception:  # the broker may be down; the periodic sweep re-queues due rows
        log.exception("Could not queue delivery of outbound message %s; the sweep will retry it.", message_id)


# --- Delivery ------------------------------------------------------------------------------


def _message_key(message_id: Any) -> uuid.UUID | None:
    try:
        return message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
    except (ValueError, TypeError, AttributeError):
        return None


def claim_lease() -> timedelta:
    """How long a worker's claim on a row lasts before the sweep presumes the worker dead.

    It must exceed the longest a send can take, or a slow send would be reclaimed while still
    running and go out twice: the adapters give up after the send timeout on connect and again
    on the answer (checks.py refuses a shorter lease), and outbox_deliver starts a send only if
    it can end within the lease. No longer than that plus a margin, so a message whose worker
    died mid-send is retried by the next sweeps (every minute) within about two minutes.
    """
    return timedelta(seconds=settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS)


def backoff_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... capped at an hour."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def outbox_deliver(*, message_id: Any) -> OutboundMessage | None:
    """Send one due message at most once; returns the row as left, or None if this call did not claim it."""
    key = _message_key(message_id)
    if key is None:
        log.warning("Ignoring delivery of %r: not a message id.", message_id)
        return None
    started = time.monotonic()
    now = timezone.now()
    token = uuid.uuid4()
    # The claim is a single conditional UPDATE: when two workers race for one row the database
    # lets exactly one of them match it, and the loser sends nothing.
    claimed = OutboundMessage.objects.filter(
        pk=key, status__in=(Status.PENDING, Status.FAILED), next_attempt_at__lte=now
    ).update(status=Status.SENDING, claim_token=token, claimed_at=now)
    if not claimed:
        return None
    message = OutboundMessage.objects.get(pk=key)
    if message.provider_message_id:
        # The provider already has this message (a worker recorded its id and died before
        # finishing): record it as sent, never hand it over a second time.
        return _delivery_succeeded(message, token=token, provider_id=message.provider_message_id)
    try:
        adapter = adapters.adapter_for(message.channel)
        if message.outcome_unknown:
            # The last attempt may have reached the provider. Ask before sending again; a lookup
            # that fails sends nothing and leaves the outcome unknown, so the next try asks again.
            found = adapter.find_sent(message, taken=_provider_ids_of_twins(message))
            if found:
                _twin_check(message, found)
                log.info("Outbound message %s was already at the provider (%s); not sending it again.", key, found)
                return _delivery_succeeded(message, token=token, provider_id=found)
    except Exception as exc:  # misconfiguration, a failed lookup, an adapter bug: retried, never lost
        if not isinstance(exc, adapters.DeliveryError):
            log.exception("Adapter crashed preparing outbound message %s.", key)
        return _delivery_failed(
            message, token=token, error=_error_text(exc), permanent=False, unknown=message.outcome_unknown
        )
    elapsed = time.monotonic() - started
    if elapsed + adapters.longest_send_seconds() >= claim_lease().total_seconds():
        # A send started now could outlast the claim: the sweep would take the row back while
        # the provider is still answering, and the next worker would send it again.
        return _delivery_failed(
            message,
            token=token,
            error=f"Only {claim_lease().total_seconds() - elapsed:.0f} s of the claim were left, too few to send in; "
            "retrying with a fresh claim.",
            permanent=False,
            unknown=message.outcome_unknown,
        )
    try:
        provider_id = adapter.send(message)
    except adapters.DeliveryError as exc:
        return _delivery_failed(message, token=token, error=str(exc), permanent=exc.permanent, unknown=exc.unknown)
    except Exception as exc:  # an adapter bug: retried like any failure, never lost
        log.exception("Adapter crashed sending outbound message %s.", key)
        # How far it got before crashing is anyone's guess, so the next attempt asks first.
        return _delivery_failed(message, token=token, error=_error_text(exc), permanent=False, unknown=True)
    return _delivery_succeeded(message, token=token, provider_id=provider_id)


def _error_text(exc: Exception) -> str:
    return str(exc) if isinstance(exc, adapters.DeliveryError) else f"{type(exc).__name__}: {exc}"


def _twin_check(message: OutboundMessage, found: str) -> None:
    """Refuse to take `found` for this message's own while a twin (the same text to the same
    recipient) might own it: one being sent right now, whose id is not recorded yet, or one that
    recorded it since the lookup began. Taking a twin's id would mark this message sent when it
    never went out; the attempt fails instead, and the next one asks again."""
    twins = OutboundMessage.objects.filter(
        channel=message.channel, recipient=message.recipient, body=message.body
    ).exclude(pk=message.pk)
    if twins.filter(Q(status=Status.SENDING) | Q(provider_message_id=found)).exists():
        raise adapters.DeliveryError(
            "The provider lists a message like this one, but an identical message to the same recipient is being "
            "sent or holds that id; asking again later."
        )


def _provider_ids_of_twins(message: OutboundMessage) -> frozenset[str]:
    """Provider ids recorded for other messages of the same text to the same recipient: a lookup
    must not take one of those (an identical text sent just before) for this message's own."""
    return frozenset(
        OutboundMessage.objects.filter(channel=message.channel, recipient=message.recipient, body=message.body)
        .exclude(pk=message.pk)
        .exclude(provider_message_id="")
        .values_list("provider_message_id", flat=True)
    )


def _delivery_succeeded(message: OutboundMessage, *, token: uuid.UUID, provider_id: str) -> OutboundMessage:
    sent = {
        "status": Status.SENT,
        "provider_message_id": provider_id,
        "sent_at": timezone.now(),
        "last_error": "",
        "claim_token": None,
        "outcome_unknown": False,
    }
    recorded = OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, claim_token=token).update(**sent)
    if not recorded:
        # Our claim expired while the provider was answering and the sweep took the row back.
        # The message did go out, so record that, unless someone already recorded a send.
        OutboundMessage.objects.filter(pk=message.pk, provider_message_id="").exclude(status=Status.SENT).update(**sent)
        log.warning("Outbound message %s was sent after its claim expired (provider id %s).", message.pk, provider_id)
    message.refresh_from_db()
    return message


def _delivery_failed(
    message: OutboundMessage, *, token: uuid.UUID, error: str, permanent: bool, unknown: bool
) -> OutboundMessage:
    """Record a failed attempt. `unknown`: the provider may have the message after all (the
    next attempt asks first); False only when this attempt shows it does not."""
    now = timezone.now()
    attempts = message.attempts + 1
    dead = permanent or attempts >= MAX_ATTEMPTS
    OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, claim_token=token).update(
        status=Status.DEAD_LETTER if dead else Status.FAILED,
        attempts=attempts,
        last_error=error[:2000],
        next_attempt_at=now if dead else now + backoff_delay(attempts),
        claim_token=None,
        outcome_unknown=unknown,
    )
    log.warning(
        "Outbound message %s failed (attempt %s%s): %s", message.pk, attempts, ", dead letter" if dead else "", error
    )
    message.refresh_from_db()
    return message


# --- Sweep ---------------------------------------------------------------------------------

LEASE_EXPIRED_ERROR = "The delivery worker stopped before finishing (claim expired); retrying."


def outbox_sweep() -> dict[str, int]:
    """Recover stuck claims and queue every due message whose hand-off to a worker was lost."""
    now = timezone.now()
    expired = Q(status=Status.SENDING, claimed_at__lt=now - claim_lease())
    # Each statement below is one conditional UPDATE, so a worker finishing at the same moment
    # either wins (its own claim_token still matches) or finds the row already moved on.
    recorded = (
        OutboundMessage.objects.filter(expired)
        .exclude(provider_message_id="")
        .update(status=Status.SENT, sent_at=F("claimed_at"), claim_token=None, outcome_unknown=False)
    )
    # A dead worker may have died after the provider took the message and before it recorded
    # the id: the outcome is unknown, so the next attempt (or a replay) asks before sending.
    unrecorded = OutboundMessage.objects.filter(expired, provider_message_id="")
    dead = unrecorded.filter(attempts__gte=MAX_ATTEMPTS - 1).update(
        status=Status.DEAD_LETTER,
        attempts=F("attempts") + 1,
        last_error=LEASE_EXPIRED_ERROR,
        claim_token=None,
        outcome_unknown=True,
    )
    reclaimed = unrecorded.filter(attempts__lt=MAX_ATTEMPTS - 1).update(
        status=Status.FAILED,
        attempts=F("attempts") + 1,
        last_error=LEASE_EXPIRED_ERROR,
        next_attempt_at=now,
        claim_token=None,
        outcome_unknown=True,
    )
    due = Q(status=Status.FAILED, next_attempt_at__lte=now) | Q(
        status=Status.PENDING, next_attempt_at__lte=now - SWEEP_GRACE
    )
    due_ids = list(
        OutboundMessage.objects.filter(due).order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for message_id in due_ids:
        _delivery_schedule(message_id)
    report = {"recorded_sent": recorded, "reclaimed": reclaimed, "dead_lettered": dead, "queued": len(due_ids)}
    if any(report.values()):
        log.info("Outbox sweep: %s", report)
    return report


# --- Replay --------------------------------------------------------------------------------

REPLAYABLE = (Status.DEAD_LETTER, Status.FAILED)


def outbox_replay(*, actor: Actor, outbox_id: Any, request: dict | None = None) -> OutboundMessage:
    """Put a dead-lettered (or failing) message back in the queue with a fresh set of attempts."""
    if not OUTBOX_REPLAY.allows_role(actor.role):
        raise role_forbidden(OUTBOX_REPLAY, actor.role)
    key = _message_key(outbox_id)
    if key is None:
        raise DispatchError("OUTBOX_MESSAGE_NOT_FOUND", f"No outbound message {outbox_id}.", status=404)
    with transaction.atomic():
        # Locked so a replay and a worker's outcome write cannot interleave on the same row.
        message = OutboundMessage.objects.select_for_update().filter(pk=key).first()
        if message is None:
            raise DispatchError("OUTBOX_MESSAGE_NOT_FOUND", f"No outbound message {outbox_id}.", status=404)
        if message.status not in REPLAYABLE:
            raise DispatchError(
                "OUTBOX_MESSAGE_NOT_REPLAYABLE",
                f"Only dead-lettered or failed messages can be replayed; this one is {message.status}.",
                status=409,
                dimension="state",
                details={"outbox_id": str(message.pk), "status": message.status},
            )
        ticket = Ticket.objects.filter(pk=message.ticket_id).first() if message.ticket_id else None
        audit_only(
            actor=actor,
            command=OUTBOX_REPLAY,
            ticket=ticket,
            payload={
                "outbox_id": str(message.pk),
                "previous_status": message.status,
                "previous_attempts": message.attempts,
                "channel": message.channel,
                "template": message.template,
                **({"request": request} if request else {}),
            },
        )
        message.status = Status.PENDING
        message.attempts = 0
        message.next_attempt_at = timezone.now()
        message.claim_token = None
        message.claimed_at = None
        message.last_error = ""
        message.save(update_fields=["status", "attempts", "next_attempt_at", "claim_token", "claimed_at", "last_error"])
        transaction.on_commit(lambda: _delivery_schedule(message.pk))
    return message
