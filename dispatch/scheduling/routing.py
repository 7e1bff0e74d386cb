"""The day's routes as a vehicle-routing problem, solved with OR-Tools' routing library.

Pure computation: no database, no Django. The day planner (`day_planner.py`) loads a day into a
`DayProblem` and turns the `RoutePlan` back into bookings; the bench builds problems of its own.

Times are whole minutes from the problem's origin (midnight of the planned day). The hard rules
are the slot engine's, written as routing constraints:
  - a stop may only go to a technician in its `technicians` (skill, region, active);
  - a job starts between the first and the last of its `starts` (for a booked job, inside the
    window the customer was told), or exactly at one of them (`on_grid`: a queued job, whose
    customer's preferred times may have gaps), and ends inside the technician's shift;
  - a technician's route starts at home no earlier than the shift and drives between stops;
  - a fixed stop (a dispatched or started job, a held booking, time off) stays on its technician
    at its time, and the route drives around it.
The objective is the driving of every route (home to the first stop, between stops, back home),
then, far lighter, minutes past each stop's SLA due time; a queued job left out costs more than
any route, so every job that fits is served.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

Point = tuple[float, float] | None

# One minute of driving outweighs this many minutes of lateness: travel first, then the SLA.
TRAVEL_COST = 100
LATE_COST_PER_MINUTE = 1
# Leaving a queued job out of the day costs more than any day's driving could.
DROP_COST = 10_000_000


@dataclass(frozen=True)
class TravelModel:
    """Straight-line distance × road factor ÷ average speed; a fixed guess when a point is unknown.
    The slot engine's one travel model (`engine.travel_model()` reads it from the settings)."""

    road_factor: float
    speed_kmh: float
    unknown_minutes: int

    def minutes(self, a: Point, b: Point) -> int:
        """Driving minutes from a to b, rounded up."""
        if a is None or b is None:
            return self.unknown_minutes
        if a == b:
            return 0
        lat1, lng1, lat2, lng2 = map(math.radians, (a[0], a[1], b[0], b[1]))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
        km = 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))
        return math.ceil(km * self.road_factor / self.speed_kmh * 60 - 1e-9)

    def matrix(self, points: list[Point]) -> list[list[int]]:
        """Every point to every other, each pair computed once (the matrix is symmetric)."""
        size = len(points)
        rows = [[0] * size for _ in range(size)]
        for i in range(size):
            row = rows[i]
            a = points[i]
            for j in range(i + 1, size):
                value = self.minutes(a, points[j])
                row[j] = value
                rows[j][i] = value
            if a is None:
                row[i] = 0
        return rows


@dataclass
class Tech:
    key: Any
    name: str
    home: Point
    shift_start: int
    shift_end: int


@dataclass
class Stop:
    """A job (or a fixed block) to place. `current_tech`/`current_start` describe today's plan."""

    key: Any
    point: Point
    duration: int
    technicians: frozenset
    starts: tuple[int, ...]
    current_tech: Any = None
    current_start: int | None = None
    fixed: bool = False
    optional: bool = False
    # Latest finish before the SLA is missed (minutes), if any.
    due: int | None = None
    label: str = ""
    # Start only at the listed minutes (the engine's step grid), not anywhere between the first
    # and the last: exact, but far slower to search on a large day, so the day planner leaves it off.
    on_grid: bool = False
    # A fixed block that need not be driven to (the hours between the parts of a split shift).
    arrive_anywhere: bool = False


@dataclass
class DayProblem:
    techs: list[Tech]
    stops: list[Stop]
    travel: TravelModel
    meta: dict = field(default_factory=dict)


@dataclass
class Visit:
    stop: Any
    start: int


@dataclass
class RoutePlan:
    """Each technician's visits in order, and what they cost."""

    routes: dict[Any, list[Visit]]
    dropped: list[Any]
    travel_minutes: int
    late_minutes: int
    status: str  # "solved", "no_solution", "current"


def route_travel(problem: DayProblem, routes: dict[Any, list[Any]]) -> int:
    """Minutes of driving of routes given as stop keys in order (home, stops, home)."""
    stops = {s.key: s for s in problem.stops}
    total = 0
    for tech in problem.techs:
        keys = routes.get(tech.key) or []
        if not keys:
            continue
        points = [tech.home] + [stops[k].point for k in keys] + [tech.home]
        total += sum(problem.travel.minutes(a, b) for a, b in itertools.pairwise(points))
    return total


def current_plan(problem: DayProblem) -> RoutePlan:
    """Today's plan as it stands: every stop on its current technician, in time order."""
    routes: dict[Any, list[Visit]] = {t.key: [] for t in problem.techs}
    dropped = []
    for stop in problem.stops:
        if stop.current_tech in routes and stop.current_start is not None:
            routes[stop.current_tech].append(Visit(stop.key, stop.current_start))
        else:
            dropped.append(stop.key)
    for visits in routes.values():
        visits.sort(key=lambda v: v.start)
    travel = route_travel(problem, {k: [v.stop for v in vs] for k, vs in routes.items()})
    return RoutePlan(routes, dropped, travel, _late(problem, routes), "current")


def _late(problem: DayProblem, routes: dict[Any, list[Visit]]) -> int:
    stops = {s.key: s for s in problem.stops}
    late = 0
    for visits in routes.values():
        for visit in visits:
            stop = stops[visit.stop]
            if stop.due is not None and not stop.fixed:
                late += max(0, visit.start + stop.duration - stop.due)
    return late


@dataclass(frozen=True)
class Limits:
    """How long the search may run: a wall-clock bound, and a count of improving steps that makes
    the result the same on every run when the clock is not what stops it."""

    seconds: float = 5.0
    solutions: int = 2000


# Technicians planned together at most: the local search slows sharply with the size of the day
# (1,000 jobs on 200 technicians found nothing in 5 s), so a large day is planned in groups.
GROUP_SIZE = 16


def routes_solve(problem: DayProblem, limits: Limits = Limits(), *, from_current: bool = True) -> RoutePlan:
    """The cheapest plan the search finds in `limits`, starting from today's plan when it is
    feasible (so the answer is never worse than it); `current_plan` when nothing is found.

    A day of more than GROUP_SIZE technicians is split into groups of neighbours (by where
    they live), each with its own jobs and an equal share of the time: jobs move only within
    a group, which is where nearly all the saving is."""
    if all(stop.fixed for stop in problem.stops):
        return current_plan(problem)  # nothing may move: no search to run
    groups = _groups(problem)
    if len(groups) == 1:
        return _solve(problem, limits, from_current)
    share = Limits(seconds=limits.seconds / len(groups), solutions=limits.solutions)
    plans = [_kept_if_worse(group, _solve(group, share, from_current)) for group in groups]
    routes = {k: v for plan in plans for k, v in plan.routes.items()}
    dropped = [key for plan in plans for key in plan.dropped]
    statuses = {plan.status for plan in plans}
    status = "solved" if "solved" in statuses else plans[0].status
    travel = sum(plan.travel_minutes for plan in plans)
    return RoutePlan(routes, dropped, travel, sum(plan.late_minutes for plan in plans), status)


def _kept_if_worse(problem: DayProblem, plan: RoutePlan) -> RoutePlan:
    """A group's own plan only where it drives less or serves more queued jobs; else today's."""
    current = current_plan(problem)
    if plan.status == "solved" and (
        plan.travel_minutes < current.travel_minutes or len(plan.dropped) < len(current.dropped)
    ):
        return plan
    return current


def _groups(problem: DayProblem) -> list[DayProblem]:
    """Neighbouring technicians in groups of at most GROUP_SIZE (a few rounds of k-means on their
    homes, deterministic), each with the stops booked on them; a queued stop joins the group of
    the nearest technician who may take it."""
    techs = problem.techs
    if len(techs) <= GROUP_SIZE:
        return [problem]
    count = -(-len(techs) // GROUP_SIZE)
    homes = [t.home or (0.0, 0.0) for t in techs]
    ordered = sorted(range(len(techs)), key=lambda i: homes[i])
    centres = [homes[ordered[(k * len(techs)) // count]] for k in range(count)]
    members: list[list[int]] = []
    for _round in range(8):
        members = [[] for _ in centres]
        # Nearest centre with room, technicians taken in a fixed order.
        for i in ordered:
            for k in sorted(range(count), key=lambda c: (_distance(homes[i], centres[c]), c)):
                if len(members[k]) < GROUP_SIZE:
                    members[k].append(i)
                    break
        centres = [
            (sum(homes[i][0] for i in m) / len(m), sum(homes[i][1] for i in m) / len(m)) if m else centres[k]
            for k, m in enumerate(members)
        ]
    group_of = {techs[i].key: k for k, m in enumerate(members) for i in m}
    stops_by_group: list[list[Stop]] = [[] for _ in members]
    for stop in problem.stops:
        if stop.current_tech in group_of:
            stops_by_group[group_of[stop.current_tech]].append(stop)
            continue
        candidates = [t for t in techs if t.key in stop.technicians]
        if candidates:
            nearest = min(
                candidates, key=lambda t: (_distance(t.home or (0.0, 0.0), stop.point or (0.0, 0.0)), str(t.key))
            )
            stops_by_group[group_of[nearest.key]].append(stop)
    return [
        DayProblem([techs[i] for i in m], stops_by_group[k], problem.travel, problem.meta)
        for k, m in enumerate(members)
        if m
    ]


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + ((a[1] - b[1]) * 0.8) ** 2


def _solve(problem: DayProblem, limits: Limits, from_current: bool) -> RoutePlan:
    techs, stops = problem.techs, problem.stops
    if not techs or not stops:
        return current_plan(problem)
    n_stops, n_techs = len(stops), len(techs)
    # Nodes: the stops, then each technician's start (home) and end (home).
    starts = [n_stops + 2 * v for v in range(n_techs)]
    ends = [n_stops + 2 * v + 1 for v in range(n_techs)]
    points: list[Point] = [s.point for s in stops]
    for tech in techs:
        points.extend([tech.home, tech.home])
    drive = problem.travel.matrix(points)
    is_end = [False] * len(points)
    for node in ends:
        is_end[node] = True
    durations = [s.duration for s in stops] + [0] * (2 * n_techs)
    # Time between the starts of two consecutive nodes: the first one's work, then the drive; the
    # drive home after the last job need not fit in the shift (as in the slot engine).
    free = [is_end[j] or (j < n_stops and stops[j].arrive_anywhere) for j in range(len(points))]
    timing = [[durations[i] + (0 if free[j] else drive[i][j]) for j in range(len(points))] for i in range(len(points))]
    cost = [[drive[i][j] * TRAVEL_COST for j in range(len(points))] for i in range(len(points))]

    manager = pywrapcp.RoutingIndexManager(len(points), n_techs, starts, ends)
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(cost))
    horizon = max(t.shift_end for t in techs) + max(durations) + 1
    model.AddDimension(model.RegisterTransitMatrix(timing), horizon, horizon, False, "time")
    clock = model.GetDimensionOrDie("time")
    tech_index = {t.key: v for v, t in enumerate(techs)}
    for v, tech in enumerate(techs):
        clock.CumulVar(model.Start(v)).SetRange(tech.shift_start, tech.shift_end)
        clock.CumulVar(model.End(v)).SetRange(tech.shift_start, tech.shift_end)
    for node, stop in enumerate(stops):
        index = manager.NodeToIndex(node)
        allowed = sorted(tech_index[k] for k in stop.technicians if k in tech_index)
        if stop.fixed:
            allowed = [tech_index[stop.current_tech]] if stop.current_tech in tech_index else []
        times = sorted(set(stop.starts))
        if not allowed or not times:
            if stop.optional:
                model.AddDisjunction([index], DROP_COST)
                model.VehicleVar(index).SetValues([-1])
                continue
            return current_plan(problem)
        if stop.optional:
            model.AddDisjunction([index], DROP_COST)
        # -1 is "not on any route", which only a queued job may be.
        model.VehicleVar(index).SetValues(allowed + ([-1] if stop.optional else []))
        if stop.on_grid:
            clock.CumulVar(index).SetValues(times)
        else:
            clock.CumulVar(index).SetRange(times[0], times[-1])
        if stop.due is not None and not stop.fixed:
            clock.SetCumulVarSoftUpperBound(index, max(0, stop.due - stop.duration), LATE_COST_PER_MINUTE)
    for v in range(n_techs):
        model.AddVariableMinimizedByFinalizer(clock.CumulVar(model.Start(v)))
        model.AddVariableMinimizedByFinalizer(clock.CumulVar(model.End(v)))

    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(max(1, int(limits.seconds * 1000)))
    parameters.solution_limit = max(1, limits.solutions)
    model.CloseModelWithParameters(parameters)

    solution = None
    if from_current:
        initial = _initial_routes(problem, tech_index)
        seed = model.ReadAssignmentFromRoutes(initial, True) if initial is not None else None
        if seed is not None:
            solution = model.SolveFromAssignmentWithParameters(seed, parameters)
    if solution is None:
        solution = model.SolveWithParameters(parameters)
    if solution is None:
        plan = current_plan(problem)
        plan.status = "no_solution"
        return plan
    routes: dict[Any, list[Visit]] = {}
    for v, tech in enumerate(techs):
        visits = []
        index = model.Start(v)
        while not model.IsEnd(index):
            node = manager.IndexToNode(index)
            if node < n_stops:
                visits.append(Visit(stops[node].key, solution.Value(clock.CumulVar(index))))
            index = solution.Value(model.NextVar(index))
        routes[tech.key] = visits
    placed = {v.stop for visits in routes.values() for v in visits}
    dropped = [s.key for s in stops if s.key not in placed]
    travel = route_travel(problem, {k: [v.stop for v in vs] for k, vs in routes.items()})
    return RoutePlan(routes, dropped, travel, _late(problem, routes), "solved")


def _initial_routes(problem: DayProblem, tech_index: dict) -> list[list[int]] | None:
    """Today's routes as node lists, the search's starting point (None when a stop has no place)."""
    routes: list[list[tuple[int, int]]] = [[] for _ in problem.techs]
    for node, stop in enumerate(problem.stops):
        if stop.current_tech is None or stop.current_start is None:
            if not stop.optional:
                return None
            continue
        v = tech_index.get(stop.current_tech)
        if v is None:
            return None
        routes[v].append((stop.current_start, node))
    return [[node for _start, node in sorted(route)] for route in routes]
