"""Idempotent commands: one effect per (actor, endpoint, Idempotency-Key), whatever the retries.

The record is inserted *first*, in the same transaction as the command's effect. A second,
identical request that arrives while the first is running blocks on the unique index
(PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers) and, once the first
commits, fails to insert and replays the stored answer. A refused command (any 4xx/5xx)
rolls back together with its record, so the same key can be retried once the cause is fixed.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

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


def command_run_once(
    *, actor_id: str, endpoint: str, key: uuid.UUID, payload_hash: str, run: Callable[[], tuple[int, Any]]
) -> CommandAnswer:
    """Run a command at most once per (actor, endpoint, key) and remember its answer."""
    inserted = False
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                actor_id=actor_id, endpoint=endpoint, key=key, request_hash=payload_hash
            )
            inserted = True
            status, body = run()
            body = plain_json(body)
            record.status_code = status
            record.response_body = body
            record.save(update_fields=["status_code", "response_body"])
        return CommandAnswer(status=status, body=body)
    except IntegrityError:
        if inserted:
            # The command itself hit a constraint: that is its own failure, not a replay.
            raise
    stored = IdempotencyRecord.objects.filter(actor_id=actor_id, endpoint=endpoint, key=key).first()
    if stored is None or stored.status_code is None:
        # Only reachable if the first request's transaction vanished between our insert and read.
        raise DispatchError(
            "IDEMPOTENCY_IN_PROGRESS", "A request with this Idempotency-Key is still running; retry.", status=409
        )
    if stored.request_hash != payload_hash:
        raise _mismatch(key)
    return CommandAnswer(status=stored.status_code, body=stored.response_body, replayed=True)
