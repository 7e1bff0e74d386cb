"""outbox_enqueue: what gets written, what gets refused, and that nothing leaves before commit."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import MessageTemplate, OutboundMessage
from dispatch.messaging.services import outbox_enqueue
from tests.factories import ticket_new

SEEDED_PLACEHOLDERS = {
    "tech_dispatched": {"company", "ticket_ref", "address", "window"},
    "customer_confirmation": {"company", "ticket_ref", "status_url"},
    "proposal_windows": {"company", "ticket_ref", "windows"},
    "reminder": {"company", "ticket_ref", "window"},
    "on_my_way": {"company", "ticket_ref", "tech_first_name", "eta"},
    "delay_notice": {"company", "ticket_ref", "eta"},
    "needs_info": {"company", "ticket_ref", "question"},
    "schedule_confirmed": {"company", "ticket_ref", "window"},
    "proposal_reminder": {"company", "ticket_ref", "windows"},
    "proposal_reply_help": {"company", "ticket_ref", "windows"},
    "proposal_reply_unavailable": {"company", "ticket_ref"},
    "already_booked": {"company", "ticket_ref", "window"},
    "tech_ack_confirmed": {"ticket_ref", "address"},
    "tech_ack_nothing_pending": {"company"},
    "customer_confirmation_address": {"company", "ticket_ref", "address", "status_url"},
    "address_confirm": {"company", "ticket_ref", "address"},
    "outside_service_area": {"company", "ticket_ref", "place"},
    "call_911_first": {"company", "ticket_ref"},
    "emergency_dispatched": {"company", "ticket_ref", "tech_first_name", "eta"},
    "customer_confirmation_emergency": {"company", "ticket_ref", "status_url"},
    "needs_info_reminder": {"company", "ticket_ref", "question"},
}


class WrittenBeforeFailure(Exception):
    pass


# The plain SMS alphabet (GSM 03.38): one character outside it turns a text into the 70-character
# UCS-2 encoding. Braces only ever hold placeholders.
GSM_7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà{}"
)


@pytest.mark.django_db
def test_seeded_templates_are_short_and_use_the_documented_placeholders():
    from dispatch.messaging.rendering import placeholders_of

    rows = list(MessageTemplate.objects.all())
    assert {t.code for t in rows if t.language == "en"} == set(SEEDED_PLACEHOLDERS)
    # Every message a customer reads is also written in Spanish; technicians' texts are English.
    spanish = {t.code for t in rows if t.language == "es"}
    assert spanish == set(SEEDED_PLACEHOLDERS) - {"tech_ack_confirmed", "tech_ack_nothing_pending", "tech_dispatched"}
    for template in rows:
        label = f"{template.code} ({template.language})"
        text = template.subject + " " + template.body
        assert set(placeholders_of(text)) == SEEDED_PLACEHOLDERS[template.code], label
        # One SMS segment is 160 characters; leave room for the filled-in values.
        assert len(template.body) <= 140, label
        assert set(template.body) <= GSM_7, (label, sorted(set(template.body) - GSM_7))


@pytest.mark.django_db
def test_template_is_rendered_with_the_company_name_from_settings(settings, django_capture_on_commit_callbacks):
    settings.DISPATCH_COMPANY_NAME = "Bayside Door & Gate"
    ticket = ticket_new()
    with django_capture_on_commit_callbacks() as callbacks:
        message = outbox_enqueue(
            channel="SMS",
            recipient="(510) 555-0142",
            template="on_my_way",
            ticket=ticket,
            context={"tech_first_name": "Dana", "eta": "10:40", "ticket_ref": "RD-1042"},
        )
    assert message.body == "Bayside Door & Gate: Dana is on the way and should arrive around 10:40 (ref RD-1042)."
    assert message.recipient == "+15105550142"
    assert message.status == OutboundMessage.Status.PENDING
    assert message.template == "on_my_way"
    assert message.ticket == ticket
    assert message.subject == ""
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_email_takes_the_rendered_template_subject():
    message = outbox_enqueue(
        channel="EMAIL",
        recipient="pat@example.com",
        template="schedule_confirmed",
        context={"window": "Tuesday 9-11 am", "ticket_ref": "RD-7"},
    )
    assert message.subject == "Your appointment is confirmed"
    assert "Tuesday 9-11 am" in message.body


@pytest.mark.django_db
def test_a_missing_placeholder_value_is_refused_and_nothing_is_written():
    with pytest.raises(DispatchError) as refused:
        outbox_enqueue(channel="SMS", recipient="+15105550142", template="reminder", context={"ticket_ref": "RD-1"})
    assert refused.value.code == "TEMPLATE_CONTEXT_MISSING"
    assert refused.value.details["missing_keys"] == ["window"]
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db
def test_a_template_cannot_reach_into_objects():
    MessageTemplate.objects.create(code="sneaky", body="{company} {ticket.site.access_code}")
    ticket = ticket_new()
    with pytest.raises(DispatchError) as refused:
        outbox_enqueue(channel="SMS", recipient="+15105550142", template="sneaky", context={"ticket": ticket})
    assert refused.value.code == "TEMPLATE_INVALID"
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db
def test_context_values_are_shown_as_text_not_as_their_repr():
    MessageTemplate.objects.create(code="repr_probe", body="Hello {name!r}")
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", template="repr_probe", context={"name": "Pat"})
    assert message.body == "Hello Pat"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"channel": "FAX", "recipient": "+15105550142", "body": "hi"}, "INVALID_REQUEST"),
        ({"channel": "SMS", "recipient": "12", "body": "hi"}, "INVALID_REQUEST"),
        ({"channel": "EMAIL", "recipient": "not-an-address", "body": "hi"}, "INVALID_REQUEST"),
        ({"channel": "SMS", "recipient": "+15105550142", "body": "   "}, "INVALID_REQUEST"),
        ({"channel": "SMS", "recipient": "+15105550142", "body": "x" * 1601}, "INVALID_REQUEST"),
        ({"channel": "SMS", "recipient": "+15105550142", "template": "no_such_template"}, "TEMPLATE_NOT_FOUND"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code(kwargs, code):
    with pytest.raises(DispatchError) as refused:
        outbox_enqueue(**kwargs)
    assert refused.value.code == code
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_message_queued_in_a_rolled_back_transaction_is_never_sent(settings, tmp_path, sync_queue):
    settings.DISPATCH_MESSAGE_DELIVERY = "file"
    settings.DISPATCH_MESSAGE_FILE_PATH = str(tmp_path / "outbox.jsonl")
    with pytest.raises(WrittenBeforeFailure), transaction.atomic():
        outbox_enqueue(channel="SMS", recipient="+15105550142", body="Your technician is on the way.")
        assert OutboundMessage.objects.count() == 1
        raise WrittenBeforeFailure
    assert not OutboundMessage.objects.exists()
    assert not (tmp_path / "outbox.jsonl").exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_message_is_delivered_once_after_commit(settings, tmp_path, sync_queue):
    settings.DISPATCH_MESSAGE_DELIVERY = "file"
    outbox_file = tmp_path / "outbox.jsonl"
    settings.DISPATCH_MESSAGE_FILE_PATH = str(outbox_file)
    with transaction.atomic():
        message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Your technician is on the way.")
        # Still inside the business transaction: no worker may have seen it yet.
        assert not outbox_file.exists()
    lines = [json.loads(line) for line in outbox_file.read_text().splitlines()]
    assert [line["message_id"] for line in lines] == [str(message.pk)]
    assert lines[0]["recipient"] == "+15105550142"
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.provider_message_id == lines[0]["provider_message_id"]
    assert message.attempts == 0


@pytest.mark.django_db
def test_a_ticket_gives_the_template_its_reference_without_the_sender_passing_it():
    ticket = ticket_new()
    message = outbox_enqueue(
        channel="SMS", recipient="+15105550142", template="reminder", ticket=ticket, context={"window": "Tue 9-11"}
    )
    assert message.body.endswith(f"booked for Tue 9-11 (ref {ticket.short_ref}).")
