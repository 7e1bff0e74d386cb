"""django-q2 entry points of the outbox; each parses its argument and calls one service."""

from __future__ import annotations

from . import services


def outbox_deliver(message_id: str) -> str:
    """Deliver one outbound message (queued on commit by outbox_enqueue and outbox_replay)."""
    message = services.outbox_deliver(message_id=message_id)
    return message.status if message is not None else "NOT_CLAIMED"


def outbox_sweep() -> dict[str, int]:
    """Every minute: recover expired claims and queue due messages whose hand-off was lost."""
    return services.outbox_sweep()
