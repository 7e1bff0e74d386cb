"""The real channel adapters against local servers that speak the providers' protocols."""

from __future__ import annotations

import email
import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from dispatch.messaging import adapters
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import outbox_deliver, outbox_enqueue
from tests.messaging.conftest import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN

Status = OutboundMessage.Status


@pytest.mark.django_db
def test_sms_goes_to_twilios_messages_api_with_basic_auth_and_form_fields(live_sms):
    message = outbox_enqueue(channel="SMS", recipient="(510) 555-0142", body="Your technician is on the way.")
    outbox_deliver(message_id=message.pk)

    [request] = live_sms.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.basic_auth == (TWILIO_SID, TWILIO_TOKEN)
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form == {"To": "+15105550142", "From": TWILIO_FROM, "Body": "Your technician is on the way."}
    assert request.accepted
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_message_id.startswith("SM") and len(message.provider_message_id) == 34


@pytest.mark.django_db
def test_wrong_twilio_credentials_fail_the_attempt_and_keep_the_message(live_sms, settings):
    settings.TWILIO_AUTH_TOKEN = "wrong-token"
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    # Credentials get fixed by a person; until then the message waits and retries.
    assert message.status == Status.FAILED
    assert "401" in message.last_error and "Authenticate" in message.last_error
    assert live_sms.sent == []


@pytest.mark.django_db
def test_an_unreachable_twilio_is_a_retryable_failure(settings, live_sms):
    from tests.messaging.conftest import free_port

    settings.TWILIO_API_BASE = f"http://127.0.0.1:{free_port()}"
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "unreachable" in message.last_error


def test_live_sms_without_twilio_credentials_is_a_configuration_error(settings):
    settings.DISPATCH_MESSAGE_DELIVERY = "live"
    settings.TWILIO_ACCOUNT_SID = ""
    with pytest.raises(ImproperlyConfigured):
        adapters.adapter_for("SMS")


@pytest.mark.django_db
def test_email_goes_through_smtp_with_the_message_id_we_record(smtp_server):
    message = outbox_enqueue(
        channel="EMAIL",
        recipient="pat@example.com",
        template="schedule_confirmed",
        context={"window": "Tuesday 9-11 am", "ticket_ref": "RD-7"},
    )
    outbox_deliver(message_id=message.pk)

    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "dispatch@door-service.example"
    assert envelope.rcpt_tos == ["pat@example.com"]
    received = email.message_from_bytes(envelope.original_content)
    assert received["Subject"] == "Your appointment is confirmed"
    assert received["To"] == "pat@example.com"
    assert "Tuesday 9-11 am" in received.get_payload(decode=True).decode()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_message_id == received["Message-ID"]
    assert message.provider_message_id.startswith("<") and message.provider_message_id.endswith(">")


@pytest.mark.django_db
def test_an_smtp_server_that_is_down_fails_the_attempt(settings, smtp_server):
    from tests.messaging.conftest import free_port

    settings.EMAIL_PORT = free_port()
    message = outbox_enqueue(channel="EMAIL", recipient="pat@example.com", body="Booked for Tuesday.")
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.last_error.startswith("Email not sent")
    assert smtp_server.envelopes == []


@pytest.mark.django_db
def test_the_file_adapter_appends_one_json_line_per_message(settings, tmp_path):
    settings.DISPATCH_MESSAGE_DELIVERY = "file"
    outbox_file = tmp_path / "nested" / "outbox.jsonl"
    settings.DISPATCH_MESSAGE_FILE_PATH = str(outbox_file)
    first = outbox_enqueue(channel="SMS", recipient="+15105550142", body="One")
    second = outbox_enqueue(channel="EMAIL", recipient="pat@example.com", subject="Two", body="Two")
    for message in (first, second):
        outbox_deliver(message_id=message.pk)
    lines = [json.loads(line) for line in outbox_file.read_text(encoding="utf-8").splitlines()]
    assert [(line["channel"], line["recipient"], line["body"]) for line in lines] == [
        ("SMS", "+15105550142", "One"),
        ("EMAIL", "pat@example.com", "Two"),
    ]
    assert lines[1]["subject"] == "Two"
    first.refresh_from_db()
    assert first.provider_message_id == lines[0]["provider_message_id"]


@pytest.mark.django_db
def test_the_console_adapter_is_the_default_and_only_logs(settings, caplog):
    settings.DISPATCH_MESSAGE_DELIVERY = "console"
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Booked for Tuesday.")
    with caplog.at_level(logging.INFO, logger="dispatch.messaging.adapters"):
        outbox_deliver(message_id=message.pk)
    assert "Outbound SMS to +15105550142: Booked for Tuesday." in caplog.text
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_message_id.startswith("console-")
