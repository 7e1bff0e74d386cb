"""Looking at a ticket as soon as it moves into a state the autopilot acts on, instead of at its
next pass: told by the executor after commit (tickets.services.state_listener_register)."""

from __future__ import annotations

import logging

from django.conf import settings

log = logging.getLogger(__name__)

NUDGE_TASK = "dispatch.autopilot.tasks.autopilot_ticket"
NUDGED_STATES = frozenset({"TRIAGED", "READY_TO_SCHEDULE", "SCHEDULED", "COMPLETED_PENDING_VERIFICATION", "VERIFIED"})


def ticket_changed(ticket_id, state: str) -> None:
    enabled = getattr(settings, "DISPATCH_AUTOPILOT", True) and getattr(settings, "DISPATCH_AUTOPILOT_NUDGES", True)
    if state not in NUDGED_STATES or not enabled:
        return
    from django_q.tasks import async_task

    try:
        async_task(NUDGE_TASK, str(ticket_id), task_name=f"autopilot {ticket_id}")
    except Exception:  # the broker may be down; the every-minute pass finds the ticket
        log.exception("Could not queue the autopilot for ticket %s; its next pass will see it.", ticket_id)
