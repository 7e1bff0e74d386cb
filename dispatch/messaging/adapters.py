"""Channel adapters: the only code that talks to a message provider.

Each adapter sends one OutboundMessage and returns the provider's id for it, or raises
DeliveryError. They are called by the delivery service with no database transaction open.

settings.DISPATCH_MESSAGE_DELIVERY picks them:
- "console" (default): log the message; nothing leaves the machine.
- "file": append one JSON line per message to DISPATCH_MESSAGE_FILE_PATH.
- "live": SMS through Twilio's REST API, email through Django's email backend (SMTP).
"""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import uuid
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

# The outbox's claim lease is built from this (services.CLAIM_LEASE), so a send never outlives
# the claim that started it.
SEND_TIMEOUT_SECONDS = 30


class DeliveryError(Exception):
    """The provider did not take the message. `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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

    def send(self, message: OutboundMessage) -> str:
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        form = urlencode({"To": message.recipient, "From": self.from_number, "Body": message.body}).encode()
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        request = Request(
            url,
            data=form,
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:
                answer = json.loads(response.read().decode("utf-8") or "{}")
        except HTTPError as exc:
            detail = _twilio_error(exc)
            # 400/404: Twilio refused this message itself (bad number, unsubscribed recipient);
            # sending it again gives the same answer. Anything else may pass on a later try.
            raise DeliveryError(f"Twilio answered {exc.code}: {detail}", permanent=exc.code in (400, 404)) from exc
        except (URLError, TimeoutError, ConnectionError) as exc:
            raise DeliveryError(f"Twilio unreachable: {getattr(exc, 'reason', exc)}") from exc
        except ValueError as exc:
            raise DeliveryError(f"Twilio answered with something that is not JSON: {exc}") from exc
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not sid:
            raise DeliveryError("Twilio accepted the request but returned no message sid.")
        return str(sid)


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
        timeout = getattr(settings, "EMAIL_TIMEOUT", None) or SEND_TIMEOUT_SECONDS
        try:
            connection = get_connection(fail_silently=False, timeout=timeout)
            sent = connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"The mail server refused the recipient: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"Email not sent: {exc}") from exc
        if not sent:
            raise DeliveryError("The email backend reported that nothing was sent.")
        return message_id


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
