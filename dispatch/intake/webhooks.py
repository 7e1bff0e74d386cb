"""The providers' doors: Twilio's inbound SMS webhook and Mailgun's inbound email route.

Each view checks the provider's signature before reading anything else, refuses with 403 and a
log line (path and remote address, never the body) when it does not hold, then hands the
message to `message_receive` — the same service the web form and the agent tool call — and
answers the provider. A text from one of our technicians' phones opens no ticket: scheduling's
`technician_reply_apply` acts on it in the same transaction (tech_replies.py). Replies to the customer never go in the webhook answer: they are
written to the outbox with the ticket change and delivered after commit.
"""

from __future__ import annotations

import hashlib
import logging
from email.utils import parseaddr

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from dispatch.common.client_ip import client_address
from dispatch.common.errors import DispatchError
from dispatch.intake.services import IntakeResult, message_receive, technician_message_settle
from dispatch.scheduling.replies import proposal_reply_apply
from dispatch.scheduling.tech_replies import technician_reply_apply

from .forms import attachments_store
from .signatures import mailgun_request_check, mailgun_token_forget, twilio_request_valid

log = logging.getLogger(__name__)

# Twilio sends a few kilobytes at most (1,600 characters and ten media URLs); the cap leaves
# room for anything a real SMS can carry and refuses what only an attacker would send.
SMS_MAX_BYTES = 256 * 1024
# Mailgun accepts messages up to 25 MB; its POST of one, attachments included, stays under this.
EMAIL_MAX_BYTES = 30 * 1024 * 1024
TWILIO_MEDIA_MAX = 10
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _refuse(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    log.warning("intake webhook refused (%s): %s from %s", reason, request.path, client_address(request))
    return HttpResponse(status=status)


def _too_large(request: HttpRequest, limit: int) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return True


def _form_fields(query_dict) -> dict:
    """The POST form as plain JSON data (one value, or a list for a repeated field), for the record."""
    return {key: values[0] if len(values) == 1 else values for key, values in query_dict.lists()}


def _twiml(status: int = 200) -> HttpResponse:
    return HttpResponse(EMPTY_TWIML, content_type="text/xml; charset=utf-8", status=status)


def _technician_text(result: IntakeResult) -> None:
    """A text from a technician's phone, inside the transaction that stores it: scheduling acts on
    it ("Y" acknowledges their latest dispatch, anything else goes to the dispatcher) and the
    message records what became of it. A redelivery never gets here."""
    if result.technician_id is None:
        return
    reply = technician_reply_apply(result=result)
    if reply is not None:
        technician_message_settle(
            message=result.message,
            for_dispatcher=reply.for_dispatcher,
            ticket_id=reply.ticket_id,
            outcome=reply.outcome,
        )


@csrf_exempt
@require_POST
def twilio_sms(request: HttpRequest) -> HttpResponse:
    """Twilio's "a message comes in" webhook: signed, deduplicated on MessageSid, empty TwiML back."""
    if _too_large(request, SMS_MAX_BYTES):
        return _refuse(request, "body too large", status=413)
    try:
        form = request.POST
    except (RequestDataTooBig, TooManyFieldsSent):
        return _refuse(request, "body too large", status=413)
    valid = twilio_request_valid(
        signature=request.headers.get("X-Twilio-Signature", ""),
        path_info=request.path_info,
        query_string=request.META.get("QUERY_STRING", ""),
        params=form.lists(),
    )
    if not valid:
        return _refuse(request, "bad Twilio signature")
    message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not message_sid:
        return _refuse(request, "no MessageSid", status=400)
    try:
        count = max(0, min(int(form.get("NumMedia") or 0), TWILIO_MEDIA_MAX))
    except ValueError:
        count = 0
    media = [
        {"url": form.get(f"MediaUrl{i}", ""), "content_type": form.get(f"MediaContentType{i}", "")[:100]}
        for i in range(count)
        # Twilio hosts media on https; anything else (file:, javascript:, internal http) is dropped.
        if form.get(f"MediaUrl{i}", "").startswith("https://") and len(form.get(f"MediaUrl{i}", "")) <= 2000
    ]
    try:
        result = message_receive(
            channel="SMS",
            provider_message_id=message_sid,
            sender_phone=form.get("From", ""),
            body=form.get("Body", ""),
            media=media,
            raw=_form_fields(form),
            then=_technician_text,
        )
        # A "1"/"2"/"3" answer to proposed windows books through scheduling's own service,
        # after the message itself is safely recorded.
        proposal_reply_apply(result=result)
    except DispatchError as error:
        log.warning("intake SMS %s not taken: %s %s", message_sid, error.code, error.message)
        return _twiml(status=error.status)
    return _twiml()


def _email_message_id(form) -> str:
    """Mailgun's Message-Id, or — when a sender left it out — a fingerprint of the message, so a
    redelivery of the same email is still recognised."""
    # The angle brackets are RFC 5322 framing, not part of the id ("<abc@host>" is "abc@host").
    message_id = (form.get("Message-Id") or form.get("message-id") or "").strip().strip("<>").strip()
    if message_id:
        return message_id[:255]
    fingerprint = "\n".join(form.get(k, "") for k in ("sender", "recipient", "subject", "Date", "body-plain"))
    return "sha256:" + hashlib.sha256(fingerprint.encode("utf-8", "replace")).hexdigest()


@csrf_exempt
@require_POST
def mailgun_inbound(request: HttpRequest) -> HttpResponse:
    """Mailgun's inbound route (forward to URL): signed, fresh, token used once, then intake."""
    if _too_large(request, EMAIL_MAX_BYTES):
        return _refuse(request, "body too large", status=413)
    try:
        form = request.POST
        files = request.FILES
    except (RequestDataTooBig, TooManyFieldsSent):
        return _refuse(request, "body too large", status=413)
    token = form.get("token", "")
    reason = mailgun_request_check(
        timestamp=form.get("timestamp", ""), token=token, signature=form.get("signature", "")
    )
    if reason:
        return _refuse(request, f"Mailgun signature: {reason}")
    try:
        message_id = _email_message_id(form)
        name, address = parseaddr(form.get("from") or form.get("From") or "")
        sender = form.get("sender") or address
        uploads = [files[key] for key in sorted(files, key=_attachment_order) if key.startswith("attachment")]
        # Stripped text is the customer's reply without the quoted history; fall back to the whole
        # body, and to the HTML part of an HTML-only email (intake strips the markup).
        body = form.get("stripped-text") or form.get("body-plain") or form.get("body-html") or ""
        raw = {k: v for k, v in _form_fields(form).items() if k not in ("signature", "token", "timestamp")}
        message_receive(
            channel="EMAIL",
            provider_message_id=message_id,
            sender_email=sender,
            sender_name=name,
            subject=form.get("subject") or form.get("Subject") or "",
            body=body,
            media=attachments_store(uploads, folder=f"email/{hashlib.sha256(message_id.encode()).hexdigest()[:32]}"),
            raw=raw,
        )
        # No proposal_reply_apply here: an email's From address can be forged by anyone, so a
        # "2" by email stays on the conversation for a dispatcher instead of booking by itself.
    except DispatchError as error:
        log.warning("intake email %s not taken: %s %s", form.get("Message-Id", ""), error.code, error.message)
        return HttpResponse(status=error.status)
    except Exception:
        # Our failure, not Mailgun's: let its retry (same token only if it re-sends one) through.
        mailgun_token_forget(token)
        raise
    return HttpResponse("ok", content_type="text/plain")


def _attachment_order(key: str) -> tuple[int, str]:
    number = key.rpartition("-")[2]
    return (int(number) if number.isdigit() else 0, key)
