"""Benchmark of the back office at scale: the pages a dispatcher opens, measured in-process through
Django's test client on a throwaway PostgreSQL holding 100,000 tickets and a million audit events.

    .venv/bin/python bench/backoffice.py [--tickets 100000] [--events 1000000] [--runs 15] [--warmup 2] [--keep]
    .venv/bin/python bench/backoffice.py --reuse DATA_DIR [--copy NAME] [--runs 15] [--warmup 2]

The load: the toolset's preload (bench/toolset.py preload: tickets opened over the last two years
with valid audit chains, about 5.9 events a ticket), then `grow` adds audit events until the table
holds `--events`, gives the tickets summaries a dispatcher would type, and VACUUM ANALYZE.

Then, in a Django subprocess with the bench settings (production, DEBUG off), a dispatcher signed in
with a second factor (force_login and a confirmed authenticator) opens each page `--warmup` times
unmeasured and `--runs` times measured, the pages taking turns so that the machine's drift spreads
over all of them. Prints one JSON object: per page p50/p99 wall time, SQL queries
(CaptureQueriesContext), response bytes and the p50 of the time spent in SQL; the database's size;
how long the load took.

--keep leaves the PostgreSQL server running with the data and prints how to connect (psql, EXPLAIN)
and how to measure again; --reuse DIR measures against such a kept server without loading
anything (it migrates first, so a branch's new migrations apply; it starts the server again if it
was stopped). --copy NAME measures in a copy of the loaded database (made once, in seconds), so
that migrations under test leave the loaded one as it was for the next engineer. Stop a kept
server with `scripts/pg_ephemeral.sh stop DIR`. Not part of `make test`.

`grow` and `measure` are the Django halves, run in subprocesses against the database under test.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import (  # noqa: E402
    database_create,
    django_env,
    django_json,
    log,
    manage,
    percentile,
    postgres_attach,
    postgres_start,
    postgres_stop,
)

DATABASE = "backoffice"
# Kept in the server's directory: what --reuse needs to find and read the database again (the
# audit chain key is the one the preload hashed with).
STATE_FILE = "backoffice.json"


# --- Django side: a million audit events (runs in a subprocess) -----------------------------

# What a dispatcher types as a summary, per incident type: most mention a door, as they do.
SUMMARIES = {
    "DOOR_WONT_LATCH": [
        "Front door won't latch",
        "Rear exit door not latching",
        "Storefront door latch sticking",
        "Door won't stay shut after hours",
    ],
    "CLOSER_LEAKING_OR_SLAMMING": [
        "Door closer leaking oil",
        "Closer slamming the entry door",
        "Back office door slams, closer shot",
        "Hydraulic closer arm loose",
    ],
    "AUTO_OPERATOR_FAULT": [
        "Automatic operator faulted at main entrance",
        "Sliding door stuck open",
        "ADA push button not opening the door",
        "Auto door reverses before closing",
    ],
    "CANNOT_SECURE_ENTRY": [
        "Cannot lock the front entrance",
        "Break-in, entry cannot be secured",
        "Deadbolt won't throw on storefront door",
        "Mag lock lost power, entrance open",
    ],
    "HARDWARE_REPLACEMENT": [
        "Replace panic bar on exit door",
        "Replace worn hinges on stockroom door",
        "New lever set for the office",
        "Swap cylinder after key loss",
    ],
    "FRAME_OR_GLASS_DAMAGE": [
        "Cracked glass in storefront door",
        "Frame bent after vehicle impact",
        "Shattered sidelite next to entry",
        "Threshold pulled loose",
    ],
}
SENTENCES = [
    "Customer says the door has to be pushed hard before the latch catches.",
    "Store manager on site until 9 pm, use the loading dock entrance.",
    "Closer arm adjusted, sweep and latch speed set, tested twenty cycles.",
    "Replaced the strike plate and realigned the top hinge.",
    "Photo of the damaged frame attached; glass is intact.",
    "Operator controller shows fault E4, power cycled, fault cleared for now.",
    "Needs a second visit with a replacement panic device (Von Duprin 99).",
    "Tenant asked for an ETA; the technician is about forty minutes out.",
    "Access code changed last week, the new one is in the site notes.",
    "Left a voicemail with the property manager about the quote.",
    "Emergency board-up done, permanent glass ordered, lead time five days.",
    "Checked the header for water damage, none found.",
]
PARTS = [
    ("LCN-4041-AL", "LCN 4041 closer, aluminum", 28_900),
    ("VD-99EO-US26D", "Von Duprin 99EO exit device", 74_500),
    ("SCH-ND50-RHO", "Schlage ND50 lever set", 31_200),
    ("HAG-BB1279-45", 'Hager BB1279 hinge 4.5"', 4_800),
    ("STR-10-025", "Strike plate, 1-1/4 lip", 1_900),
    ("HOR-MC15-BTN", "Horton ADA push button", 9_600),
]
# Audit-only tools of the product that write about a ticket without moving it (the API
# registry's and its services' commands), the actor who writes each, its weight among the added
# events, and the final states it may follow (None: any).
GROWTH_TOOLS = [
    ("closeout.add_evidence", "technician", 30, {"CLOSED"}),
    ("closeout.add_labor", "technician", 10, {"CLOSED"}),
    ("closeout.add_part", "technician", 8, {"CLOSED"}),
    ("closeout.packet_compiled", "service", 4, {"CLOSED"}),
    ("tech.message", "technician", 10, {"CLOSED", "DISPATCHED"}),
    ("customer.remind", "system", 12, None),
    ("intake.review", "dispatcher", 6, None),
    ("ticket.update_details", "dispatcher", 6, None),
    ("dispatch.escalate", "system", 4, {"CLOSED", "CANCELLED", "DISPATCHED", "READY_TO_SCHEDULE"}),
    ("assignment.recommend", "agent", 7, {"READY_TO_SCHEDULE"}),
]
# How much history a ticket gathers, by its final state (relative: the added events are shared out
# over the tickets in these proportions).
GROWTH_BY_STATE = {"CLOSED": 1.3, "CANCELLED": 0.4}
# Added events follow a ticket's history within this many days (never past now).
GROWTH_DAYS = 30


def _django():
    import django

    django.setup()


def _text(rng: random.Random, low: int, high: int) -> str:
    """Realistic free text of about `low`..`high` characters."""
    target, parts = rng.randint(low, high), []
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(rng.choice(SENTENCES))
    return " ".join(parts)[:high]


def _payload(tool: str, rng: random.Random, ticket_id: uuid.UUID, state: str) -> dict:
    """A payload the size and shape the service writes for `tool` (ids, hashes, the request)."""
    if tool == "closeout.add_evidence":
        kind = rng.choice(["PHOTO", "PHOTO", "PHOTO", "SIGNATURE", "NOTE"])
        evidence_id = uuid.uuid4()
        return {
            "evidence_id": str(evidence_id),
            "evidence_key": f"evidence/{ticket_id}/{evidence_id}.{'png' if kind == 'SIGNATURE' else 'jpg'}",
            "kind": kind,
            "content_type": "image/png" if kind == "SIGNATURE" else "image/jpeg",
            "size_bytes": rng.randint(40_000, 4_000_000),
            "sha256": hashlib.sha256(evidence_id.bytes).hexdigest(),
            "request": {"kind": kind, "caption": _text(rng, 20, 90)},
        }
    if tool == "closeout.add_labor":
        return {
            "labor_id": str(uuid.uuid4()),
            "request": {"minutes": rng.choice([30, 45, 60, 90, 120]), "rate": "STANDARD", "note": _text(rng, 30, 140)},
        }
    if tool == "closeout.add_part":
        sku, description, cents = rng.choice(PARTS)
        return {
            "part_id": str(uuid.uuid4()),
            "request": {
                "sku": sku,
                "description": description,
                "quantity": rng.choice([1, 1, 1, 2]),
                "unit_cents": cents,
            },
        }
    if tool == "closeout.packet_compiled":
        return {
            "closeout_packet_id": str(uuid.uuid4()),
            "packet_sha256": hashlib.sha256(ticket_id.bytes).hexdigest(),
            "close_event_id": str(uuid.uuid4()),
            "version": 1,
        }
    if tool == "tech.message":
        return {"message_id": str(uuid.uuid4()), "channel": "SMS", "request": {"body": _text(rng, 40, 240)}}
    if tool == "customer.remind":
        return {
            "message_id": str(uuid.uuid4()),
            "channel": rng.choice(["SMS", "SMS", "EMAIL"]),
            "template": rng.choice(["appointment_reminder", "eta_update", "info_needed", "closeout_summary"]),
            "to": f"+1510555{rng.randint(0, 9999):04d}",
        }
    if tool == "intake.review":
        return {
            "inbound_message_id": str(uuid.uuid4()),
            "flags": sorted(rng.sample(["link", "long", "urgent_words"], 1)),
        }
    if tool == "ticket.update_details":
        return {"changed": ["description"], "request": {"description": _text(rng, 60, 280)}}
    if tool == "dispatch.escalate":
        return {
            "escalation_id": str(uuid.uuid4()),
            "kind": rng.choice(["SLA_AT_RISK", "NO_TECH_AVAILABLE", "CUSTOMER_WAITING"]),
            "reason": _text(rng, 30, 160),
        }
    if tool == "assignment.recommend":
        return {
            "request": {"limit": 3},
            "candidates": [
                {
                    "technician_id": str(uuid.uuid4()),
                    "score": round(rng.random(), 3),
                    "eta_minutes": rng.randint(15, 120),
                }
                for _ in range(3)
            ],
        }
    raise ValueError(tool)


def command_grow(args) -> dict:
    """Add audit events until the table holds `--events`, and give the tickets real summaries.

    The added events are ones the product writes without moving a ticket (evidence, labor, parts,
    messages, reminders, reviews, recommendations...), `audit_append`-style: each continues its
    ticket's hash chain after the preload's history, with the ticket's chain head and seal moved
    (so the chains still verify and later commands on these tickets append as usual). Unlike in
    the product, they all come after the ticket's last state change (within GROWTH_DAYS), before
    and after state being the ticket's final state, not interleaved with its history; the
    measured pages do not depend on that order.
    """
    _django()
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from dispatch.technicians.models import Technician
    from dispatch.tickets.audit import _event_digest, _ticket_seal
    from dispatch.tickets.models import AuditEvent, Ticket

    started = time.monotonic()
    rng = random.Random(20260214)
    now = timezone.now()
    present = AuditEvent.objects.count()
    extra = max(0, args.events - present)
    tickets = list(
        Ticket.objects.order_by("created_at").values_list(
            "id", "state", "incident_type", "audit_seq", "audit_hash", "updated_at"
        )
    )
    if not tickets:
        raise RuntimeError("no tickets to grow: run the preload first")

    # The people who write them: the preload's technicians, a few dispatchers (users of the
    # dispatcher group, as the admin's actor ids are user ids), an agent token, the system.
    tech_users = [str(u) for u in Technician.objects.values_list("user_id", flat=True)[:200]]
    user_model = get_user_model()
    group = Group.objects.get(name="dispatcher")
    dispatchers = []
    for i in range(6):
        user, _ = user_model.objects.get_or_create(
            username=f"grow-dispatcher-{i}", defaults={"is_staff": True, "password": "!", "first_name": f"Desk {i}"}
        )
        group.user_set.add(user)
        dispatchers.append(str(user.pk))
    actors = {
        "technician": lambda: ("HUMAN", rng.choice(tech_users), "technician"),
        "dispatcher": lambda: ("HUMAN", rng.choice(dispatchers), "dispatcher"),
        "agent": lambda: ("AGENT", "token:ops-agent", "agent"),
        "system": lambda: ("SYSTEM", rng.choice(["system:reminders", "system:scheduler"]), "system"),
        "service": lambda: ("SERVICE", "service:closeout-packets", "system"),
    }
    tools_for: dict[str, tuple[list, list]] = {}
    for state in {t[1] for t in tickets}:
        fitting = [
            (name, who, weight) for name, who, weight, states in GROWTH_TOOLS if states is None or state in states
        ]
        tools_for[state] = ([(name, who) for name, who, _ in fitting], [weight for *_, weight in fitting])

    # Share the added events out over the tickets (closed ones gather the most).
    weights = [GROWTH_BY_STATE.get(t[1], 0.8) for t in tickets]
    per_ticket = collections.Counter(rng.choices(range(len(tickets)), weights, k=extra))

    event_rows, ticket_rows = [], []
    for index, (ticket_id, state, incident_type, audit_seq, audit_hash, last_at) in enumerate(tickets):
        summary = rng.choice(SUMMARIES.get(incident_type) or SUMMARIES["DOOR_WONT_LATCH"])
        description = _text(rng, 40, 240)
        count = per_ticket.get(index, 0)
        window = min(GROWTH_DAYS * 86400.0, (now - last_at).total_seconds() - 60)
        moments = sorted(last_at + timedelta(seconds=rng.uniform(60, max(window, 120))) for _ in range(count))
        tools, tool_weights = tools_for[state]
        for moment in moments:
            tool, who = rng.choices(tools, tool_weights)[0]
            actor_type, actor_id, actor_role = actors[who]()
            audit_seq += 1
            event = SimpleNamespace(
                id=uuid.uuid4(),
                ticket_id=ticket_id,
                seq=audit_seq,
                lane=None,
                lane_seq=None,
                actor_type=actor_type,
                actor_id=actor_id,
                actor_role=actor_role,
                tool_name=tool,
                request_id=str(uuid.uuid4()),
                correlation_id=f"corr-{uuid.uuid4().hex[:16]}" if actor_type == "AGENT" else "",
                trace_id=uuid.uuid4().hex if actor_type == "AGENT" else "",
                before_state=state,
                after_state=state,
                payload=_payload(tool, rng, ticket_id, state),
                created_at=moment,
                prev_hash=audit_hash,
            )
            event.hash = audit_hash = _event_digest(event)
            event_rows.append(
                (
                    event.id,
                    event.seq,
                    None,
                    None,
                    ticket_id,
                    actor_type,
                    actor_id,
                    actor_role,
                    tool,
                    event.request_id,
                    event.correlation_id,
                    event.trace_id,
                    state,
                    state,
                    json.dumps(event.payload),
                    moment,
                    event.prev_hash,
                    event.hash,
                )
            )
        ticket_rows.append(
            (ticket_id, summary, description, audit_seq, audit_hash, _ticket_seal(ticket_id, audit_seq, audit_hash))
        )
    built = time.monotonic() - started

    with transaction.atomic():
        raw = connection.cursor().cursor
        with raw.copy(
            "COPY tickets_auditevent (id, seq, lane, lane_seq, ticket_id, actor_type, actor_id, actor_role, tool_name, "
            "request_id, correlation_id, trace_id, before_state, after_state, payload, created_at, prev_hash, hash) "
            "FROM STDIN"
        ) as copy:
            for row in event_rows:
                copy.write_row(row)
        raw.execute(
            "CREATE TEMP TABLE grow_ticket (id uuid PRIMARY KEY, summary text, description text, audit_seq integer, "
            "audit_hash text, audit_seal text) ON COMMIT DROP"
        )
        with raw.copy("COPY grow_ticket FROM STDIN") as copy:
            for row in ticket_rows:
                copy.write_row(row)
        raw.execute(
            "UPDATE tickets_ticket AS t SET summary = g.summary, description = g.description, "
            "audit_seq = g.audit_seq, audit_hash = g.audit_hash, audit_seal = g.audit_seal "
            "FROM grow_ticket AS g WHERE t.id = g.id"
        )
    return {
        "audit_events_before": present,
        "audit_events_added": len(event_rows),
        "tickets_updated": len(ticket_rows),
        "build_seconds": round(built, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


# --- Django side: the pages, measured (runs in a subprocess) --------------------------------


class _SqlTimer:
    """Wall time spent executing SQL (Django's execute_wrapper: psycopg's client-side cursors fetch
    the rows within execute). CaptureQueriesContext rounds each query's time to the millisecond."""

    def __init__(self):
        self.seconds = 0.0
        self.by_sql: dict[str, float] = collections.defaultdict(float)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            self.by_sql[sql] += elapsed


def _sql_gist(sql: str, limit: int = 1200) -> str:
    """A statement short enough to read: a long column list folded to "…", the rest (FROM, joins,
    WHERE, ORDER BY, LIMIT) kept as far as `limit` characters."""
    head, sep, rest = sql.partition(" FROM ")
    if sep and len(head) > 120:
        sql = f"{head[:40]} … FROM {rest}"
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


def _pages(ref: str, token: str, board_version: str) -> list[tuple[str, str, dict, str]]:
    """(name, path, headers, client) of each measured page; client is "office" (the signed-in
    dispatcher's session) or "api" (a dispatcher API token, no session). The board's refresh is
    measured twice: as a poll after a change (no version: the whole day) and as the usual poll
    of a board where nothing changed (the version the page holds: 204, nothing rendered)."""
    live = {"HTTP_HX_REQUEST": "true", "HTTP_X_DISPATCH_POLL": "1", "HTTP_HX_CURRENT_URL": "http://testserver/board/"}
    quiet = {**live, "HTTP_X_BOARD_VERSION": board_version}
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    return [
        ("tickets", "/admin/tickets/ticket/", {}, "office"),
        ("tickets_search_door", "/admin/tickets/ticket/?q=door", {}, "office"),
        ("tickets_search_ref", f"/admin/tickets/ticket/?q={ref}", {}, "office"),
        ("tickets_state_closed", "/admin/tickets/ticket/?state__exact=CLOSED", {}, "office"),
        ("tickets_state_ready", "/admin/tickets/ticket/?state__exact=READY_TO_SCHEDULE", {}, "office"),
        ("tickets_incident_type", "/admin/tickets/ticket/?incident_type=DOOR_WONT_LATCH", {}, "office"),
        ("dashboard", "/admin/", {}, "office"),
        ("audit_events", "/admin/tickets/auditevent/", {}, "office"),
        ("audit_events_tool", "/admin/tickets/auditevent/?tool_name=ticket.triage", {}, "office"),
        ("board", "/board/", {}, "office"),
        ("board_live", "/board/live/", live, "office"),
        ("board_live_unchanged", "/board/live/", quiet, "office"),
        # The toolset command dispatcher.cockpit: GET /api/v1/ux/dispatcher/cockpit per the contract.
        ("cockpit", "/api/v1/ux/dispatcher/cockpit", bearer, "api"),
    ]


def command_measure(args) -> dict:
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from dispatch.api.services import api_token_create
    from dispatch.tickets.models import Ticket

    # A dispatcher as production has one: staff, in the dispatcher group, past the second factor.
    user, _ = get_user_model().objects.get_or_create(
        username="bench-backoffice-dispatcher",
        defaults={"is_staff": True, "is_active": True, "password": "!", "first_name": "Bench", "last_name": "Desk"},
    )
    user.groups.add(Group.objects.get(name="dispatcher"))
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=True
    )
    office = Client()
    office.force_login(user)
    session = office.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    api = Client()
    _, token = api_token_create(name=f"bench-backoffice-{uuid.uuid4().hex[:8]}", role="dispatcher")

    # A real ticket's reference, as a dispatcher would paste it: the one in the middle of the history.
    middle = Ticket.objects.count() // 2
    ticket = Ticket.objects.order_by("created_at").only("id")[middle]
    # The version a board page holds, as its first render gave it.
    first = office.get("/board/live/", HTTP_HX_REQUEST="true").content.decode()
    board_version = first.split('data-version="', 1)[1].split('"', 1)[0]
    pages = _pages(ticket.short_ref, token, board_version)
    clients = {"office": office, "api": api}

    def once(path, headers, client) -> dict:
        timer = _SqlTimer()
        with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(timer):
            started = time.perf_counter()
            response = clients[client].get(path, **headers)
            content = response.content
            elapsed = time.perf_counter() - started
        if response.status_code not in (200, 204):
            raise RuntimeError(
                f"GET {path}: HTTP {response.status_code} {response.get('Location', '')} {content[:300]!r}"
            )
        return {
            "ms": elapsed * 1000,
            "sql_ms": timer.seconds * 1000,
            "queries": len(queries),
            "bytes": len(content),
            "by_sql": timer.by_sql,
        }

    for _ in range(args.warmup):
        for _, path, headers, client in pages:
            once(path, headers, client)
    samples: dict[str, list[dict]] = collections.defaultdict(list)
    for _ in range(args.runs):
        # The pages take turns, so that the shared machine's drift spreads over all of them.
        for name, path, headers, client in pages:
            samples[name].append(once(path, headers, client))
    report = {}
    for name, path, _, _ in pages:
        runs = samples[name]
        ms, sql = [r["ms"] for r in runs], [r["sql_ms"] for r in runs]
        queries, sizes = [r["queries"] for r in runs], [r["bytes"] for r in runs]
        entry = {
            "path": path,
            "p50_ms": round(percentile(ms, 0.50), 1),
            "p99_ms": round(percentile(ms, 0.99), 1),
            "queries": max(queries),
            "bytes": max(sizes),
            "sql_ms_p50": round(percentile(sql, 0.50), 1),
            "sql_share_p50": round(percentile(sql, 0.50) / percentile(ms, 0.50), 2) if percentile(ms, 0.50) else None,
        }
        # The statement that took longest in most runs (its text as Django sends it, placeholders
        # for parameters), for EXPLAIN.
        slowest = collections.Counter(max(r["by_sql"], key=r["by_sql"].get) for r in runs if r["by_sql"])
        if slowest:
            sql = slowest.most_common(1)[0][0]
            entry["slowest_query"] = {
                "ms_p50": round(percentile([r["by_sql"].get(sql, 0.0) * 1000 for r in runs], 0.50), 1),
                "sql": _sql_gist(sql),
            }
        if min(queries) != max(queries):
            entry["queries_min"] = min(queries)
        if min(sizes) != max(sizes):
            entry["bytes_min"] = min(sizes)
        report[name] = entry
    return {"pages": report, "ticket_ref": ticket.short_ref}


# --- the driver --------------------------------------------------------------------------


def _database_url(server_url: str, name: str) -> str:
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


def _sql(url: str, statement: str, *, fetch: bool = False):
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if fetch else None


def _database_size(url: str) -> dict:
    (tickets, events, ticket_bytes, event_bytes, total), *_ = _sql(
        url,
        "SELECT (SELECT count(*) FROM tickets_ticket), (SELECT count(*) FROM tickets_auditevent), "
        "pg_total_relation_size('tickets_ticket'), pg_total_relation_size('tickets_auditevent'), "
        "pg_database_size(current_database())",
        fetch=True,
    )
    mb = 1024 * 1024
    return {
        "tickets": tickets,
        "audit_events": events,
        "tickets_mb": round(ticket_bytes / mb, 1),
        "audit_events_mb": round(event_bytes / mb, 1),
        "database_mb": round(total / mb, 1),
    }


def _load(server_url: str, data_dir: str, args) -> tuple[str, dict, dict]:
    """The database, migrated and loaded: (url, Django env, what the load took)."""
    started = time.monotonic()
    url = database_create(server_url, DATABASE)
    secret = "bench-" + uuid.uuid4().hex * 2
    env = django_env(url, SECRET_KEY=secret, DISPATCH_AUDIT_CHAIN_KEY=secret)
    log("migrate")
    manage(env, "migrate", "-v0")
    migrated = time.monotonic()
    log(f"preload {args.tickets} tickets opened over {args.days} days (bench/toolset.py preload)")
    preload = django_json(env, "preload", "--tickets", str(args.tickets), "--days", str(args.days))
    log(f"preloaded: {preload}")
    log(f"grow the audit events to {args.events}")
    grow = django_json(env, "grow", "--events", str(args.events), script="backoffice.py")
    log(f"grown: {grow}")
    vacuum_started = time.monotonic()
    log("VACUUM ANALYZE")
    # VACUUM as well: the grow step rewrote every ticket row, and a production table has been
    # vacuumed (visibility map set, dead rows gone) long before anyone looks at it.
    _sql(url, "VACUUM ANALYZE")
    load = {
        "seconds": round(time.monotonic() - started, 1),
        "migrate_seconds": round(migrated - started, 1),
        "preload": preload,
        "grow": grow,
        "vacuum_analyze_seconds": round(time.monotonic() - vacuum_started, 1),
    }
    state = {"database": DATABASE, "secret_key": secret, "audit_chain_key": secret, "load": load}
    (Path(data_dir) / STATE_FILE).write_text(json.dumps(state, indent=2))
    return url, env, load


def _migrate_reused(url: str, env: dict) -> int:
    """Apply the branch's new migrations to a reused database (ANALYZE after any); returns how many."""
    count = "SELECT count(*) FROM django_migrations"
    before = _sql(url, count, fetch=True)[0][0]
    manage(env, "migrate", "-v0")
    applied = _sql(url, count, fetch=True)[0][0] - before
    if applied:
        # A migration may rewrite every row (a backfill); autovacuum would clean up after it in time.
        log(f"{applied} new migration(s) applied; VACUUM ANALYZE")
        _sql(url, "VACUUM ANALYZE")
    return applied


def _database_copy(server_url: str, loaded: str, name: str) -> str:
    """The URL of database `name` on the kept server, made first as a copy of the loaded one if it
    does not exist: a branch's migrations then change the copy, never the loaded database."""
    exists = _sql(server_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'", fetch=True)
    if not exists:
        log(f"copy database {loaded} to {name}")
        _sql(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{loaded}"')
        _sql(_database_url(server_url, name), "ANALYZE")
    return _database_url(server_url, name)


def _connection_help(url: str, data_dir: str) -> dict:
    return {
        "data_dir": data_dir,
        "database_url": url,
        "psql": f"psql {url}",
        # From the repository's root, with the branch's code to measure.
        "reuse": f".venv/bin/python bench/backoffice.py --reuse {data_dir}",
        "stop": f"scripts/pg_ephemeral.sh stop {data_dir}",
    }


def command_run(args) -> dict:
    started = time.monotonic()
    report: dict = {
        "config": {
            "runs": args.runs,
            "warmup": args.warmup,
            "tickets": args.tickets,
            "events": args.events,
            "days": args.days,
            "cpus": os.cpu_count(),
            "settings": "bench.settings (production, DEBUG off)",
        }
    }
    keep = args.keep or bool(args.reuse)
    if args.copy and not args.reuse:
        raise SystemExit("--copy goes with --reuse")
    if args.copy and not args.copy.replace("_", "").isalnum():
        raise SystemExit("--copy takes a plain database name (letters, digits, _)")
    if args.reuse:
        data_dir = args.reuse.rstrip("/")
        state = json.loads((Path(data_dir) / STATE_FILE).read_text())
        server_url = postgres_attach(data_dir)
        url = _database_url(server_url, state["database"])
        if args.copy:
            url = _database_copy(server_url, state["database"], args.copy)
        env = django_env(url, SECRET_KEY=state["secret_key"], DISPATCH_AUDIT_CHAIN_KEY=state["audit_chain_key"])
        log(f"reusing {url} (data in {data_dir})")
        report["reused"] = {
            "data_dir": data_dir,
            "database": url.rsplit("/", 1)[1],
            "migrations_applied": _migrate_reused(url, env),
        }
        report["load"] = state["load"]
    else:
        server_url, data_dir = postgres_start()
        log(f"PostgreSQL {server_url} (data in {data_dir})")
    try:
        if not args.reuse:
            url, env, report["load"] = _load(server_url, data_dir, args)
        report["database"] = _database_size(url)
        log(f"database: {report['database']}")
        log(f"measure: {args.warmup} warm-up and {args.runs} measured runs of each page")
        measured = django_json(
            env, "measure", "--runs", str(args.runs), "--warmup", str(args.warmup), script="backoffice.py"
        )
        report["pages"] = measured["pages"]
        report["ticket_ref"] = measured["ticket_ref"]
    finally:
        if not keep:
            postgres_stop(data_dir)
    if keep:
        report["server"] = _connection_help(url, data_dir)
        log(f"kept: {report['server']['psql']}")
        log(f"measure again: {report['server']['reuse']}")
        log(f"stop: {report['server']['stop']}")
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    grow = sub.add_parser("grow")
    grow.add_argument("--events", type=int, default=1_000_000)
    measure = sub.add_parser("measure")
    measure.add_argument("--runs", type=int, default=15)
    measure.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets preloaded")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events in all, after growing")
    parser.add_argument("--days", type=int, default=730, help="days over which the tickets were opened")
    parser.add_argument("--runs", type=int, default=15, help="measured runs of each page")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs of each page first")
    parser.add_argument("--keep", action="store_true", help="leave the PostgreSQL server running with the data")
    parser.add_argument("--reuse", metavar="DIR", help="measure against the server kept in DIR (no load)")
    parser.add_argument(
        "--copy",
        metavar="NAME",
        help="with --reuse: measure in database NAME, first made as a copy of the loaded one if absent "
        "(so that a branch's migrations leave the loaded database as it was)",
    )
    args = parser.parse_args(argv)
    if args.command == "grow":
        print(json.dumps(command_grow(args)))
    elif args.command == "measure":
        print(json.dumps(command_measure(args)))
    else:
        print(json.dumps(command_run(args), indent=2))


if __name__ == "__main__":
    main()
