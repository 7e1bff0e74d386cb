"""The audit trail: redaction, the keyed hash chain, appends and verification."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from typing import Any, Iterator

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from dispatch.common.actors import Actor

from .models import AuditChainHead, AuditEvent, Ticket

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
# A payload key containing any of these words has its value masked before it is stored.
SENSITIVE_KEY_PARTS = ("phone", "email", "access_code", "password", "token", "secret")


def payload_redact(value: Any) -> Any:
    """A copy of `value` with every sensitive key's value masked, at any depth."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if any(part in str(key).lower() for part in SENSITIVE_KEY_PARTS) else payload_redact(item))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [payload_redact(item) for item in value]
    return value


def _plain_json(value: Any) -> Any:
    """Round-trip through JSON so that what is hashed is exactly what the database hands back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _event_digest(event: AuditEvent) -> str:
    created_at = event.created_at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")
    body = json.dumps(
        [
            str(event.id),
            event.seq,
            str(event.ticket_id) if event.ticket_id else "",
            event.actor_type,
            event.actor_id,
            event.actor_role,
            event.tool_name,
            event.request_id,
            event.correlation_id,
            event.trace_id,
            event.before_state,
            event.after_state,
            event.payload,
            created_at,
            event.prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Keyed, so that someone with SQL access alone cannot rebuild a valid chain after an edit.
    return _keyed(body)


def _keyed(text: str) -> str:
    return hmac.new(settings.DISPATCH_AUDIT_CHAIN_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def _head_seal(last_seq: int, last_hash: str) -> str:
    return _keyed(f"head:{last_seq}:{last_hash}")


def _chain_head_locked() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def audit_append(
    *,
    actor: Actor,
    tool_name: str,
    ticket: Ticket | None,
    before_state: str = "",
    after_state: str = "",
    payload: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the caller's transaction.

    The chain head is locked last and only for the few statements that follow, so appends
    from different tickets queue here briefly but never deadlock with the ticket locks
    taken before.
    """
    head = _chain_head_locked()
    event = AuditEvent(
        seq=head.last_seq + 1,
        ticket=ticket,
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        actor_role=actor.role.value if hasattr(actor.role, "value") else str(actor.role),
        tool_name=tool_name,
        request_id=actor.request_id,
        correlation_id=actor.correlation_id,
        trace_id=actor.trace_id,
        before_state=before_state or "",
        after_state=after_state or "",
        payload=_plain_json(payload_redact(payload or {})),
        created_at=timezone.now(),
        prev_hash=head.last_hash,
    )
    event.hash = _event_digest(event)
    event.save(force_insert=True)
    head.last_seq = event.seq
    head.last_hash = event.hash
    head.seal = _head_seal(head.last_seq, head.last_hash)
    head.save(update_fields=["last_seq", "last_hash", "seal"])
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""
    bad_seq: int | None = None
    bad_event_id: str = ""


def audit_chain_verify(batch_size: int = 2000) -> ChainReport:
    """Walk the chain up to its sealed head and report the first event that does not fit.

    The head is read first, so events appended while the walk runs are simply not checked
    this time, rather than reported as missing.
    """
    head = AuditChainHead.objects.filter(pk=1).first()
    last_seq = head.last_seq if head else 0
    last_hash = head.last_hash if head else GENESIS_HASH
    if head and last_seq and not hmac.compare_digest(head.seal, _head_seal(last_seq, last_hash)):
        return ChainReport(False, 0, "the chain head was altered outside the application", last_seq, "")
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for event in _events_in_order(batch_size, last_seq):
        if event.seq != expected_seq:
            return ChainReport(
                False, checked, f"event #{expected_seq} is missing (next event is #{event.seq})", expected_seq, str(event.id)
            )
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, f"event #{event.seq} does not link to the event before it", event.seq, str(event.id))
        if not hmac.compare_digest(_event_digest(event), event.hash):
            return ChainReport(False, checked, f"event #{event.seq} was altered after it was written", event.seq, str(event.id))
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    if checked != last_seq:
        return ChainReport(
            False, checked, f"event #{checked + 1} is missing: the chain head says the chain ends at #{last_seq}", checked + 1, ""
        )
    if prev_hash != last_hash:
        return ChainReport(False, checked, f"the chain head does not match event #{last_seq}", last_seq, "")
    return ChainReport(True, checked)


def _events_in_order(batch_size: int, up_to_seq: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=last, seq__lte=up_to_seq).order_by("seq")[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].seq
