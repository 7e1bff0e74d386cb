"""The autopilot's tasks for django-q2: a pass every minute, and one ticket when nudged."""

from __future__ import annotations

import logging

from .services import autopilot_pass

log = logging.getLogger(__name__)


def autopilot_tick() -> int:
    """The every-minute pass; returns how many tickets it acted on or handed over."""
    decisions = autopilot_pass()
    acted = [d for d in decisions if d.action not in ("waiting", "paused", "conflict", "error")]
    for decision in acted:
        log.info("autopilot %s %s: %s", decision.ref, decision.action, decision.reason)
    return len(acted)


def autopilot_ticket(ticket_id: str) -> int:
    """One ticket, right after it moved (see nudges.py)."""
    return len(autopilot_pass(ticket_ids=[ticket_id]))
