"""The slot engine: where and when can this job be done, by whom, and why that choice.

`slots_suggest` proposes the best appointment windows for a ticket; `slot_check` re-checks one
placement (a booking, a drag on the board) against the same hard rules. Both read everything
they need in a fixed number of queries, whatever the number of technicians and appointments,
and compute in Python.

Hard rules (a window that breaks one is never offered):
  - the technician is active, has the ticket's incident type as a skill and covers the site's
    service region (a site with no region can be served by anyone);
  - the job, the drive to it from the previous job (or from home at the start of the shift)
    and the drive to the next job all fit inside one shift;
  - nothing overlaps another booked (HELD/CONFIRMED) appointment or time off;
  - when the customer said when suits them, the whole arrival window lies inside that.
Soft objectives (weighted by the one ranker, `ranking.py`, with `DISPATCH_SLOT_WEIGHTS`): earliest
start (weighted by priority), least added travel, balanced workload, the site's previous
technician, skill level and the SLA due time.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import FloatField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common import time_phrases
from dispatch.technicians.models import Technician, TechnicianSkill
from dispatch.technicians.setup_health import job_setup_gap
from dispatch.tickets import catalog
from dispatch.tickets.models import Priority, Site, Ticket

from . import ranking
from .models import BOOKED_STATUSES, DEFAULT_WORK_TIMEZONE, Appointment, AppointmentStatus, Shift, TimeOff
from .routing import TravelModel
from .selectors import RELEASED_TICKET_STATES

UTC = UTC
DEFAULT_HORIZON_DAYS = 14
DEFAULT_LIMIT = 3
DEFAULT_JOB_MINUTES = 90
# How far past the horizon bookings are read: a shift that starts inside the horizon can run
# past its end, and the job after a window limits that window.
EDGE = timedelta(days=1)

# Service-level due times by priority, counted from when the ticket was opened.
SLA_DUE = {
    Priority.EMERGENCY: timedelta(hours=4),
    Priority.URGENT: timedelta(hours=24),
    Priority.ROUTINE: timedelta(days=5),
}

# Candidate starts looked at per free gap: the earliest and the next ones an arrival window later.
STARTS_PER_GAP = 3


# --- configuration --------------------------------------------------------------------------


def step_minutes() -> int:
    return max(5, int(getattr(settings, "DISPATCH_SLOT_STEP_MINUTES", 30)))


def arrival_window_minutes() -> int:
    return max(0, int(getattr(settings, "DISPATCH_ARRIVAL_WINDOW_MINUTES", 120)))


def travel_model() -> TravelModel:
    """The travel model as configured: DISPATCH_TRAVEL_ROAD_FACTOR, _SPEED_KMH, _UNKNOWN_MINUTES."""
    return TravelModel(
        road_factor=float(getattr(settings, "DISPATCH_TRAVEL_ROAD_FACTOR", 1.3)),
        speed_kmh=float(getattr(settings, "DISPATCH_TRAVEL_SPEED_KMH", 40)) or 40.0,
        unknown_minutes=int(getattr(settings, "DISPATCH_TRAVEL_UNKNOWN_MINUTES", 30)),
    )


def travel_minutes(a: tuple[float, float] | None, b: tuple[float, float] | None) -> int:
    """Driving minutes between two points: haversine × DISPATCH_TRAVEL_ROAD_FACTOR ÷
    DISPATCH_TRAVEL_SPEED_KMH, rounded up. When either point is unknown,
    DISPATCH_TRAVEL_UNKNOWN_MINUTES is assumed rather than zero, so a site without coordinates
    is not treated as next door."""
    return travel_model().minutes(a, b)


def job_minutes(incident_type: str) -> int:
    """The incident template's typical duration (through the catalog: scheduling does not import closeout)."""
    if not incident_type:
        return DEFAULT_JOB_MINUTES
    return catalog.incident_duration_minutes(incident_type) or DEFAULT_JOB_MINUTES


def sla_due(ticket: Ticket) -> datetime | None:
    opened = ticket.created_at
    due = SLA_DUE.get(ticket.priority)
    return opened + due if opened and due else None


def zone_named(name: str | None, fallback: str = DEFAULT_WORK_TIMEZONE) -> ZoneInfo:
    for candidate in (name, fallback, settings.TIME_ZONE):
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            continue
    return ZoneInfo("UTC")


def point_of(lat: Any, lng: Any) -> tuple[float, float] | None:
    if lat is None or lng is None:
        return None
    return float(lat), float(lng)


# --- customer time preferences ----------------------------------------------------------------


def _rule_from(value: dict) -> time_phrases.PreferenceRule | None:
    """A recurring rule from a dict like {"days": ["tue"], "from": "08:00", "to": "12:00"}."""
    days = value.get("days", value.get("weekdays"))
    weekdays: set[int] | None = None
    if days:
        weekdays = set()
        for day in days if isinstance(days, (list, tuple)) else [days]:
            if isinstance(day, int) and 0 <= day <= 6:
                weekdays.add(day)
            elif isinstance(day, str) and day.strip().lower() in time_phrases.WEEKDAY_INDEX:
                weekdays.add(time_phrases.WEEKDAY_INDEX[day.strip().lower()])
    dates = None
    if value.get("date"):
        try:
            dates = frozenset({date.fromisoformat(str(value["date"])[:10])})
        except ValueError:
            return None
    given_from, given_to = value.get("from", value.get("start_time")), value.get("to", value.get("end_time"))
    low = time_phrases.clock_text(str(given_from)) if given_from else None
    high = time_phrases.clock_text(str(given_to)) if given_to else None
    spans = [(low or time_phrases.DAY_START, high or time_phrases.DAY_END)] if (low or high) else []
    part = time_phrases.part_of_day(value["part_of_day"]) if isinstance(value.get("part_of_day"), str) else None
    if part:
        spans.append(part)
    rule = time_phrases.PreferenceRule(frozenset(weekdays) if weekdays is not None else None, dates, tuple(spans))
    return rule if rule else None


def preference_windows_parse(
    values: Iterable[Any], *, zone: ZoneInfo, start: datetime, end: datetime, reference: date | None = None
) -> list[tuple[datetime, datetime]] | None:
    """Absolute windows in [start, end) from stored time preferences; None when they say nothing usable.

    A value may be an absolute window {"start": ISO, "end": ISO}, a rule {"days", "from", "to",
    "date", "part_of_day"}, free text ("tomorrow morning", "Tuesday after 3pm", "weekdays
    between 9 and 11"), a JSON string of those, or a list of them. Relative words are read from
    `reference` (the day the customer said them; default today in `zone`).
    """
    reference = reference or timezone.now().astimezone(zone).date()
    absolute: list[tuple[datetime, datetime]] = []
    rules: list[time_phrases.PreferenceRule] = []
    pending = list(values)
    while pending:
        value = pending.pop(0)
        if isinstance(value, (list, tuple)):
            pending[:0] = list(value)
            continue
        if isinstance(value, str):
            stripped = value.strip()
            if stripped[:1] in "[{":
                try:
                    pending.insert(0, json.loads(stripped))
                    continue
                except ValueError:
                    pass
            if not stripped or time_phrases.says_any_time(stripped):
                continue
            rule = time_phrases.preference_rule(stripped, reference)
            if rule:
                rules.append(rule)
            continue
        if isinstance(value, dict):
            if value.get("start") and value.get("end") and "T" not in str(value["start"]):
                # Clock times ("08:00") with optional days or date: a recurring rule.
                value = {**value, "from": value["start"], "to": value["end"]}
                value.pop("start")
                value.pop("end")
            if value.get("start") and value.get("end"):
                low, high = parse_datetime(str(value["start"])), parse_datetime(str(value["end"]))
                if low and high:
                    low = low if timezone.is_aware(low) else low.replace(tzinfo=zone)
                    high = high if timezone.is_aware(high) else high.replace(tzinfo=zone)
                    if high > low:
                        absolute.append((low.astimezone(UTC), high.astimezone(UTC)))
                continue
            for text_key in ("text", "value", "raw", "label"):
                if isinstance(value.get(text_key), (str, list, dict)) and not any(
                    k in value for k in ("days", "weekdays", "from", "to", "date", "part_of_day")
                ):
                    pending.insert(0, value[text_key])
                    break
            else:
                rule = _rule_from(value)
                if rule:
                    rules.append(rule)
    windows = list(absolute)
    if rules:
        first = start.astimezone(zone).date()
        last = end.astimezone(zone).date()
        day = first
        while day <= last:
            for rule in rules:
                if rule.weekdays is not None and day.weekday() not in rule.weekdays:
                    continue
                if rule.dates is not None and day not in rule.dates:
                    continue
                for low, high in rule.spans or [(time_phrases.DAY_START, time_phrases.DAY_END)]:
                    windows.append(
                        (
                            datetime.combine(day, low, tzinfo=zone).astimezone(UTC),
                            datetime.combine(day, high, tzinfo=zone).astimezone(UTC),
                        )
                    )
            day += timedelta(days=1)
    if not windows and not rules:
        return None
    # Rules that matched no day in the horizon still count as a preference (nothing fits it).
    clipped = sorted((max(a, start), min(b, end)) for a, b in windows if b > start and a < end)
    return _merge(clipped)


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def ticket_time_preferences(
    *, ticket: Ticket, zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]] | None:
    """The customer's preferred windows as intake extracted them (one query); None = no preference."""
    latest = catalog.ticket_time_preference(ticket.pk)
    if latest is None:
        return None
    value, stated_at = latest
    reference = stated_at.astimezone(zone).date() if stated_at else None
    windows = preference_windows_parse([value], zone=zone, start=start, end=end, reference=reference)
    if windows == [] and _all_past(value, start):
        # "Tomorrow morning", said last week: the days the customer named are gone, and a
        # preference nothing can ever meet would leave the job unschedulable. It no longer binds.
        return None
    return windows


def _all_past(value: Any, moment: datetime) -> bool:
    """Whether a stored preference is only absolute windows, all over before `moment`."""
    items = value if isinstance(value, list) else [value]
    ends = []
    for item in items:
        if not (isinstance(item, dict) and item.get("end") and "T" in str(item.get("start", ""))):
            return False
        end = parse_datetime(str(item["end"]))
        if end is None or timezone.is_naive(end):
            return False
        ends.append(end)
    return bool(ends) and max(ends) <= moment


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    technician_id: uuid.UUID
    technician_name: str
    start: datetime
    end: datetime
    arrival_start: datetime
    arrival_end: datetime
    score: float
    reason: str
    travel_minutes: int
    added_travel_minutes: int = 0
    skill_level: int | None = None
    # The score's parts, for the board and for tests: {"earliest": -3.5, "travel": -12, ...}.
    breakdown: dict = field(default_factory=dict, compare=False)
    # A crew or multi-day job (crews.py): ((technician id, name), ...) lead first, and the
    # run's ((start, end), ...) day by day. Empty for a one-technician, one-day window.
    crew: tuple = ()
    days: tuple = ()


@dataclass
class Suggestion:
    ticket_id: uuid.UUID
    windows: list[Window]
    # Rule → how many technicians it excluded (each counted once, by the first rule they fail).
    excluded: dict[str, int]
    explanation: str
    duration_minutes: int
    horizon_start: datetime
    horizon_end: datetime
    preferences: list[tuple[datetime, datetime]] | None = None
    sla_due: datetime | None = None


# --- loading (a fixed number of queries) ------------------------------------------------------


@dataclass
class _Block:
    """Something occupying a technician: a booked job (at a site) or time off (from home)."""

    start: datetime
    end: datetime
    point: tuple[float, float] | None
    kind: str  # "job" or "off"
    label: str = ""


@dataclass
class _Tech:
    id: uuid.UUID
    name: str
    home: tuple[float, float] | None
    level: int | None
    active: bool = True
    covers: bool = True
    shifts: list[tuple[int, time, time, str]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


@dataclass
class _Job:
    ticket: Ticket
    site: Site
    point: tuple[float, float] | None
    zone: ZoneInfo
    region: str
    incident_type: str
    minutes: int
    priority: str


def _job_context(ticket: Ticket) -> _Job:
    site = ticket.site  # one query unless the caller loaded it
    return _Job(
        ticket=ticket,
        site=site,
        point=point_of(site.lat, site.lng),
        zone=zone_named(site.timezone),
        region=(site.service_region or "").strip().upper(),
        incident_type=(ticket.incident_type or "").strip().upper(),
        minutes=job_minutes(ticket.incident_type),
        priority=ticket.priority or Priority.ROUTINE,
    )


def _blocks_load(
    techs: dict[uuid.UUID, _Tech],
    *,
    low: datetime,
    high: datetime,
    ticket_id: uuid.UUID,
    ignore: Iterable[uuid.UUID] = (),
) -> None:
    """Booked appointments and time off of `techs` overlapping [low, high) (two queries)."""
    if not techs:
        return
    ids = list(techs)
    booked = (
        Appointment.objects.filter(technician_id__in=ids, status__in=BOOKED_STATUSES, start__lt=high, end__gt=low)
        .exclude(ticket__state__in=RELEASED_TICKET_STATES)
        .exclude(ticket_id=ticket_id)
    )
    ignore = [pk for pk in ignore if pk]
    if ignore:
        booked = booked.exclude(pk__in=ignore)
    # Coordinates as floats straight from the database: thousands of rows, no Decimal on the way.
    rows = booked.order_by().values_list(
        "technician_id",
        "start",
        "end",
        Cast("ticket__site__lat", FloatField()),
        Cast("ticket__site__lng", FloatField()),
    )
    for tech_id, start, end, lat, lng in rows:
        techs[tech_id].blocks.append(_Block(start, end, None if lat is None or lng is None else (lat, lng), "job"))
    for tech_id, start, end, reason in (
        TimeOff.objects.filter(technician_id__in=ids, start__lt=high, end__gt=low)
        .order_by()
        .values_list("technician_id", "start", "end", "reason")
    ):
        techs[tech_id].blocks.append(_Block(start, end, techs[tech_id].home, "off", reason))
    for tech in techs.values():
        tech.blocks.sort(key=lambda b: (b.start, b.end))


def _shifts_load(techs: dict[uuid.UUID, _Tech]) -> None:
    if not techs:
        return
    for tech_id, weekday, start, end, zone in (
        Shift.objects.filter(technician_id__in=list(techs))
        .order_by()
        .values_list("technician_id", "weekday", "start_time", "end_time", "timezone")
    ):
        techs[tech_id].shifts.append((weekday, start, end, zone))


def _shift_intervals(tech: _Tech, low: datetime, high: datetime) -> list[tuple[datetime, datetime, str]]:
    return shift_intervals(tech.shifts, low, high)


def shift_intervals(
    shifts: list[tuple[int, time, time, str]], low: datetime, high: datetime
) -> list[tuple[datetime, datetime, str]]:
    """Weekly shifts (weekday, start, end, timezone) as UTC intervals overlapping [low, high),
    touching ones merged."""
    if not shifts:
        return []
    intervals = []
    by_zone: dict[str, list[tuple[int, time, time]]] = defaultdict(list)
    for weekday, start, end, zone in shifts:
        by_zone[zone].append((weekday, start, end))
    for zone_name, shifts in by_zone.items():
        zone = zone_named(zone_name)
        day = low.astimezone(zone).date() - timedelta(days=1)
        last = high.astimezone(zone).date()
        while day <= last:
            weekday = day.weekday()
            for shift_day, start, end in shifts:
                if shift_day != weekday:
                    continue
                begin = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
                finish_day = day if end > start else day + timedelta(days=1)
                finish = datetime.combine(finish_day, end, tzinfo=zone).astimezone(UTC)
                if finish > low and begin < high:
                    intervals.append((begin, finish, zone_name))
            day += timedelta(days=1)
    intervals.sort()
    merged: list[list[Any]] = []
    for begin, finish, zone_name in intervals:
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finish)
        else:
            merged.append([begin, finish, zone_name])
    return [(a, b, z) for a, b, z in merged]


# --- text ---------------------------------------------------------------------------------------


def _hm(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%H:%M}"


def _day(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a %b} {local.day}"


def moment_text(moment: datetime, timezone_name: str) -> str:
    """'Tue Nov 24 07:00' in the named timezone (the site's, for a customer's job)."""
    zone = zone_named(timezone_name)
    return f"{_day(moment, zone)} {_hm(moment, zone)}"


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    if start.astimezone(zone).date() == end.astimezone(zone).date():
        return f"{_day(start, zone)} {_hm(start, zone)}–{_hm(end, zone)}"
    return f"{_day(start, zone)} {_hm(start, zone)} – {_day(end, zone)} {_hm(end, zone)}"


def _hours(minutes: float) -> str:
    hours = minutes / 60
    return f"{hours:.0f} h" if hours == int(hours) else f"{hours:.1f} h"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# --- the search --------------------------------------------------------------------------------


def ceil_step(moment: datetime, step: int) -> datetime:
    """The first moment on the step grid at or after `moment` (a fraction of a second counts)."""
    epoch = math.ceil(moment.timestamp())
    size = step * 60
    rounded = -(-epoch // size) * size
    return datetime.fromtimestamp(rounded, tz=UTC)


@dataclass
class _Gap:
    """Free time between what precedes (home at shift start, a job, time off) and what follows."""

    free_start: datetime
    free_end: datetime
    origin: tuple[float, float] | None
    origin_label: str
    after: _Block | None
    next_block: _Block | None
    shift_end: datetime


def _gaps(tech: _Tech, shift_start: datetime, shift_end: datetime) -> list[_Gap]:
    gaps = []
    cursor, origin, label, after = shift_start, tech.home, "home", None
    for block in tech.blocks:
        if block.end <= shift_start or block.start >= shift_end:
            continue
        if block.start > cursor:
            gaps.append(_Gap(cursor, block.start, origin, label, after, block, shift_end))
        if block.end > cursor:
            cursor, origin, after = block.end, block.point, block
            label = "job" if block.kind == "job" else "time off"
    if cursor < shift_end:
        gaps.append(_Gap(cursor, shift_end, origin, label, after, None, shift_end))
    return gaps


def gap_fit(
    gap: _Gap, point: tuple[float, float] | None, *, now: datetime, duration: timedelta, drive
) -> tuple[int, int, datetime, datetime] | None:
    """How a job at `point` fits a free gap: (drive in, drive on to the next block, earliest start,
    latest start), the start leaving time for the drive in and the job ending in time for the
    drive on (or by the shift's end); None when it does not fit. One rule for the slot engine and
    the crew search."""
    travel_in = drive(gap.origin, point)
    travel_out = drive(point, gap.next_block.point) if gap.next_block else 0
    low = max(gap.free_start, now) + timedelta(minutes=travel_in)
    latest_end = (gap.next_block.start - timedelta(minutes=travel_out)) if gap.next_block else gap.shift_end
    high = latest_end - duration
    if high < low:
        return None
    return travel_in, travel_out, low, high


def _booked_minutes_by_day(tech: _Tech, zone: ZoneInfo) -> dict[date, float]:
    minutes: dict[date, float] = defaultdict(float)
    for block in tech.blocks:
        if block.kind == "job":
            minutes[block.start.astimezone(zone).date()] += (block.end - block.start).total_seconds() / 60
    return minutes


def _origin_text(gap: _Gap, zone: ZoneInfo) -> str:
    if gap.after is None:
        return "home"
    if gap.after.kind == "off":
        return f"home after time off ending {_hm(gap.after.end, zone)}"
    return f"the {_hm(gap.after.start, zone)} job"


@dataclass
class _Pool:
    """The technicians who may take the job, loaded with shifts and bookings, and how many each
    hard rule left (for the explanation when nothing is found)."""

    techs: dict[uuid.UUID, _Tech]
    active_count: int
    skilled: int
    in_region: int
    previous_tech: uuid.UUID | None


def _pool_load(job: _Job, *, technician_ids: Iterable[uuid.UUID] | None, now: datetime, horizon_end: datetime) -> _Pool:
    """Active technicians with the skill who cover the region, their shifts and bookings over the
    horizon, and the site's previous technician (a fixed number of queries)."""
    # 1. Who has the skill (active technicians only), 2. who covers the region.
    active = Technician.objects.filter(is_active=True)
    if technician_ids is not None:
        active = active.filter(pk__in=list(technician_ids))
    active_count = active.count()
    if job.incident_type:
        rows = (
            TechnicianSkill.objects.filter(technician__in=active, incident_type__iexact=job.incident_type)
            .order_by()
            .values_list(
                "technician_id", "level", "technician__display_name", "technician__home_lat", "technician__home_lng"
            )
        )
    else:
        rows = active.order_by().values_list("id", "id", "display_name", "home_lat", "home_lng")
    techs: dict[uuid.UUID, _Tech] = {}
    for tech_id, level, name, lat, lng in rows:
        level = level if job.incident_type else None
        if tech_id not in techs or (level or 0) > (techs[tech_id].level or 0):
            techs[tech_id] = _Tech(tech_id, name, point_of(lat, lng), level)
    skilled = len(techs)
    if job.region and techs:
        through = Technician.regions.through
        covering = set(
            through.objects.filter(technician_id__in=list(techs), region__code__iexact=job.region).values_list(
                "technician_id", flat=True
            )
        )
        techs = {pk: t for pk, t in techs.items() if pk in covering}
    in_region = len(techs)
    _shifts_load(techs)
    _blocks_load(techs, low=now - EDGE, high=horizon_end + EDGE, ticket_id=job.ticket.pk)
    previous_tech = (
        Appointment.objects.filter(
            ticket__site_id=job.site.pk,
            technician__isnull=False,
            status__in=[AppointmentStatus.COMPLETED, AppointmentStatus.CONFIRMED],
            start__lt=now,
        )
        .exclude(ticket_id=job.ticket.pk)
        .order_by("-start")
        .values_list("technician_id", flat=True)
        .first()
    )
    return _Pool(techs, active_count, skilled, in_region, previous_tech)


@dataclass
class _Candidate:
    cost: float
    order: int
    tech: _Tech
    start: datetime
    travel_in: int
    added: int
    booked: float
    gap: _Gap
    parts: dict


@dataclass
class _Search:
    """Everything the search placed, and how far it got (for the explanation)."""

    candidates: list[_Candidate]
    with_shift: int
    with_free: int
    with_preferred: int
    # Later shifts were not looked at: they could not beat what was found (see _candidates_find).
    pruned: bool


@dataclass(frozen=True)
class _Scoring:
    """What scoring one start needs besides the start itself (the same for every candidate)."""

    weight: dict
    per_hour_waiting: float
    now: datetime
    duration: timedelta
    due: datetime | None
    previous_tech: uuid.UUID | None
    # How much of the change to the drive home counts when a job follows the day's last job
    # (the ranker's home_leg_after_work).
    home_share: float


def _candidate_parts(
    scoring: _Scoring, tech: _Tech, start: datetime, *, added: float, booked: float
) -> dict[str, float]:
    """The soft objectives of one start, weighted by the one ranker (scheduling.ranking)."""
    late_hours = None
    if scoring.due is not None and start + scoring.duration > scoring.due:
        late_hours = (start + scoring.duration - scoring.due).total_seconds() / 3600
    return ranking.score_parts(
        scoring.weight,
        skill_level=tech.level,
        booked_minutes=booked,
        seconds_waiting=(start - scoring.now).total_seconds(),
        per_hour_waiting=scoring.per_hour_waiting,
        added_travel_minutes=added,
        previous_technician=tech.id == scoring.previous_tech,
        late_hours=late_hours,
    )


def scoring_for(job: _Job, *, now: datetime, due: datetime | None, previous_tech: uuid.UUID | None) -> _Scoring:
    """How every start of one job is scored (the ranker's weights at this priority); one reading
    for the slot engine and the crew search."""
    weight = ranking.weights()
    return _Scoring(
        weight=weight,
        per_hour_waiting=ranking.earliest_weight(weight, job.priority),
        now=now,
        duration=timedelta(minutes=job.minutes),
        due=due,
        previous_tech=previous_tech,
        home_share=float(weight["home_leg_after_work"]),
    )


@dataclass(frozen=True)
class GapRules:
    """How one job's starts are laid in a free gap: the same for every technician."""

    duration: timedelta
    arrival: timedelta
    step: int
    # Starts offered in one gap are this far apart (an arrival window, or the job's length).
    spread: timedelta
    drive: Callable[[tuple[float, float] | None, tuple[float, float] | None], int]


def gap_rules(job: _Job) -> GapRules:
    step = step_minutes()
    return GapRules(
        duration=timedelta(minutes=job.minutes),
        arrival=timedelta(minutes=arrival_window_minutes()),
        step=step,
        spread=timedelta(minutes=max(step, arrival_window_minutes() or job.minutes)),
        drive=travel_model().minutes,
    )


def gap_offers(
    tech: _Tech,
    shift_start: datetime,
    shift_end: datetime,
    job: _Job,
    rules: GapRules,
    *,
    now: datetime,
    preferences: list[tuple[datetime, datetime]] | None,
    horizon_end: datetime,
) -> Iterator[tuple[_Gap, tuple[int, int, datetime, datetime], list[datetime]]]:
    """Each free gap of one shift the job fits, with how it fits (`gap_fit`) and the starts
    offered there (none when the customer's preferred times miss it)."""
    for gap in _gaps(tech, shift_start, shift_end):
        fit = gap_fit(gap, job.point, now=now, duration=rules.duration, drive=rules.drive)
        if fit is None:
            continue
        _travel_in, _travel_out, low, high = fit
        starts = _gap_starts(
            gap,
            low=low,
            high=high,
            preferences=preferences,
            arrival=rules.arrival,
            step=rules.step,
            spread=rules.spread,
            horizon_end=horizon_end,
        )
        yield gap, fit, starts


def _gap_starts(
    gap: _Gap,
    *,
    low: datetime,
    high: datetime,
    preferences: list[tuple[datetime, datetime]] | None,
    arrival: timedelta,
    step: int,
    spread: timedelta,
    horizon_end: datetime,
) -> list[datetime]:
    """The starts offered in one free gap: inside the customer's preferred times, on the step grid."""
    ranges = [(low, high)]
    if preferences is not None:
        ranges = [
            (max(low, p_start), min(high, p_end - arrival))
            for p_start, p_end in preferences
            if max(low, p_start) <= min(high, p_end - arrival)
        ]
    starts = []
    for range_low, range_high in ranges:
        first = ceil_step(range_low, step)
        # The earliest start, and later ones an arrival window apart, so the customer
        # can be offered several times of one day rather than the same hour on three days.
        starts.extend(
            moment
            for moment in (first + spread * index for index in range(STARTS_PER_GAP))
            if moment <= range_high and moment < horizon_end
        )
    return starts


def _candidates_find(
    job: _Job,
    pool: _Pool,
    *,
    now: datetime,
    horizon_end: datetime,
    preferences: list[tuple[datetime, datetime]] | None,
    due: datetime | None,
    limit: int,
    per_technician: bool,
) -> _Search:
    """Every window that passes the hard rules, scored; shifts in time order, stopping once later
    ones cannot beat what was found (no queries: the pool is loaded)."""
    scoring = scoring_for(job, now=now, due=due, previous_tech=pool.previous_tech)
    rules = gap_rules(job)
    weight, drive = scoring.weight, rules.drive
    bonus_cap = float(weight["previous_technician"]) + 5 * float(weight["skill_level"])
    keep = max(limit * 6, 12)
    candidates: list[_Candidate] = []
    with_shift = 0
    # Shifts in time order across everyone: once even a perfect window that late cannot beat
    # the windows kept so far, later shifts are not looked at (`pruned`).
    plan: list[tuple[datetime, datetime, str, _Tech]] = []
    for tech in pool.techs.values():
        intervals = _shift_intervals(tech, now, horizon_end)
        if intervals:
            with_shift += 1
        plan.extend((a, b, z, tech) for a, b, z in intervals)
    plan.sort(key=lambda item: (item[0], item[3].name, item[3].id))
    booked_by_day: dict[uuid.UUID, dict[date, float]] = {}
    found_free: set[uuid.UUID] = set()
    found_preferred: set[uuid.UUID] = set()
    threshold = math.inf
    pruned = False
    best_by_tech: dict[uuid.UUID, float] = {}
    for shift_start, shift_end, zone_name, tech in plan:
        lower_bound = scoring.per_hour_waiting * (max(shift_start, now) - now).total_seconds() / 3600 - bonus_cap
        if per_technician:
            if lower_bound > best_by_tech.get(tech.id, math.inf):
                continue
        elif lower_bound > threshold:
            pruned = True
            break
        zone = zone_named(zone_name)
        if tech.id not in booked_by_day:
            booked_by_day[tech.id] = _booked_minutes_by_day(tech, zone)
        added_any = False
        offers = gap_offers(
            tech, shift_start, shift_end, job, rules, now=now, preferences=preferences, horizon_end=horizon_end
        )
        for gap, (travel_in, travel_out, _low, _high), starts in offers:
            found_free.add(tech.id)
            if starts:
                found_preferred.add(tech.id)
            for start in starts:
                # The drive this job adds to the day: in and out, minus the drive it replaces
                # (to the next job, or home at the end of the day).
                destination = gap.next_block.point if gap.next_block else tech.home
                out = travel_out if gap.next_block else drive(job.point, tech.home)
                replaced = drive(gap.origin, destination)
                added = max(0, travel_in + out - replaced)
                priced = added
                if gap.next_block is None and gap.after is not None and gap.after.kind == "job":
                    # A job after the day's last one only moves the drive home, and a later
                    # booking may well move it again: that change weighs a share.
                    priced = max(0.0, travel_in + scoring.home_share * (out - replaced))
                booked = booked_by_day[tech.id].get(start.astimezone(zone).date(), 0.0)
                parts = _candidate_parts(scoring, tech, start, added=priced, booked=booked)
                cost = -sum(parts.values())
                candidates.append(_Candidate(cost, len(candidates), tech, start, travel_in, added, booked, gap, parts))
                added_any = True
                best_by_tech[tech.id] = min(cost, best_by_tech.get(tech.id, math.inf))
        if added_any and len(candidates) >= keep and not per_technician:
            candidates.sort(key=lambda c: (c.cost, c.order))
            del candidates[keep * 2 :]
            threshold = candidates[keep - 1].cost
    candidates.sort(key=lambda c: (c.cost, c.order))
    return _Search(candidates, with_shift, len(found_free), len(found_preferred), pruned)


def slots_suggest(
    *,
    ticket: Ticket,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
    preferences: list[tuple[datetime, datetime]] | None = None,
    use_ticket_preferences: bool = True,
    technician_ids: Iterable[uuid.UUID] | None = None,
    per_technician: bool = False,
) -> Suggestion:
    """The best `limit` windows for the ticket in the next `horizon_days`, with reasons; or why there are none.

    `preferences`: the customer's windows (absolute, aware); when None they are read from the
    ticket's extracted time preferences (unless `use_ticket_preferences` is False).
    `technician_ids` narrows the candidates (the board's technician filter). With
    `per_technician`, the answer is each available technician's best window (no `limit`).
    Loading (`_pool_load`), candidates and their scores (`_candidates_find`), the choice
    (`_pick_distinct`) and the words (`_window`, `_explain`) are separate steps.
    """
    now = now or timezone.now()
    crew_size, days = catalog.incident_crew(ticket.incident_type) if ticket.incident_type else (1, 1)
    if crew_size > 1 or days > 1:
        # A crew or a run of days is searched on this module's pieces by crews.py, which imports
        # this module: imported here, when such a job is asked about.
        from .crews import CrewNeed, crew_slots_suggest

        return crew_slots_suggest(
            ticket=ticket,
            need=CrewNeed(crew_size, days),
            horizon_days=horizon_days,
            limit=max(limit, DEFAULT_LIMIT) if per_technician else limit,
            now=now,
            preferences=preferences,
            use_ticket_preferences=use_ticket_preferences,
            technician_ids=technician_ids,
        )
    horizon_end = now + timedelta(days=max(1, int(horizon_days)))
    job = _job_context(ticket)
    if preferences is None and use_ticket_preferences:
        preferences = ticket_time_preferences(ticket=ticket, zone=job.zone, start=now, end=horizon_end)
    elif preferences is not None:
        preferences = _merge([(a.astimezone(UTC), b.astimezone(UTC)) for a, b in preferences])
    due = sla_due(ticket)
    pool = _pool_load(job, technician_ids=technician_ids, now=now, horizon_end=horizon_end)
    search = _candidates_find(
        job,
        pool,
        now=now,
        horizon_end=horizon_end,
        preferences=preferences,
        due=due,
        limit=limit,
        per_technician=per_technician,
    )
    if per_technician:
        seen: set[uuid.UUID] = set()
        chosen = [c for c in search.candidates if not (c.tech.id in seen or seen.add(c.tech.id))]
    else:
        chosen = _pick_distinct(search.candidates, limit)
    arrival = timedelta(minutes=arrival_window_minutes())
    windows = [
        _window(
            c,
            job=job,
            due=due,
            previous_tech=pool.previous_tech,
            preferences=preferences,
            arrival=arrival,
            duration=timedelta(minutes=job.minutes),
            now=now,
        )
        for c in chosen
    ]
    return Suggestion(
        ticket_id=ticket.pk,
        windows=windows,
        excluded=_excluded(pool, search, preferences),
        explanation=_explanation(
            job, pool, search, windows=windows, horizon_days=horizon_days, preferences=preferences
        ),
        duration_minutes=job.minutes,
        horizon_start=now,
        horizon_end=horizon_end,
        preferences=preferences,
        sla_due=due,
    )


def _excluded(pool: _Pool, search: _Search, preferences: list | None) -> dict[str, int]:
    """Rule → how many technicians it excluded (each counted once, by the first rule they fail)."""
    excluded = {
        "skill": pool.active_count - pool.skilled,
        "region": pool.skilled - pool.in_region,
        "shift": pool.in_region - search.with_shift,
    }
    if not search.pruned:
        # Only known when every shift was looked at (always so when nothing was found).
        excluded["busy"] = search.with_shift - search.with_free
        excluded["preference"] = (search.with_free - search.with_preferred) if preferences is not None else 0
    return {rule: count for rule, count in excluded.items() if count > 0}


def _explanation(
    job: _Job, pool: _Pool, search: _Search, *, windows: list[Window], horizon_days: int, preferences: list | None
) -> str:
    if windows:
        return f"Best {_plural(len(windows), 'window')} for {job.incident_type or 'the job'} " + (
            f"({_hours(job.minutes)}), ranked by {job.priority.lower()} priority weights."
        )
    if pool.active_count and (pool.skilled == 0 or pool.in_region == 0):
        # When nobody in the company has the skill or the region (not only among the technicians
        # asked about), the cause is the setup: say so in Setup health's words.
        if pool.skilled == 0:
            gap = job_setup_gap(incident_type=job.incident_type)
        else:
            gap = job_setup_gap(region_code=job.region)
        if gap is not None:
            return gap.as_cause
    return _explain(
        job=job,
        horizon_days=horizon_days,
        active_count=pool.active_count,
        skilled=pool.skilled,
        in_region=pool.in_region,
        with_shift=search.with_shift,
        with_free=search.with_free,
        preferences=preferences,
    )


def _pick_distinct(ranked: list[_Candidate], limit: int) -> list[_Candidate]:
    """The best candidates, each at a different time or with a different technician.

    A time already chosen is offered again (with another technician) only when there are not
    enough other times: the customer picks a time, so three technicians at 09:00 are one choice.
    """
    chosen: list[_Candidate] = []
    seen_times: set[datetime] = set()
    for candidate in ranked:
        if len(chosen) >= limit:
            break
        if candidate.start not in seen_times:
            chosen.append(candidate)
            seen_times.add(candidate.start)
    if len(chosen) < limit:
        taken = {(c.tech.id, c.start) for c in chosen}
        for candidate in ranked:
            if len(chosen) >= limit:
                break
            if (candidate.tech.id, candidate.start) not in taken:
                chosen.append(candidate)
                taken.add((candidate.tech.id, candidate.start))
    chosen.sort(key=lambda c: (c.cost, c.order))
    return chosen


def _window(
    candidate: _Candidate,
    *,
    job: _Job,
    due: datetime | None,
    previous_tech: uuid.UUID | None,
    preferences: list | None,
    arrival: timedelta,
    duration: timedelta,
    now: datetime,
) -> Window:
    """The candidate as a Window, with the facts that decided it in words."""
    gap, zone, tech = candidate.gap, job.zone, candidate.tech
    start, end = candidate.start, candidate.start + duration
    facts = []
    if job.incident_type:
        facts.append(f"has {job.incident_type} level {tech.level}")
    facts.append(f"{candidate.travel_in} min from {_origin_text(gap, zone)}")
    free_end = gap.next_block.start if gap.next_block else gap.shift_end
    facts.append(f"free {_hm(max(gap.free_start, now), zone)}–{_hm(free_end, zone)}")
    if tech.id == previous_tech:
        facts.append("worked at this site last time")
    facts.append(
        f"{_hours(candidate.booked)} already booked that day" if candidate.booked else "no other jobs that day"
    )
    if preferences is not None:
        facts.append("inside the customer's preferred times")
    if due is not None:
        if end > due:
            facts.append(f"after the {job.priority.lower()} SLA due {_day(due, zone)} {_hm(due, zone)}")
        elif job.priority != Priority.ROUTINE:
            facts.append(f"done before the SLA due {_hm(due, zone)}")
    when = f"{_day(start, zone)} {_hm(start, zone)}–{_hm(end, zone)}"
    cost = candidate.cost
    return Window(
        technician_id=tech.id,
        technician_name=tech.name,
        start=start,
        end=end,
        arrival_start=start,
        arrival_end=start + arrival,
        score=round(100.0 - cost, 1),
        reason=f"{tech.name}: " + ", ".join(facts) + f" ({when})",
        travel_minutes=candidate.travel_in,
        added_travel_minutes=candidate.added,
        skill_level=tech.level,
        breakdown={k: round(v, 2) for k, v in candidate.parts.items()},
    )


def _explain(
    *,
    job: _Job,
    horizon_days: int,
    active_count: int,
    skilled: int,
    in_region: int,
    with_shift: int,
    with_free: int,
    preferences: list | None,
) -> str:
    """Which rule excluded the last remaining technicians, in words."""
    kind = job.incident_type or "the skill"
    days = f"the next {_plural(int(horizon_days), 'day')}"
    if active_count == 0:
        return "No active technicians."
    if skilled == 0:
        return f"No technician has {kind}."
    have = f"{_plural(skilled, 'technician')} {'has' if skilled == 1 else 'have'} {kind}"
    if in_region == 0:
        return f"{have} but none covers {job.region}."
    where = f" and cover{'s' if in_region == 1 else ''} {job.region}" if job.region else ""
    some = f"{_plural(in_region, 'technician')} {'has' if in_region == 1 else 'have'} {kind}{where}"
    if with_shift == 0:
        return f"{some}, but none has a shift in {days}."
    if with_free == 0:
        return (
            f"{some}, but none has {_hours(job.minutes)} free (with travel) inside a shift in {days}: "
            "booked, off or too far between jobs."
        )
    if preferences is not None:
        return f"No free slot inside the customer's preferred times in {days}."
    return f"No free slot in {days}."


# --- one placement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A hard rule a placement breaks: `rule` for code, `message` for people, `short` for lists."""

    rule: str  # inactive, skill, region, past, shift, overlap, time_off, travel, preference
    message: str
    short: str


def _techs_load(
    job: _Job,
    technicians: Iterable[Technician] | None,
    technician_ids: Iterable[uuid.UUID] | None,
    *,
    low: datetime,
    high: datetime,
    ignore: Iterable[uuid.UUID | None] = (),
) -> dict[uuid.UUID, _Tech]:
    """Technicians with skill level, regions, shifts and bookings in [low, high) (at most six queries)."""
    if technicians is None:
        rows = (
            Technician.objects.filter(pk__in=list(technician_ids or ()))
            .order_by()
            .values_list("id", "display_name", "home_lat", "home_lng", "is_active")
        )
    else:
        rows = [(t.pk, t.display_name, t.home_lat, t.home_lng, t.is_active) for t in technicians]
    techs = {pk: _Tech(pk, name, point_of(lat, lng), None, active=active) for pk, name, lat, lng, active in rows}
    if not techs:
        return techs
    if job.incident_type:
        for tech_id, level in TechnicianSkill.objects.filter(
            technician_id__in=list(techs), incident_type__iexact=job.incident_type
        ).values_list("technician_id", "level"):
            techs[tech_id].level = max(level, techs[tech_id].level or 0)
    covering = None
    if job.region:
        covering = set(
            Technician.regions.through.objects.filter(
                technician_id__in=list(techs), region__code__iexact=job.region
            ).values_list("technician_id", flat=True)
        )
    for tech in techs.values():
        tech.covers = covering is None or tech.id in covering
    _shifts_load(techs)
    _blocks_load(techs, low=low, high=high, ticket_id=job.ticket.pk, ignore=ignore)
    return techs


def _violations(
    job: _Job,
    tech: _Tech,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    preferences: list[tuple[datetime, datetime]] | None,
    fit: bool = True,
) -> list[Violation]:
    """Every hard rule placing the job on `tech` at [start, end) breaks (no queries: all loaded)."""
    zone, name = job.zone, tech.name
    found: list[Violation] = []

    def add(rule: str, message: str, short: str) -> None:
        found.append(Violation(rule, message, short))

    if fit:
        if not tech.active:
            add("inactive", f"{name} is not active.", "not active")
        if job.incident_type and tech.level is None:
            add("skill", f"{name} does not have {job.incident_type}.", f"no {job.incident_type} skill")
        if job.region and not tech.covers:
            add("region", f"{name} does not cover {job.region}.", f"does not cover {job.region}")
    if start < now:
        add("past", f"{_span(start, end, zone)} has already begun.", "the window has begun")
    shifts = _shift_intervals(tech, start - EDGE, end + EDGE)
    shift = next(((a, b) for a, b, _ in shifts if a <= start and end <= b), None)
    if shift is None:
        same_day = [
            f"{_hm(a, zone)}–{_hm(b, zone)}"
            for a, b, _ in shifts
            if a.astimezone(zone).date() == start.astimezone(zone).date()
        ]
        shifts_text = f"shift that day {', '.join(same_day)}" if same_day else "no shift that day"
        add(
            "shift",
            f"{name} is not on shift {_span(start, end, zone)} ({shifts_text}).",
            f"not on shift ({shifts_text})",
        )
    clashes = [b for b in tech.blocks if b.start < end and b.end > start]
    for block in clashes:
        if block.kind == "job":
            add("overlap", f"Overlaps {name}'s job {_span(block.start, block.end, zone)}.", "booked in the window")
        else:
            why = f" ({block.label})" if block.label else ""
            add(
                "time_off",
                f"{name} is off {_span(block.start, block.end, zone)}{why}.",
                f"off {_span(block.start, block.end, zone)}{why}",
            )
    if shift is not None and not clashes:
        shift_start, shift_end = shift
        before = [b for b in tech.blocks if shift_start < b.end <= start]
        previous = max(before, key=lambda b: b.end) if before else None
        travel_in = travel_minutes(previous.point if previous else tech.home, job.point)
        ready = (previous.end if previous else shift_start) + timedelta(minutes=travel_in)
        if ready > start:
            if previous is None:
                add(
                    "travel",
                    f"{name} needs {travel_in} min to drive from home after the shift starts at "
                    f"{_hm(shift_start, zone)}; the earliest arrival is {_hm(ready, zone)}.",
                    f"needs {travel_in} min from home after {_hm(shift_start, zone)}",
                )
            else:
                what = "job" if previous.kind == "job" else "time off"
                gap = int((start - previous.end).total_seconds() // 60)
                add(
                    "travel",
                    f"{name} needs {travel_in} min to drive from the {what} ending {_hm(previous.end, zone)} "
                    f"but would have only {gap} min.",
                    f"needs {travel_in} min from the {what} ending {_hm(previous.end, zone)}, has {gap}",
                )
        after = [b for b in tech.blocks if end <= b.start < shift_end]
        following = min(after, key=lambda b: b.start) if after else None
        if following is not None:
            travel_out = travel_minutes(job.point, following.point)
            if end + timedelta(minutes=travel_out) > following.start:
                what = "job" if following.kind == "job" else "time off"
                gap = int((following.start - end).total_seconds() // 60)
                add(
                    "travel",
                    f"{name} needs {travel_out} min to reach the {what} at {_hm(following.start, zone)} "
                    f"but would have only {gap} min.",
                    f"needs {travel_out} min to the {what} at {_hm(following.start, zone)}, has {gap}",
                )
    if preferences is not None:
        arrival_end = start + timedelta(minutes=arrival_window_minutes())
        if not any(p_start <= start and arrival_end <= p_end for p_start, p_end in preferences):
            add(
                "preference",
                f"The arrival window {_hm(start, zone)}–{_hm(arrival_end, zone)} is outside the customer's preferred times.",
                "outside the customer's preferred times",
            )
    return found


def slot_violations(
    *,
    ticket: Ticket,
    technician: Technician,
    start: datetime,
    end: datetime,
    ignore_appointment_id: uuid.UUID | None = None,
    now: datetime | None = None,
    preferences: list[tuple[datetime, datetime]] | None = None,
    use_ticket_preferences: bool = True,
) -> list[Violation]:
    """`slot_check` with each broken rule's key (see Violation)."""
    now = now or timezone.now()
    if end <= start:
        return [Violation("window", "The window must end after it starts.", "the window ends before it starts")]
    job = _job_context(ticket)
    techs = _techs_load(job, [technician], None, low=start - EDGE, high=end + EDGE, ignore=[ignore_appointment_id])
    if preferences is None and use_ticket_preferences:
        preferences = ticket_time_preferences(ticket=ticket, zone=job.zone, start=start - EDGE, end=end + EDGE)
    return _violations(job, techs[technician.pk], start, end, now=now, preferences=preferences)


def slot_check(
    *,
    ticket: Ticket,
    technician: Technician,
    start: datetime,
    end: datetime,
    ignore_appointment_id: uuid.UUID | None = None,
    now: datetime | None = None,
    preferences: list[tuple[datetime, datetime]] | None = None,
    use_ticket_preferences: bool = True,
) -> list[str]:
    """Every hard rule the placement breaks, in plain words; empty means it can be booked.

    The ticket's own bookings never count against it (a new booking replaces them), nor does
    `ignore_appointment_id` (the job being moved). A constant number of queries.
    """
    return [
        v.message
        for v in slot_violations(
            ticket=ticket,
            technician=technician,
            start=start,
            end=end,
            ignore_appointment_id=ignore_appointment_id,
            now=now,
            preferences=preferences,
            use_ticket_preferences=use_ticket_preferences,
        )
    ]


def placements_check(
    *,
    ticket: Ticket,
    technicians: Iterable[Technician],
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> dict[uuid.UUID, list[Violation]]:
    """The availability rules (shift, travel, bookings, time off) for many technicians in one window.

    Skill and region are left to the caller (assignment.recommend scores them itself); the
    customer's preferences do not apply (the caller named the window). Constant queries.
    """
    now = now or timezone.now()
    job = _job_context(ticket)
    techs = _techs_load(job, technicians, None, low=start - EDGE, high=end + EDGE)
    return {pk: _violations(job, tech, start, end, now=now, preferences=None, fit=False) for pk, tech in techs.items()}
