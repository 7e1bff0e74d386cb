"""When each demo story happens: on its technician's working time, around the moment of loading.

The stories (stories.py) are told as if it were NOMINAL_NOW on an ordinary working day: a job
"today at 09:00" is under way, one "tomorrow at 10:00" is ahead. `load_demo` may run on a
Sunday or at 22:00, so their clock times cannot be used as they are. Each story is placed
instead on the working periods of its technician (their shifts, less their time off), counting
working minutes from the technician's present: now when they are at work, else the end of their
last shift. A job that has begun is placed before that present, one still ahead after now, one
job after the other with a drive between them. Every booking then lies inside a shift, and no
job has begun before its window or waits for one that has passed.

Each step of a story is then given its own moment (the customer writes a day ahead, is offered
windows, answers; the technician checks in once the window opens), never later than now, so
the ticket's trail and the customer's messages read in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dispatch.scheduling.engine import ceil_step, step_minutes
from dispatch.scheduling.models import Shift, TimeOff
from dispatch.technicians.models import Technician
from dispatch.tickets.states import TicketState

from .stories import Step, Story

# The moment the stories are written for: half past ten on a working day of 07:00–16:00.
NOMINAL_NOW = time(10, 30)
NOMINAL_DAY_MINUTES = 9 * 60
# Between two jobs of one technician: the drive across the Bay and a margin.
DRIVE = timedelta(minutes=45)
# A job under way began at least this long ago (the technician has checked in and started),
# and the next job ahead starts at least this long from now.
UNDER_WAY = timedelta(minutes=30)
AHEAD = timedelta(minutes=20)
# How far around now working periods are read (the oldest story is three working days back,
# the furthest two ahead; a fortnight covers a week of time off on either side).
REACH_DAYS = 14

FINISHED = {
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
    TicketState.INVOICED,
    TicketState.CLOSED,
}

Period = tuple[datetime, datetime]


def working_periods(technician: Technician, now: datetime) -> list[Period]:
    """The technician's shifts around `now`, with their time off cut out, in time order."""
    periods: list[Period] = []
    for shift in Shift.objects.filter(technician=technician):
        zone = ZoneInfo(shift.timezone)
        today = now.astimezone(zone).date()
        for offset in range(-REACH_DAYS, REACH_DAYS + 1):
            day: date = today + timedelta(days=offset)
            if day.weekday() != shift.weekday:
                continue
            start = datetime.combine(day, shift.start_time, tzinfo=zone)
            end_day = day + timedelta(days=1) if shift.end_time <= shift.start_time else day
            periods.append((start, datetime.combine(end_day, shift.end_time, tzinfo=zone)))
    for off in TimeOff.objects.filter(technician=technician):
        cut: list[Period] = []
        for start, end in periods:
            if off.end <= start or off.start >= end:
                cut.append((start, end))
                continue
            if start < off.start:
                cut.append((start, off.start))
            if off.end < end:
                cut.append((off.end, end))
        periods = cut
    return sorted(periods)


def present(periods: list[Period], now: datetime) -> datetime:
    """Now, when the technician is at work; else the end of their last working period."""
    ended = [end for start, end in periods if end <= now]
    if any(start <= now < end for start, end in periods) or not ended:
        return now
    return max(ended)


def advance(periods: list[Period], moment: datetime, minutes: float) -> datetime:
    """The moment `minutes` of working time after (before, when negative) `moment`."""
    left = timedelta(minutes=abs(minutes))
    if minutes >= 0:
        for start, end in periods:
            if end <= moment:
                continue
            here = max(start, moment)
            if here + left <= end:
                return here + left
            left -= end - here
        return periods[-1][1]
    for start, end in reversed(periods):
        if start >= moment:
            continue
        here = min(end, moment)
        if here - left >= start:
            return here - left
        left -= here - start
    return periods[0][0]


def _grid_up(moment: datetime) -> datetime:
    """The first start on the slot engine's grid at or after `moment`, in the moment's zone."""
    return ceil_step(moment, step_minutes()).astimezone(moment.tzinfo)


def _grid_down(moment: datetime) -> datetime:
    """The last start on the slot engine's grid at or before `moment`, in the moment's zone
    (counted in UTC, so a night the clocks change steps back one step, not one hour more)."""
    up = ceil_step(moment, step_minutes())
    down = up if up == moment else up - timedelta(minutes=step_minutes())
    return down.astimezone(moment.tzinfo)


def _grid_near(moment: datetime) -> datetime:
    """The start on the slot engine's grid nearest to `moment`."""
    return _grid_down(moment + timedelta(minutes=step_minutes() / 2))


def fit_after(periods: list[Period], earliest: datetime, length: timedelta) -> datetime:
    """The first start on the grid at or after `earliest` whose whole job fits in one working
    period (on the grid, so a demo booking starts where the slot engine would offer one)."""
    for start, end in periods:
        begin = _grid_up(max(start, earliest))
        if begin + length <= end:
            return begin
    raise ValueError("No working period fits the job.")


def fit_before(periods: list[Period], latest: datetime, length: timedelta) -> datetime:
    """The last start on the grid at or before `latest` whose whole job fits in one working period."""
    for start, end in reversed(periods):
        begin = _grid_down(min(latest, end - length))
        if begin >= start:
            return begin
    raise ValueError("No working period fits the job.")


def _nominal_minutes(story: Story) -> int:
    hour, minute = (int(part) for part in story.at.split(":"))
    return story.day * NOMINAL_DAY_MINUTES + (hour * 60 + minute) - (NOMINAL_NOW.hour * 60 + NOMINAL_NOW.minute)


def _has(story: Story, action: str) -> bool:
    return any(step.action == action for step in story.steps)


def has_begun(story: Story) -> bool:
    """The technician reached the job: checked in, or (an emergency) was sent the moment it came in."""
    emergency = any(
        s.action == "dispatch" and s.options.get("dispatch_mode") == "EMERGENCY_BYPASS" for s in story.steps
    )
    return _has(story, "check_in") or emergency


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def windows_place(
    stories: list[Story], *, periods: list[Period], now: datetime, minutes: dict[str, int]
) -> dict[str, Window]:
    """Windows of one technician's stories (by key): begun jobs before the present, the rest after now."""
    here = present(periods, now)
    # Each story's nominal time, on the grid: "now" carries seconds, a story's clock time does not.
    target = {story.key: _grid_near(advance(periods, here, _nominal_minutes(story))) for story in stories}
    placed: dict[str, Window] = {}
    behind = sorted((s for s in stories if has_begun(s)), key=lambda s: target[s.key], reverse=True)
    latest_end = here
    for position, story in enumerate(behind):
        length = timedelta(minutes=minutes[story.key])
        if story.ends_in in FINISHED:
            latest = min(target[story.key], latest_end - length)
        else:
            # Still open: it has run a while, and may run on past now.
            latest = min(target[story.key], here - UNDER_WAY if position == 0 else latest_end - length)
        start = fit_before(periods, latest, length)
        placed[story.key] = Window(start, start + length)
        latest_end = start - DRIVE
    earliest = max([now + AHEAD] + [w.end + DRIVE for w in placed.values()])
    for story in sorted((s for s in stories if not has_begun(s)), key=lambda s: target[s.key]):
        length = timedelta(minutes=minutes[story.key])
        start = fit_after(periods, max(target[story.key], earliest), length)
        placed[story.key] = Window(start, start + length)
        earliest = start + length + DRIVE
    return placed


# When each step happens, relative to the story's window (or, for a story without one, to its
# first step). Steps of the customer's booking come the day before; the work, in the window.
_BEFORE_WINDOW = {
    "create": timedelta(days=-1),
    "triage": timedelta(days=-1, minutes=10),
    "propose": timedelta(days=-1, minutes=20),
    "schedule_hold": timedelta(days=-1, minutes=50),
    "confirm": timedelta(days=-1, minutes=55),
    "cancel": timedelta(days=-1, hours=3),
    "dispatch": timedelta(minutes=-45),
}
_IN_WINDOW = {
    "check_in": timedelta(minutes=7),
    "evidence": timedelta(minutes=12),
    "request_change": timedelta(minutes=30),
    "hold": timedelta(minutes=35),
    "parts": timedelta(minutes=40),
    "labor": timedelta(minutes=45),
    "approval_decide": timedelta(minutes=60),
}
_AFTER_WINDOW = {
    "complete": timedelta(minutes=-5),
    "verify": timedelta(hours=1),
    "invoice": timedelta(hours=1, minutes=30),
    "approve_invoice": timedelta(hours=1, minutes=40),
    "close": timedelta(hours=1, minutes=50),
}
# An emergency comes in and is sent out within minutes: the technician's window starts at dispatch.
_EMERGENCY = {"create": timedelta(minutes=-25), "triage": timedelta(minutes=-15), "dispatch": timedelta(0)}
STEP_GAP = timedelta(minutes=1)
WITHOUT_WINDOW_SINCE = timedelta(hours=3)


def _wanted(step: Step, window: Window | None, emergency: bool) -> datetime | None:
    if window is None:
        return None
    if emergency and step.action in _EMERGENCY:
        return window.start + _EMERGENCY[step.action]
    if step.action in _BEFORE_WINDOW:
        return window.start + _BEFORE_WINDOW[step.action]
    if step.action in _IN_WINDOW:
        return window.start + _IN_WINDOW[step.action]
    if step.action in _AFTER_WINDOW:
        return window.end + _AFTER_WINDOW[step.action]
    return None


def step_moments(story: Story, window: Window | None, *, now: datetime) -> list[datetime]:
    """The moment of each of the story's steps: in order, a minute apart at least, none after now."""
    emergency = has_begun(story) and not _has(story, "check_in")
    first = now - WITHOUT_WINDOW_SINCE
    moments: list[datetime] = []
    for index, step in enumerate(story.steps):
        wanted = _wanted(step, window, emergency)
        previous = moments[-1] if moments else None
        if wanted is None:
            wanted = first + index * 10 * STEP_GAP if previous is None else previous + 10 * STEP_GAP
        if previous is not None:
            wanted = max(wanted, previous + STEP_GAP)
        moments.append(wanted)
    # Nothing happens in the future: the last step is a minute ago at the latest, each one
    # before it a minute earlier still.
    ceiling = now - STEP_GAP
    for index in range(len(moments) - 1, -1, -1):
        moments[index] = min(moments[index], ceiling)
        ceiling = moments[index] - STEP_GAP
    return moments
