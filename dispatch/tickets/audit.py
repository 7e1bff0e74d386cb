"""The audit trail: redaction, the keyed hash chain, appends and verification."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError

from .models import AuditChainHead, AuditEvent, Ticket

GENESIS_HASH = "0" * 64
# Ticket openings and events about no ticket are spread over this many lanes, each its own
# chain with a sealed head: appends to different lanes never wait for each other.
AUDIT_LANES = 32
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


def _canonical_number(text: str) -> int | float:
    """A JSON number as PostgreSQL's jsonb hands it back: jsonb keeps numbers as decimals, so
    `1e20` comes back as the integer 100000000000000000000 and `-0.0` as `0`. An integral float
    is stored as that integer; any other float already survives the trip digit for digit."""
    number = float(text)
    return int(number) if number.is_integer() else number


def _plain_json(value: Any) -> Any:
    """The payload in the one form every database hands back unchanged: round-tripped through
    JSON, integral floats as integers. What is hashed is what is stored is what is read back.

    The digest of an event is unchanged by this (it hashes whatever the payload is), so events
    written before numbers were canonicalised verify as they always did.
    """
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    except ValueError:
        # NaN and infinities are not JSON: no database would store them as the hash saw them.
        raise DispatchError(
            "INVALID_REQUEST", "The request holds a number JSON cannot carry (NaN or infinity).", status=400
        ) from None
    return json.loads(text, parse_float=_canonical_number)


def _event_digest(event: AuditEvent) -> str:
    created_at = event.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    body = json.dumps(
        [
            str(event.id),
            str(event.ticket_id) if event.ticket_id else "",
            event.seq,
            event.lane,
            event.lane_seq,
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


def _lane_seal(lane: int, last_seq: int, last_hash: str) -> str:
    return _keyed(f"lane:{lane}:{last_seq}:{last_hash}")


def _ticket_seal(ticket_id: Any, last_seq: int, last_hash: str) -> str:
    return _keyed(f"ticket:{ticket_id}:{last_seq}:{last_hash}")


# Events about no ticket all go to lane 0, so a transaction that writes several of them locks
# one lane, never two in varying order; ticket openings spread over the other lanes.
TICKETLESS_LANE = 0


def lane_of(ticket_id: uuid.UUID) -> int:
    """The lane a ticket's opening event links into."""
    return 1 + ticket_id.int % (AUDIT_LANES - 1)


def _lane_head_locked(lane: int) -> AuditChainHead:
    """The lane's head row, locked until the transaction ends (created empty on first use)."""
    head = AuditChainHead.objects.select_for_update().filter(pk=lane).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=lane, defaults=lane_head_empty(lane))
        head = AuditChainHead.objects.select_for_update().get(pk=lane)
    return head


def lane_head_empty(lane: int) -> dict:
    """The fields of a lane that holds no event yet; sealed too, so a lane cannot be emptied by SQL."""
    return {"last_seq": 0, "last_hash": GENESIS_HASH, "seal": _lane_seal(lane, 0, GENESIS_HASH)}


def audit_event(
    *,
    actor: Actor,
    tool_name: str,
    ticket: Ticket | None,
    before_state: str = "",
    after_state: str = "",
    payload: dict | None = None,
) -> AuditEvent:
    """An unsaved, unchained event: redacted payload, actor and request ids, time."""
    return AuditEvent(
        id=uuid.uuid4(),
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
    )


def audit_link(event: AuditEvent, *, ticket: Ticket | None, opening: bool = False) -> None:
    """Give `event` its place in the chains and its hash; advance the heads.

    With a ticket, the event goes on that ticket's chain: the caller holds the ticket's row lock
    and saves the ticket row after this call (its head fields are advanced on the instance).
    The event that opens a ticket, and an event about no ticket, is also a link of a lane; that
    lane's head row is locked and advanced here. Nothing is locked for any other event, so
    changes of different tickets never queue behind each other here.
    """
    lane_head = None
    if ticket is None or opening:
        lane_head = _lane_head_locked(lane_of(ticket.id) if ticket is not None else TICKETLESS_LANE)
        event.lane = lane_head.pk
        event.lane_seq = lane_head.last_seq + 1
        event.prev_hash = lane_head.last_hash
    if ticket is not None:
        event.seq = ticket.audit_seq + 1
        if lane_head is None:
            event.prev_hash = ticket.audit_hash or GENESIS_HASH
    event.hash = _event_digest(event)
    if ticket is not None:
        ticket.audit_seq = event.seq
        ticket.audit_hash = event.hash
        ticket.audit_seal = _ticket_seal(ticket.pk, event.seq, event.hash)
    if lane_head is not None:
        lane_head.last_seq = event.lane_seq
        lane_head.last_hash = event.hash
        lane_head.seal = _lane_seal(lane_head.pk, lane_head.last_seq, lane_head.last_hash)
        lane_head.save(update_fields=["last_seq", "last_hash", "seal"])


def audit_append(
    *,
    actor: Actor,
    tool_name: str,
    ticket: Ticket | None,
    before_state: str = "",
    after_state: str = "",
    payload: dict | None = None,
) -> AuditEvent:
    """Append one event about a ticket this transaction has not changed, or about no ticket.

    Must run inside the caller's transaction. The ticket's row is locked for the append (its
    chain head lives there); its state and fields are left as they are.
    """
    event = audit_event(
        actor=actor,
        tool_name=tool_name,
        ticket=ticket,
        before_state=before_state,
        after_state=after_state,
        payload=payload,
    )
    if ticket is not None:
        head = (
            Ticket.objects.select_for_update(of=("self",)).filter(pk=ticket.pk).values("audit_seq", "audit_hash").get()
        )
        ticket.audit_seq, ticket.audit_hash = head["audit_seq"], head["audit_hash"]
    audit_link(event, ticket=ticket)
    if ticket is not None:
        Ticket.objects.filter(pk=ticket.pk).update(
            audit_seq=ticket.audit_seq, audit_hash=ticket.audit_hash, audit_seal=ticket.audit_seal
        )
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""
    chain: str = ""
    bad_seq: int | None = None
    bad_event_id: str = ""


class _Broken(Exception):
    def __init__(self, chain: str, problem: str, bad_seq: int | None, bad_event_id: str = ""):
        self.chain, self.problem, self.bad_seq, self.bad_event_id = chain, problem, bad_seq, bad_event_id


def audit_chain_verify(batch_size: int = 2000) -> ChainReport:
    """Walk every lane and every ticket's chain up to its sealed head; report the first event
    that does not fit.

    The walk reads one snapshot of the database (on PostgreSQL a repeatable-read transaction;
    SQLite's transactions are serialisable), so an append that commits meanwhile is neither
    half-seen nor reported as missing.
    """
    # Only an outermost transaction can choose its isolation level.
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _verify_all(batch_size)


def _verify_all(batch_size: int) -> ChainReport:
    checked = 0
    # Every event checked as a lane link, so the ticket walk knows which openings the lanes vouched for.
    lane_links: set = set()
    try:
        heads = {head.pk: head for head in AuditChainHead.objects.order_by("pk")}
        for lane in range(AUDIT_LANES):
            if lane not in heads:
                raise _Broken(f"lane {lane}", "the lane's head row is missing", None)
            checked += _lane_verify(heads[lane], batch_size, lane_links)
        last_id = None
        while True:
            heads = Ticket.objects.order_by("pk").values("pk", "audit_seq", "audit_hash", "audit_seal")
            if last_id is not None:
                heads = heads.filter(pk__gt=last_id)
            heads = list(heads[: max(1, batch_size // 8)])
            if not heads:
                break
            checked += _tickets_verify(heads, lane_links)
            last_id = heads[-1]["pk"]
        stray = (
            AuditEvent.objects.filter(
                Q(ticket__isnull=True, lane__isnull=True)
                | Q(lane__isnull=True, lane_seq__isnull=False)
                | Q(lane__isnull=False, lane_seq__isnull=True)
                | Q(lane_seq__lt=1)
                | Q(lane__gte=AUDIT_LANES)
            )
            .values_list("pk", flat=True)
            .first()
        )
        if stray is not None:
            raise _Broken("the trail", f"event {stray} belongs to no chain", None, str(stray))
        total = AuditEvent.objects.count()
        if total != checked:
            # Events whose ticket row is gone (deleted with foreign keys switched off) are in no walk.
            orphan = (
                AuditEvent.objects.filter(ticket__isnull=False)
                .exclude(ticket_id__in=Ticket.objects.values("pk"))
                .values_list("pk", flat=True)
                .first()
            )
            raise _Broken(
                "the trail",
                f"{total - checked} event(s) lie outside every chain walked"
                + (f", e.g. {orphan}, whose ticket row is gone" if orphan else ""),
                None,
                str(orphan or ""),
            )
    except _Broken as broken:
        return ChainReport(False, checked, broken.problem, broken.chain, broken.bad_seq, broken.bad_event_id)
    return ChainReport(True, checked)


def _event_check(
    chain: str, event: AuditEvent, position: int, expected: int, prev_hash: str, *, linked: bool = True
) -> None:
    """One event of a chain: in its place (no gap before it), linked to the event before it
    (unless `linked` is False: its link is checked in its lane), and unaltered."""
    if position != expected:
        raise _Broken(chain, f"event #{expected} is missing (next event is #{position})", expected, str(event.id))
    if linked and event.prev_hash != prev_hash:
        raise _Broken(chain, f"event #{expected} does not link to the event before it", expected, str(event.id))
    if not hmac.compare_digest(_event_digest(event), event.hash):
        raise _Broken(chain, f"event #{expected} was altered after it was written", expected, str(event.id))


def _end_check(chain: str, holder: str, walked: int, prev_hash: str, last_seq: int, last_hash: str) -> None:
    """The walk ended where the chain's sealed head says it ends."""
    if walked != last_seq:
        raise _Broken(chain, f"event #{walked + 1} is missing: {holder} says it ends at #{last_seq}", walked + 1)
    if last_seq and prev_hash != last_hash:
        raise _Broken(chain, f"{holder} does not match event #{last_seq}", last_seq)


def _lane_verify(head: AuditChainHead, batch_size: int, lane_links: set) -> int:
    """Check one lane up to its head; returns how many of its events were checked."""
    chain = f"lane {head.pk}"
    if not hmac.compare_digest(head.seal, _lane_seal(head.pk, head.last_seq, head.last_hash)):
        raise _Broken(chain, "the lane head was altered outside the application", head.last_seq)
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    while expected <= head.last_seq:
        batch = list(
            AuditEvent.objects.filter(lane=head.pk, lane_seq__gte=expected, lane_seq__lte=head.last_seq).order_by(
                "lane_seq"
            )[:batch_size]
        )
        if not batch:
            break
        for event in batch:
            _event_check(chain, event, event.lane_seq, expected, prev_hash)
            prev_hash = event.hash
            expected += 1
            checked += 1
            lane_links.add(event.id)
    _end_check(chain, "the lane head", checked, prev_hash, head.last_seq, head.last_hash)
    beyond = AuditEvent.objects.filter(lane=head.pk, lane_seq__gt=head.last_seq).order_by("lane_seq").first()
    if beyond is not None:
        raise _Broken(
            chain,
            f"event #{beyond.lane_seq} lies beyond the lane head (#{head.last_seq})",
            beyond.lane_seq,
            str(beyond.id),
        )
    return checked


def _tickets_verify(heads: list[dict], lane_links: set) -> int:
    """Check the chains of a batch of tickets; returns how many events not already checked in a
    lane were checked."""
    events: dict[Any, list[AuditEvent]] = {head["pk"]: [] for head in heads}
    for event in AuditEvent.objects.filter(ticket_id__in=list(events)).order_by("ticket_id", "seq"):
        events[event.ticket_id].append(event)
    checked = 0
    for head in heads:
        chain = f"ticket RD-{str(head['pk'])[:8].upper()}"
        last_seq, last_hash = head["audit_seq"], head["audit_hash"]
        if last_seq and not hmac.compare_digest(head["audit_seal"], _ticket_seal(head["pk"], last_seq, last_hash)):
            raise _Broken(chain, "the ticket's audit head was altered outside the application", last_seq)
        expected, prev_hash = 1, GENESIS_HASH
        for event in events[head["pk"]]:
            if event.seq is None:
                raise _Broken(chain, f"event {event.id} has no place in the ticket's chain", None, str(event.id))
            if event.seq > last_seq:
                raise _Broken(
                    chain,
                    f"event #{event.seq} lies beyond the ticket's audit head (#{last_seq})",
                    event.seq,
                    str(event.id),
                )
            # Only a ticket's first event may be a lane link, and then only one the lane walk checked:
            # its link to the event before it is the lane's, verified there.
            linked_by_lane = event.lane is not None
            if linked_by_lane and (event.seq != 1 or event.id not in lane_links):
                raise _Broken(chain, f"event #{event.seq} claims a lane it is not part of", event.seq, str(event.id))
            _event_check(chain, event, event.seq, expected, prev_hash, linked=not linked_by_lane)
            if not linked_by_lane:
                checked += 1
            prev_hash = event.hash
            expected += 1
        _end_check(chain, "the ticket's audit head", expected - 1, prev_hash, last_seq, last_hash)
    return checked
