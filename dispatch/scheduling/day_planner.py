"""The day planner: re-plan a day's booked jobs (and queued jobs that still fit) as a whole.

The slot engine books each job as it arrives and never moves a booking; by evening the day's
routes carry the order the calls came in. The planner loads the day (`day_problem_load`), lets
the routing solver (`routing.py`) find cheaper routes under every rule the engine has, and
describes the difference as moves (`day_plan`). Nothing changes until `day_plan_apply` applies
the moves a dispatcher (or the autopilot, or an agent) accepted: each moved booking in its own
ticket executor, one audit event each with the reason, all of them in one transaction so a day
is never left half re-planned.

What may move: a CONFIRMED booking of a SCHEDULED ticket that starts after the freeze margin.
It may change technician and order, and its start may move later only inside the window the
customer was told (`appointments.told_window`): the customer is never asked again, and never
needs to be. Dispatched, started, held and soon-starting jobs, and time off, stay where they are.
"""

from __future__ import annotations

import itertools
import logging
import time as timer
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician, TechnicianSkill
from dispatch.technicians.services import technician_lock_for_booking
from dispatch.tickets import catalog
from dispatch.tickets.commands import command
from dispatch.tickets.models import Ticket
from dispatch.tickets.selectors import iso_utc
from dispatch.tickets.services import ticket_change
from dispatch.tickets.states import TicketState

from . import engine, routing
from .appointments import appointment_cancel, appointment_confirmed, latest_start, told_window
from .booking import appointment_book, uuid_parse, window_text
from .inputs import role_check
from .models import BOOKED_STATUSES, Appointment, AppointmentStatus, ScheduleProposal, Shift, TimeOff
from .selectors import RELEASED_TICKET_STATES

# Who may plan a day (the toolset's command), and each moved booking's change under the same
# tool name (its audit event): only a SCHEDULED job moves.
SCHEDULE_OPTIMIZE_DAY = command("schedule.optimize_day", ["dispatcher"], None, None, "Optimize the day")
DAY_PLAN_MOVE = command("schedule.optimize_day", ["dispatcher"], ["SCHEDULED"], None, "Re-planned with the day")
REPLANNED_REASON = "Re-planned with the day's routes."

log = logging.getLogger(__name__)

DEFAULTS = {
    # How long the solver may search (seconds) and how many improving steps it may take: the step
    # count makes a plan repeatable, the clock bounds a large day.
    "DISPATCH_PLAN_SECONDS": 5.0,
    "DISPATCH_PLAN_SOLUTIONS": 1000,
    # Jobs starting sooner than this are left alone: the technician may already be on the way.
    "DISPATCH_PLAN_FREEZE_MINUTES": 120,
    # Queued jobs looked at for a place in the day (oldest and most urgent first).
    "DISPATCH_PLAN_QUEUE_LIMIT": 200,
}


def _setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


# --- loading the day --------------------------------------------------------------------------------


@dataclass
class _Booked:
    """What the plan needs to know about a movable booking or a queued job besides its stop."""

    ticket_id: uuid.UUID
    ticket_ref: str
    version: int
    appointment_id: uuid.UUID | None
    tech_id: uuid.UUID | None
    start: datetime | None
    end: datetime | None
    promised: tuple[datetime, datetime] | None
    duration: int


@dataclass
class LoadedDay:
    day: date
    # Midnight of the day, in UTC: minutes are counted in real elapsed time, so a day on which
    # the clocks change (23 or 25 hours) is counted right.
    origin: datetime
    day_end: datetime
    problem: routing.DayProblem
    names: dict[uuid.UUID, str]
    booked: dict[str, _Booked] = field(default_factory=dict)

    def moment(self, minutes: int) -> datetime:
        return self.origin + timedelta(minutes=minutes)

    def minutes(self, moment: datetime) -> int:
        return round((moment - self.origin).total_seconds() / 60)


def _eligible(skills: dict, regions: dict, tech_ids: list, incident_type: str, region: str) -> frozenset:
    return frozenset(
        pk
        for pk in tech_ids
        if (not incident_type or incident_type in skills.get(pk, ())) and (not region or region in regions.get(pk, ()))
    )


def day_problem_load(
    *,
    day: date,
    technician_ids: list | None = None,
    include_queue: bool = False,
    now: datetime | None = None,
    may_move: Callable[[Ticket], bool] | None = None,
) -> LoadedDay:
    """The day as a routing problem: active technicians on shift, their bookings and time off,
    and (with `include_queue`) queued jobs that could still be booked that day. A fixed number
    of queries, whatever the size of the day."""
    now = now or timezone.now()
    zone = company_zone()
    origin = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    step = engine.step_minutes()
    freeze = now + timedelta(minutes=int(_setting("DISPATCH_PLAN_FREEZE_MINUTES")))
    model = engine.travel_model()

    techs_qs = Technician.objects.filter(is_active=True)
    if technician_ids is not None:
        techs_qs = techs_qs.filter(pk__in=[uuid_parse(pk, "technician_ids") for pk in technician_ids])
    rows = list(techs_qs.order_by("display_name", "id").values_list("id", "display_name", "home_lat", "home_lng"))
    ids = [row[0] for row in rows]
    shifts: dict = defaultdict(list)
    for tech_id, weekday, start, end, zone_name in Shift.objects.filter(technician_id__in=ids).values_list(
        "technician_id", "weekday", "start_time", "end_time", "timezone"
    ):
        shifts[tech_id].append((weekday, start, end, zone_name))
    skills: dict = defaultdict(set)
    for tech_id, kind in TechnicianSkill.objects.filter(technician_id__in=ids).values_list(
        "technician_id", "incident_type"
    ):
        skills[tech_id].add((kind or "").strip().upper())
    regions: dict = defaultdict(set)
    for tech_id, code in Technician.regions.through.objects.filter(technician_id__in=ids).values_list(
        "technician_id", "region__code"
    ):
        regions[tech_id].add((code or "").strip().upper())

    loaded = LoadedDay(day, origin, day_end, routing.DayProblem([], [], model), {row[0]: row[1] for row in rows})

    def minutes(moment: datetime) -> int:
        return loaded.minutes(moment)

    techs: dict[uuid.UUID, routing.Tech] = {}
    stops: list[routing.Stop] = []
    for tech_id, name, lat, lng in rows:
        intervals = [(a, b) for a, b, _z in engine.shift_intervals(shifts[tech_id], origin, day_end)]
        # A shift that starts on the day (one that began the evening before belongs to that day).
        intervals = [(a, b) for a, b in intervals if origin <= a < day_end]
        if not intervals:
            continue
        home = (float(lat), float(lng)) if lat is not None and lng is not None else None
        techs[tech_id] = routing.Tech(tech_id, name, home, minutes(intervals[0][0]), minutes(intervals[-1][1]))
        # A split shift: the hours between its parts are spent at home, like time off.
        for (_a, b), (c, _d) in itertools.pairwise(intervals):
            stops.append(
                routing.Stop(
                    f"gap:{tech_id}:{minutes(b)}",
                    home,
                    minutes(c) - minutes(b),
                    frozenset({tech_id}),
                    (minutes(b),),
                    tech_id,
                    minutes(b),
                    fixed=True,
                    # Off shift, not at home: the last job of the first part need only end in it.
                    arrive_anywhere=True,
                )
            )
    tech_ids = list(techs)

    def fixed_stop(key: str, tech_id, point, start: datetime, end: datetime, label: str) -> None:
        tech = techs[tech_id]
        low, high = max(minutes(start), tech.shift_start), min(minutes(end), tech.shift_end)
        if high <= low:
            return
        stops.append(
            routing.Stop(key, point, high - low, frozenset({tech_id}), (low,), tech_id, low, fixed=True, label=label)
        )

    for off_id, tech_id, start, end in TimeOff.objects.filter(
        technician_id__in=tech_ids, start__lt=day_end, end__gt=origin
    ).values_list("id", "technician_id", "start", "end"):
        fixed_stop(f"off:{off_id}", tech_id, techs[tech_id].home, start, end, "time off")

    appointments = (
        Appointment.objects.filter(
            technician_id__in=tech_ids, status__in=BOOKED_STATUSES, start__lt=day_end, end__gt=origin
        )
        .exclude(ticket__state__in=RELEASED_TICKET_STATES)
        .select_related("ticket", "ticket__site")
        .only(
            "id",
            "technician_id",
            "start",
            "end",
            "status",
            "promised_start",
            "promised_end",
            "visit",
            "ticket__id",
            "ticket__state",
            "ticket__version",
            "ticket__incident_type",
            "ticket__priority",
            "ticket__created_at",
            "ticket__site__lat",
            "ticket__site__lng",
            "ticket__site__service_region",
        )
        .order_by("start", "id")
    )
    for appointment in appointments:
        ticket, site = appointment.ticket, appointment.ticket.site
        point = engine.point_of(site.lat, site.lng) if site else None
        tech = techs[appointment.technician_id]
        promised = told_window(appointment)
        movable = (
            # A crew's or a run's part is a fixed stop: moving one technician or one day alone
            # would split a visit booked together.
            appointment.visit is None
            and appointment.status == AppointmentStatus.CONFIRMED
            and ticket.state == TicketState.SCHEDULED
            and appointment.start >= freeze
            and origin <= appointment.start
            and appointment.end <= day_end
            and minutes(appointment.start) >= tech.shift_start
            and minutes(appointment.end) <= tech.shift_end
            and (may_move is None or may_move(ticket))
        )
        if not movable:
            fixed_stop(f"job:{appointment.id}", tech.key, point, appointment.start, appointment.end, ticket.short_ref)
            continue
        duration = minutes(appointment.end) - minutes(appointment.start)
        # Arrival stays inside the window the customer was told, on the engine's step grid.
        first = max(promised[0], freeze)
        grid = engine.ceil_step(first, step)
        starts = {minutes(appointment.start)}
        while grid <= latest_start(promised, appointment.end - appointment.start):
            starts.add(minutes(grid))
            grid += timedelta(minutes=step)
        eligible = _eligible(
            skills,
            regions,
            tech_ids,
            (ticket.incident_type or "").strip().upper(),
            ((site.service_region if site else "") or "").strip().upper(),
        ) | {appointment.technician_id}
        key = f"job:{appointment.id}"
        stops.append(
            routing.Stop(
                key,
                point,
                duration,
                eligible,
                tuple(sorted(starts)),
                appointment.technician_id,
                minutes(appointment.start),
                label=ticket.short_ref,
            )
        )
        loaded.booked[key] = _Booked(
            ticket.id,
            ticket.short_ref,
            ticket.version,
            appointment.id,
            appointment.technician_id,
            appointment.start,
            appointment.end,
            promised,
            duration,
        )
    stops = _fixed_merged(stops)
    if include_queue and techs:
        stops.extend(_queue_stops(loaded, techs, skills, regions, now=max(now, freeze), step=step))
    loaded.problem = routing.DayProblem(list(techs.values()), stops, model)
    return loaded


def _fixed_merged(stops: list[routing.Stop]) -> list[routing.Stop]:
    """Fixed stops of one technician that overlap (two time-off rows, a job during time off) as
    one: the route cannot be at two fixed places at once, and should not be made to try."""
    fixed: dict = defaultdict(list)
    rest = []
    for stop in stops:
        (fixed[stop.current_tech] if stop.fixed else rest).append(stop)
    merged = []
    for group in fixed.values():
        group.sort(key=lambda stop: stop.current_start)
        for stop in group:
            last = merged[-1] if merged and merged[-1].current_tech == stop.current_tech else None
            if last is not None and stop.current_start < last.current_start + last.duration:
                last.duration = max(last.duration, stop.current_start + stop.duration - last.current_start)
                last.arrive_anywhere = last.arrive_anywhere and stop.arrive_anywhere
                continue
            merged.append(stop)
    return merged + rest


def _queue_stops(loaded: LoadedDay, techs: dict, skills: dict, regions: dict, *, now: datetime, step: int) -> list:
    """Queued jobs (ready to schedule, no open proposal) as optional stops: booked only if they fit."""
    day_start, day_end = loaded.origin, loaded.day_end
    queued = list(
        Ticket.objects.filter(state=TicketState.READY_TO_SCHEDULE)
        .exclude(schedule_proposals__status=ScheduleProposal.Status.OPEN)
        .exclude(appointments__status__in=BOOKED_STATUSES)
        .select_related("site")
        .order_by("queue_rank", "created_at")[: int(_setting("DISPATCH_PLAN_QUEUE_LIMIT"))]
    )
    stops = []
    earliest = max(min(t.shift_start for t in techs.values()), loaded.minutes(now))
    latest = max(t.shift_end for t in techs.values())
    # A job for a crew or for several days is one technician's stop on no route: it is booked
    # whole, from the board or a proposal, never by the day's routing.
    together = {kind.strip().upper() for kind in catalog.incident_crew_types()}
    for ticket in queued:
        if (ticket.incident_type or "").strip().upper() in together:
            continue
        site = ticket.site
        region = ((site.service_region if site else "") or "").strip().upper()
        eligible = _eligible(skills, regions, list(techs), (ticket.incident_type or "").strip().upper(), region)
        if not eligible or site is None:
            continue
        duration = engine.job_minutes(ticket.incident_type)
        preferences = engine.ticket_time_preferences(
            ticket=ticket, zone=engine.zone_named(site.timezone), start=day_start, end=day_end
        )
        arrival = timedelta(minutes=engine.arrival_window_minutes())
        starts = []
        moment = loaded.moment(earliest)
        moment = engine.ceil_step(moment, step)
        while loaded.minutes(moment) + duration <= latest:
            if preferences is None or any(a <= moment and moment + arrival <= b for a, b in preferences):
                starts.append(loaded.minutes(moment))
            moment += timedelta(minutes=step)
        if not starts:
            continue
        due = engine.sla_due(ticket)
        key = f"queue:{ticket.id}"
        stops.append(
            routing.Stop(
                key,
                engine.point_of(site.lat, site.lng),
                duration,
                eligible,
                tuple(starts),
                optional=True,
                due=loaded.minutes(due) if due else None,
                label=ticket.short_ref,
                on_grid=True,
            )
        )
        loaded.booked[key] = _Booked(
            ticket.id, ticket.short_ref, ticket.version, None, None, None, None, None, duration
        )
    return stops


# --- the plan -------------------------------------------------------------------------------------------


@dataclass
class Move:
    kind: str  # "move" (a booking changes technician or time) or "book" (a queued job joins the day)
    ticket_id: uuid.UUID
    ticket_ref: str
    appointment_id: uuid.UUID | None
    from_tech_id: uuid.UUID | None
    from_tech_name: str
    from_start: datetime | None
    to_tech_id: uuid.UUID
    to_tech_name: str
    start: datetime
    end: datetime
    promised: tuple[datetime, datetime] | None
    reason: str
    ticket_version: int | None = None

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "ticket_id": str(self.ticket_id),
            "ticket_version": self.ticket_version,
            "ticket_ref": self.ticket_ref,
            "appointment_id": str(self.appointment_id) if self.appointment_id else None,
            "from_tech_id": str(self.from_tech_id) if self.from_tech_id else None,
            "from_tech_name": self.from_tech_name,
            "from_start": iso_utc(self.from_start) if self.from_start else None,
            "tech_id": str(self.to_tech_id),
            "tech_name": self.to_tech_name,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "window_text": window_text(self.start, self.end),
            "promised_window": {"start": iso_utc(self.promised[0]), "end": iso_utc(self.promised[1])}
            if self.promised
            else None,
            "reason": self.reason,
        }


@dataclass
class DayPlan:
    day: date
    status: str  # "improved", "unchanged", "fallback" (the solver found nothing: today's plan stands)
    travel_before: int
    travel_after: int
    technicians: list[dict]
    moves: list[Move]
    queued_left: int
    seconds: float
    message: str

    @property
    def saved(self) -> int:
        return self.travel_before - self.travel_after

    def as_json(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "status": self.status,
            "travel_minutes_before": self.travel_before,
            "travel_minutes_after": self.travel_after,
            "minutes_saved": self.saved,
            "technicians": self.technicians,
            "moves": [m.as_json() for m in self.moves],
            "queued_left_out": self.queued_left,
            "seconds": round(self.seconds, 2),
            "message": self.message,
        }


def _limits(seconds: float | None) -> routing.Limits:
    return routing.Limits(
        seconds=float(seconds if seconds is not None else _setting("DISPATCH_PLAN_SECONDS")),
        solutions=int(_setting("DISPATCH_PLAN_SOLUTIONS")),
    )


def _route_minutes(problem: routing.DayProblem, routes: dict) -> dict:
    """Each technician's driving for routes {tech: [stop keys]}."""
    return {t.key: routing.route_travel(problem, {t.key: routes.get(t.key, [])}) for t in problem.techs}


def day_plan(
    *,
    day: date,
    technician_ids: list | None = None,
    include_queue: bool = False,
    seconds: float | None = None,
    now: datetime | None = None,
    may_move: Callable[[Ticket], bool] | None = None,
) -> DayPlan:
    """The cheaper day the solver finds, as moves against today's plan (nothing is changed).
    `may_move` keeps a booking in place unless it says yes (the autopilot's ladder and pauses)."""
    started = timer.perf_counter()
    loaded = day_problem_load(
        day=day, technician_ids=technician_ids, include_queue=include_queue, now=now, may_move=may_move
    )
    problem = loaded.problem
    current = routing.current_plan(problem)
    try:
        plan = routing.routes_solve(problem, _limits(seconds))
    except Exception:
        # A solver failure must leave the day as it is, and say so; the cause goes to the log.
        log.exception("The day planner's solver failed for %s", day)
        plan = routing.RoutePlan(current.routes, current.dropped, current.travel_minutes, 0, "no_solution")
    before_routes = {k: [v.stop for v in vs] for k, vs in current.routes.items()}
    after_routes = {k: [v.stop for v in vs] for k, vs in plan.routes.items()}
    before = _route_minutes(problem, before_routes)
    booked_now = {s.key for s in problem.stops if not s.optional}
    queued_taken = sum(1 for vs in plan.routes.values() for v in vs if v.stop not in booked_now)
    better = plan.status == "solved" and (plan.travel_minutes < current.travel_minutes or queued_taken > 0)
    if not better:
        status = "fallback" if plan.status == "no_solution" else "unchanged"
        message = (
            "The solver found no plan that keeps every rule (time off or a fixed job it cannot route "
            "around, or no time left); today's plan stands."
            if status == "fallback"
            else "Today's plan is already the best the solver found."
        )
        rows = [
            {
                "tech_id": str(t.key),
                "name": t.name,
                "minutes_before": before[t.key],
                "minutes_after": before[t.key],
                "minutes_saved": 0,
            }
            for t in problem.techs
        ]
        return DayPlan(
            day,
            status,
            current.travel_minutes,
            current.travel_minutes,
            rows,
            [],
            sum(1 for s in problem.stops if s.optional),
            timer.perf_counter() - started,
            message,
        )
    after = _route_minutes(problem, after_routes)
    rows = [
        {
            "tech_id": str(t.key),
            "name": t.name,
            "minutes_before": before[t.key],
            "minutes_after": after[t.key],
            "minutes_saved": before[t.key] - after[t.key],
        }
        for t in problem.techs
        if before[t.key] or after[t.key]
    ]
    saved_by_tech = {t.key: before[t.key] - after[t.key] for t in problem.techs}
    moves = _moves(loaded, plan, saved_by_tech, plan.travel_minutes - current.travel_minutes)
    left = sum(1 for s in problem.stops if s.optional) - queued_taken
    travel_saved = current.travel_minutes - plan.travel_minutes
    changes = f"{len(moves)} change" + ("s" if len(moves) != 1 else "")
    if travel_saved >= 0:
        message = f"Saves {travel_saved} min of driving across {len(rows)} technicians with {changes}."
    else:
        # Fitting queued jobs in costs driving: said as it is, never as a saving.
        message = f"Fits {queued_taken} queued job{'s' if queued_taken != 1 else ''} in for {-travel_saved} more min of driving ({changes})."
    return DayPlan(
        day,
        "improved",
        current.travel_minutes,
        plan.travel_minutes,
        rows,
        moves,
        left,
        timer.perf_counter() - started,
        message,
    )


def _moves(loaded: LoadedDay, plan: routing.RoutePlan, saved_by_tech: dict, delta: int) -> list[Move]:
    moves = []
    zone = company_zone()
    for tech_id, visits in plan.routes.items():
        for visit in visits:
            booked = loaded.booked.get(visit.stop)
            if booked is None:
                continue  # a fixed stop
            start = loaded.moment(visit.start)
            end = start + timedelta(minutes=booked.duration)
            if booked.appointment_id is not None and booked.tech_id == tech_id and booked.start == start:
                continue
            to_name = loaded.names.get(tech_id, "")
            if booked.appointment_id is None:
                reason = f"Day plan: fits the queued job into {to_name}'s route."
                kind = "book"
            else:
                kind = "move"
                told = booked.promised or (booked.start, booked.end)
                if start == booked.start:
                    window = "same window"
                else:
                    window = (
                        f"arrives {start.astimezone(zone):%H:%M}, inside the "
                        f"{told[0].astimezone(zone):%H:%M}–{told[1].astimezone(zone):%H:%M} window the customer was told"
                    )
                saved = sum(saved_by_tech.get(t, 0) for t in {tech_id, booked.tech_id})
                reason = (
                    f"Day plan: saves {saved} min of driving; {window}."
                    if saved > 0
                    else f"Day plan: part of routes that save {-delta} min of driving; {window}."
                )
            moves.append(
                Move(
                    kind,
                    booked.ticket_id,
                    booked.ticket_ref,
                    booked.appointment_id,
                    booked.tech_id,
                    loaded.names.get(booked.tech_id, "") if booked.tech_id else "",
                    booked.start,
                    tech_id,
                    to_name,
                    start,
                    end,
                    booked.promised,
                    reason,
                    booked.version,
                )
            )
    moves.sort(key=lambda m: (m.start, m.to_tech_name, m.ticket_ref))
    return moves


# --- applying a plan ------------------------------------------------------------------------------------


def _stale(message: str, **details: Any) -> DispatchError:
    return DispatchError(
        "PLAN_STALE",
        message + " Plan the day again: the new plan starts from the schedule as it is now.",
        status=409,
        dimension="scheduling",
        details=details,
    )


def _when(value: Any, field_name: str) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else parse_datetime(str(value or ""))
    except ValueError:  # well formed, but no such moment (month 13)
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise invalid_request(f"{field_name} must be a date-time with a timezone.", field=field_name)
    return moment


# What of a move the caller sends back is read (and recorded on the ticket's audit event).
MOVE_KEYS = ("kind", "ticket_id", "ticket_version", "appointment_id", "from_tech_id", "from_start", "tech_id", "start")


def _version(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{field_name} must be an integer.", field=field_name)
    return value


@dataclass
class _Accepted:
    kind: str
    ticket_id: uuid.UUID
    appointment_id: uuid.UUID | None
    from_tech_id: uuid.UUID | None
    from_start: datetime | None
    tech_id: uuid.UUID
    start: datetime
    reason: str
    ticket_version: int | None = None
    raw: dict = field(default_factory=dict)


def _accepted(moves: Any) -> list[_Accepted]:
    """The moves as the caller sent them back (a preview's `moves`), checked for shape."""
    if not isinstance(moves, list) or not moves:
        raise invalid_request("moves must be a non-empty list (the preview's moves).", field="moves")
    if len(moves) > 2000:
        raise invalid_request("A day plan has at most 2000 moves.", field="moves")
    accepted, seen = [], set()
    for index, raw in enumerate(moves):
        if not isinstance(raw, dict):
            raise invalid_request(f"moves[{index}] must be an object.", field="moves")
        kind = raw.get("kind", "move")
        if kind not in ("move", "book"):
            raise invalid_request(f"moves[{index}].kind must be move or book.", field="moves")
        ticket_id = uuid_parse(raw.get("ticket_id"), f"moves[{index}].ticket_id")
        if ticket_id in seen:
            raise invalid_request(f"moves[{index}] names a ticket twice.", field="moves")
        seen.add(ticket_id)
        accepted.append(
            _Accepted(
                kind,
                ticket_id,
                uuid_parse(raw.get("appointment_id"), f"moves[{index}].appointment_id") if kind == "move" else None,
                uuid_parse(raw.get("from_tech_id"), f"moves[{index}].from_tech_id") if kind == "move" else None,
                _when(raw.get("from_start"), f"moves[{index}].from_start") if kind == "move" else None,
                uuid_parse(raw.get("tech_id"), f"moves[{index}].tech_id"),
                _when(raw.get("start"), f"moves[{index}].start"),
                str(raw.get("reason") or "")[:300],
                _version(raw.get("ticket_version"), f"moves[{index}].ticket_version"),
                {key: raw[key] for key in MOVE_KEYS if key in raw},
            )
        )
    return accepted


def day_plan_apply(*, actor: Actor, moves: Any, day: date | None = None, now: datetime | None = None) -> dict:
    """Apply the moves of a previewed day plan: all of them, or none.

    Every move is re-checked against the schedule as it is now. Each moved booking is its own
    ticket change (one audit event, with the plan's reason); the changes are opened together,
    so every moving job first leaves its old place and no two moves can block each other (two
    jobs trading technicians), and they commit together. A rule the new place breaks, or a
    booking that changed since the preview, refuses the whole plan and changes nothing. With
    `day`, every move must fall on it.
    """
    role_check(SCHEDULE_OPTIMIZE_DAY, actor)
    accepted = _accepted(moves)
    now = now or timezone.now()
    # Re-checked here, not only when the plan was made: a preview applied an hour later must not
    # move a job whose technician may already be on the way.
    freeze = now + timedelta(minutes=int(_setting("DISPATCH_PLAN_FREEZE_MINUTES")))
    zone = company_zone()
    for move in accepted:
        if day is not None and move.start.astimezone(zone).date() != day:
            raise invalid_request(f"Every move must fall on {day.isoformat()}.", field="moves")
        if move.start < freeze or (move.from_start is not None and move.from_start < freeze):
            raise _stale("A job in the plan now starts too soon to be moved.", ticket_id=str(move.ticket_id))
    applied = []
    with transaction.atomic(), ExitStack() as changes:
        placing = []
        # Tickets in a fixed order, so two plans locking the same tickets queue rather than deadlock.
        for move in sorted((m for m in accepted if m.kind == "move"), key=lambda m: str(m.ticket_id)):
            change = changes.enter_context(
                ticket_change(
                    actor=actor,
                    command=DAY_PLAN_MOVE,
                    ticket_id=move.ticket_id,
                    # Each ticket's event records its own move, not the whole plan.
                    request=move.raw,
                    audit={"day_plan": True, "reason": move.reason},
                )
            )
            old = (
                Appointment.objects.filter(
                    pk=move.appointment_id, ticket=change.ticket, status=AppointmentStatus.CONFIRMED
                )
                .select_related("technician")
                .first()
            )
            if old is None or old.technician_id != move.from_tech_id or old.start != move.from_start:
                raise _stale(
                    f"{change.ticket.short_ref}'s booking changed since the plan was made.",
                    ticket_id=str(move.ticket_id),
                )
            told = told_window(old)
            # The promise is the one thing no plan may touch: arrival inside the told window.
            if not told[0] <= move.start <= latest_start(told, old.end - old.start):
                raise invalid_request(
                    f"{change.ticket.short_ref} would arrive outside the window the customer was told "
                    f"({window_text(*told)}).",
                    field="moves",
                )
            placing.append((move, change, old, told))
        # Then every technician the moves leave or join, in one order (by id) as a crew booking
        # takes them, so a plan and a booking that share technicians queue rather than deadlock.
        involved = {old.technician_id for _, _, old, _ in placing} | {move.tech_id for move, *_ in placing}
        for technician_id in sorted((pk for pk in involved if pk is not None), key=str):
            technician_lock_for_booking(technician_id=technician_id)
        for _, _, old, _ in placing:
            appointment_cancel(old, REPLANNED_REASON)
        for move, change, old, told in sorted(placing, key=lambda item: (item[0].start, str(item[0].ticket_id))):
            ticket = change.ticket
            end = move.start + (old.end - old.start)
            technician = technician_lock_for_booking(technician_id=move.tech_id)
            violations = engine.slot_violations(
                ticket=ticket, technician=technician, start=move.start, end=end, use_ticket_preferences=False
            )
            if violations:
                raise DispatchError(
                    "SLOT_RULE_VIOLATION",
                    f"{technician.display_name} cannot take {ticket.short_ref} on {window_text(move.start, end)}: "
                    + "; ".join(v.message for v in violations),
                    status=409,
                    dimension="scheduling",
                    details={"ticket_id": str(ticket.id), "reasons": [v.message for v in violations]},
                )
            new = appointment_confirmed(
                ticket=ticket,
                start=move.start,
                end=end,
                actor=actor,
                technician=technician,
                proposal=old.proposal,
                promised=told,
            )
            ticket.scheduled_start, ticket.scheduled_end = move.start, end
            if ticket.assigned_tech_id is not None:
                ticket.assigned_tech = technician
            moved = {
                "moved_from": {"tech_id": str(old.technician_id), "start": iso_utc(old.start), "end": iso_utc(old.end)},
                "moved_to": {"tech_id": str(technician.pk), "start": iso_utc(move.start), "end": iso_utc(end)},
                "promised_window": {"start": iso_utc(told[0]), "end": iso_utc(told[1])},
            }
            change.audit_payload.update(
                {"cancelled_appointment_id": str(old.id), "appointment_id": str(new.id), **moved}
            )
            change.result = {"ticket_id": str(ticket.id), "appointment_id": str(new.id), **moved}
            applied.append(
                {
                    "kind": "move",
                    "ticket_id": str(ticket.id),
                    "ticket_ref": ticket.short_ref,
                    "appointment_id": str(new.id),
                    "tech_id": str(technician.pk),
                    "tech_name": technician.display_name,
                    "window_text": window_text(move.start, end),
                    "reason": move.reason,
                }
            )
        # Queued jobs join the day last, around the moved ones: a new booking the customer hears of.
        for move in sorted((m for m in accepted if m.kind == "book"), key=lambda m: (m.start, str(m.ticket_id))):
            ticket = Ticket.objects.filter(pk=move.ticket_id).only("incident_type", "state", "version").first()
            waiting = (
                ticket is not None
                and ticket.state == TicketState.READY_TO_SCHEDULE
                and (move.ticket_version is None or ticket.version == move.ticket_version)
                and not ScheduleProposal.objects.filter(ticket=ticket, status=ScheduleProposal.Status.OPEN).exists()
                and not Appointment.objects.filter(ticket=ticket, status__in=BOOKED_STATUSES).exists()
            )
            if not waiting:
                # Times were offered to the customer, or it was booked, since the plan was made.
                raise _stale(
                    "A queued job in the plan is no longer waiting in the queue.", ticket_id=str(move.ticket_id)
                )
            end = move.start + timedelta(minutes=engine.job_minutes(ticket.incident_type))
            outcome = appointment_book(
                actor=actor,
                ticket_id=move.ticket_id,
                technician_id=move.tech_id,
                start=move.start,
                end=end,
                request=move.raw,
                # The version read above: a proposal made since refuses the booking under the lock.
                expected_version=ticket.version,
            )
            applied.append(
                {
                    "kind": "book",
                    "ticket_id": str(move.ticket_id),
                    "ticket_ref": outcome.ticket.short_ref,
                    "appointment_id": outcome.result["appointment_id"],
                    "tech_id": outcome.result["tech_id"],
                    "tech_name": outcome.result["technician_name"],
                    "window_text": outcome.result["window_text"],
                    "reason": move.reason,
                }
            )
    return {"applied": len(applied), "changes": applied}


# --- the toolset's and the board's one entry ---------------------------------------------------------------


def day_parse(value: Any, *, now: datetime | None = None) -> date:
    """A day as YYYY-MM-DD, or "today"/"tomorrow" in the company's timezone; default tomorrow."""
    today = (now or timezone.now()).astimezone(company_zone()).date()
    if value in (None, "", "tomorrow"):
        return today + timedelta(days=1)
    if value == "today":
        return today
    try:
        parsed = parse_date(str(value)) if isinstance(value, str) else None
    except ValueError:  # well formed, but no such day (2026-13-45)
        parsed = None
    if parsed is None:
        raise invalid_request("day must be YYYY-MM-DD, today or tomorrow.", field="day")
    if parsed < today:
        raise invalid_request("A day in the past cannot be planned.", field="day")
    return parsed


def schedule_optimize_day(
    *,
    actor: Actor,
    day: Any = None,
    apply: bool = False,
    technician_ids: list | None = None,
    include_queue: bool = False,
    moves: Any = None,
) -> dict:
    """Plan the day (a dry run: the moves and the minutes they save) or, with `apply`, apply it.

    Applying with `moves` applies exactly those (the preview the caller accepted); applying
    without them plans and applies in one call, for callers that trust the planner (the autopilot).
    """
    role_check(SCHEDULE_OPTIMIZE_DAY, actor)
    when = day_parse(day)
    if apply and moves is not None:
        return {"day": when.isoformat(), "dry_run": False, **day_plan_apply(actor=actor, moves=moves, day=when)}
    plan = day_plan(day=when, technician_ids=technician_ids, include_queue=include_queue)
    answer = {"dry_run": not apply, **plan.as_json()}
    if apply and plan.moves:
        answer.update(day_plan_apply(actor=actor, moves=[m.as_json() for m in plan.moves], day=when))
    return answer
