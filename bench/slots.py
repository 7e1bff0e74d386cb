"""Benchmark of the slot engine: 200 technicians with 14 days of shifts and 5,000 booked
appointments, then schedule.suggest for 200 tickets, timed and with its queries counted.

    .venv/bin/python bench/slots.py [--technicians 200] [--appointments 5000] [--tickets 200] [--seed 7]
                                    [--mixed-days 30]
    scripts/pg_ephemeral.sh run .venv/bin/python bench/slots.py      # the same on PostgreSQL

Without DATABASE_URL it runs on a fresh SQLite file in a temporary directory. It also books one
day of jobs twice, once with the engine's ranking and once first-come-first-served (each job to
the technician who can start it earliest, the same hard rules), and reports the total driving
of both days. With --mixed-days N it also books N generated days of each of 15, 25, 35, 45 and 55
jobs twice, the drive home after a day's last job weighed in full and at its default share
(ranking.py), and reports both. Ends by printing one JSON object (p50_ms, p99_ms, queries_per_proposal, ...).
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LA = ZoneInfo("America/Los_Angeles")
# Region centres around the Bay (lat, lng) and how far jobs and homes spread from them (degrees).
REGIONS = {
    "SF": (37.7749, -122.4194),
    "EAST_BAY": (37.8044, -122.2711),
    "PENINSULA": (37.5630, -122.3255),
    "SOUTH_BAY": (37.3382, -121.8863),
}
SPREAD = 0.06
INCIDENT_TYPES = (
    "DOOR_WONT_LATCH",
    "CLOSER_LEAKING_OR_SLAMMING",
    "AUTO_OPERATOR_FAULT",
    "CANNOT_SECURE_ENTRY",
    "HARDWARE_REPLACEMENT",
    "FRAME_OR_GLASS_DAMAGE",
)
PRIORITIES = ("ROUTINE",) * 6 + ("URGENT",) * 3 + ("EMERGENCY",)
DAY_REGION, DAY_SKILL = "BENCH_DAY", "BENCH_DAY_JOB"


def log(message: str) -> None:
    print(f"[slots {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def django_setup(tmp: Path) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(tmp / "slots.sqlite3")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    return connection.vendor


def point(rng: random.Random, region: str) -> tuple[float, float]:
    lat, lng = REGIONS[region]
    return round(lat + rng.uniform(-SPREAD, SPREAD), 6), round(lng + rng.uniform(-SPREAD, SPREAD), 6)


# --- building the data (bulk) ----------------------------------------------------------------


def build(rng: random.Random, *, technicians: int, appointments: int, tickets: int, monday) -> dict:
    from django.contrib.auth import get_user_model

    from dispatch.scheduling.models import Appointment, Shift, TimeOff
    from dispatch.technicians.models import Region, Technician, TechnicianSkill
    from dispatch.tickets.models import Account, Site, Ticket

    User = get_user_model()
    regions = {code: Region.objects.get_or_create(code=code, defaults={"name": code.title()})[0] for code in REGIONS}
    accounts = Account.objects.bulk_create(Account(name=f"Bench account {n}") for n in range(20))
    sites = Site.objects.bulk_create(
        Site(
            account=accounts[n % len(accounts)],
            name=f"Bench site {n}",
            address_line1=f"{100 + n} Market St",
            city="Bay Area",
            lat=lat,
            lng=lng,
            service_region=region,
        )
        for n in range(400)
        for region in [list(REGIONS)[n % len(REGIONS)]]
        for lat, lng in [point(rng, region)]
    )
    sites_by_region: dict[str, list] = {code: [s for s in sites if s.service_region == code] for code in REGIONS}

    users = User.objects.bulk_create(
        User(username=f"bench-tech-{n}-{uuid.uuid4().hex[:6]}") for n in range(technicians)
    )
    techs = []
    for n, user in enumerate(users):
        home_region = list(REGIONS)[n % len(REGIONS)]
        lat, lng = point(rng, home_region)
        techs.append(
            Technician(user=user, display_name=f"Tech {n:03d}", home_lat=lat, home_lng=lng, phone=f"+1415555{n:04d}")
        )
    techs = Technician.objects.bulk_create(techs)
    through = Technician.regions.through
    tech_regions: dict = {}
    rows = []
    for n, tech in enumerate(techs):
        home_region = list(REGIONS)[n % len(REGIONS)]
        covered = {home_region, rng.choice(list(REGIONS))}
        tech_regions[tech.pk] = covered
        rows.extend(through(technician_id=tech.pk, region_id=regions[code].pk) for code in covered)
    through.objects.bulk_create(rows)
    TechnicianSkill.objects.bulk_create(
        TechnicianSkill(technician=tech, incident_type=kind, level=rng.randint(1, 5))
        for tech in techs
        for kind in rng.sample(INCIDENT_TYPES, 3)
    )
    shifts, hours = [], {}
    for n, tech in enumerate(techs):
        start, end = (clock(12), clock(21)) if n % 10 == 0 else (clock(7), clock(16))
        hours[tech.pk] = (start, end)
        days = list(range(5)) + ([5] if n % 4 == 0 else [])
        shifts.extend(
            Shift(technician=tech, weekday=d, start_time=start, end_time=end, timezone="America/Los_Angeles")
            for d in days
        )
    Shift.objects.bulk_create(shifts)
    TimeOff.objects.bulk_create(
        TimeOff(
            technician=tech,
            start=datetime.combine(monday + timedelta(days=rng.randint(0, 10)), clock(0), LA),
            end=datetime.combine(monday + timedelta(days=rng.randint(11, 12)), clock(0), LA),
            reason="Vacation",
            created_by="bench",
        )
        for tech in techs[::10]
    )

    # Booked work: the appointments spread over the 10 working days of the two weeks, each at
    # a site in a region the technician covers, never overlapping one another.
    work_days = [monday + timedelta(days=d) for d in range(14) if (monday + timedelta(days=d)).weekday() < 5]
    booked_tickets, slots = [], []
    per_tech_day: dict = {}
    while len(slots) < appointments:
        tech = rng.choice(techs)
        day = rng.choice(work_days)
        taken = per_tech_day.setdefault((tech.pk, day), [])
        if len(taken) >= 4:
            continue
        shift_start, _shift_end = hours[tech.pk]
        hour = shift_start.hour + 2 * len(taken) + rng.choice((0, 0.5))
        start = datetime.combine(day, clock(int(hour), int((hour % 1) * 60)), LA)
        end = start + timedelta(minutes=rng.choice((60, 75, 90)))
        taken.append(start)
        site = rng.choice(sites_by_region[rng.choice(sorted(tech_regions[tech.pk]))])
        booked_tickets.append(
            Ticket(
                account_id=site.account_id,
                site=site,
                state="SCHEDULED",
                priority="ROUTINE",
                incident_type=rng.choice(INCIDENT_TYPES),
                summary="Booked bench job",
                assigned_tech=tech,
                scheduled_start=start,
                scheduled_end=end,
            )
        )
        slots.append((tech, start, end))
    booked_tickets = Ticket.objects.bulk_create(booked_tickets, batch_size=1000)
    Appointment.objects.bulk_create(
        (
            Appointment(ticket=ticket, technician=tech, start=start, end=end, status="CONFIRMED", created_by="bench")
            for ticket, (tech, start, end) in zip(booked_tickets, slots)
        ),
        batch_size=1000,
    )
    queued = Ticket.objects.bulk_create(
        Ticket(
            account_id=site.account_id,
            site=site,
            state="READY_TO_SCHEDULE",
            priority=rng.choice(PRIORITIES),
            incident_type=rng.choice(INCIDENT_TYPES),
            summary="Bench job to place",
        )
        for site in (rng.choice(sites) for _ in range(tickets))
    )
    return {"queued": [t.pk for t in queued], "sites": len(sites), "shifts": len(shifts)}


# --- timing schedule.suggest -----------------------------------------------------------------------


def time_suggestions(ticket_ids: list) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dispatch.common.actors import Actor, ActorType
    from dispatch.common.roles import Role
    from dispatch.scheduling.services import schedule_suggest

    actor = Actor(actor_type=ActorType.AGENT, actor_id="bench-agent", role=Role.AGENT, request_id=str(uuid.uuid4()))
    schedule_suggest(actor=actor, ticket_id=ticket_ids[0])  # warm caches (zoneinfo, templates)
    timings, queries, placed, explanations = [], [], 0, {}
    for ticket_id in ticket_ids:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            answer = schedule_suggest(actor=actor, ticket_id=ticket_id)
            timings.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
        if answer["windows"]:
            placed += 1
        else:
            explanations[answer["explanation"]] = explanations.get(answer["explanation"], 0) + 1
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
        "max_ms": round(timings[-1], 2),
        "mean_ms": round(statistics.fmean(timings), 2),
        "queries_per_proposal": max(queries),
        "queries_min": min(queries),
        "queries_constant": min(queries) == max(queries),
        "proposals": len(ticket_ids),
        "placed": placed,
        "unplaced_explanations": explanations,
    }


# --- one day: the engine, the engine and the day planner, the best plan, first-come-first-served ---


def lower_bound(problem) -> int:
    """A lower bound on any plan's driving: the linear relaxation of the routes (each job entered
    and left once, each technician leaving home at most once and coming back as often), with
    cuts that a set of jobs must be entered from outside it as often as the jobs need routes
    (no route does more jobs than fit in a shift), added until none is violated."""
    from ortools.linear_solver import pywraplp

    jobs = [s for s in problem.stops if not s.fixed]
    homes = problem.techs
    nodes = [s.point for s in jobs] + [t.home for t in homes]
    n_jobs = len(jobs)
    per_route = max(1, max(t.shift_end - t.shift_start for t in homes) // min(s.duration for s in jobs))
    solver = pywraplp.Solver.CreateSolver("GLOP")
    x = {}
    for i in range(len(nodes)):
        for j in range(len(nodes)):
            if i != j and not (i >= n_jobs and j >= n_jobs):
                x[i, j] = solver.NumVar(0, 1, "")
    for j in range(n_jobs):
        solver.Add(sum(x[i, j] for i in range(len(nodes)) if (i, j) in x) == 1)
        solver.Add(sum(x[j, i] for i in range(len(nodes)) if (j, i) in x) == 1)
    for h in range(n_jobs, len(nodes)):
        out = sum(x[h, j] for j in range(n_jobs))
        solver.Add(out <= 1)
        solver.Add(out == sum(x[j, h] for j in range(n_jobs)))
    solver.Add(sum(x[h, j] for h in range(n_jobs, len(nodes)) for j in range(n_jobs)) >= -(-n_jobs // per_route))
    solver.Minimize(sum(problem.travel.minutes(nodes[i], nodes[j]) * var for (i, j), var in x.items()))
    value = 0.0
    for _round in range(200):
        solver.Solve()
        value = solver.Objective().Value()
        # Sets of jobs the relaxation serves as a closed loop (or too few routes): cut them.
        links = {j: set() for j in range(n_jobs)}
        for (i, j), var in x.items():
            if i < n_jobs and j < n_jobs and var.solution_value() > 1e-6:
                links[i].add(j)
                links[j].add(i)
        seen, added = set(), 0
        for root in range(n_jobs):
            if root in seen:
                continue
            group, todo = set(), [root]
            while todo:
                node = todo.pop()
                if node not in group:
                    group.add(node)
                    todo.extend(links[node] - group)
            seen |= group
            need = -(-len(group) // per_route)
            entering = sum(x[i, j].solution_value() for (i, j) in x if j in group and i not in group)
            if entering < need - 1e-6:
                solver.Add(sum(var for (i, j), var in x.items() if j in group and i not in group) >= need)
                added += 1
        if not added:
            break
    return math.ceil(value - 1e-6)


def day_build(rng: random.Random, *, day, technicians: int, jobs: int) -> dict:
    """One day of `jobs` ninety-minute jobs around the Bay for `technicians` technicians of one
    region and skill, homes spread over the four regions, nothing booked yet."""
    from django.contrib.auth import get_user_model

    from dispatch.scheduling.models import Shift
    from dispatch.technicians.models import Region, Technician, TechnicianSkill
    from dispatch.tickets.models import Account, Site, Ticket

    User = get_user_model()
    region = Region.objects.get_or_create(code=DAY_REGION, defaults={"name": "Bench day"})[0]
    account = Account.objects.create(name="Bench day account")
    users = User.objects.bulk_create(
        User(username=f"bench-day-{n}-{uuid.uuid4().hex[:12]}") for n in range(technicians)
    )
    codes = list(REGIONS)
    techs = Technician.objects.bulk_create(
        Technician(user=user, display_name=f"Day tech {n:02d}", home_lat=lat, home_lng=lng)
        for n, user in enumerate(users)
        for lat, lng in [point(rng, codes[n % len(codes)])]
    )
    Technician.regions.through.objects.bulk_create(
        Technician.regions.through(technician_id=t.pk, region_id=region.pk) for t in techs
    )
    TechnicianSkill.objects.bulk_create(TechnicianSkill(technician=t, incident_type=DAY_SKILL, level=3) for t in techs)
    Shift.objects.bulk_create(
        Shift(technician=t, weekday=day.weekday(), start_time=clock(7), end_time=clock(17)) for t in techs
    )
    sites = Site.objects.bulk_create(
        Site(
            account=account,
            name=f"Day site {n}",
            address_line1=f"{n} Day St",
            city="Bay Area",
            lat=lat,
            lng=lng,
            service_region=DAY_REGION,
        )
        for n in range(jobs)
        for lat, lng in [point(rng, codes[rng.randrange(len(codes))])]
    )
    # Booked jobs (SCHEDULED: the day planner may move them), opened the morning of the day so
    # that no SLA clock, and so no weekday the bench happens to run on, changes the ranking.
    now = datetime.combine(day, clock(6), LA)
    tickets = Ticket.objects.bulk_create(
        Ticket(
            account=account,
            site=site,
            state="SCHEDULED",
            priority="ROUTINE",
            incident_type=DAY_SKILL,
            summary=f"Day job {n}",
        )
        for n, site in enumerate(sites)
    )
    Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(created_at=now)
    tickets = list(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).select_related("site").order_by("summary"))
    return {"techs": techs, "tech_ids": [t.pk for t in techs], "tickets": tickets, "now": now}


def day_book(built: dict, weights: dict | None) -> list:
    """Book the day's jobs in arrival order, each in the engine's first window (as a customer
    taking the first offer would)."""
    from django.test.utils import override_settings

    from dispatch.scheduling.engine import slots_suggest
    from dispatch.scheduling.models import Appointment

    with override_settings(DISPATCH_SLOT_WEIGHTS=weights or {}):
        placed = []
        for ticket in built["tickets"]:
            suggestion = slots_suggest(
                ticket=ticket, horizon_days=1, limit=1, now=built["now"], use_ticket_preferences=False
            )
            if suggestion.windows:
                window = suggestion.windows[0]
                placed.append(
                    Appointment.objects.create(
                        ticket=ticket,
                        technician_id=window.technician_id,
                        start=window.start,
                        end=window.end,
                        status="CONFIRMED",
                        created_by="bench-day",
                    )
                )
    return placed


def day_measure(built: dict, placed: list, *, day) -> dict:
    """The day's driving as booked (home, jobs, home for every technician) and the jobs placed."""
    from dispatch.scheduling import routing
    from dispatch.scheduling.day_planner import day_problem_load

    evening = built["now"] - timedelta(hours=12)
    problem = day_problem_load(day=day, technician_ids=built["tech_ids"], now=evening).problem
    plan = routing.current_plan(problem)
    return {
        "travel_minutes": plan.travel_minutes,
        "placed": len(placed),
        "unplaced": len(built["tickets"]) - len(placed),
        "technicians_used": sum(1 for visits in plan.routes.values() if visits),
    }


def day_unbook(placed: list) -> None:
    from dispatch.scheduling.models import Appointment

    Appointment.objects.filter(pk__in=[a.pk for a in placed]).update(status="CANCELLED", cancelled_reason="reset")


def day_retire(built: dict) -> None:
    """Take the day's technicians off duty, so the next day built is booked on its own."""
    from dispatch.technicians.models import Technician

    Technician.objects.filter(pk__in=built["tech_ids"]).update(is_active=False)


def day_mix(rng: random.Random, *, day, days: int, sizes=(15, 25, 35, 45, 55), technicians: int = 12) -> dict:
    """The engine's driving over `days` generated days of each size, booked twice: with the drive
    home after the day's last job weighed in full (1.0) and at the default share (ranking.py)."""
    from dispatch.scheduling.ranking import DEFAULT_WEIGHTS

    # Each share once: with the default at 1.0 there is one booking per day and nothing to compare.
    shares = tuple(dict.fromkeys((1.0, float(DEFAULT_WEIGHTS["home_leg_after_work"]))))
    result = {}
    for jobs in sizes:
        totals = {share: {"travel_minutes": 0, "unplaced": 0} for share in shares}
        lower = higher = 0
        for _ in range(days):
            built = day_build(rng, day=day, technicians=technicians, jobs=jobs)
            travel = {}
            for share in shares:
                placed = day_book(built, {"home_leg_after_work": share})
                measured = day_measure(built, placed, day=day)
                day_unbook(placed)
                totals[share]["travel_minutes"] += measured["travel_minutes"]
                totals[share]["unplaced"] += measured["unplaced"]
                travel[share] = measured["travel_minutes"]
            day_retire(built)
            lower += travel[shares[-1]] < travel[shares[0]]
            higher += travel[shares[-1]] > travel[shares[0]]
        result[str(jobs)] = {
            **{
                f"share_{share}": {
                    "mean_travel_minutes": round(total["travel_minutes"] / days, 1),
                    "unplaced": total["unplaced"],
                }
                for share, total in totals.items()
            },
            "days_with_less_driving": lower,
            "days_with_more_driving": higher,
        }
        log(f"{jobs}-job days: {result[str(jobs)]}")
    return {"days_per_size": days, "technicians": technicians, "sizes": result}


def day_travel(rng: random.Random, *, day, technicians: int = 12, jobs: int = 45, best_seconds: float = 30.0) -> dict:
    """Book `jobs` on `day` in arrival order with the engine, re-plan them with the day planner,
    find the best plan the solver can (no bookings to respect) with a lower bound, and book them
    once more first-come-first-served (earliest start only, the same hard rules)."""
    from dispatch.scheduling import routing
    from dispatch.scheduling.day_planner import day_plan, day_problem_load
    from dispatch.scheduling.engine import step_minutes

    built = day_build(rng, day=day, technicians=technicians, jobs=jobs)
    tickets, tech_ids = built["tickets"], built["tech_ids"]
    evening = built["now"] - timedelta(hours=12)

    placed = day_book(built, None)
    engine = day_measure(built, placed, day=day)
    planned = day_plan(day=day, technician_ids=tech_ids, now=evening)
    after = {
        "travel_minutes": planned.travel_after,
        "moves": len(planned.moves),
        "technicians_used": sum(1 for row in planned.technicians if row["minutes_after"]),
        "seconds": round(planned.seconds, 2),
        "status": planned.status,
    }
    day_unbook(placed)

    # The best plan under the same rules with nothing booked yet: every job anywhere on the grid.
    loaded = day_problem_load(day=day, technician_ids=tech_ids, now=evening)
    step = step_minutes()
    free = routing.DayProblem(
        loaded.problem.techs,
        [
            routing.Stop(
                ticket.pk,
                (float(ticket.site.lat), float(ticket.site.lng)),
                90,
                frozenset(tech_ids),
                tuple(range(7 * 60, 17 * 60 - 90 + 1, step)),
                on_grid=True,
            )
            for ticket in tickets
        ],
        loaded.problem.travel,
    )
    started = time.perf_counter()
    best = routing.routes_solve(free, routing.Limits(seconds=best_seconds, solutions=10**6), from_current=False)
    best_seconds_used = time.perf_counter() - started
    bound = lower_bound(free)

    earliest_only = {"travel_per_minute": 0, "workload_per_hour": 0, "previous_technician": 0, "skill_level": 0}
    first_placed = day_book(built, earliest_only)
    first_come = day_measure(built, first_placed, day=day)
    day_unbook(first_placed)
    day_retire(built)
    return {
        "jobs": jobs,
        "technicians": technicians,
        "engine": engine,
        "engine_and_day_planner": after,
        "best_plan": {
            "travel_minutes": best.travel_minutes,
            "lower_bound_minutes": bound,
            "technicians_used": sum(1 for visits in best.routes.values() if visits),
            "seconds": round(best_seconds_used, 1),
        },
        "first_come_first_served": first_come,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--technicians", type=int, default=200)
    parser.add_argument("--appointments", type=int, default=5000)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--mixed-days",
        type=int,
        default=0,
        help="also book this many generated days of each of 15, 25, 35, 45 and 55 jobs with the drive-home "
        "share at 1.0 and at its default",
    )
    args = parser.parse_args()
    if args.mixed_days < 0:
        parser.error("--mixed-days counts days: 0 or more")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-slots-") as tmp:
        vendor = django_setup(Path(tmp))
        from django.utils import timezone

        today = timezone.now().astimezone(LA).date()
        monday = today - timedelta(days=today.weekday())
        log(f"building {args.technicians} technicians, {args.appointments} appointments on {vendor}")
        started = time.perf_counter()
        built = build(
            rng, technicians=args.technicians, appointments=args.appointments, tickets=args.tickets, monday=monday
        )
        log(f"built in {time.perf_counter() - started:.1f} s; timing {args.tickets} suggestions")
        result = time_suggestions(built["queued"])
        next_monday = monday + timedelta(days=7)
        log("one day: the engine, the day planner, the best plan, first-come-first-served")
        day = day_travel(rng, day=next_monday + timedelta(days=1))
        mixed = None
        if args.mixed_days:
            log(f"{args.mixed_days} generated days of each size, the drive home weighed in full and at its share")
            mixed = day_mix(rng, day=next_monday + timedelta(days=1), days=args.mixed_days)
        from dispatch.scheduling.ranking import weights

        print(
            json.dumps(
                {
                    "database": vendor,
                    "technicians": args.technicians,
                    "appointments": args.appointments,
                    "shifts": built["shifts"],
                    **result,
                    "target_p50_ms": 100,
                    "day_travel": day,
                    "day_travel_engine_minutes": day["engine"]["travel_minutes"],
                    "day_travel_engine_and_planner_minutes": day["engine_and_day_planner"]["travel_minutes"],
                    "day_travel_best_minutes": day["best_plan"]["travel_minutes"],
                    "day_travel_lower_bound_minutes": day["best_plan"]["lower_bound_minutes"],
                    "day_travel_first_come_first_served_minutes": day["first_come_first_served"]["travel_minutes"],
                    **({"day_travel_mixed_days": mixed} if mixed else {}),
                    "weights": weights(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
