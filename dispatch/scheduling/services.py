"""The scheduling phase's services, as the faces (API, admin, demo) call them.

Each concern lives in its own module; this one names what the faces use:
  proposals    schedule.propose/confirm/hold/release/rollback and the slot engine's suggestions
  assignment   assignment.recommend/dispatch and dispatch.force_unassign
  onsite       tech.check_in (and its early-arrival rule), tech.pause, tech.resume
  time_off     a technician's time off
The one place a booking is saved (and its double-booking guard) is appointments.py; the board's
bookings are booking.py, the technician's way to the job eta.py, the wake-ups wakeups.py.
"""

from __future__ import annotations

from . import engine
from .assignment import (
    ASSIGNMENT_DISPATCH,
    ASSIGNMENT_RECOMMEND,
    DISPATCH_FORCE_UNASSIGN,
    assignment_dispatch,
    assignment_recommend,
    dispatch_force_unassign,
)
from .onsite import (
    CHECK_IN_REASON_MAX,
    TECH_CHECK_IN,
    TECH_PAUSE,
    TECH_RESUME,
    booked_visit_start,
    early_check_in_warning,
    resume_refusal,
    tech_check_in,
    tech_pause,
    tech_resume,
)
from .proposals import (
    SCHEDULE_CONFIRM,
    SCHEDULE_HOLD,
    SCHEDULE_PROPOSE,
    SCHEDULE_RELEASE,
    SCHEDULE_ROLLBACK,
    SCHEDULE_SUGGEST,
    schedule_confirm,
    schedule_hold,
    schedule_propose,
    schedule_release,
    schedule_rollback,
    schedule_suggest,
)
from .time_off import TIME_OFF_ADD, time_off_add

__all__ = [
    "ASSIGNMENT_DISPATCH",
    "ASSIGNMENT_RECOMMEND",
    "CHECK_IN_REASON_MAX",
    "DISPATCH_FORCE_UNASSIGN",
    "SCHEDULE_CONFIRM",
    "SCHEDULE_HOLD",
    "SCHEDULE_PROPOSE",
    "SCHEDULE_RELEASE",
    "SCHEDULE_ROLLBACK",
    "SCHEDULE_SUGGEST",
    "TECH_CHECK_IN",
    "TECH_PAUSE",
    "TECH_RESUME",
    "TIME_OFF_ADD",
    "assignment_dispatch",
    "assignment_recommend",
    "booked_visit_start",
    "dispatch_force_unassign",
    "early_check_in_warning",
    "engine",
    "resume_refusal",
    "schedule_confirm",
    "schedule_hold",
    "schedule_propose",
    "schedule_release",
    "schedule_rollback",
    "schedule_suggest",
    "tech_check_in",
    "tech_pause",
    "tech_resume",
    "time_off_add",
]
