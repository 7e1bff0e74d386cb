"""Idempotent commands: one effect per (actor, endpoint, Idempotency-Key), whatever the retries.

The answer is stored in the same transaction as the command's effect, under a unique index on
(actor, endpoint, key): of two identical requests only one commits, the other replays what it
stored. A refused command (any 4xx/5xx) stores nothing, so the same key can be retried once the
cause is fixed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, router, transaction

from dispatch.common.errors import DispatchError
from dispatch.tickets.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotency-Replayed"


@dataclass(frozen=True)
class CommandAnswer:
    status: int
    body: Any
    replayed: bool = False


def key_in_header(request) -> uuid.UUID | None:
    """The Idempotency-Key header as a UUID, or None when it is absent or not a canonical UUID."""
    raw = request.headers.get(HEADER, "").strip()
    if len(raw) != 36:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def idempotency_key_of(request) -> uuid.UUID:
    """The request's Idempotency-Key: 400 MISSING_IDEMPOTENCY_KEY or INVALID_IDEMPOTENCY_KEY otherwise."""
    if not request.headers.get(HEADER, "").strip():
        raise DispatchError(
            "MISSING_IDEMPOTENCY_KEY", f"Header '{HEADER}' is required for command endpoints.", status=400
        )
    key = key_in_header(request)
    if key is None:
        raise DispatchError("INVALID_IDEMPOTENCY_KEY", f"Header '{HEADER}' must be a valid UUID.", status=400)
    return key


def request_hash(payload: Any) -> str:
    """sha256 of the payload's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def plain_json(value: Any) -> Any:
    """The body exactly as it will be stored and replayed (UUIDs, datetimes as strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _mismatch(key: uuid.UUID) -> DispatchError:
    return DispatchError(
        "IDEMPOTENCY_PAYLOAD_MISMATCH",
        "Idempotency key reuse with a different payload.",
        status=409,
        dimension="request",
        details={"idempotency_key": str(key)},
    )


def record_insert(
    *, actor_id: str, endpoint: str, key: uuid.UUID, request_hash: str, status_code: int, body: Any
) -> None:
    """Store a command's answer; IntegrityError when the same (actor, endpoint, key) is stored already."""
    IdempotencyRecord.objects.db_manager(router.db_for_write(IdempotencyRecord)).bulk_create(
        [
            IdempotencyRecord(
                actor_id=actor_id,
                endpoint=endpoint,
                key=key,
                request_hash=request_hash,
                status_code=status_code,
                response_body=body,
            )
        ]
    )


def _stored(actor_id: str, endpoint: str, key: uuid.UUID) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(actor_id=actor_id, endpoint=endpoint, key=key).first()


def _replay(stored: IdempotencyRecord, key: uuid.UUID, payload_hash: str) -> CommandAnswer:
    if stored.request_hash != payload_hash:
        raise _mismatch(key)
    return CommandAnswer(status=stored.status_code, body=stored.response_body, replayed=True)


def command_run_once(
    *,
    actor_id: str,
    endpoint: str,
    key: uuid.UUID,
    payload_hash: str,
    run: Callable[[], tuple[int, Any]],
    look_first: bool = False,
) -> CommandAnswer:
    """Run a command at most once per (actor, endpoint, key) and remember its answer.

    The command runs first and its answer is inserted last, in the same transaction. Two
    identical requests at once both run, but the second one's insert waits on the unique index
    until the first commits, then fails: its whole transaction (the second effect included)
    rolls back and the stored answer is replayed. A retry after the fact usually fails inside
    the command (the ticket has moved on) or at the insert; either way the stored answer wins.
    This costs a repeated request some work, and saves every first request a round trip.

    `look_first` spends that round trip for commands whose work cannot be rolled back with the
    transaction (an uploaded file is written to storage before it): a retry that finds its
    answer stored replays it without running anything.
    """
    if look_first:
        stored = _stored(actor_id, endpoint, key)
        if stored is not None:
            return _replay(stored, key, payload_hash)
    try:
        # The command and its stored answer commit together, or neither does.
        with transaction.atomic():
            status, body = run()
            body = plain_json(body)
            record_insert(
                actor_id=actor_id, endpoint=endpoint, key=key, request_hash=payload_hash, status_code=status, body=body
            )
        return CommandAnswer(status=status, body=body)
    except (IntegrityError, DispatchError):
        stored = _stored(actor_id, endpoint, key)
        if stored is None:
            # Not a repeat: the command's own refusal or constraint failure.
            raise
    return _replay(stored, key, payload_hash)
