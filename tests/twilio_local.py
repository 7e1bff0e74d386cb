"""A local stand-in for Twilio's Messages API, strict about what the SMS adapter must send.

POST .../Accounts/{SID}/Messages.json creates a message (Basic auth, form fields To, From,
Body) and answers 201 with its sid; GET on the same path lists the account's messages, newest
first, filtered by To and From and a page at a time (next_page_uri), as Twilio's list resource
does. Everything received is recorded.

Used by the messaging tests (`tests/messaging/conftest.py`) and by the scale-out run, whose
workers deliver to it over real HTTP. It can answer slowly, fail on demand, and hold one
request open so a test can kill the worker that sent it mid-send.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "local-test-auth-token"
TWILIO_FROM = "+15105550100"
MESSAGES_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@dataclass
class TwilioRequest:
    method: str
    path: str
    authorization: str
    content_type: str
    form: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    client_port: int = 0
    accepted: bool = False
    sid: str = ""

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if not self.authorization.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(self.authorization[6:]).decode().partition(":")
        return user, password


@dataclass
class Hold:
    """The next accepted message's answer, held back until `release()`: the message is already
    Twilio's (it is listed), but the sender has not heard so."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    request: TwilioRequest | None = None

    def release(self) -> None:
        self.released.set()


@dataclass
class LocalTwilio:
    base_url: str = ""
    requests: list[TwilioRequest] = field(default_factory=list)
    # None: answer like Twilio does. Otherwise (status, body) for every request from now on.
    forced_answer: tuple[int, dict] | None = None
    # Seconds every accepted POST takes to answer (a provider under load).
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _created: list[dict] = field(default_factory=list)
    _hold: Hold | None = None

    def fail_with(self, status: int, code: int = 20500, message: str = "Internal Server Error") -> None:
        self.forced_answer = (status, {"code": code, "message": message, "status": status})

    def recover(self) -> None:
        self.forced_answer = None

    def hold_next(self) -> Hold:
        hold = Hold()
        with self.lock:
            self._hold = hold
        return hold

    def answer(self, request: TwilioRequest) -> tuple[int, dict]:
        status, body = self._answer(request)
        request.accepted = request.method == "POST" and status == 201
        with self.lock:
            self.requests.append(request)
        return status, body

    def _answer(self, request: TwilioRequest) -> tuple[int, dict]:
        if self.forced_answer is not None:
            return self.forced_answer
        if request.basic_auth != (TWILIO_SID, TWILIO_TOKEN):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if request.path != MESSAGES_PATH or request.method not in ("POST", "GET"):
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        if request.method == "GET":
            return 200, self._listed(request.query)
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return 400, {"code": 21000, "message": "Expected a form body", "status": 400}
        missing = [name for name in ("To", "From", "Body") if not request.form.get(name)]
        if missing:
            return 400, {"code": 21604, "message": f"Missing {', '.join(missing)}", "status": 400}
        request.sid = "SM" + uuid.uuid4().hex
        created = {
            "sid": request.sid,
            "account_sid": TWILIO_SID,
            "to": request.form["To"],
            "from": request.form["From"],
            "body": request.form["Body"],
            "status": "queued",
            "num_segments": "1",
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "date_sent": None,
        }
        with self.lock:
            self._created.append(created)
        return 201, created

    def _listed(self, query: dict[str, str]) -> dict:
        with self.lock:
            found = [
                message
                for message in reversed(self._created)
                if all(message[key.lower()] == query[key] for key in ("To", "From") if key in query)
            ]
        size = max(1, min(int(query.get("PageSize") or 50), 1000))
        page = max(0, int(query.get("Page") or 0))
        following = None
        if len(found) > (page + 1) * size:
            filters = {key: query[key] for key in ("To", "From") if key in query}
            following = f"{MESSAGES_PATH}?{urlencode({**filters, 'PageSize': size, 'Page': page + 1})}"
        return {
            "messages": found[page * size : (page + 1) * size],
            "page": page,
            "page_size": size,
            "next_page_uri": following,
        }

    def wait_after_accepting(self, request: TwilioRequest) -> None:
        """Runs in the request's thread once the message is Twilio's, before the answer goes out."""
        with self.lock:
            hold, self._hold = self._hold, None
        if hold is not None:
            hold.request = request
            hold.arrived.set()
            hold.released.wait(timeout=120)
        elif self.delay:
            time.sleep(self.delay)

    @property
    def sent(self) -> list[TwilioRequest]:
        """Requests Twilio accepted (the ones a customer would receive)."""
        with self.lock:
            return [r for r in self.requests if r.accepted]


@contextlib.contextmanager
def twilio_serving() -> Iterator[LocalTwilio]:
    """A LocalTwilio listening on 127.0.0.1 (a free port) until the block ends."""
    twilio = LocalTwilio()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            target = urlsplit(self.path)
            request = TwilioRequest(
                method=self.command,
                path=target.path,
                authorization=self.headers.get("Authorization", ""),
                content_type=self.headers.get("Content-Type", ""),
                form={key: values[-1] for key, values in parse_qs(raw).items()},
                query={key: values[-1] for key, values in parse_qs(target.query).items()},
                client_port=self.client_address[1],
            )
            status, body = twilio.answer(request)
            if request.accepted:
                twilio.wait_after_accepting(request)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the sender went away while its answer was held (a killed worker)

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
        hold = twilio._hold
        if hold is not None:
            hold.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
