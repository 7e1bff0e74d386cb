"""Plumbing of the toolset benchmark: a throwaway PostgreSQL, a gunicorn server, timed phases of
concurrent clients, latency statistics, and the canonical emergency chain as a list of calls.

Nothing here imports Django: the driver talks HTTP only; Django work runs in subprocesses
(`toolset.py setup|preload`) against the database under test.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SCRIPT = ROOT / "scripts" / "pg_ephemeral.sh"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (scripts/pg_ephemeral.sh); yields its base URL, removes it after."""
    url, data_dir = postgres_start()
    postmaster = int((Path(data_dir) / "data" / "postmaster.pid").read_text().split()[0])
    _measured["database"].add(postmaster)
    try:
        yield url
    finally:
        _measured["database"].discard(postmaster)
        postgres_stop(data_dir)


def postgres_start() -> tuple[str, str]:
    """Start a throwaway PostgreSQL server (scripts/pg_ephemeral.sh start): (base URL, its directory).
    It runs until `postgres_stop(directory)`, also after this process ends."""
    started = subprocess.run([str(PG_SCRIPT), "start"], capture_output=True, text=True, check=True)
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if line.startswith("export ")
    )
    return exports["DATABASE_URL"], exports["PG_EPHEMERAL_DIR"]


def postgres_stop(data_dir: str) -> None:
    """Stop the server started in `data_dir` and remove the directory."""
    subprocess.run([str(PG_SCRIPT), "stop", data_dir], capture_output=True, text=True)


def postgres_attach(data_dir: str) -> str:
    """The base URL of a server kept running in `data_dir` (a `postgres_start` never stopped); if
    it is down, it is started again on a free port, with scripts/pg_ephemeral.sh's options."""
    data = Path(data_dir) / "data"
    if not (data / "PG_VERSION").exists():
        raise RuntimeError(f"{data_dir} holds no PostgreSQL data directory")
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
            return f"postgres://postgres@127.0.0.1:{int(lines[3])}/postgres"
        except (OSError, ValueError, IndexError):
            pass  # a stale file: pg_ctl starts over it
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name.split(".")[0]))[-1]
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data_dir} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    command = [str(bindir / "pg_ctl"), "-D", str(data), "-l", f"{data_dir}/server.log", "-w", "-t", "60"]
    command += ["-o", options, "start"]
    if os.geteuid() == 0:
        # As scripts/pg_ephemeral.sh: Debian's PostgreSQL runs as the postgres user, not root.
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, cwd="/", capture_output=True, text=True, check=True)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def database_create(server_url: str, name: str) -> str:
    """A new empty database on the server; returns its URL."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = server_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


# --- the Django side, in subprocesses -----------------------------------------------------


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    # BENCH_DATABASE_QUERY="server_side_binding=0" (or "prepare_threshold=5") measures the
    # database URL's options.
    if os.environ.get("BENCH_DATABASE_QUERY"):
        database_url = f"{database_url}?{os.environ['BENCH_DATABASE_QUERY']}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_url,
        SECRET_KEY="bench-" + uuid.uuid4().hex * 2,
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECURE_SSL_REDIRECT="0",
        DISPATCH_MESSAGE_DELIVERY="console",
        DISPATCH_VAR_DIR=str(Path(os.environ.get("BENCH_VAR_DIR", "/tmp")) / f"dispatch-bench-{os.getpid()}"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def django_json(env: dict, *args: str, script: str = "toolset.py") -> dict:
    """Run `bench/<script> <args>` (toolset.py by default) with Django set up; it prints one JSON
    object on stdout."""
    done = subprocess.run(
        [PYTHON, str(ROOT / "bench" / script), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"bench/{script} {args[0]} failed with exit status {done.returncode}")
    return json.loads(done.stdout)


# --- gunicorn -----------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn_server(env: dict, *, workers: int, threads: int, log_path: Path) -> Iterator[str]:
    """The app under gunicorn (the project's config file) on a free loopback port; yields its URL."""
    port = free_port()
    server_env = {
        **env,
        "BIND_ADDRESS": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    with open(log_path, "ab") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py")],
            env=server_env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    _measured["server"].add(process.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(url + "/bench/bare", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 60 s; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        _measured["server"].discard(process.pid)
        # Only the process this function started, by its id.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- CPU accounting -----------------------------------------------------------------------
# Where a phase's CPU goes: the gunicorn master and its workers ("server"), the PostgreSQL server
# and its backends ("database"), and this process, whose threads are the clients ("client").
# Read from /proc, so a figure per request can be compared with the in-process profiles.

# Root processes of each side; an idle server among them (waiting for its turn) adds nothing.
_measured: dict[str, set[int]] = {"server": set(), "database": set()}
_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and all its descendants, including those that exited
    (a server closing a connection ends its backend: its CPU moves to the parent's children times)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(value) for value in fields[11:15]) / _TICKS
    return total


def cpu_snapshot() -> dict[str, float]:
    snapshot = {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in _measured.items()}
    snapshot["client"] = time.process_time()
    return snapshot


def cpu_per_request(before: dict[str, float], after: dict[str, float], requests_done: int) -> dict[str, float]:
    """Milliseconds of CPU per request of each side between two snapshots."""
    if not requests_done:
        return {}
    return {name: round((after[name] - before[name]) * 1000 / requests_done, 3) for name in after if name in before}


# --- timed phases -------------------------------------------------------------------------


@dataclass
class Sample:
    tool: str
    seconds: float
    status: int


@dataclass
class PhaseResult:
    name: str
    duration: float
    samples: list[Sample] = field(default_factory=list)
    units: int = 0  # chains completed, for the chain phase
    failures: list[str] = field(default_factory=list)
    # CPU milliseconds per request of the server, the database and the clients (see above).
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


class StopPhase(Exception):
    """A worker has nothing left to do (e.g. the technician pool is used up)."""


def run_phase(name: str, *, seconds: float, clients: int, work: Callable[[int, Recorder], None]) -> PhaseResult:
    """Run `work(client_index, recorder)` in a loop on `clients` threads for `seconds`."""
    result = PhaseResult(name=name, duration=0.0)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop(index: int) -> None:
        recorder = Recorder(result, lock)
        failures = 0
        while time.monotonic() < stop_at:
            try:
                work(index, recorder)
            except StopPhase:
                return
            except Exception as error:  # one failed call must not hide the other clients' numbers
                failures += 1
                with lock:
                    if len(result.failures) < 20:
                        result.failures.append(f"client {index}: {error}")
                if failures > 20:
                    return

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    cpu_before = cpu_snapshot()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    result.duration = time.monotonic() - started
    result.cpu_ms_per_request = cpu_per_request(cpu_before, cpu_snapshot(), len(result.samples))
    return result


class Recorder:
    def __init__(self, result: PhaseResult, lock: threading.Lock):
        self.result, self.lock = result, lock

    def call(
        self, tool: str, do: Callable[[], requests.Response], *, expect: int | tuple[int, ...]
    ) -> requests.Response:
        started = time.perf_counter()
        response = do()
        elapsed = time.perf_counter() - started
        with self.lock:
            self.result.samples.append(Sample(tool, elapsed, response.status_code))
        expected = expect if isinstance(expect, tuple) else (expect,)
        if response.status_code not in expected:
            raise RuntimeError(f"{tool}: HTTP {response.status_code} {response.text[:300]}")
        return response

    def unit_done(self) -> None:
        with self.lock:
            self.result.units += 1


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def phases_pooled(results: list[PhaseResult]) -> PhaseResult:
    """Several runs of one phase as one: samples, time and units added, CPU per request weighted."""
    if len(results) == 1:
        return results[0]
    pooled = PhaseResult(name=results[0].name, duration=sum(r.duration for r in results))
    for result in results:
        pooled.samples.extend(result.samples)
        pooled.units += result.units
        pooled.failures.extend(result.failures)
    total = len(pooled.samples)
    sides = {side for result in results for side in result.cpu_ms_per_request}
    pooled.cpu_ms_per_request = (
        {
            side: round(sum(r.cpu_ms_per_request.get(side, 0.0) * len(r.samples) for r in results) / total, 3)
            for side in sorted(sides)
        }
        if total
        else {}
    )
    return pooled


def stats(samples: list[Sample], duration: float) -> dict:
    latencies = [s.seconds * 1000 for s in samples]
    errors = sum(1 for s in samples if s.status >= 500)
    return {
        "requests": len(samples),
        "rps": round(len(samples) / duration, 1) if duration else 0.0,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "server_errors": errors,
    }


def per_tool(result: PhaseResult) -> dict:
    tools: dict[str, list[Sample]] = {}
    for sample in result.samples:
        tools.setdefault(sample.tool, []).append(sample)
    return {tool: stats(samples, result.duration) for tool, samples in sorted(tools.items())}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# --- the canonical emergency chain, as HTTP calls -----------------------------------------

CHECKLIST_DONE = {
    "work_performed": True,
    "parts_used_or_needed": True,
    "resolution_status": True,
    "onsite_photos_after": True,
    "billing_authorization": True,
}
EVIDENCE = (
    ("PHOTO", "photo_before_security_risk"),
    ("PHOTO", "photo_after_temporary_or_permanent_securement"),
    ("NOTE", "note_risk_mitigation_and_customer_handoff"),
    ("SIGNATURE", "signature_or_no_signature_reason"),
)
MUTATING_TOOLS = frozenset(
    {
        "ticket.create",
        "ticket.triage",
        "assignment.dispatch",
        "tech.check_in",
        "tech.complete",
        "closeout.add_evidence",
        "qa.verify",
        "billing.generate_invoice",
        "ticket.close",
    }
)


def canonical_chain(call: Callable[..., tuple[int, dict]], *, site: dict, tokens: dict, technician: dict) -> str:
    """create → triage (EMERGENCY) → emergency-bypass dispatch → check-in → complete refused for
    the signature → four evidence items → complete → QA PASS → invoice → close → timeline.

    `call(tool, method, path, token, body, expect)` performs one request and returns
    (status, json); the same steps run over real HTTP and through Django's test client.
    """
    _status, ticket = call(
        "ticket.create",
        "POST",
        "/api/v1/tickets",
        tokens["dispatcher"],
        {"account_id": site["account_id"], "site_id": site["site_id"], "summary": "Storefront door cannot be locked"},
        201,
    )
    path = f"/api/v1/tickets/{ticket['id']}"
    call(
        "ticket.triage",
        "POST",
        path + "/triage",
        tokens["dispatcher"],
        {"priority": "EMERGENCY", "incident_type": "CANNOT_SECURE_ENTRY", "nte_cents": 75000},
        200,
    )
    call(
        "assignment.dispatch",
        "POST",
        path + "/assignment/dispatch",
        tokens["dispatcher"],
        {
            "tech_id": technician["id"],
            "dispatch_mode": "EMERGENCY_BYPASS",
            "dispatch_rationale": "Store cannot be secured overnight.",
            "dispatch_confirmation": True,
        },
        200,
    )
    call(
        "tech.check_in",
        "POST",
        path + "/tech/check-in",
        technician["token"],
        {"timestamp": now_iso(), "location": {"lat": 37.8044, "lng": -122.2711}},
        200,
    )
    call(
        "tech.complete", "POST", path + "/tech/complete", technician["token"], {"checklist_status": CHECKLIST_DONE}, 409
    )
    for kind, key in EVIDENCE:
        call(
            "closeout.add_evidence",
            "POST",
            path + "/evidence",
            technician["token"],
            {"kind": kind, "uri": f"s3://dispatch-evidence/{ticket['id']}/{key}", "evidence_key": key},
            201,
        )
    call(
        "tech.complete", "POST", path + "/tech/complete", technician["token"], {"checklist_status": CHECKLIST_DONE}, 200
    )
    call("qa.verify", "POST", path + "/qa/verify", tokens["qa"], {"timestamp": now_iso(), "result": "PASS"}, 200)
    call("billing.generate_invoice", "POST", path + "/billing/generate-invoice", tokens["finance"], {}, 200)
    call("ticket.close", "POST", path + "/close", tokens["dispatcher"], {"reason": "Secured and invoiced."}, 200)
    call("ticket.timeline", "GET", path + "/timeline", tokens["dispatcher"], None, 200)
    return ticket["id"]


def http_caller(session: requests.Session, base_url: str, recorder: Recorder) -> Callable[..., tuple[int, dict]]:
    """`call` for canonical_chain over real HTTP, timing every request."""

    def call(tool, method, path, token, body, expect):
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
            response = recorder.call(
                tool, lambda: session.post(base_url + path, json=body, headers=headers, timeout=60), expect=expect
            )
        else:
            response = recorder.call(
                tool, lambda: session.get(base_url + path, headers=headers, timeout=60), expect=expect
            )
        return response.status_code, response.json()

    return call
