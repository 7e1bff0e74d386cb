"""The autopilot's evening step: re-plan tomorrow's routes once, within the autonomy ladder.

From DISPATCH_AUTOPILOT_PLAN_HOUR (company time; before the customers' reminders go out at
DISPATCH_REMINDER_HOUR), the every-minute pass plans tomorrow with the day planner and applies
the plan. A booking moves only where the autopilot may book (its rung is at least 1 - propose
and book) and no pause covers it; every other booking stays where it is and the plan is made
around it. One row per day (`EveningPlan`) keeps two workers from planning the same day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.scheduling.day_planner import company_zone, day_plan, day_plan_apply
from dispatch.tickets.models import Ticket

from . import models
from .ladder import Ladder, paused

log = logging.getLogger(__name__)


def plan_hour() -> int:
    return int(getattr(settings, "DISPATCH_AUTOPILOT_PLAN_HOUR", 16))


def evening_plan_run(*, now: datetime | None = None, actor=None) -> models.EveningPlan | None:
    """Plan and apply tomorrow, once, when it is time; the day's record, or None when not yet due."""
    from .services import autopilot_actor

    if not getattr(settings, "DISPATCH_AUTOPILOT_EVENING_PLAN", True):
        return None
    now = now or timezone.now()
    local = now.astimezone(company_zone())
    if local.hour < plan_hour():
        return None
    day = local.date() + timedelta(days=1)
    record = _claim(day)
    if record is None:
        return None

    try:
        ladder = Ladder.read()

        def may_move(ticket: Ticket) -> bool:
            level = ladder.level(ticket.incident_type, ticket.priority)
            return level >= models.PROPOSE_AND_BOOK and paused(ticket) is None

        plan = day_plan(day=day, now=now, may_move=may_move)
        record.status, record.message = plan.status, plan.message
        if plan.moves:
            day_plan_apply(actor=actor or autopilot_actor(), moves=[m.as_json() for m in plan.moves], day=day, now=now)
            record.minutes_saved, record.moves = plan.saved, len(plan.moves)
    except DispatchError as error:
        # A booking changed while the plan was being made: nothing was applied; tomorrow's plan
        # stands as it is and the reason is kept.
        record.status, record.message = "refused", error.message
    except Exception:
        log.exception("The evening plan of %s failed", day)
        record.status, record.message = "error", "The evening plan failed; tomorrow's plan stands."
    record.save(update_fields=["status", "message", "minutes_saved", "moves", "updated_at"])
    return record


# A plan still unfinished after this long was cut off (the worker stopped): it may be tried again.
STALE = timedelta(minutes=15)
MAX_ATTEMPTS = 3


def _claim(day) -> models.EveningPlan | None:
    """The day's record, claimed by this worker: new, or an earlier attempt that failed or was cut
    off (and has attempts left); None when the day is planned or another worker has it."""
    try:
        with transaction.atomic():
            return models.EveningPlan.objects.create(day=day)
    except IntegrityError:
        pass
    record = models.EveningPlan.objects.filter(day=day).first()
    if record is None or record.attempts >= MAX_ATTEMPTS:
        return None
    cut_off = record.status == "" and record.updated_at < timezone.now() - STALE
    if record.status != "error" and not cut_off:
        return None
    # Claimed only if no other worker claimed it first (the attempt count moves on once).
    claimed = models.EveningPlan.objects.filter(pk=record.pk, attempts=record.attempts).update(
        attempts=record.attempts + 1, status="", updated_at=timezone.now()
    )
    if not claimed:
        return None
    record.refresh_from_db()
    return record
