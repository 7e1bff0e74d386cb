"""A whole deployment on this machine, as a company that outgrew one box would run it:
PostgreSQL, Redis (the django-q2 broker), S3 (moto's server), a local Twilio, two gunicorn web
processes and two django-q2 worker clusters, all with production settings and nothing local
shared between the processes.

`deployment_running()` starts every part on a free loopback port and tears everything down
afterwards, also when the block fails or is interrupted. Used by the scale-out run
(`scaleout/test_deployment.py`) and by `bench/capacity.py`. Nothing here imports Django: the
web and worker processes are subprocesses; the caller may set Django up itself with `env`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import redis

from bench.common import database_create, free_port, postgres_server
from tests.twilio_local import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, LocalTwilio, twilio_serving

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BUCKET = "dispatch-scaleout"
PUBLIC_URL = "https://dispatch.scaleout.test"
# Short enough that a worker killed mid-send has its message retried within the run, long
# enough for any delivery: the lease must exceed the task queue's timeout (a worker is killed by
# then) and a send's two waits (dispatch.E002).
SEND_TIMEOUT_SECONDS = 5
TASK_TIMEOUT_SECONDS = 15
CLAIM_LEASE_SECONDS = 20


def log(message: str) -> None:
    print(f"[scaleout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_until(check, *, timeout: float, what: str, every: float = 0.2):
    """Poll `check()` until it returns something true; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


# --- processes ----------------------------------------------------------------------------


@dataclass
class Process:
    """A server this module started, in a process group of its own (so a kill reaches its children)."""

    name: str
    command: list[str]
    env: dict
    log_path: Path
    popen: subprocess.Popen | None = None
    stopping: bool = False

    def start(self) -> None:
        self.stopping = False
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: no clean-up of any kind, as when a machine loses power."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 20) -> None:
        self.stop_begin()
        self.stop_finish(timeout)

    def stop_begin(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting, so that several stop at once."""
        if self.popen is not None and self.running and not self.stopping:
            # To the main process only: it stops its own children in order (a group-wide SIGTERM
            # makes django-q's processes race each other and wait out their timeouts).
            self.popen.send_signal(signal.SIGTERM)
            self.stopping = True

    def stop_finish(self, timeout: float = 20) -> None:
        """Wait for a stop asked by `stop_begin()`; SIGKILL whatever is left after `timeout`."""
        if self.popen is None:
            return
        if self.running:
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Children a SIGTERM left behind (a worker mid-task) go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def pids(self) -> set[int]:
        """Every live process of the group (the master and what it forked)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.popen.pid:  # the process group id
                found.add(int(entry.name))
        return found

    def owns_connection_from(self, local_port: int) -> bool:
        """Does one of this group's processes hold the TCP socket whose local port is `local_port`?"""
        inodes = _tcp_inodes(local_port)
        if not inodes:
            return False
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith("socket:[") and target[8:-1] in inodes:
                            return True
        return False


def _die_with_parent() -> None:
    """In the child, before it runs the server: the kernel kills it when this process ends, so
    a run that is itself killed (a cancelled CI job) leaves no server behind."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _tcp_inodes(local_port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(parts[9])
    return inodes


class RedisServer:
    """Debian's redis-server on a loopback port, in memory only; it can be stopped and started
    again on the same port (the outage drill)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: Process | None = None

    @property
    def url(self) -> str:
        # As the README advises for production: a Redis that stops answering fails fast.
        return f"redis://127.0.0.1:{self.port}/0?socket_connect_timeout=2&socket_timeout=5"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory)]
        self.process = Process("redis", command, dict(os.environ), self.directory / "redis.log")
        self.process.start()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: self._pong(client), timeout=20, what="redis-server answering")

    @staticmethod
    def _pong(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class S3Server:
    """moto's S3 application served in this process on a fixed loopback port (as moto's
    ThreadedMotoServer does, but `stop()` also closes the socket, so clients are refused at once
    instead of left hanging); `start()` again serves the same buckets and objects, which moto
    keeps in this process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class OneRequestPerConnection(MotoRequestHandler):
            # No keep-alive: once stopped, no client can go on using a connection it opened before.
            protocol_version = "HTTP/1.0"

            def log_request(self, *args, **kwargs):  # the stand-in's access log is noise here
                return

        app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=OneRequestPerConnection)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


# --- the deployment -----------------------------------------------------------------------


@dataclass
class Deployment:
    env: dict
    directory: Path
    redis: RedisServer
    s3: S3Server
    twilio: LocalTwilio
    webs: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)

    def worker_restart(self, index: int) -> Process:
        """Start the index-th worker cluster again (after a kill), logging to a file of its own,
        and wait until it takes tasks."""
        old = self.workers[index]
        name = f"{old.name.split('+')[0]}+restarted"
        self.workers[index] = Process(name, old.command, old.env, self.directory / f"{name}.log")
        self.workers[index].start()
        worker_wait_running(self.workers[index])
        return self.workers[index]

    def access_log_statuses(self) -> list[tuple[str, int]]:
        """(request line, status) of every request both web processes logged."""
        found = []
        for web in self.webs:
            path = self.directory / f"{web.name}.access.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                match = ACCESS_LINE.search(line)
                if match:
                    found.append((match["request"], int(match["status"])))
        return found

    def server_log_errors(self) -> list[str]:
        """Tracebacks and ERROR lines of the web and worker logs."""
        errors = []
        for process in [*self.webs, *self.workers]:
            text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
            errors += [f"{process.name}: {line}" for line in text.splitlines() if LOG_ERROR.search(line)]
        return errors


# gunicorn's default access format: h l u t "r" s b "f" "a"
ACCESS_LINE = re.compile(r'"(?P<request>[A-Z]+ [^"]*)" (?P<status>\d{3}) ')
LOG_ERROR = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")


def deployment_env(*, database_url: str, redis_url: str, s3_endpoint: str, twilio_base: str, var_dir: Path) -> dict:
    """Production settings, told where every shared part is; nothing else is shared."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Loopback HTTP; the secure cookie and HSTS settings stay as production has them.
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DISPATCH_S3_BUCKET=BUCKET,
        DISPATCH_S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        DISPATCH_MESSAGE_DELIVERY="live",
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM_NUMBER=TWILIO_FROM,
        TWILIO_API_BASE=twilio_base,
        DISPATCH_PUBLIC_URL=PUBLIC_URL,
        DISPATCH_SEND_TIMEOUT_SECONDS=str(SEND_TIMEOUT_SECONDS),
        DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS=str(CLAIM_LEASE_SECONDS),
        DISPATCH_Q_TIMEOUT_SECONDS=str(TASK_TIMEOUT_SECONDS),
        # Every scheduled run stays in django-q's task table for the run's checks.
        DISPATCH_Q_SAVE_LIMIT="0",
        # The run drives each job itself, as an outside agent would, and counts every message sent;
        # the autopilot's pass still runs every minute (and is checked to run once per period)
        # but moves nothing. Its own races are proven in tests/autopilot/test_concurrency.py.
        DISPATCH_AUTOPILOT="0",
        DISPATCH_VAR_DIR=str(var_dir),
        STATIC_ROOT=str(var_dir / "static"),
        MEDIA_ROOT=str(var_dir / "media-unused"),
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    return env


def _web(name: str, env: dict, directory: Path) -> tuple[Process, str]:
    port = free_port()
    web_env = {
        **env,
        "BIND_ADDRESS": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESS_LOG": str(directory / f"{name}.access.log"),
    }
    command = [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py")]
    return Process(name, command, web_env, directory / f"{name}.log"), f"http://127.0.0.1:{port}"


def _worker(name: str, env: dict, directory: Path) -> Process:
    command = [PYTHON, str(ROOT / "manage.py"), "qcluster"]
    return Process(name, command, {**env, "DISPATCH_Q_WORKERS": "2"}, directory / f"{name}.log")


def worker_wait_running(process: Process) -> None:
    """Until django-q says the cluster runs (its broker answered and its processes are up)."""

    def running() -> bool:
        if not process.running:
            _fail(process)
        return WORKER_RUNNING in process.log_path.read_text(errors="replace")

    wait_until(running, timeout=60, what=f"{process.name} running")


WORKER_RUNNING = "[django_q:dispatch:q] running."


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def deployment_running(*, workers: int = 2, webs: int = 2, env_overrides: dict | None = None) -> Iterator[Deployment]:
    directory = Path(tempfile.mkdtemp(prefix="dispatch-scaleout-"))
    started: list = []
    try:
        with postgres_server() as server_url, twilio_serving() as twilio:
            database_url = database_create(server_url, "dispatch")
            redis_server = RedisServer(directory)
            redis_server.start()
            started.append(redis_server)
            s3 = S3Server()
            s3.start()
            started.append(s3)
            s3.client().create_bucket(Bucket=BUCKET)
            env = deployment_env(
                database_url=database_url,
                redis_url=redis_server.url,
                s3_endpoint=s3.endpoint,
                twilio_base=twilio.base_url,
                var_dir=directory / "var",
            )
            env.update(env_overrides or {})
            log(f"migrating {database_url}")
            subprocess.run(
                [PYTHON, str(ROOT / "manage.py"), "migrate", "--noinput"],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            deployment = Deployment(env=env, directory=directory, redis=redis_server, s3=s3, twilio=twilio)
            for index in range(webs):
                process, url = _web(f"web-{'ab'[index]}", env, directory)
                deployment.webs.append(process)
                deployment.web_urls.append(url)
            deployment.workers = [_worker(f"worker-{'ab'[index]}", env, directory) for index in range(workers)]
            for process in [*deployment.webs, *deployment.workers]:
                process.start()
                started.append(process)
            for url, process in zip(deployment.web_urls, deployment.webs):
                wait_until(
                    lambda u=url, p=process: _answers(u + "/health") or (not p.running and _fail(p)),
                    timeout=90,
                    what=f"{process.name} serving /health",
                )
            for process in deployment.workers:
                worker_wait_running(process)
            log(f"web processes {deployment.web_urls}, workers {len(deployment.workers)}, logs in {directory}")
            try:
                yield deployment
            finally:
                # All four stop at once: each takes a few seconds to finish its requests and tasks.
                processes = [*deployment.webs, *deployment.workers]
                for process in processes:
                    process.stop_begin()
                for process in processes:
                    process.stop_finish()
    finally:
        for part in reversed(started):
            with contextlib.suppress(Exception):
                part.stop()
        if os.environ.get("SCALEOUT_KEEP_LOGS"):
            log(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _fail(process: Process):
    tail = process.log_path.read_text(errors="replace")[-3000:] if process.log_path.exists() else ""
    raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{tail}")
