"""A local stand-in for an OpenAI-compatible chat-completions server, for the LLM reading of
customers' messages (dispatch/intake/llm.py).

POST /v1/chat/completions answers with a completion whose message is whatever the test set:
a reading (fixed, or built from the request, like a model that obeys what the customer wrote),
garbage, any status and body, a tool call or a refusal; slowly, or with its body a byte at a
time. Every request's headers and JSON body are recorded, so a test can check what was sent.

    with LocalLlm() as llm:
        settings.DISPATCH_LLM_URL = llm.url
        llm.answer({...})

or start() and stop() by hand. stop() never waits for a handler that is still sleeping.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS_PATH = "/v1/chat/completions"
# Seconds between two bytes of a trickled body.
TRICKLE_SECONDS = 0.5

NEUTRAL_READING = {
    "incident_type": None,
    "priority": None,
    "confidence": 0,
    "address": None,
    "time_preference": "",
    "access": "",
    "language": "en",
    "missing": [],
}


@dataclass
class LlmRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    json: Any = None  # the parsed body, None when it is not JSON

    def _message(self, role: str) -> str | None:
        messages = (self.json or {}).get("messages") or []
        found = [message.get("content") for message in messages if message.get("role") == role]
        return found[0] if found else None

    @property
    def system_content(self) -> str | None:
        return self._message("system")

    @property
    def user_content(self) -> str | None:
        return self._message("user")

    @property
    def schema(self) -> dict | None:
        try:
            return self.json["response_format"]["json_schema"]["schema"]
        except (KeyError, TypeError):
            return None


def completion(message: dict, *, model: str = "local-model") -> dict:
    """A chat completion as OpenAI's API shapes it, carrying `message`."""
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _content_message(content: str) -> dict:
    return {"content": content, "refusal": None}


@dataclass
class LocalLlm:
    url: str = ""  # the base URL, as DISPATCH_LLM_URL takes it (".../v1")
    requests: list[LlmRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # request JSON -> (status, body, content type)
    _respond: Callable[[Any], tuple[int, bytes, str]] = field(init=False)
    _delay: float = 0.0
    _trickle: bool = False
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.answer(NEUTRAL_READING)

    # --- What the next answers are -------------------------------------------------------

    def answer(self, reading: dict) -> None:
        """A well-formed completion whose content is json.dumps(reading)."""
        self.answer_with(lambda _request: reading)

    def answer_with(self, build: Callable[[Any], dict]) -> None:
        """A well-formed completion whose content is json.dumps(build(request_json))."""

        def respond(request: Any) -> tuple[int, bytes, str]:
            body = completion(_content_message(json.dumps(build(request))), model=_model(request))
            return 200, json.dumps(body).encode(), "application/json"

        self._respond = respond

    def garbage(self, text: str) -> None:
        """A well-formed completion whose content is `text` (not JSON, or not the schema)."""
        self.message({"content": text, "refusal": None})

    def refuse(self, text: str = "I can't help with that.") -> None:
        self.message({"content": None, "refusal": text})

    def tool_call(self, name: str = "ticket.close", arguments: dict | None = None) -> None:
        """A completion whose message calls a tool instead of answering."""
        call = {
            "id": "call_" + uuid.uuid4().hex[:12],
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments or {"ticket": 1})},
        }
        self.message({"content": None, "refusal": None, "tool_calls": [call]})

    def message(self, message: dict) -> None:
        """A well-formed completion carrying `message` as given."""

        def respond(request: Any) -> tuple[int, bytes, str]:
            return 200, json.dumps(completion(message, model=_model(request))).encode(), "application/json"

        self._respond = respond

    def raw(self, status: int, body: bytes, content_type: str = "text/html") -> None:
        """Any status and body, e.g. a proxy's HTML error page."""
        self._respond = lambda _request: (status, body, content_type)

    def delay(self, seconds: float = 0.0, *, trickle: bool = False) -> None:
        """Sleep `seconds` before answering; with trickle, then send the headers at once and the
        body one byte every TRICKLE_SECONDS."""
        self._delay = seconds
        self._trickle = trickle

    # --- Serving -------------------------------------------------------------------------

    def respond(self, request: LlmRequest) -> tuple[int, bytes, str]:
        with self.lock:
            self.requests.append(request)
        if request.method != "POST" or request.path != COMPLETIONS_PATH:
            return _error(404, "Not found")
        if request.json is None:
            return _error(400, "Body is not JSON")
        return self._respond(request.json)

    def pause(self, seconds: float) -> bool:
        """Sleep in a handler; False when the server is stopping (the handler should give up)."""
        return not self._stopping.wait(seconds)

    def start(self) -> LocalLlm:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalLlm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    return status, json.dumps(body).encode(), "application/json"


def _model(request: Any) -> str:
    return str(request.get("model") or "local-model") if isinstance(request, dict) else "local-model"


def _handler_for(llm: LocalLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            request = LlmRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=raw,
                json=parsed,
            )
            status, body, content_type = llm.respond(request)
            if llm._delay and not llm.pause(llm._delay):
                return
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not llm._trickle:
                    self.wfile.write(body)
                    return
                self.wfile.flush()
                for index in range(len(body)):
                    if not llm.pause(TRICKLE_SECONDS):
                        return
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
            except OSError:
                pass  # the client gave up (its deadline), as it should

        do_POST = _handle
        do_GET = _handle

        def log_message(self, format, *args):  # keep test output quiet
            return

    return Handler
