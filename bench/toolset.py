"""Benchmark of the agent toolset: the app under gunicorn on a throwaway PostgreSQL, driven by
concurrent clients for fixed times, on an empty database and on one holding 100,000 tickets.

    .venv/bin/python bench/toolset.py [--seconds 10] [--chain-seconds 20] [--clients 8] [--rounds 3] [--warmup 2]
                                      [--workers 3] [--threads 2] [--tickets 100000]

Prints one JSON object: requests/s and p50/p99 for ticket.get, ticket.triage, every tool of
the canonical emergency chain and a bare Django JSON view on the same server (the bare view and
ticket.triage in alternating rounds, pooled); CPU per request of server, database and clients;
chains/s on both databases; the SQL queries each tool of the chain runs; and any hot-path query
that reads a large table sequentially (with the index it needs). Not part of `make test`.

`setup` and `preload` are the Django halves, run in subprocesses against the database under test.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    MUTATING_TOOLS,
    PhaseResult,
    StopPhase,
    canonical_chain,
    database_create,
    django_env,
    django_json,
    gunicorn_server,
    http_caller,
    log,
    manage,
    per_tool,
    phases_pooled,
    postgres_server,
    run_phase,
    stats,
)

QUERY_BUDGET = 12
# Tables that grow with the business: a hot-path query must find its rows by index in these.
LARGE_TABLES = {
    "tickets_ticket": "tickets",
    "tickets_auditevent": "audit events",
    "tickets_statetransition": "state transitions",
    "tickets_idempotencyrecord": "idempotency records",
    "closeout_evidence": "evidence",
    "scheduling_appointment": "appointments",
    "messaging_outboundmessage": "outbound messages",
}


# --- Django side: fixtures and query census (runs in a subprocess) -------------------------


def _django():
    import django

    django.setup()


def bench_actor(role: str):
    from dispatch.common.actors import Actor, ActorType
    from dispatch.common.roles import Role

    return Actor(actor_type=ActorType.SYSTEM, actor_id=f"bench-{role}", role=Role(role), request_id=str(uuid.uuid4()))


def technicians_create(count: int, *, prefix: str) -> list:
    """Technicians who can secure doors in the East Bay, each with a user and an API token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from dispatch.api.services import api_token_create
    from dispatch.technicians.models import Region, Technician, TechnicianSkill

    user_model = get_user_model()
    region, _ = Region.objects.get_or_create(code="EAST_BAY", defaults={"name": "East Bay"})
    group, _ = Group.objects.get_or_create(name="technician")
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}-{i:05d}", is_active=True, password="!") for i in range(count)]
    )
    users = list(user_model.objects.filter(username__in=[u.username for u in users]).order_by("username"))
    group.user_set.add(*users)
    technicians = Technician.objects.bulk_create(
        [
            Technician(user=user, display_name=f"Bench Tech {user.username}", home_lat="37.8044", home_lng="-122.2711")
            for user in users
        ]
    )
    TechnicianSkill.objects.bulk_create(
        [
            TechnicianSkill(technician=t, incident_type=kind, level=4)
            for t in technicians
            for kind in ("CANNOT_SECURE_ENTRY", "DOOR_WONT_LATCH")
        ]
    )
    Technician.regions.through.objects.bulk_create(
        [Technician.regions.through(technician_id=t.id, region_id=region.id) for t in technicians]
    )
    pool = []
    for technician, user in zip(technicians, users):
        _, plaintext = api_token_create(name=f"bench-{user.username}", role="technician", user=user)
        pool.append({"id": str(technician.id), "token": plaintext})
    return pool


def storefront_create(account_name: str):
    """An account with one storefront in Oakland, in the East Bay region the technicians cover."""
    from dispatch.tickets.models import Account, Site

    account = Account.objects.create(name=account_name)
    site = Site.objects.create(
        account=account,
        name="Storefront",
        address_line1="1 Bench Way",
        city="Oakland",
        region="CA",
        postal_code="94607",
        lat="37.804400",
        lng="-122.271100",
        service_region="EAST_BAY",
        access_code="4821",
    )
    return account, site


def command_setup(args) -> dict:
    """Fixtures for the driver (tokens, a site, technicians, ticket pools) and the query census."""
    _django()
    from dispatch.api.services import api_token_create
    from dispatch.tickets.services import ticket_create, ticket_triage

    label = args.label
    account, site = storefront_create(f"Bench Properties {label}")
    tokens = {
        role: api_token_create(name=f"bench-{label}-{role}", role=role)[1]
        for role in ("dispatcher", "agent", "qa", "finance")
    }
    technicians = technicians_create(args.technicians + 2, prefix=f"bench-{label}")
    dispatcher = bench_actor("dispatcher")
    pool = []
    for index in range(args.pool):
        ticket = ticket_create(
            actor=dispatcher, account_id=account.id, site_id=site.id, summary=f"Bench ticket {index}"
        ).ticket
        ticket_triage(actor=dispatcher, ticket_id=ticket.id, priority="URGENT", incident_type="DOOR_WONT_LATCH")
        pool.append(str(ticket.id))
    fixtures = {
        "site": {"account_id": str(account.id), "site_id": str(site.id)},
        "tokens": tokens,
        "technicians": technicians[2:],
        "pool": pool,
    }
    fixtures["census"] = _query_census(fixtures, technicians[:2])
    return fixtures


LARGE_TABLE_ROWS = 10_000


def _large_tables() -> set[str]:
    """The growing tables that hold enough rows here for a sequential read to matter."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s) AND reltuples >= %s",
            [list(LARGE_TABLES), LARGE_TABLE_ROWS],
        )
        return {row[0] for row in cursor.fetchall()}


def _explain_scans(sql: str, large: set[str]) -> list[str]:
    """Large tables this statement would read sequentially, per PostgreSQL's plan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    found = []

    def walk(node):
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in large:
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _query_census(fixtures: dict, technicians: list[dict]) -> dict:
    """Run the canonical chain twice through Django's test client and count every tool's queries
    in the second run (the first one's token stamps and first-use reads are not what a call
    costs), asking PostgreSQL how it would run each of them."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts: dict[str, list[int]] = collections.defaultdict(list)
    statements_per_call: dict[str, list[int]] = collections.defaultdict(list)
    statements: list[tuple[str, str]] = []

    recording = False

    def call(tool, method, path, token, body, expect):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        with CaptureQueriesContext(connection) as queries:
            if method == "POST":
                response = client.post(
                    path,
                    data=json.dumps(body),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                    **headers,
                )
            else:
                response = client.get(path, **headers)
        if response.status_code != expect:
            raise RuntimeError(f"census {tool}: HTTP {response.status_code} {response.content[:300]!r}")
        if not recording:
            return response.status_code, response.json()
        # Transaction control (BEGIN, SAVEPOINT, RELEASE, COMMIT) is counted apart from queries.
        data = [q for q in queries.captured_queries if not _is_transaction_control(q["sql"])]
        counts[tool].append(len(data))
        statements_per_call[tool].append(len(queries))
        statements.extend((tool, q["sql"]) for q in queries.captured_queries)
        return response.status_code, response.json()

    canonical_chain(call, site=fixtures["site"], tokens=fixtures["tokens"], technician=technicians[0])
    recording = True
    ticket_id = canonical_chain(call, site=fixtures["site"], tokens=fixtures["tokens"], technician=technicians[1])
    call("ticket.get", "GET", f"/api/v1/tickets/{ticket_id}", fixtures["tokens"]["dispatcher"], None, 200)
    call("dispatcher.cockpit", "GET", "/api/v1/ux/dispatcher/cockpit", fixtures["tokens"]["dispatcher"], None, 200)
    call(
        "dispatcher.cockpit",
        "GET",
        "/api/v1/ux/dispatcher/cockpit?sort=sla&sla_status=breach",
        fixtures["tokens"]["dispatcher"],
        None,
        200,
    )
    call(
        "tech.job_packet",
        "GET",
        f"/api/v1/ux/technician/job-packet/{ticket_id}",
        fixtures["tokens"]["dispatcher"],
        None,
        200,
    )

    scans = []
    seen = set()
    large = _large_tables()
    for tool, sql in statements:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in {"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"}:
            continue
        for relation in _explain_scans(sql, large):
            key = (tool, relation, sql[:200])
            if key not in seen:
                seen.add(key)
                scans.append({"tool": tool, "table": relation, "sql": sql[:600]})
    return {
        "queries": {tool: max(values) for tool, values in counts.items()},
        "statements": {tool: max(values) for tool, values in statements_per_call.items()},
        "large_tables_checked": sorted(large),
        "table_scans": scans,
    }


def _is_transaction_control(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


# --- Django side: 100,000 tickets with their history, loaded fast --------------------------

# (tool, before, after, transitions) steps of the short legal histories the preload writes.
CREATE = ("ticket.create", "", "NEW", [("", "NEW")])
TRIAGE = ("ticket.triage", "NEW", "TRIAGED", [("NEW", "TRIAGED")])
HISTORIES = {
    "CLOSED": [
        CREATE,
        TRIAGE,
        ("assignment.dispatch", "TRIAGED", "DISPATCHED", [("TRIAGED", "DISPATCHED")]),
        ("tech.check_in", "DISPATCHED", "IN_PROGRESS", [("DISPATCHED", "ON_SITE"), ("ON_SITE", "IN_PROGRESS")]),
        (
            "tech.complete",
            "IN_PROGRESS",
            "COMPLETED_PENDING_VERIFICATION",
            [("IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION")],
        ),
        ("qa.verify", "COMPLETED_PENDING_VERIFICATION", "VERIFIED", [("COMPLETED_PENDING_VERIFICATION", "VERIFIED")]),
        ("ticket.close", "VERIFIED", "CLOSED", [("VERIFIED", "CLOSED")]),
    ],
    "CANCELLED": [CREATE, TRIAGE, ("ticket.cancel", "TRIAGED", "CANCELLED", [("TRIAGED", "CANCELLED")])],
    "NEW": [CREATE],
    "TRIAGED": [CREATE, TRIAGE],
    "READY_TO_SCHEDULE": [
        CREATE,
        ("ticket.triage", "NEW", "READY_TO_SCHEDULE", [("NEW", "TRIAGED"), ("TRIAGED", "READY_TO_SCHEDULE")]),
    ],
    "DISPATCHED": [CREATE, TRIAGE, ("assignment.dispatch", "TRIAGED", "DISPATCHED", [("TRIAGED", "DISPATCHED")])],
}
# Mostly history, a working queue of about 2% open tickets.
STATE_MIX = [
    ("CLOSED", 0.73),
    ("CANCELLED", 0.25),
    ("NEW", 0.005),
    ("TRIAGED", 0.005),
    ("READY_TO_SCHEDULE", 0.005),
    ("DISPATCHED", 0.005),
]


def command_preload(args) -> dict:
    """COPY `--tickets` tickets, their audit events (valid per-ticket hash chains, each opening a
    link of its lane, continuing from the lane heads) and their transition rows into the
    database, then move the lane heads."""
    _django()
    from types import SimpleNamespace

    from django.db import connection, transaction
    from django.utils import timezone

    from dispatch.tickets.audit import AUDIT_LANES, _event_digest, _lane_seal, _ticket_seal, lane_head_empty, lane_of
    from dispatch.tickets.models import Account, AuditChainHead, Site, ticket_queue_rank

    started = time.monotonic()
    rng = random.Random(20260213)
    accounts = Account.objects.bulk_create([Account(name=f"Preload Account {i}") for i in range(100)])
    sites = Site.objects.bulk_create(
        [
            Site(
                account=accounts[i % len(accounts)],
                name=f"Preload Site {i}",
                address_line1=f"{i} Preload St",
                city="Oakland",
                region="CA",
                service_region="EAST_BAY",
            )
            for i in range(500)
        ]
    )
    historic = technicians_create(50, prefix="preload")
    states = [state for state, _ in STATE_MIX]
    weights = [weight for _, weight in STATE_MIX]
    now = timezone.now()
    # Creation times spread evenly over the last `--days` days (a year unless told).
    span = getattr(args, "days", 365) * 24 * 3600.0
    count = args.tickets
    incident_types = [
        "DOOR_WONT_LATCH",
        "CLOSER_LEAKING_OR_SLAMMING",
        "AUTO_OPERATOR_FAULT",
        "CANNOT_SECURE_ENTRY",
        "HARDWARE_REPLACEMENT",
        "FRAME_OR_GLASS_DAMAGE",
    ]
    priorities = ["ROUTINE", "ROUTINE", "URGENT", "EMERGENCY"]

    with transaction.atomic():
        # The lane heads are locked for the whole load, exactly as openings would lock them.
        for lane in range(AUDIT_LANES):
            AuditChainHead.objects.get_or_create(pk=lane, defaults=lane_head_empty(lane))
        lanes = {head.pk: [head.last_seq, head.last_hash] for head in AuditChainHead.objects.select_for_update()}
        raw = connection.cursor().cursor
        ticket_rows, event_rows, transitions = [], [], []
        for index in range(count):
            state = rng.choices(states, weights)[0]
            site = sites[index % len(sites)]
            created = now - timedelta(seconds=span * (1 - index / count) + 3600)
            history = HISTORIES[state]
            ticket_id = uuid.uuid4()
            tech = historic[index % len(historic)]["id"] if state in ("CLOSED", "DISPATCHED") else None
            lane = lane_of(ticket_id)
            prev_hash, moved = lanes[lane][1], 0
            for step, (tool, before, after, moves) in enumerate(history):
                event = SimpleNamespace(
                    id=uuid.uuid4(),
                    ticket_id=ticket_id,
                    seq=step + 1,
                    lane=lane if step == 0 else None,
                    lane_seq=lanes[lane][0] + 1 if step == 0 else None,
                    actor_type="SYSTEM",
                    actor_id="bench-preload",
                    actor_role="system",
                    tool_name=tool,
                    request_id=str(uuid.uuid4()),
                    correlation_id="",
                    trace_id="",
                    before_state=before,
                    after_state=after,
                    payload={"source": "bench-preload"},
                    created_at=created + timedelta(minutes=5 * step),
                    prev_hash=prev_hash,
                )
                event.hash = _event_digest(event)
                if step == 0:
                    lanes[lane] = [event.lane_seq, event.hash]
                prev_hash = event.hash
                event_rows.append(
                    (
                        event.id,
                        event.seq,
                        event.lane,
                        event.lane_seq,
                        ticket_id,
                        event.actor_type,
                        event.actor_id,
                        event.actor_role,
                        tool,
                        event.request_id,
                        "",
                        "",
                        before,
                        after,
                        json.dumps(event.payload),
                        event.created_at,
                        event.prev_hash,
                        event.hash,
                    )
                )
                for source, target in moves:
                    moved += 1
                    transitions.append((ticket_id, moved, source, target, event.id, event.created_at))
            priority = rng.choice(priorities)
            ticket_rows.append(
                (
                    ticket_id,
                    site.account_id,
                    site.id,
                    state,
                    priority,
                    rng.choice(incident_types),
                    f"Preloaded job {index}",
                    "",
                    f"Customer {index}",
                    f"+1510555{index % 10000:04d}",
                    "",
                    "USD",
                    tech,
                    len(history),
                    created,
                    created + timedelta(minutes=5 * len(history)),
                    moved,
                    len(history),
                    prev_hash,
                    _ticket_seal(ticket_id, len(history), prev_hash),
                    # The executor keeps the queue order and the time a job was done on the row;
                    # a COPY must write them too.
                    ticket_queue_rank(state, priority),
                    created + timedelta(minutes=5 * len(history)) if state in ("CLOSED", "CANCELLED") else None,
                )
            )
        with raw.copy(
            "COPY tickets_ticket (id, account_id, site_id, state, priority, incident_type, summary, description, "
            "customer_name, customer_phone, customer_email, currency, assigned_tech_id, version, created_at, "
            "updated_at, transition_seq, audit_seq, audit_hash, audit_seal, queue_rank, done_at) FROM STDIN"
        ) as copy:
            for row in ticket_rows:
                copy.write_row(row)
        with raw.copy(
            "COPY tickets_auditevent (id, seq, lane, lane_seq, ticket_id, actor_type, actor_id, actor_role, tool_name, "
            "request_id, correlation_id, trace_id, before_state, after_state, payload, created_at, prev_hash, hash) "
            "FROM STDIN"
        ) as copy:
            for row in event_rows:
                copy.write_row(row)
        with raw.copy(
            "COPY tickets_statetransition (ticket_id, seq, from_state, to_state, audit_event_id, created_at) FROM STDIN"
        ) as copy:
            for row in transitions:
                copy.write_row(row)
        for lane, (last_seq, last_hash) in lanes.items():
            AuditChainHead.objects.filter(pk=lane).update(
                last_seq=last_seq, last_hash=last_hash, seal=_lane_seal(lane, last_seq, last_hash)
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "tickets": count,
        "audit_events": len(event_rows),
        "transitions": len(transitions),
        "seconds": round(time.monotonic() - started, 1),
    }


# --- the driver --------------------------------------------------------------------------


def _workloads(base_url: str, fixtures: dict, args) -> dict[str, Callable]:
    """The work of each phase against one server: name -> work(client_index, recorder)."""
    import requests

    tokens = fixtures["tokens"]
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    auth = {"Authorization": f"Bearer {tokens['dispatcher']}"}
    pool = fixtures["pool"]

    def bare(index, recorder):
        recorder.call("bare", lambda: session().get(base_url + "/bench/bare", timeout=30), expect=200)

    def bare_db(index, recorder):
        ticket = pool[index % len(pool)]
        recorder.call("bare_db", lambda: session().get(f"{base_url}/bench/bare-db?id={ticket}", timeout=30), expect=200)

    counters = collections.defaultdict(itertools.count)

    def ticket_get(index, recorder):
        ticket = pool[next(counters[("get", index)]) % len(pool)]
        recorder.call(
            "ticket.get",
            lambda: session().get(f"{base_url}/api/v1/tickets/{ticket}", headers=auth, timeout=30),
            expect=200,
        )

    def triage(index, recorder):
        # Each client re-triages its own tickets (TRIAGED → TRIAGED is a legal triage), so clients
        # contend only where the product makes them: the audit chain.
        own = pool[index :: args.clients] or pool
        n = next(counters[("triage", index)])
        ticket = own[n % len(own)]
        body = {
            "priority": ("URGENT", "ROUTINE")[n % 2],
            "incident_type": "DOOR_WONT_LATCH",
            "workflow_outcome": "TRIAGED",
        }
        headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}
        recorder.call(
            "ticket.triage",
            lambda: session().post(
                f"{base_url}/api/v1/tickets/{ticket}/triage", json=body, headers=headers, timeout=30
            ),
            expect=200,
        )

    def cockpit(index, recorder):
        recorder.call(
            "dispatcher.cockpit",
            lambda: session().get(f"{base_url}/api/v1/ux/dispatcher/cockpit?limit=50", headers=auth, timeout=30),
            expect=200,
        )

    technicians = collections.deque(fixtures["technicians"])
    technicians_lock = threading.Lock()

    def chain(index, recorder):
        with technicians_lock:
            if not technicians:
                raise StopPhase()
            # A fresh technician per chain: an emergency books them from now on, so a busy one
            # would (rightly) be refused as unavailable.
            technician = technicians.popleft()
        canonical_chain(
            http_caller(session(), base_url, recorder), site=fixtures["site"], tokens=tokens, technician=technician
        )
        recorder.unit_done()

    return {
        "bare": bare,
        "bare_db": bare_db,
        "ticket.get": ticket_get,
        "ticket.triage": triage,
        "dispatcher.cockpit": cockpit,
        "chain": chain,
    }


def _measure(name: str, work: Callable, seconds: float, args, rounds: dict[str, list[PhaseResult]], label: str) -> None:
    if name not in rounds and name != "chain" and args.warmup:
        # Unmeasured: each worker's first calls connect, compile and prepare statements.
        run_phase(name, seconds=args.warmup, clients=args.clients, work=work)
    log(f"[{label}] phase {name}: {seconds:.0f} s, {args.clients} clients")
    result = run_phase(name, seconds=seconds, clients=args.clients, work=work)
    rounds[name].append(result)
    log(
        f"[{label}]   {name}: {stats(result.samples, result.duration)['rps']} req/s"
        + (f", {result.units / result.duration:.2f} chains/s" if name == "chain" and result.duration else "")
        + (f", {len(result.failures)} failures" if result.failures else "")
    )


def _entry(name: str, measured: list[PhaseResult]) -> dict:
    result = phases_pooled(measured)
    entry = {
        "seconds": round(result.duration, 2),
        **stats(result.samples, result.duration),
        "cpu_ms_per_request": result.cpu_ms_per_request,
    }
    if len(measured) > 1:
        entry["rps_rounds"] = [stats(r.samples, r.duration)["rps"] for r in measured]
    if name == "chain":
        entry["chains"] = result.units
        entry["chains_per_s"] = round(result.units / result.duration, 2) if result.duration else 0.0
        if len(measured) > 1:
            entry["chains_per_s_rounds"] = [round(r.units / r.duration, 2) if r.duration else 0.0 for r in measured]
        entry["tools"] = per_tool(result)
        mutating = [s for s in result.samples if s.tool in MUTATING_TOOLS]
        entry["mutating"] = stats(mutating, result.duration)
    if result.failures:
        entry["failures"] = result.failures[:10]
    return entry


def _database_ready(server_url: str, label: str, preload: int, args) -> tuple[dict, dict, dict]:
    """A migrated database (with `preload` tickets), its fixtures and query census: (section, env, fixtures)."""
    url = database_create(server_url, f"bench_{label}")
    env = django_env(url)
    log(f"[{label}] migrate")
    manage(env, "migrate", "-v0")
    section: dict = {}
    if preload:
        log(f"[{label}] preload {preload} tickets")
        section["preload"] = django_json(env, "preload", "--tickets", str(preload))
        log(f"[{label}] preloaded: {section['preload']}")
    log(f"[{label}] fixtures and query census")
    fixtures = django_json(
        env, "setup", "--label", label, "--technicians", str(args.technicians), "--pool", str(args.clients * 8)
    )
    section["queries"] = fixtures["census"]["queries"]
    section["statements_with_transaction_control"] = fixtures["census"]["statements"]
    section["table_scans"] = fixtures["census"]["table_scans"]
    section["large_tables_checked"] = fixtures["census"]["large_tables_checked"]
    return section, env, fixtures


def _run(server_url: str, args, log_dir: Path) -> dict[str, dict]:
    """Both databases, each behind its own server. This shared machine speeds up and slows down
    by tens of percent over minutes, so the numbers that are compared are measured close together
    in alternating rounds and pooled: the bare view and the triage within a database, and the
    chain between the two databases (a server waiting for its turn costs nothing)."""
    sections: dict[str, dict] = {}
    workloads: dict[str, dict[str, Callable]] = {}
    with contextlib.ExitStack() as servers:
        for label, preload in (("empty", 0), ("100k", args.tickets)):
            section, env, fixtures = _database_ready(server_url, label, preload, args)
            base = servers.enter_context(
                gunicorn_server(
                    env, workers=args.workers, threads=args.threads, log_path=log_dir / f"gunicorn-{label}.log"
                )
            )
            sections[label], workloads[label] = section, _workloads(base, fixtures, args)
        rounds: dict[str, dict[str, list[PhaseResult]]] = {label: collections.defaultdict(list) for label in sections}
        for label, work in workloads.items():
            plan = [
                *[
                    phase
                    for _ in range(args.rounds)
                    for phase in (("bare", args.seconds), ("ticket.triage", args.seconds))
                ],
                ("bare_db", args.seconds / 2),
                ("ticket.get", args.seconds),
                ("dispatcher.cockpit", args.seconds / 2),
            ]
            for name, seconds in plan:
                _measure(name, work[name], seconds, args, rounds[label], label)
        for _ in range(args.rounds):
            for label, work in workloads.items():
                _measure("chain", work["chain"], args.chain_seconds / args.rounds, args, rounds[label], label)
    for label, section in sections.items():
        section["phases"] = {name: _entry(name, measured) for name, measured in rounds[label].items()}
    return sections


def command_run(args) -> dict:
    log_dir = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    started = time.monotonic()
    report: dict = {
        "config": {
            "seconds": args.seconds,
            "chain_seconds": args.chain_seconds,
            "clients": args.clients,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "gunicorn_workers": args.workers,
            "gunicorn_threads": args.threads,
            "preload_tickets": args.tickets,
            "cpus": os.cpu_count(),
            "logs": str(log_dir),
        }
    }
    with postgres_server() as server_url:
        report.update(_run(server_url, args, log_dir))
    empty, full = report["empty"]["phases"], report["100k"]["phases"]
    bare_rps = empty["bare"]["rps"]
    mutating = empty["ticket.triage"]
    chains_empty, chains_full = empty["chain"]["chains_per_s"], full["chain"]["chains_per_s"]
    mutating_queries: dict[str, int] = {}
    for section in ("empty", "100k"):
        for tool, n in report[section]["queries"].items():
            if tool in MUTATING_TOOLS:
                mutating_queries[tool] = max(n, mutating_queries.get(tool, 0))
    max_queries = max(mutating_queries.values(), default=0)
    summary = {
        "mutating_rps": mutating["rps"],
        "bare_rps": bare_rps,
        "ratio": round(mutating["rps"] / bare_rps, 3) if bare_rps else None,
        # The ratio of each round (bare, then triage, measured back to back).
        "ratio_rounds": [
            round(m / b, 3) for b, m in zip(empty["bare"].get("rps_rounds", []), mutating.get("rps_rounds", [])) if b
        ],
        "p50_ms": mutating["p50_ms"],
        "p99_ms": mutating["p99_ms"],
        "chains_per_s_empty": chains_empty,
        "chains_per_s_100k": chains_full,
        "chains_ratio_100k_over_empty": round(chains_full / chains_empty, 3) if chains_empty else None,
        # Chains/s of each round (empty, then 100k, measured back to back).
        "chains_per_s_rounds": {
            label: report[label]["phases"]["chain"].get("chains_per_s_rounds", []) for label in ("empty", "100k")
        },
        # Where the CPU of one request goes (server, database, clients), read from /proc.
        "cpu_ms_per_request_bare": empty["bare"]["cpu_ms_per_request"],
        "cpu_ms_per_request_triage": mutating["cpu_ms_per_request"],
        "mutating_rps_100k": full["ticket.triage"]["rps"],
        "bare_rps_100k": full["bare"]["rps"],
        "ticket_get_rps": empty["ticket.get"]["rps"],
        "ticket_get_rps_100k": full["ticket.get"]["rps"],
        "chain_mutating_rps_empty": empty["chain"]["mutating"]["rps"],
        "chain_mutating_rps_100k": full["chain"]["mutating"]["rps"],
        "max_queries_per_mutating_call": max_queries,
        # SQL statements per call, not counting BEGIN/SAVEPOINT/RELEASE/COMMIT (see detail for those).
        "queries_per_mutating_tool": dict(sorted(mutating_queries.items())),
        "table_scans_100k": report["100k"]["table_scans"],
        "large_tables_checked_100k": report["100k"]["large_tables_checked"],
        "targets": {
            "mutating_at_least_half_of_bare": bool(bare_rps and mutating["rps"] >= 0.5 * bare_rps),
            "queries_per_mutating_call_at_most_12": max_queries <= QUERY_BUDGET,
            "chains_100k_at_least_90pct_of_empty": bool(chains_empty and chains_full >= 0.9 * chains_empty),
            "no_large_table_scans": not report["100k"]["table_scans"],
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return {**summary, "detail": report}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    setup = sub.add_parser("setup")
    setup.add_argument("--label", required=True)
    setup.add_argument("--technicians", type=int, default=400)
    setup.add_argument("--pool", type=int, default=64)
    preload = sub.add_parser("preload")
    preload.add_argument("--tickets", type=int, default=100_000)
    preload.add_argument("--days", type=int, default=365, help="days over which the tickets were opened")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each single-tool phase")
    parser.add_argument("--chain-seconds", type=float, default=20.0, help="length of the canonical-chain phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the bare and triage phases")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each single-tool phase")
    # The production config's own defaults (config/gunicorn.conf.py): the server as deployed.
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets preloaded for the second run")
    parser.add_argument("--technicians", type=int, default=900, help="technicians available to the chain phase")
    args = parser.parse_args(argv)
    if args.command == "setup":
        print(json.dumps(command_setup(args)))
    elif args.command == "preload":
        print(json.dumps(command_preload(args)))
    else:
        print(json.dumps(command_run(args), indent=2))


if __name__ == "__main__":
    main()
