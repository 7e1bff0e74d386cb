"""Local stand-ins for the providers (a Twilio Messages API and an SMTP server) and a clock.

The adapters under test are the real ones; only the far end is local. Each server listens on
127.0.0.1 on a free port and records exactly what it received.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "local-test-auth-token"
TWILIO_FROM = "+15105550100"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TwilioRequest:
    method: str
    path: str
    authorization: str
    content_type: str
    form: dict[str, str]
    accepted: bool = False

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if not self.authorization.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(self.authorization[6:]).decode().partition(":")
        return user, password


@dataclass
class LocalTwilio:
    """Speaks the part of Twilio's REST API the SMS adapter uses, strictly."""

    base_url: str = ""
    requests: list[TwilioRequest] = field(default_factory=list)
    # None: answer like Twilio does. Otherwise (status, body) for every request from now on.
    forced_answer: tuple[int, dict] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_with(self, status: int, code: int = 20500, message: str = "Internal Server Error") -> None:
        self.forced_answer = (status, {"code": code, "message": message, "status": status})

    def recover(self) -> None:
        self.forced_answer = None

    def answer(self, request: TwilioRequest) -> tuple[int, dict]:
        status, body = self._answer(request)
        request.accepted = status == 201
        with self.lock:
            self.requests.append(request)
        return status, body

    def _answer(self, request: TwilioRequest) -> tuple[int, dict]:
        if self.forced_answer is not None:
            return self.forced_answer
        expected_path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        if request.basic_auth != (TWILIO_SID, TWILIO_TOKEN):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if request.method != "POST" or request.path != expected_path:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return 400, {"code": 21000, "message": "Expected a form body", "status": 400}
        missing = [name for name in ("To", "From", "Body") if not request.form.get(name)]
        if missing:
            return 400, {"code": 21604, "message": f"Missing {', '.join(missing)}", "status": 400}
        sid = "SM" + uuid.uuid4().hex
        return 201, {
            "sid": sid,
            "account_sid": TWILIO_SID,
            "to": request.form["To"],
            "from": request.form["From"],
            "body": request.form["Body"],
            "status": "queued",
            "num_segments": "1",
        }

    @property
    def sent(self) -> list[TwilioRequest]:
        """Requests Twilio accepted (the ones a customer would receive)."""
        return [r for r in self.requests if r.accepted]


@pytest.fixture
def twilio_server():
    twilio = LocalTwilio()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            request = TwilioRequest(
                method=self.command,
                path=self.path,
                authorization=self.headers.get("Authorization", ""),
                content_type=self.headers.get("Content-Type", ""),
                form={key: values[-1] for key, values in parse_qs(raw).items()},
            )
            status, body = twilio.answer(request)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _handle
        do_GET = _handle

        def log_message(self, format, *args):  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    twilio.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield twilio
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def live_sms(settings, twilio_server):
    """Live delivery mode, SMS pointed at the local Twilio."""
    settings.DISPATCH_MESSAGE_DELIVERY = "live"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = TWILIO_FROM
    settings.TWILIO_API_BASE = twilio_server.base_url
    return twilio_server


class _Inbox:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """aiosmtpd on a free local port, with Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.DISPATCH_MESSAGE_DELIVERY = "live"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "dispatch@door-service.example"
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def sync_queue(monkeypatch):
    """django-q runs async_task inline. Conf is read at import, so the setting alone is not enough."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock for the code under test: time moves only when the test says so."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen
