"""Channel adapters: the only code that talks to a message provider.

Each adapter sends one OutboundMessage and returns the provider's id for it, or raises
DeliveryError. They are called by the delivery service with no database transaction open.
`find_sent` answers, before a message whose last attempt may have gone out is sent again,
whether the provider already has it (its id), or None.

settings.DISPATCH_MESSAGE_DELIVERY picks them:
- "console" (default): log the message; nothing leaves the machine.
- "file": append one JSON line per message to DISPATCH_MESSAGE_FILE_PATH.
- "live": SMS through Twilio's REST API, email through Django's email backend (SMTP).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import smtplib
import unicodedata
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage, get_connection, make_msgid
from django.core.mail.utils import DNS_NAME
from django.utils import timezone

from .models import Channel, OutboundMessage

log = logging.getLogger(__name__)


def send_timeout_seconds() -> int:
    """How long one provider call waits to connect, and again for the answer (read at call time)."""
    return settings.DISPATCH_SEND_TIMEOUT_SECONDS


def longest_send_seconds() -> int:
    """The longest one provider call can keep a worker: the timeout to connect plus the timeout
    for the answer. The outbox's claim lease must exceed it (checks.py)."""
    return 2 * send_timeout_seconds()


class DeliveryError(Exception):
    """The provider did not take the message, or we cannot tell.

    `permanent`: retrying cannot help. `unknown`: the request went out and its answer was lost, so
    the provider may have taken the message after all; the next attempt asks before sending.
    """

    def __init__(self, message: str, *, permanent: bool = False, unknown: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unknown = unknown


class ConsoleAdapter:
    """Writes the message to the log; the default, so a fresh install never texts anyone."""

    name = "console"

    def send(self, message: OutboundMessage) -> str:
        log.info(
            "Outbound %s to %s%s: %s",
            message.channel,
            message.recipient,
            f" [{message.subject}]" if message.subject else "",
            message.body + "".join(f"\n[attached: {item['name']}]" for item in message.attachments or []),
        )
        return f"console-{uuid.uuid4()}"

    def find_sent(self, message: OutboundMessage, *, taken: Collection[str] = ()) -> str | None:
        # A log line reaches no one, so logging it again duplicates nothing a customer sees.
        return None


class FileAdapter:
    """Appends one JSON line per message to a file, for demos and end-to-end checks."""

    name = "file"

    def __init__(self, path: str | Path | None = None) -> None:
        configured = path or getattr(settings, "DISPATCH_MESSAGE_FILE_PATH", "")
        if not configured:
            base = Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var"))
            configured = base / "outbox.jsonl"
        self.path = Path(configured)

    def send(self, message: OutboundMessage) -> str:
        provider_id = f"file-{uuid.uuid4()}"
        line = json.dumps(
            {
                "provider_message_id": provider_id,
                "message_id": str(message.pk),
                "channel": message.channel,
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
                "template": message.template,
                "attachments": [
                    {"name": name, "content_type": kind, "size": len(data)}
                    for name, data, kind in attachment_files(message)
                ],
                "ticket_id": str(message.ticket_id) if message.ticket_id else None,
                "written_at": timezone.now().isoformat(),
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # One write of one line in append mode: concurrent workers never interleave lines.
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            raise DeliveryError(f"Could not write {self.path}: {exc}") from exc
        return provider_id

    def find_sent(self, message: OutboundMessage, *, taken: Collection[str] = ()) -> str | None:
        """The provider id of the line this file already holds for the message, or None."""
        wanted = str(message.pk)
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if wanted not in line:
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a writer killed mid-write was never delivered
                    if isinstance(entry, dict) and entry.get("message_id") == wanted:
                        return entry.get("provider_message_id") or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeliveryError(f"Could not read {self.path}: {exc}") from exc
        return None


# Twilio statuses after which the request may still have created the message: an internal error
# and the gateway answers (502, 504) can come after Twilio's side acted. A 503 and every 4xx say
# it did not.
ANSWER_LOST_STATUSES = (500, 502, 504)
# A lookup matches only messages Twilio created no earlier than this before our row was created.
# A message cannot reach Twilio before it exists here, so an older identical text is another one
# (the same reminder for an earlier visit); the margin absorbs the skew between our clock and
# Twilio's and Twilio's whole-second timestamps, with room to spare for NTP-synced hosts.
LOOKUP_CLOCK_MARGIN = timedelta(minutes=5)
LOOKUP_PAGE_SIZE = 50
# Pages of Twilio's list a look-up reads before it gives up telling (a busy conversation).
LOOKUP_MAX_PAGES = 5


class TwilioSmsAdapter:
    """Sends SMS with Twilio's Messages API (POST .../Accounts/{SID}/Messages.json)."""

    name = "twilio"

    def __init__(self) -> None:
        self.account_sid = getattr(settings, "TWILIO_ACCOUNT_SID", "")
        self.auth_token = getattr(settings, "TWILIO_AUTH_TOKEN", "")
        self.from_number = getattr(settings, "TWILIO_FROM_NUMBER", "")
        self.api_base = (getattr(settings, "TWILIO_API_BASE", "") or "https://api.twilio.com").rstrip("/")
        if not (self.account_sid and self.auth_token and self.from_number):
            raise ImproperlyConfigured(
                "Live SMS delivery needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER."
            )

    def _messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def _request(self, query: dict[str, str | int] | None = None, form: dict[str, str] | None = None) -> Request:
        url = f"{self.api_base}{self._messages_path()}"
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json"}
        if form is None:
            return Request(f"{url}?{urlencode(query or {})}", method="GET", headers=headers)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return Request(url, data=urlencode(form).encode(), method="POST", headers=headers)

    def send(self, message: OutboundMessage) -> str:
        request = self._request(form={"To": message.recipient, "From": self.from_number, "Body": message.body})
        try:
            with urlopen(request, timeout=send_timeout_seconds()) as response:
                answer = json.loads(response.read().decode("utf-8") or "{}")
        except HTTPError as exc:
            detail = _twilio_error(exc)
            # 400/404: Twilio refused this message itself (bad number, unsubscribed recipient);
            # sending it again gives the same answer. Anything else may pass on a later try.
            raise DeliveryError(
                f"Twilio answered {exc.code}: {detail}",
                permanent=exc.code in (400, 404),
                unknown=exc.code in ANSWER_LOST_STATUSES,
            ) from exc
        except URLError as exc:
            # urllib wraps only what fails before the whole request is written (name lookup, a
            # refused connection, a connect timeout): Twilio cannot have the message.
            raise DeliveryError(f"Twilio unreachable: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            # The request was written and the answer never came whole (a read timeout, the
            # connection reset or closed): Twilio may well have taken the message.
            raise DeliveryError(
                f"Twilio's answer was lost ({type(exc).__name__}: {exc}); the message may have been sent.",
                unknown=True,
            ) from exc
        except ValueError as exc:
            raise DeliveryError(f"Twilio answered with something that is not JSON: {exc}", unknown=True) from exc
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not sid:
            raise DeliveryError("Twilio accepted the request but returned no message sid.", unknown=True)
        return str(sid)

    def find_sent(self, message: OutboundMessage, *, taken: Collection[str] = ()) -> str | None:
        """The sid of the message Twilio already holds for this one (same recipient, sender and
        text, created since the row was), or None. `taken`: sids other rows already recorded.

        Every failure is retryable, 401/403/404 included: a lookup sends nothing, so retrying
        costs nothing, and what those answers point at (credentials, the account sid) is fixed by
        a person, after which the next retry goes through.
        """
        since = message.created_at - LOOKUP_CLOCK_MARGIN
        wanted = _comparable(message.body)
        request = self._request(query={"To": message.recipient, "From": self.from_number, "PageSize": LOOKUP_PAGE_SIZE})
        for _page in range(LOOKUP_MAX_PAGES):
            answer = self._listed(request)
            listed = answer.get("messages")
            if not isinstance(listed, list):
                raise DeliveryError("Twilio's message list answer has no messages.")
            oldest = None
            for item in listed:  # newest first
                created = _twilio_time(item.get("date_created")) if isinstance(item, dict) else None
                if created is None:
                    # Without its date a listed message can be neither matched nor ruled out.
                    sid = str(item.get("sid", "")) if isinstance(item, dict) else ""
                    raise DeliveryError(f"Twilio listed a message ({sid or 'no sid'}) without a readable date_created.")
                oldest = created if oldest is None else min(oldest, created)
                sid = str(item.get("sid") or "")
                if created >= since and sid and sid not in taken and _comparable(item.get("body")) == wanted:
                    return sid
            following = answer.get("next_page_uri")
            if oldest is None or oldest < since or not following:
                return None  # the list reached messages older than ours, or its end
            # Twilio's next page is a path on its API, with the same filters and a page token;
            # anything else (another host, another resource) is not followed.
            if not isinstance(following, str) or not following.startswith(self._messages_path() + "?"):
                raise DeliveryError("Twilio's message list named a next page that is not of this list.")
            request = Request(self.api_base + following, method="GET", headers=request.headers)
        # Pages and pages, all newer than our message: saying "not found" could send it twice, so
        # the attempt fails and a later one asks again. (last_error is shown outside the back
        # office, so it names no recipient.)
        raise DeliveryError(
            f"Twilio lists more than {LOOKUP_MAX_PAGES * LOOKUP_PAGE_SIZE} messages to this recipient since this one "
            "was created; cannot tell whether it was sent."
        )

    def _listed(self, request: Request) -> dict:
        try:
            with urlopen(request, timeout=send_timeout_seconds()) as response:
                answer = json.loads(response.read().decode("utf-8") or "{}")
        except HTTPError as exc:
            raise DeliveryError(f"Twilio's message list answered {exc.code}: {_twilio_error(exc)}") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise DeliveryError(f"Could not read Twilio's message list: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise DeliveryError("Twilio's message list answer has no messages.")
        return answer


# What a trial account puts before every text it sends.
TWILIO_TRIAL_PREFIX = "Sent from your Twilio trial account - "


def _comparable(body: object) -> str:
    """A text as Twilio may list it and as we wrote it, compared alike: Twilio's Smart Encoding
    swaps characters a phone cannot show (curly quotes, long dashes) for plain ones, and a trial
    account prefixes every text. Letters and digits only, case folded."""
    text = body if isinstance(body, str) else ""
    text = text.removeprefix(TWILIO_TRIAL_PREFIX)
    return "".join(char for char in unicodedata.normalize("NFKD", text).casefold() if char.isalnum())


def _twilio_time(value: object) -> datetime | None:
    """Twilio's RFC 2822 timestamps ("Mon, 07 Dec 2026 01:50:00 +0000") as aware datetimes."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _twilio_error(exc: HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8") or "{}")
    except (ValueError, OSError):
        return exc.reason or ""
    if isinstance(body, dict) and body.get("message"):
        return f"{body.get('code', '')} {body['message']}".strip()
    return exc.reason or ""


def attachment_files(message: OutboundMessage) -> list[tuple[str, bytes, str]]:
    """(name, bytes, content type) of each file the message carries, read from storage now. A
    file not (yet) in storage fails the attempt, to be retried, rather than sending without it."""
    files = []
    for item in message.attachments or []:
        try:
            with default_storage.open(item["storage_name"], "rb") as handle:
                files.append((item["name"], handle.read(), item["content_type"]))
        except Exception as exc:  # missing file, or the object store is unreachable
            raise DeliveryError(f"Attachment {item['name']} could not be read: {exc}") from exc
    return files


class DjangoEmailAdapter:
    """Sends email through Django's configured email backend (SMTP in production)."""

    name = "email"

    def send(self, message: OutboundMessage) -> str:
        # DNS_NAME is Django's cached host name; make_msgid's own default does a DNS lookup per call.
        domain = getattr(settings, "DISPATCH_EMAIL_MESSAGE_ID_DOMAIN", "") or str(DNS_NAME)
        # We choose the Message-ID ourselves: it is the only id SMTP gives us to record.
        message_id = make_msgid(idstring="outbox", domain=domain)
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"Message-ID": message_id},
        )
        for name, data, content_type in attachment_files(message):
            email.attach(name, data, content_type)
        # Never longer than the send timeout the claim lease is sized for.
        timeout = min(getattr(settings, "EMAIL_TIMEOUT", None) or send_timeout_seconds(), send_timeout_seconds())
        try:
            connection = get_connection(fail_silently=False, timeout=timeout)
            sent = connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"The mail server refused the recipient: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            lost = isinstance(exc, (TimeoutError, ConnectionResetError, smtplib.SMTPServerDisconnected))
            raise DeliveryError(f"Email not sent: {exc}", unknown=lost) from exc
        if not sent:
            raise DeliveryError("The email backend reported that nothing was sent.")
        return message_id

    def find_sent(self, message: OutboundMessage, *, taken: Collection[str] = ()) -> str | None:
        # SMTP has no way to ask a server whether it took a message, and the recipient's mailbox
        # is not ours to search. So an email whose last attempt may have gone out is sent again:
        # a possible duplicate email is a lesser harm than one that may never have left.
        return None


def adapter_for(channel: str):
    """The adapter that delivers `channel` under the current settings."""
    mode = getattr(settings, "DISPATCH_MESSAGE_DELIVERY", "console") or "console"
    if mode == "console":
        return ConsoleAdapter()
    if mode == "file":
        return FileAdapter()
    if mode == "live":
        if channel == Channel.SMS:
            return TwilioSmsAdapter()
        if channel == Channel.EMAIL:
            return DjangoEmailAdapter()
        raise ImproperlyConfigured(f"No live adapter for channel {channel!r}.")
    raise ImproperlyConfigured(f"DISPATCH_MESSAGE_DELIVERY must be console, file or live, not {mode!r}.")
