"""Crews and runs of days: a job type that needs several technicians at once (a heavy door, a
two-person install) or several consecutive working days (a storefront replacement).

Such a job is one ticket and one visit: one appointment per technician per day, all carrying
the visit's key (`Appointment.visit`). The search here is built on the slot engine's own pieces
(its pool, gaps, hard rules and ranker), so a crew window breaks no rule a one-person window
would not: every member is skilled, covers the region, is on shift, free and reachable, on
every day of the run.

A run's days are the lead's consecutive working days (the weekdays they have a shift, so a
Friday start continues on Monday for a Monday-to-Friday technician), each at the same
wall-clock start in the site's timezone; every crew member must be free then too. The lead is
the first of the crew and becomes the ticket's assigned technician.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.technicians.models import Technician
from dispatch.technicians.services import technician_lock_for_booking
from dispatch.tickets import catalog
from dispatch.tickets.models import Ticket

from . import engine
from .appointments import appointment_confirmed, fresh_proposal
from .inputs import window_json
from .models import BOOKED_STATUSES, Appointment, AppointmentStatus, ScheduleProposal

# A run of up to five working days is looked for within two weeks of its first day.
RUN_CALENDAR_DAYS = 14
# Starts examined per search: enough for two weeks of half-hour steps across a team.
MAX_STARTS = 800


# --- what the job needs ------------------------------------------------------------------------


@dataclass(frozen=True)
class CrewNeed:
    """How many technicians at once, for how many consecutive working days."""

    size: int = 1
    days: int = 1

    @property
    def together(self) -> bool:
        """Whether the job is booked as a visit (a crew, a run of days, or both)."""
        return self.size > 1 or self.days > 1

    def text(self) -> str:
        """'crew of 2, 3 working days' (the parts that apply)."""
        parts = []
        if self.size > 1:
            parts.append(f"crew of {self.size}")
        if self.days > 1:
            parts.append(f"{self.days} working days")
        return ", ".join(parts)


def crew_need(incident_type: str | None) -> CrewNeed:
    """What the incident type's template asks for (through the catalog: closeout keeps templates)."""
    if not incident_type:
        return CrewNeed()
    size, days = catalog.incident_crew(incident_type)
    return CrewNeed(size=size, days=days)


def run_days(
    start: datetime, end: datetime, *, shifts: Iterable[tuple[int, time, time, str]], zone: ZoneInfo, days: int
) -> list[tuple[datetime, datetime]] | None:
    """The run's (start, end) per day: the booked day, then the next days whose weekday the lead
    has a shift, at the same wall-clock time in the site's zone. None when `days` of them do not
    fit in RUN_CALENDAR_DAYS."""
    local = start.astimezone(zone)
    length = end - start
    working = {weekday for weekday, *_ in shifts}
    run = [(start, end)]
    day = local.date()
    for _ in range(RUN_CALENDAR_DAYS):
        if len(run) >= days:
            break
        day += timedelta(days=1)
        if working and day.weekday() not in working:
            continue
        begin = datetime.combine(day, local.time(), tzinfo=zone).astimezone(UTC)
        run.append((begin, begin + length))
    return run if len(run) >= days else None


# --- membership (the policy asks through the catalog) ---------------------------------------------

CREW_STATUSES = (*BOOKED_STATUSES, AppointmentStatus.COMPLETED)


def technician_on_crew(ticket_id: Any, technician_id: Any) -> bool:
    """Whether the technician has a part of the ticket's visit (booked or done)."""
    if not ticket_id or not technician_id:
        return False
    return Appointment.objects.filter(
        ticket_id=ticket_id, technician_id=technician_id, visit__isnull=False, status__in=CREW_STATUSES
    ).exists()


def crew_ticket_ids(technician_id: Any) -> QuerySet:
    """Ids of the tickets whose visit has a part for this technician (a subquery)."""
    return (
        Appointment.objects.filter(technician_id=technician_id, visit__isnull=False, status__in=CREW_STATUSES)
        .order_by()
        .values("ticket_id")
    )


# --- the search ---------------------------------------------------------------------------------


@dataclass
class _Placement:
    cost: float
    start: datetime
    crew: list  # engine._Tech, lead first
    run: list[tuple[datetime, datetime]]
    travel_in: int
    booked: float
    parts: dict


def _travel_in(tech, start: datetime, point, drive) -> int:
    """Minutes from where the technician is before `start` that day (a job, time off, or home)."""
    before = [b for b in tech.blocks if b.end <= start and start - b.end < timedelta(hours=12)]
    previous = max(before, key=lambda b: b.end) if before else None
    return drive(previous.point if previous else tech.home, point)


def _starts(job, pool, *, now: datetime, horizon_end: datetime, preferences) -> list[datetime]:
    """Every start the engine would offer any one technician of the pool: a crew can only start
    when each member could; each start is then checked for the whole crew."""
    rules = engine.gap_rules(job)
    starts: set[datetime] = set()
    for tech in pool.techs.values():
        for shift_start, shift_end, _zone in engine.shift_intervals(tech.shifts, now, horizon_end):
            offers = engine.gap_offers(
                tech, shift_start, shift_end, job, rules, now=now, preferences=preferences, horizon_end=horizon_end
            )
            for _gap, _fit, offered in offers:
                starts.update(offered)
    return sorted(starts)[:MAX_STARTS]


def _placements_find(
    job, pool, need: CrewNeed, *, now: datetime, horizon_end: datetime, preferences, due, limit: int
) -> list[_Placement]:
    """Crew placements in time order of their first day, each start once, scored as the engine
    scores one technician (the crew's average), until enough are found to rank."""
    scoring = engine.scoring_for(job, now=now, due=due, previous_tech=pool.previous_tech)
    duration = scoring.duration
    drive = engine.travel_model().minutes
    booked_by_day = {tech.id: engine._booked_minutes_by_day(tech, job.zone) for tech in pool.techs.values()}
    techs = sorted(pool.techs.values(), key=lambda t: (t.name, str(t.id)))
    keep = max(limit * 4, 12)
    found: list[_Placement] = []

    def free(tech, start: datetime, end: datetime, prefs) -> bool:
        return not engine._violations(job, tech, start, end, now=now, preferences=prefs)

    for start in _starts(job, pool, now=now, horizon_end=horizon_end, preferences=preferences):
        end = start + duration
        ready = [tech for tech in techs if free(tech, start, end, preferences)]
        if len(ready) < need.size:
            continue
        costs: dict = {}
        for tech in ready:
            travel = _travel_in(tech, start, job.point, drive)
            booked = booked_by_day[tech.id].get(start.astimezone(job.zone).date(), 0.0)
            parts = engine._candidate_parts(scoring, tech, start, added=travel, booked=booked)
            costs[tech.id] = (-sum(parts.values()), travel, booked, parts)
        ready.sort(key=lambda t: (costs[t.id][0], t.name, str(t.id)))
        for lead in ready:
            run = run_days(start, end, shifts=lead.shifts, zone=job.zone, days=need.days)
            if run is None:
                continue
            able = [tech for tech in ready if all(free(tech, s, e, None) for s, e in run[1:])]
            if lead not in able or len(able) < need.size:
                continue
            crew = [lead] + [tech for tech in able if tech is not lead][: need.size - 1]
            _cost, travel, booked, parts = costs[lead.id]
            found.append(
                _Placement(
                    cost=sum(costs[t.id][0] for t in crew) / len(crew),
                    start=start,
                    crew=crew,
                    run=run,
                    travel_in=travel,
                    booked=booked,
                    parts=parts,
                )
            )
            break
        if len(found) >= keep:
            break
    found.sort(key=lambda p: (p.cost, p.start))
    return found


def _hm(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%H:%M}"


def _day(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a %b} {local.day}"


def crew_names_text(names: Sequence[str]) -> str:
    """'Luis Ortega', 'Luis Ortega and Ana Ruiz', 'Luis Ortega, Ana Ruiz and Kim Lee'."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def run_text(run: Sequence[tuple[datetime, datetime]], zone: ZoneInfo) -> str:
    """'Tue Mar 3 09:00–12:00' or '3 days, Tue Mar 3 – Thu Mar 5, 09:00–12:00 each day'."""
    first_start, first_end = run[0]
    if len(run) == 1:
        return f"{_day(first_start, zone)} {_hm(first_start, zone)}–{_hm(first_end, zone)}"
    return (
        f"{len(run)} days, {_day(first_start, zone)} – {_day(run[-1][0], zone)}, "
        f"{_hm(first_start, zone)}–{_hm(first_end, zone)} each day"
    )


def _window(placement: _Placement, *, job, need: CrewNeed, arrival: timedelta) -> engine.Window:
    lead = placement.crew[0]
    names = [tech.name for tech in placement.crew]
    facts = []
    if need.size > 1:
        facts.append(f"crew of {need.size}: {crew_names_text(names)}")
    if job.incident_type:
        facts.append(f"all have {job.incident_type}")
    facts.append(f"{placement.travel_in} min drive for {lead.name}")
    facts.append("all free " + ("every day" if need.days > 1 else "at once"))
    start, end = placement.run[0]
    return engine.Window(
        technician_id=lead.id,
        technician_name=lead.name,
        start=start,
        end=end,
        arrival_start=start,
        arrival_end=start + arrival,
        score=round(100.0 - placement.cost, 1),
        reason=f"{crew_names_text(names)}: " + ", ".join(facts) + f" ({run_text(placement.run, job.zone)})",
        travel_minutes=placement.travel_in,
        added_travel_minutes=placement.travel_in,
        skill_level=lead.level,
        breakdown={k: round(v, 2) for k, v in placement.parts.items()},
        crew=tuple((tech.id, tech.name) for tech in placement.crew),
        days=tuple(placement.run),
    )


def _explanation(job, pool, need: CrewNeed, *, found: bool, horizon_days: int, preferences) -> str:
    kind = job.incident_type or "the skill"
    if found:
        return (
            f"Best windows for {kind} ({need.text()}, {engine._hours(job.minutes)} a day), "
            f"ranked by {job.priority.lower()} priority weights."
        )
    where = f" and cover {job.region}" if job.region else ""
    if pool.in_region < need.size:
        return (
            f"{kind} needs {need.size} technicians at once, but only "
            f"{engine._plural(pool.in_region, 'technician')} {'has' if pool.in_region == 1 else 'have'} it{where}."
        )
    together = "on the same consecutive working days" if need.days > 1 else "at the same time"
    wish = " inside the customer's preferred times" if preferences is not None else ""
    return (
        f"No {need.size if need.size > 1 else 'one'} qualified technician{'s' if need.size > 1 else ''} "
        f"free {together}{wish} for {engine._hours(job.minutes)} in the next {engine._plural(int(horizon_days), 'day')}."
    )


def crew_slots_suggest(
    *,
    ticket: Ticket,
    need: CrewNeed,
    horizon_days: int = engine.DEFAULT_HORIZON_DAYS,
    limit: int = engine.DEFAULT_LIMIT,
    now: datetime | None = None,
    preferences: list[tuple[datetime, datetime]] | None = None,
    use_ticket_preferences: bool = True,
    technician_ids: Iterable[uuid.UUID] | None = None,
) -> engine.Suggestion:
    """slots_suggest for a crew or multi-day job: the best windows where the whole crew is free,
    every day of the run; each Window names its crew (lead first) and its days."""
    now = now or timezone.now()
    horizon_end = now + timedelta(days=max(1, int(horizon_days)))
    job = engine._job_context(ticket)
    if preferences is None and use_ticket_preferences:
        preferences = engine.ticket_time_preferences(ticket=ticket, zone=job.zone, start=now, end=horizon_end)
    elif preferences is not None:
        preferences = engine._merge([(a.astimezone(UTC), b.astimezone(UTC)) for a, b in preferences])
    due = engine.sla_due(ticket)
    # Bookings are read past the horizon: a run that starts inside it may end after it.
    pool = engine._pool_load(
        job, technician_ids=technician_ids, now=now, horizon_end=horizon_end + timedelta(days=RUN_CALENDAR_DAYS)
    )
    placements = _placements_find(
        job, pool, need, now=now, horizon_end=horizon_end, preferences=preferences, due=due, limit=limit
    )
    arrival = timedelta(minutes=engine.arrival_window_minutes())
    windows = [_window(p, job=job, need=need, arrival=arrival) for p in placements[:limit]]
    excluded = {"skill": pool.active_count - pool.skilled, "region": pool.skilled - pool.in_region}
    return engine.Suggestion(
        ticket_id=ticket.pk,
        windows=windows,
        excluded={rule: count for rule, count in excluded.items() if count > 0},
        explanation=_explanation(
            job, pool, need, found=bool(windows), horizon_days=horizon_days, preferences=preferences
        ),
        duration_minutes=job.minutes,
        horizon_start=now,
        horizon_end=horizon_end,
        preferences=preferences,
        sla_due=due,
    )


# --- booking ----------------------------------------------------------------------------------


def crew_refused(ticket: Ticket, message: str, reasons: list[str], **details: Any) -> DispatchError:
    """A crew booking a rule refuses: the same code as a one-technician booking's refusal."""
    return DispatchError(
        "SLOT_RULE_VIOLATION",
        f"{ticket.short_ref} cannot be booked: {message}" + (": " + "; ".join(reasons) if reasons else "."),
        status=409,
        dimension="scheduling",
        details={"reasons": reasons, **details, **fresh_proposal(ticket)},
    )


def crew_ids_parse(value: Any, field: str = "crew") -> list[uuid.UUID]:
    """Technician ids from a caller: a list of UUIDs or of {"tech_id": UUID} (as suggestions list
    them), lead first, each once."""
    if value in (None, "", []):
        return []
    if not isinstance(value, (list, tuple)) or len(value) > 8:
        raise invalid_request(f"{field} must be a list of technician ids.", field=field)
    ids: list[uuid.UUID] = []
    for index, item in enumerate(value):
        raw = item.get("tech_id") if isinstance(item, dict) else item
        try:
            key = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        except (ValueError, TypeError, AttributeError):
            raise invalid_request(f"{field}[{index}] must be a technician id.", field=field) from None
        if key in ids:
            raise invalid_request(f"{field} names a technician twice.", field=field)
        ids.append(key)
    return ids


def crew_complete(
    *, ticket: Ticket, need: CrewNeed, named: list[uuid.UUID], start: datetime, end: datetime, now: datetime
) -> list[uuid.UUID]:
    """The crew for a booking at `start`: the named technicians (lead first), completed with the
    best qualified ones free on every day of the run. A hint read without locks: the booking
    checks every part again under the technicians' locks."""
    if len(named) >= need.size:
        return named
    job = engine._job_context(ticket)
    pool = engine._pool_load(job, technician_ids=None, now=start, horizon_end=start + timedelta(days=RUN_CALENDAR_DAYS))
    others = sorted(
        (tech for tech in pool.techs.values() if tech.id not in named),
        key=lambda t: (-(t.level or 0), t.name, str(t.id)),
    )
    chosen = list(named)
    if named:
        lead = pool.techs.get(named[0])
        if lead is None:
            # A lead the pool does not hold (no skill, another region) is refused by the
            # booking's check with the reason; their own shifts still decide the run.
            lead = engine._techs_load(job, None, [named[0]], low=start - engine.EDGE, high=start + engine.EDGE).get(
                named[0]
            )
    else:
        lead = next((t for t in others if not engine._violations(job, t, start, end, now=now, preferences=None)), None)
        if lead is None:
            return []
    run = run_days(start, end, shifts=lead.shifts if lead else [], zone=job.zone, days=need.days)
    if run is None:
        return chosen
    for tech in others:
        if len(chosen) >= need.size:
            break
        if all(not engine._violations(job, tech, s, e, now=now, preferences=None) for s, e in run):
            chosen.append(tech.id)
    return chosen


@dataclass
class VisitBooked:
    visit: uuid.UUID
    crew: list[Technician]
    run: list[tuple[datetime, datetime]]
    appointments: list[Appointment]

    @property
    def lead(self) -> Technician:
        return self.crew[0]

    @property
    def first(self) -> Appointment:
        """The lead's first day: what the customer's confirmation and the ticket's window start from."""
        return self.appointments[0]

    def as_json(self) -> dict:
        return {
            "visit_id": str(self.visit),
            "crew": [{"tech_id": str(t.pk), "technician_name": t.display_name} for t in self.crew],
            "days": [window_json(s, e) for s, e in self.run],
            "appointment_ids": [str(a.id) for a in self.appointments],
        }


def visit_book(
    *,
    ticket: Ticket,
    actor: Actor,
    need: CrewNeed,
    crew_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    proposal: ScheduleProposal | None = None,
    use_ticket_preferences: bool = True,
) -> VisitBooked:
    """Book the whole visit inside the ticket's executor: every crew member on every day of the
    run, all parts re-checked under the technicians' locks; any broken rule books nothing.

    The caller has cancelled the ticket's earlier bookings (they do not count against it anyway)."""
    now = now or timezone.now()
    if len(crew_ids) > need.size:
        raise invalid_request(
            f"{ticket.short_ref} needs a crew of {need.size}; {len(crew_ids)} technicians were named.", field="crew"
        )
    if len(crew_ids) < need.size:
        found = len(crew_ids)
        raise crew_refused(
            ticket,
            f"it needs a crew of {need.size} and only {found} qualified technician"
            f"{'s are' if found != 1 else ' is'} free on {'every day of the run' if need.days > 1 else 'that window'}",
            [],
            requested_window=window_json(start, end),
            crew_size=need.size,
        )
    # Every crew booking locks its technicians in one order (by id): two bookings that share a
    # technician queue on that row instead of each holding one the other waits for.
    locked = {pk: technician_lock_for_booking(technician_id=pk) for pk in sorted(crew_ids, key=str)}
    crew = [locked[pk] for pk in crew_ids]
    job = engine._job_context(ticket)
    techs = engine._techs_load(
        job, crew, None, low=start - engine.EDGE, high=end + timedelta(days=RUN_CALENDAR_DAYS) + engine.EDGE
    )
    run = run_days(start, end, shifts=techs[crew[0].pk].shifts, zone=job.zone, days=need.days)
    if run is None:
        raise crew_refused(
            ticket,
            f"{crew[0].display_name} has no {need.days} working days within {RUN_CALENDAR_DAYS} days",
            [],
            requested_window=window_json(start, end),
        )
    preferences = None
    if use_ticket_preferences:
        preferences = engine.ticket_time_preferences(
            ticket=ticket, zone=job.zone, start=start - engine.EDGE, end=end + engine.EDGE
        )
    reasons: list[str] = []
    for day_number, (day_start, day_end) in enumerate(run, start=1):
        prefix = f"Day {day_number} ({_day(day_start, job.zone)}): " if len(run) > 1 else ""
        for technician in crew:
            violations = engine._violations(
                job,
                techs[technician.pk],
                day_start,
                day_end,
                now=now,
                preferences=preferences if day_number == 1 else None,
            )
            reasons.extend(prefix + violation.message for violation in violations)
    if reasons:
        raise crew_refused(
            ticket,
            f"the crew ({crew_names_text([t.display_name for t in crew])}) is not free for the whole job",
            reasons,
            requested_window=window_json(start, end),
            crew=[str(t.pk) for t in crew],
            days=[window_json(s, e) for s, e in run],
        )
    visit = uuid.uuid4()
    appointments = [
        appointment_confirmed(
            ticket=ticket,
            start=day_start,
            end=day_end,
            actor=actor,
            technician=technician,
            proposal=proposal,
            visit=visit,
        )
        for day_start, day_end in run
        for technician in crew
    ]
    return VisitBooked(visit=visit, crew=crew, run=run, appointments=appointments)


# --- reading a booked visit (the board, the phone) ---------------------------------------------


@dataclass(frozen=True)
class VisitPart:
    """Where one booked part sits in its visit: 'Crew of 2 with Ana Ruiz', 'Day 2 of 3'."""

    visit: uuid.UUID
    crew_size: int
    day: int
    days: int
    others: tuple[str, ...]

    @property
    def crew_text(self) -> str:
        if self.crew_size < 2:
            return ""
        return f"Crew of {self.crew_size} with {crew_names_text(self.others)}"

    @property
    def day_text(self) -> str:
        return f"Day {self.day} of {self.days}" if self.days > 1 else ""

    @property
    def label(self) -> str:
        return " · ".join(part for part in (self.crew_text, self.day_text) if part)


def visit_parts(appointments: Iterable[Appointment]) -> dict[uuid.UUID, VisitPart]:
    """{appointment id: VisitPart} for the parts of visits among `appointments` (one query)."""
    wanted = {a.visit for a in appointments if a.visit}
    if not wanted:
        return {}
    siblings = list(
        Appointment.objects.filter(visit__in=wanted, status__in=CREW_STATUSES)
        .order_by("start", "id")
        .values_list("id", "visit", "technician_id", "technician__display_name", "start")
    )
    by_visit: dict[uuid.UUID, list] = {}
    for row in siblings:
        by_visit.setdefault(row[1], []).append(row)
    found = {}
    for visit, rows in by_visit.items():
        starts = sorted({start for *_rest, start in rows})
        names = {tech_id: name for _id, _visit, tech_id, name, _start in rows}
        for pk, _visit, tech_id, _name, start in rows:
            found[pk] = VisitPart(
                visit=visit,
                crew_size=len(names),
                day=starts.index(start) + 1,
                days=len(starts),
                others=tuple(sorted(name for other, name in names.items() if other != tech_id)),
            )
    return found
