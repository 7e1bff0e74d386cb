"""Benchmark of inbound SMS: signed Twilio webhooks from concurrent clients against gunicorn on a
throwaway PostgreSQL, for a fixed time, with a share of duplicate deliveries (a MessageSid sent
again — some while the first delivery is still in flight).

    .venv/bin/python bench/intake.py [--seconds 20] [--clients 8] [--workers 3] [--threads 2]
                                     [--duplicates 0.1] [--profile 300]

Every new message comes from a new customer, so each one runs the whole intake: dedupe,
sanitize, extraction, a provisional account and site, a ticket through the executor with its
audit event, the confirmation in the outbox. Prints messages/s, p50/p99 and the share of
duplicate deliveries that were collapsed (no second message, no second ticket), and ends with
one JSON object. `--profile N` also runs N messages in one process under cProfile and prints
where the time goes, and the statements and milliseconds per message of a new message, the reply
that completes its ticket and a retried delivery (`intake.py scenarios` alone). Not part of
`make test`.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PYTHON,
    database_create,
    django_env,
    gunicorn_server,
    log,
    manage,
    percentile,
    postgres_server,
    run_phase,
)

PUBLIC_URL = "https://dispatch.bench.example"
AUTH_TOKEN = "bench-twilio-auth-token-" + "0" * 16
SMS_PATH = "/hooks/twilio/sms"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TARGET_MESSAGES_PER_S = 200

# What customers text a door company, with and without the details intake needs.
BODIES = (
    "Hi, our front door won't latch. 1420 Harbor Way, Oakland CA 94607",
    "The automatic sliding door at the store entrance is stuck open, can someone come today?",
    "URGENT can't lock the back door of the restaurant, 55 Broadway Oakland",
    "garage door makes a grinding noise and stops halfway. tomorrow morning works",
    "Glass panel on the storefront door is cracked, 901 Shattuck Ave Berkeley CA 94707",
    "Door closer leaking oil and the door slams. Weekdays after 3pm please",
    "hello, door wont close all the way",
    "Emergency: someone broke the lock on our office door, 12 Pine St, San Francisco CA 94111",
)


def _signature(url: str, params: dict) -> str:
    # Twilio's own implementation, so the bench signs exactly as Twilio does.
    from twilio.request_validator import RequestValidator

    return RequestValidator(AUTH_TOKEN).compute_signature(url, params)


class Traffic:
    """Shared by the client threads: message ids handed out, and the ones a duplicate may repeat."""

    def __init__(self, duplicate_share: float, *, first_number: int = 2_000_000) -> None:
        self.duplicate_share = duplicate_share
        self.lock = threading.Lock()
        self.recent: collections.deque[dict] = collections.deque(maxlen=64)
        # Each new message comes from its own number; phases use disjoint ranges so that no
        # message threads onto a ticket an earlier phase opened.
        self.numbers = itertools.count(first_number)
        self.sent = collections.Counter()  # MessageSid -> deliveries
        self.duplicates = 0
        self.failures = 0

    def next_form(self, rng: random.Random) -> tuple[dict, bool]:
        with self.lock:
            if self.recent and rng.random() < self.duplicate_share:
                form = rng.choice(self.recent)
                self.duplicates += 1
                self.sent[form["MessageSid"]] += 1
                return form, True
            n = next(self.numbers)
            form = {
                "MessageSid": "SM" + uuid.uuid4().hex,
                "AccountSid": "AC" + "0" * 32,
                "From": f"+1510{n:07d}",
                "To": "+15105550100",
                "Body": BODIES[n % len(BODIES)],
                "NumMedia": "0",
                "NumSegments": "1",
                "ApiVersion": "2010-04-01",
            }
            form["SmsMessageSid"] = form["MessageSid"]
            # Listed before it is sent: another client may resend it while it is still in flight.
            self.recent.append(form)
            self.sent[form["MessageSid"]] += 1
            return form, False


def _client_work(base_url: str, traffic: Traffic):
    parts = urlsplit(base_url)
    local = threading.local()

    def connection() -> http.client.HTTPConnection:
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            local.rng = random.Random()
        return local.conn

    def work(index, recorder):
        conn = connection()
        form, _duplicate = traffic.next_form(local.rng)
        body = urlencode(form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": _signature(PUBLIC_URL + SMS_PATH, form),
        }

        class Answer:
            status_code: int
            text: str

        def send():
            try:
                conn.request("POST", SMS_PATH, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                local.conn = None
                raise
            answer = Answer()
            answer.status_code = response.status
            answer.text = payload.decode(errors="replace")
            if response.status == 200 and payload != TWIML:
                answer.status_code = 599  # a 200 without valid TwiML counts as a failure
            return answer

        recorder.call("sms", send, expect=200)

    return work


def _database_counts(database_url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*), count(DISTINCT provider_message_id), count(ticket_id) "
            "FROM intake_inboundmessage WHERE channel = 'SMS'"
        ).fetchone()
        tickets = connection.execute("SELECT count(*) FROM tickets_ticket").fetchone()[0]
        # A ticket that two deliveries of one message both opened would show as two tickets
        # referenced by messages of one MessageSid; the unique constraint makes that impossible,
        # and this checks it: tickets opened per message id.
        doubled = connection.execute(
            "SELECT count(*) FROM (SELECT provider_message_id FROM intake_inboundmessage "
            "WHERE channel = 'SMS' GROUP BY provider_message_id HAVING count(*) > 1) AS d"
        ).fetchone()[0]
        outbox = connection.execute("SELECT count(*) FROM messaging_outboundmessage").fetchone()[0]
    return {
        "messages": row[0],
        "distinct_message_ids": row[1],
        "messages_with_ticket": row[2],
        "tickets": tickets,
        "message_ids_stored_twice": doubled,
        "outbox_rows": outbox,
    }


class WaitSampler:
    """Samples what the database's backends are doing (pg_stat_activity) every 50 ms while the
    phase runs: "Lock:transactionid" piling up means requests queue behind one row lock."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.counts: collections.Counter = collections.Counter()
        self.tables: collections.Counter = collections.Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            name = connection.info.dbname
            while not self.stop.wait(0.05):
                rows = connection.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), state, count(*) "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' GROUP BY 1, 2",
                    [name],
                ).fetchall()
                # Which table's rows they queue for: a waiter on a row holds a tuple lock on it.
                for table, count in connection.execute(
                    "SELECT relation::regclass::text, count(*) FROM pg_locks "
                    "WHERE locktype = 'tuple' AND database = (SELECT oid FROM pg_database WHERE datname = %s) GROUP BY 1",
                    [name],
                ).fetchall():
                    self.tables[table] += count
                self.samples += 1
                for event, state, count in rows:
                    if state == "idle":
                        continue  # a pooled connection between requests
                    self.counts[event if state == "active" else f"{state} ({event})"] += count

    def __enter__(self) -> WaitSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def average(self) -> dict:
        """Backends per state, averaged over the samples (e.g. 3.1 waiting on a row lock)."""
        if not self.samples:
            return {}
        return {event: round(n / self.samples, 2) for event, n in self.counts.most_common(8)}

    def row_lock_tables(self) -> dict:
        if not self.samples:
            return {}
        return {table: round(n / self.samples, 2) for table, n in self.tables.most_common(5)}


def _route_check(base_url: str) -> None:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", SMS_PATH)
    status = conn.getresponse().status
    conn.close()
    if status != 405:
        raise RuntimeError(
            f"GET {SMS_PATH} answered {status}, not 405: is dispatch.intake.urls included in config/urls.py?"
        )


def command_profile(args) -> dict:
    """N signed SMS through Django's test client in this one process, under cProfile."""
    import cProfile
    import io
    import pstats

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    traffic = Traffic(0.0, first_number=8_000_000)
    rng = random.Random(7)

    def one() -> None:
        form, _ = traffic.next_form(rng)
        response = client.post(
            SMS_PATH,
            urlencode(form),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=_signature(PUBLIC_URL + SMS_PATH, form),
        )
        assert response.status_code == 200, response.status_code

    for _ in range(20):  # warm-up: imports, caches, first-query costs
        one()
    # An execute wrapper, not CaptureQueriesContext: the request_started signal empties
    # connection.queries in the middle of the capture.
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        one()

    # How long a message that opens a ticket holds its audit lane's head: from the statement
    # that locks it to the commit at the end of the request. Only openings lock a lane (one of
    # AUDIT_LANES, chosen by ticket id), so two messages wait here only when they land in the
    # same lane at the same moment.
    held: list[float] = []
    locked_at: list[float] = []

    def chain_lock_clock(execute, sql, params, many, context):
        if not locked_at and "tickets_auditchainhead" in sql:
            locked_at.append(time.perf_counter())
        return execute(sql, params, many, context)

    plain_started = time.perf_counter()
    with connection.execute_wrapper(chain_lock_clock):
        for _ in range(args.count):
            locked_at.clear()
            one()
            if locked_at:
                held.append((time.perf_counter() - locked_at[0]) * 1000)
    plain_ms = (time.perf_counter() - plain_started) * 1000 / args.count
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(args.count):
        one()
    profiler.disable()
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(45)
    tottime = io.StringIO()
    pstats.Stats(profiler, stream=tottime).sort_stats("tottime").print_stats(25)
    return {
        "messages": args.count,
        "ms_per_message_in_process": round(plain_ms, 2),
        "ms_per_message_under_cprofile": round(elapsed * 1000 / args.count, 2),
        "queries_per_message": len(statements),
        "audit_lane_lock_held_ms_p50": round(percentile(held, 0.5), 2),
        "queries": [s[:160] for s in statements],
        "cumulative": out.getvalue(),
        "tottime": tottime.getvalue(),
    }


# The three kinds of delivery measured one by one: a new customer whose message lacks the
# address (NEEDS_INFO and one question), their reply with the address (the ticket moves on),
# and a retried delivery of the first message (collapsed on MessageSid).
SCENARIO_FIRST = "hello, door wont close all the way"
SCENARIO_REPLY = "1420 Harbor Way, Oakland CA 94607"


def command_scenarios(args) -> dict:
    """Per scenario: SQL statements and in-process milliseconds per message (Django's test client)."""
    import statistics

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from dispatch.intake.models import InboundMessage

    client = Client(HTTP_HOST="127.0.0.1")
    numbers = itertools.count(args.first_number)

    def signed(number: int, body: str) -> tuple[str, str, str]:
        form = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32,
            "From": f"+1510{number:07d}",
            "To": "+15105550100",
            "Body": body,
            "NumMedia": "0",
        }
        return urlencode(form), _signature(PUBLIC_URL + SMS_PATH, form), form["MessageSid"]

    def post(prepared: tuple[str, str, str]) -> tuple[float, float, int]:
        statements = [0]

        def count(execute, sql, params, many, context):
            statements[0] += 1
            return execute(sql, params, many, context)

        body, signature, _sid = prepared
        with connection.execute_wrapper(count):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.post(
                SMS_PATH, body, content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
            )
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.process_time() - cpu_started) * 1000
        assert response.status_code == 200, response.status_code
        return elapsed, cpu, statements[0]

    # Wall time includes the database's work and any wait for a shared CPU; the process's own
    # CPU time is this Python's cost alone, the steadier number on a busy machine.
    timings: dict[str, list[float]] = collections.defaultdict(list)
    cpu_timings: dict[str, list[float]] = collections.defaultdict(list)
    queries: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    states: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for index in range(args.warmup + args.count):
        number = next(numbers)
        first = signed(number, SCENARIO_FIRST)
        reply = signed(number, SCENARIO_REPLY)
        results = {"new_needs_info": post(first), "reply_completes": post(reply), "duplicate": post(first)}
        if index < args.warmup:
            continue
        for name, (ms, cpu_ms, count) in results.items():
            timings[name].append(ms)
            cpu_timings[name].append(cpu_ms)
            queries[name][count] += 1
        message = InboundMessage.objects.select_related("ticket").get(channel="SMS", provider_message_id=first[2])
        states["ticket_after_reply"][message.ticket.state] += 1
    return {
        "messages_per_scenario": args.count,
        "scenarios": {
            name: {
                "ms_median": round(statistics.median(values), 2),
                "ms_mean": round(statistics.fmean(values), 2),
                "cpu_ms_median": round(statistics.median(cpu_timings[name]), 2),
                "queries": dict(queries[name]),
            }
            for name, values in timings.items()
        },
        "ticket_after_reply": dict(states["ticket_after_reply"]),
    }


def command_run(args) -> dict:
    log_dir = Path(tempfile.mkdtemp(prefix="dispatch-bench-intake-"))
    started = time.monotonic()
    with postgres_server() as server_url:
        database_url = database_create(server_url, "bench_intake")
        env = django_env(database_url, TWILIO_AUTH_TOKEN=AUTH_TOKEN, DISPATCH_PUBLIC_URL=PUBLIC_URL)
        log("migrate")
        manage(env, "migrate", "-v0")
        profile = None
        if args.profile:
            log(f"profile: {args.profile} messages in one process")
            done = __import__("subprocess").run(
                [PYTHON, str(ROOT / "bench" / "intake.py"), "profile", "--count", str(args.profile)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise RuntimeError("profile run failed")
            profile = json.loads(done.stdout)
            done = __import__("subprocess").run(
                [PYTHON, str(ROOT / "bench" / "intake.py"), "scenarios", "--count", str(min(args.profile, 200))],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise RuntimeError("scenario run failed")
            profile["scenarios"] = json.loads(done.stdout)["scenarios"]
        traffic = Traffic(args.duplicates)
        with gunicorn_server(
            env, workers=args.workers, threads=args.threads, log_path=log_dir / "gunicorn.log"
        ) as base:
            _route_check(base)
            log(f"warm-up {args.warmup:.0f} s")
            run_phase(
                "warm-up",
                seconds=args.warmup,
                clients=args.clients,
                work=_client_work(base, Traffic(0.0, first_number=6_000_000)),
            )
            before = _database_counts(database_url)
            log(f"sms: {args.clients} clients for {args.seconds:.0f} s, {args.duplicates:.0%} duplicates")
            with WaitSampler(database_url) as waits:
                result = run_phase("sms", seconds=args.seconds, clients=args.clients, work=_client_work(base, traffic))
        after = _database_counts(database_url)

    latencies = [s.seconds * 1000 for s in result.samples]
    ok = [s for s in result.samples if s.status == 200]
    deliveries = len(result.samples)
    unique_sent = sum(1 for n in traffic.sent.values() if n)
    duplicate_deliveries = deliveries - unique_sent if deliveries >= unique_sent else 0
    new_messages = after["messages"] - before["messages"]
    extra_rows = max(0, new_messages - unique_sent)
    collapsed = round(1 - extra_rows / duplicate_deliveries, 4) if duplicate_deliveries else None
    messages_per_s = round(len(ok) / result.duration, 1) if result.duration else 0.0
    summary = {
        "messages_per_s": messages_per_s,
        "new_messages_per_s": round(new_messages / result.duration, 1) if result.duration else 0.0,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "duplicates_collapsed": collapsed,
        "cpu_ms_per_message": result.cpu_ms_per_request,
        "deliveries": deliveries,
        "deliveries_ok": len(ok),
        "failed_deliveries": deliveries - len(ok),
        "duplicate_deliveries": duplicate_deliveries,
        "unique_message_ids": unique_sent,
        "stored_messages": new_messages,
        "new_tickets": after["tickets"] - before["tickets"],
        "message_ids_stored_twice": after["message_ids_stored_twice"],
        "outbox_rows_new": after["outbox_rows"] - before["outbox_rows"],
        # Average number of database backends in each state during the phase.
        "db_backends_by_wait": waits.average(),
        "db_row_lock_queue_by_table": waits.row_lock_tables(),
        "target_messages_per_s": TARGET_MESSAGES_PER_S,
        "meets_target": messages_per_s >= TARGET_MESSAGES_PER_S,
        "config": {
            "seconds": args.seconds,
            "clients": args.clients,
            "gunicorn_workers": args.workers,
            "gunicorn_threads": args.threads,
            "duplicate_share": args.duplicates,
            "cpus": os.cpu_count(),
            "logs": str(log_dir),
        },
        "client_errors": result.failures[:5],
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    if profile is not None:
        summary["profile"] = {
            k: profile[k]
            for k in (
                "messages",
                "ms_per_message_in_process",
                "ms_per_message_under_cprofile",
                "queries_per_message",
                "audit_lane_lock_held_ms_p50",
                "scenarios",
            )
        }
        print(profile["cumulative"], file=sys.stderr)
        print(profile["tottime"], file=sys.stderr)
        print("\n".join(profile["queries"]), file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    profile = sub.add_parser("profile")
    profile.add_argument("--count", type=int, default=300)
    scenarios = sub.add_parser("scenarios", help="queries and ms per message for each kind of delivery")
    scenarios.add_argument("--count", type=int, default=200)
    scenarios.add_argument("--warmup", type=int, default=10)
    scenarios.add_argument("--first-number", type=int, default=7_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up before it")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    # The production config's own defaults (config/gunicorn.conf.py): the server as deployed.
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of deliveries that resend a MessageSid")
    parser.add_argument("--profile", type=int, default=0, help="also profile this many messages in one process")
    args = parser.parse_args(argv)
    if args.command == "profile":
        print(json.dumps(command_profile(args)))
        return
    if args.command == "scenarios":
        print(json.dumps(command_scenarios(args), indent=2))
        return
    summary = command_run(args)
    print(
        f"messages/s {summary['messages_per_s']}  p50 {summary['p50_ms']} ms  p99 {summary['p99_ms']} ms  "
        f"duplicates collapsed {summary['duplicates_collapsed']}  "
        f"({summary['duplicate_deliveries']} duplicate deliveries, {summary['message_ids_stored_twice']} stored twice)",
        file=sys.stderr,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
