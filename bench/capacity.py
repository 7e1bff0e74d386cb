"""Capacity of one machine: the busiest hour of a 500-technician company, played against the
scale-out deployment (scaleout/deployment.py: PostgreSQL, Redis, S3, two gunicorn web processes
and two django-q2 worker clusters with production settings).

The load is open-loop, at the company's rates whatever the answers' speed (see LOAD): agents'
toolset calls (reads, triage of new requests, whole emergency chains), customers' texts
through Twilio's signed webhook, dispatchers' boards polling every 10 seconds, and the workers
delivering every reply to a local Twilio. CPU is read from /proc for each side's process tree
(web, worker, database) over the load and until the outbox has drained, and scaled to one hour.

Prints one JSON object: CPU-seconds per hour of this load for web, worker and database, the
same for an idle hour, p50/p99 per operation, and how many such companies one 2-core machine
could carry at the given headroom.

    .venv/bin/python bench/capacity.py [--seconds 60] [--history 20000] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import canonical_chain, cpu_snapshot, log, percentile, tree_cpu_seconds  # noqa: E402
from scaleout.clients import Browser, api, twilio_post, twilio_text  # noqa: E402
from scaleout.deployment import deployment_running, wait_until  # noqa: E402

TECHNICIANS = 500
DISPATCHERS = 10
BOARD_POLL_SECONDS = 10  # templates/scheduling/_live.html: hx-trigger="every 10s"
# Per second, in the busiest hour. 500 technicians each finishing about one job in that hour is
# 0.14 emergency chains/s (13 toolset calls each); agents reading tickets, timelines and the
# cockpit and triaging new requests bring the toolset to about 20 calls/s; about 0.3 texts/s
# come in (new requests and replies), each answered by at least one text the workers deliver.
LOAD = {
    "chain": 0.14,
    "ticket.get": 12.0,
    "ticket.timeline": 3.0,
    "dispatcher.cockpit": 1.5,
    "ticket.triage": 0.3,
    "sms.inbound": 0.3,
    "board.live": DISPATCHERS / BOARD_POLL_SECONDS,
}
CHAIN_CALLS = 13
DISPATCHER_PASSWORD = "capacity dispatcher passphrase 7"


def _fixtures(technicians: int) -> dict:
    """A company in the deployment's database: site, tokens, technicians, dispatchers, open tickets."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from bench.toolset import bench_actor, storefront_create, technicians_create
    from dispatch.api.services import api_token_create
    from dispatch.tickets.services import ticket_create

    account, site = storefront_create("Capacity Properties")
    tokens = {
        role: api_token_create(name=f"capacity-{role}", role=role)[1]
        for role in ("dispatcher", "agent", "qa", "finance")
    }
    group = Group.objects.get_or_create(name="dispatcher")[0]
    dispatchers = []
    for index in range(DISPATCHERS):
        user = get_user_model().objects.create_user(
            username=f"capacity-dispatcher-{index}", password=DISPATCHER_PASSWORD, is_staff=True
        )
        group.user_set.add(user)
        dispatchers.append(user.username)
    actor = bench_actor("dispatcher")
    open_tickets = [
        str(ticket_create(actor=actor, account_id=account.id, site_id=site.id, summary=f"Open job {i}").ticket.id)
        for i in range(200)
    ]
    return {
        "site": {"account_id": str(account.id), "site_id": str(site.id)},
        "tokens": tokens,
        "technicians": technicians_create(technicians, prefix="capacity"),
        "dispatchers": dispatchers,
        "open_tickets": open_tickets,
    }


class Latencies:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def timed(self, name: str, do, expect: tuple[int, ...]) -> requests.Response:
        started = time.perf_counter()
        response = do()
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.samples.setdefault(name, []).append(elapsed)
            if response.status_code not in expect:
                self.errors.setdefault(name, []).append(f"{response.status_code} {response.text[:200]}")
        return response

    def report(self) -> dict:
        return {
            name: {
                "count": len(values),
                "p50_ms": round(percentile(values, 0.50), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
                "errors": len(self.errors.get(name, [])),
            }
            for name, values in sorted(self.samples.items())
        }


class Load:
    """Each operation fired at its own rate (Poisson arrivals) on a shared pool, alternating
    between the two web processes."""

    def __init__(self, deployment, fixtures: dict, scale: float) -> None:
        self.webs = deployment.web_urls
        self.fixtures = fixtures
        self.scale = scale
        self.latencies = Latencies()
        self.local = threading.local()
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.technicians = list(fixtures["technicians"])
        self.unchanged_polls = 0  # board polls answered 204: nothing changed since the last one
        self.boards = []
        for index, username in enumerate(fixtures["dispatchers"]):
            browser = Browser()
            browser.sign_in(self.webs[index % 2], username, DISPATCHER_PASSWORD, page="/admin/login/")
            self.boards.append({"browser": browser, "version": "", "lock": threading.Lock()})

    def _web(self) -> str:
        with self.counter_lock:
            self.counter += 1
            return self.webs[self.counter % len(self.webs)]

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    # --- operations ---

    def ticket_get(self) -> None:
        ticket = random.choice(self.fixtures["open_tickets"])
        token = self.fixtures["tokens"]["agent"]
        self.latencies.timed(
            "ticket.get",
            lambda: api(self._web(), "GET", f"/api/v1/tickets/{ticket}", token, session=self._session()),
            (200,),
        )

    def ticket_timeline(self) -> None:
        ticket = random.choice(self.fixtures["open_tickets"])
        token = self.fixtures["tokens"]["dispatcher"]
        self.latencies.timed(
            "ticket.timeline",
            lambda: api(self._web(), "GET", f"/api/v1/tickets/{ticket}/timeline", token, session=self._session()),
            (200,),
        )

    def cockpit(self) -> None:
        token = self.fixtures["tokens"]["dispatcher"]
        self.latencies.timed(
            "dispatcher.cockpit",
            lambda: api(self._web(), "GET", "/api/v1/ux/dispatcher/cockpit", token, session=self._session()),
            (200,),
        )

    def triage(self) -> None:
        """An agent triages a request that came in: a new ticket, then its triage."""
        tokens, site = self.fixtures["tokens"], self.fixtures["site"]
        created = self.latencies.timed(
            "ticket.create",
            lambda: api(
                self._web(),
                "POST",
                "/api/v1/tickets",
                tokens["agent"],
                {**site, "summary": "Door closer slamming"},
                session=self._session(),
            ),
            (201,),
        )
        if created.status_code != 201:
            return
        body = {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}
        path = f"/api/v1/tickets/{created.json()['id']}/triage"
        self.latencies.timed(
            "ticket.triage",
            lambda: api(self._web(), "POST", path, tokens["dispatcher"], body, session=self._session()),
            (200,),
        )

    def chain(self) -> None:
        with self.counter_lock:
            if not self.technicians:
                return
            # A fresh technician per chain: an emergency books them from now on.
            technician = self.technicians.pop()

        def call(tool, method, path, token, body, expect):
            answer = self.latencies.timed(
                tool,
                lambda: api(self._web(), method, path, token, body, session=self._session()),
                (expect,),
            )
            return answer.status_code, (answer.json() if answer.content else {})

        canonical_chain(call, site=self.fixtures["site"], tokens=self.fixtures["tokens"], technician=technician)

    def sms(self) -> None:
        number = random.randrange(10**6)
        text = twilio_text(
            sid=f"SM{uuid.uuid4().hex}",
            sender=f"+1971{number:07d}",
            body=f"Hello, the front door at {number % 9000 + 100} NE Alberta St, Portland OR 97211 sticks.",
        )
        self.latencies.timed("sms.inbound", lambda: twilio_post(self._web(), text), (200,))

    def board(self) -> None:
        board = random.choice(self.boards)
        if not board["lock"].acquire(blocking=False):
            return  # that dispatcher's page is still waiting for its last poll
        try:
            headers = {"HX-Request": "true", "X-Dispatch-Poll": "1", "X-Board-Version": board["version"]}
            base = self.webs[self.boards.index(board) % 2]
            answer = self.latencies.timed(
                "board.live",
                lambda: board["browser"].request("GET", base + "/board/live/", headers=headers),
                (200, 204),
            )
            board["version"] = answer.headers.get("X-Board-Version", board["version"])
            if answer.status_code == 204:
                with self.latencies.lock:
                    self.unchanged_polls += 1
        finally:
            board["lock"].release()

    def run(self, seconds: float) -> int:
        operations = {
            "chain": self.chain,
            "ticket.get": self.ticket_get,
            "ticket.timeline": self.ticket_timeline,
            "dispatcher.cockpit": self.cockpit,
            "ticket.triage": self.triage,
            "sms.inbound": self.sms,
            "board.live": self.board,
        }
        fired = 0
        stop_at = time.monotonic() + seconds
        with ThreadPoolExecutor(max_workers=48) as pool:
            arrivals = []
            for name, rate in LOAD.items():
                clock, rng = 0.0, random.Random(name)
                while True:
                    clock += rng.expovariate(rate * self.scale)
                    if clock >= seconds:
                        break
                    arrivals.append((clock, name))
            arrivals.sort()
            started = time.monotonic()
            for at, name in arrivals:
                delay = started + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._safely, operations[name])
                fired += 1
            time.sleep(max(0.0, stop_at - time.monotonic()))
        return fired

    def _safely(self, operation) -> None:
        try:
            operation()
        except Exception as error:  # one failed operation must not stop the load
            with self.latencies.lock:
                self.latencies.errors.setdefault("exceptions", []).append(repr(error)[:200])


def _drained() -> bool:
    from django_q.tasks import queue_size

    from dispatch.messaging.models import OutboundMessage

    return queue_size() == 0 and not OutboundMessage.objects.exclude(status__in=("SENT", "DEAD_LETTER")).exists()


def _cpu(deployment) -> dict[str, float]:
    """CPU seconds so far of each side's process trees (exited children included)."""
    return {
        "web": sum(tree_cpu_seconds(process.popen.pid) for process in deployment.webs),
        "worker": sum(tree_cpu_seconds(process.popen.pid) for process in deployment.workers),
        "database": cpu_snapshot()["database"],
        "driver": time.process_time(),
    }


def _per_hour(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """CPU-seconds each side would spend in an hour of this, and all the server sides together
    in cores (3,600 CPU-seconds an hour is one core kept busy)."""
    hourly = {side: round((after[side] - before[side]) * 3600 / seconds, 1) for side in before}
    hourly["server_cores"] = round(sum(hourly[side] for side in ("web", "worker", "database")) / 3600, 3)
    return hourly


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the simulated busy period")
    parser.add_argument("--idle", type=float, default=60.0, help="length of the idle measurement")
    parser.add_argument("--history", type=int, default=20000, help="past tickets loaded before the run")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every rate of LOAD")
    parser.add_argument("--headroom", type=float, default=0.7, help="share of the CPU a machine may be kept busy")
    args = parser.parse_args(argv)

    env = {"DISPATCH_TWO_FACTOR_REQUIRED": "0", "DISPATCH_Q_SAVE_LIMIT": "500"}
    with deployment_running(env_overrides=env) as deployment:
        os.environ.update(deployment.env)
        import django

        django.setup()
        if args.history:
            log(f"loading {args.history} past tickets")
            subprocess.run(
                [sys.executable, str(ROOT / "bench" / "toolset.py"), "preload", "--tickets", str(args.history)],
                env=deployment.env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        fixtures = _fixtures(TECHNICIANS)
        load = Load(deployment, fixtures, args.scale)
        log("warming up")
        load.run(5)
        wait_until(_drained, timeout=180, every=1, what="the warm-up's messages delivered")
        load.latencies = Latencies()
        load.unchanged_polls = 0

        log(f"idle for {args.idle:.0f} s")
        before = _cpu(deployment)
        time.sleep(args.idle)
        idle = _per_hour(before, _cpu(deployment), args.idle)

        log(f"busy hour at x{args.scale} for {args.seconds:.0f} s")
        before = _cpu(deployment)
        started = time.monotonic()
        fired = load.run(args.seconds)
        wait_until(_drained, timeout=300, every=1, what="every message delivered")
        drained_after = time.monotonic() - started - args.seconds
        busy = _per_hour(before, _cpu(deployment), args.seconds)

    server_sides = ("web", "worker", "database")
    per_company = sum(busy[side] for side in server_sides)
    cores = os.cpu_count() or 1
    calls = load.latencies.report()
    toolset_calls = sum(s["count"] for name, s in calls.items() if name not in ("sms.inbound", "board.live"))
    report = {
        "load": {
            "technicians": TECHNICIANS,
            "scale": args.scale,
            "seconds": args.seconds,
            "operations_fired": fired,
            "toolset_calls_per_s": round(toolset_calls / args.seconds, 1),
            "texts_in_per_s": round(calls.get("sms.inbound", {}).get("count", 0) / args.seconds, 2),
            "board_polls_per_s": round(calls.get("board.live", {}).get("count", 0) / args.seconds, 2),
            # The board changes with every ticket that moves: in a busy hour most polls re-render.
            "board_polls_unchanged": load.unchanged_polls,
            "outbox_drained_s_after_load": round(drained_after, 1),
            "history_tickets": args.history,
        },
        "cpu_seconds_per_hour": {"busy": busy, "idle": idle},
        "operations": calls,
        "errors": {name: errors[:3] for name, errors in load.latencies.errors.items()},
        "machine": {
            "cores": cores,
            "headroom": args.headroom,
            "busy_cpu_seconds_per_company_hour": round(per_company, 1),
            # Each company's busiest hour at once, on one machine, kept under the headroom.
            "companies_per_machine": round(cores * 3600 * args.headroom / per_company, 1) if per_company else None,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
