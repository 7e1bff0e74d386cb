"""Texts from our technicians' phones through the signed Twilio webhook: "Y" acknowledges the
latest dispatch as the technician, anything else reaches the dispatcher, nothing opens a ticket.

Requests are signed by the `twilio` package's own RequestValidator, as in test_webhooks.py.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from dispatch.intake.models import Conversation, InboundMessage
from dispatch.intake.selectors import messages_for_review
from dispatch.intake.technician_messages import acknowledgement_read
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.board import board_day, company_today
from dispatch.scheduling.eta import dispatch_acknowledge
from dispatch.scheduling.models import DispatchAcknowledgement, Escalation, EscalationKind
from dispatch.scheduling.services import tech_check_in
from dispatch.scheduling.wakeups import escalations_resolve_cleared
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.states import TicketState
from tests.factories import TechnicianFactory, UserFactory, actor_for, ticket_dispatched, window_at

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://dispatch.doorservice.example"
AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
SMS_PATH = "/hooks/twilio/sms"
DANA_PHONE = "+15105550110"
CUSTOMER_PHONE = "+15105550142"


@pytest.fixture(autouse=True)
def _provider_secrets(settings):
    settings.DISPATCH_PUBLIC_URL = PUBLIC_URL
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def dana():
    # Typed into the back office the way people write numbers, not in E.164.
    return TechnicianFactory(display_name="Dana Whitfield", phone="(510) 555-0110")


def sms_post(client: Client, *, body: str, sender: str = DANA_PHONE, sid: str | None = None, signature=None):
    form = {
        "ToCountry": "US",
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "NumMedia": "0",
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15105550100",
        "Body": body,
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    form["SmsMessageSid"] = form["MessageSid"]
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + SMS_PATH, form)
    return client.post(
        SMS_PATH, urlencode(form), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
    )


def _dispatched_to(technician, *, hour: int):
    start, end = window_at(days=1, hour=hour)
    return ticket_dispatched(technician=technician, start=start, end=end)


def _events(tool: str):
    return list(AuditEvent.objects.filter(tool_name=tool).order_by("created_at", "lane_seq"))


def _texts_to(phone: str):
    """What was sent to this phone, but the dispatch notices themselves."""
    return list(
        OutboundMessage.objects.filter(recipient=phone).exclude(template="tech_dispatched").order_by("created_at")
    )


# --- reading an acknowledgement -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["Y", "y", "yes", "Yes!", "YES.", "ok", "OK.", "Ok!!", " on it ", "On it 👍", "okay"])
def test_plain_acknowledgements_are_read_as_such(text):
    assert acknowledgement_read(text)


@pytest.mark.parametrize(
    "text", ["", "no", "2", "yes but running late", "not ok", "on my way in 20", "Y?? who is this"]
)
def test_anything_more_is_not_an_acknowledgement(text):
    assert not acknowledgement_read(text)


# --- "Yes!" acknowledges ---------------------------------------------------------------------------


def test_yes_from_danas_phone_acknowledges_her_latest_dispatch_as_her(client, dana):
    older = _dispatched_to(dana, hour=9)
    latest = _dispatched_to(dana, hour=13)
    tickets_before = Ticket.objects.count()
    # The dispatch notice tells her how.
    notice = OutboundMessage.objects.get(ticket=latest, template="tech_dispatched")
    assert notice.recipient == DANA_PHONE and "Reply Y to acknowledge." in notice.body
    # ... and links the job's page on her phone.
    assert f"/tech/jobs/{latest.id}/" in notice.body

    response = sms_post(client, body="Yes!", sid="SM-dana-yes")

    assert response.status_code == 200
    (event,) = _events("tech.acknowledge")
    assert event.ticket_id == latest.id
    assert (event.actor_type, event.actor_role, event.actor_id) == ("HUMAN", "technician", str(dana.user_id))
    assert event.payload["request"]["via"] == "sms"
    acknowledgement = DispatchAcknowledgement.objects.get()
    assert (acknowledgement.ticket_id, acknowledgement.technician) == (latest.id, dana)
    assert not DispatchAcknowledgement.objects.filter(ticket=older).exists()
    # Her answer, through the outbox, naming the job and where it is.
    (answer,) = _texts_to(DANA_PHONE)
    assert (answer.channel, answer.template, answer.ticket_id) == ("SMS", "tech_ack_confirmed", latest.id)
    assert answer.body == f"Got it - {latest.short_ref} at {latest.site.address_line1} is acknowledged."
    # Kept, attached to the job it acknowledged, and not waiting for anyone: no customer ticket.
    message = InboundMessage.objects.get(provider_message_id="SM-dana-yes")
    assert message.ticket_id == latest.id and not message.needs_review and message.conversation is None
    assert message.flags["technician"]["id"] == str(dana.id)
    assert message.flags["technician_reply"]["action"] == "acknowledged"
    assert Ticket.objects.count() == tickets_before
    assert not Conversation.objects.exists()


def test_a_replayed_message_acknowledges_once_and_answers_once(client, dana):
    ticket = _dispatched_to(dana, hour=9)

    for _ in range(3):
        assert sms_post(client, body="ok", sid="SM-dana-retried").status_code == 200

    assert [e.ticket_id for e in _events("tech.acknowledge")] == [ticket.id]
    assert len(_texts_to(DANA_PHONE)) == 1
    assert InboundMessage.objects.filter(provider_message_id="SM-dana-retried").count() == 1


def test_a_second_yes_acknowledges_the_next_dispatch_waiting(client, dana):
    older = _dispatched_to(dana, hour=9)
    latest = _dispatched_to(dana, hour=13)

    sms_post(client, body="Y")
    sms_post(client, body="on it")

    assert [e.ticket_id for e in _events("tech.acknowledge")] == [latest.id, older.id]


def test_y_when_nothing_is_waiting_says_so_and_goes_to_the_dispatcher(client, dana):
    ticket = _dispatched_to(dana, hour=9)
    dispatch_acknowledge(actor=actor_for("technician", technician=dana), ticket_id=ticket.id)

    response = sms_post(client, body="Y", sid="SM-dana-nothing")

    assert response.status_code == 200
    assert len(_events("tech.acknowledge")) == 1  # only the one from the app
    (answer,) = _texts_to(DANA_PHONE)
    assert answer.template == "tech_ack_nothing_pending"
    assert "no new job waiting" in answer.body and "dispatcher" in answer.body
    message = InboundMessage.objects.get(provider_message_id="SM-dana-nothing")
    assert message.needs_review and message in messages_for_review()
    # She has a job in hand: the dispatcher sees the text on the board, on that job.
    escalation = Escalation.objects.get(kind=EscalationKind.TECHNICIAN_MESSAGE)
    assert escalation.ticket_id == ticket.id == message.ticket_id
    assert escalation.details["reason"] == 'Dana Whitfield texted: "Y"'


def test_y_with_no_job_at_all_waits_in_the_review_queue(client, dana):
    tickets_before = Ticket.objects.count()

    sms_post(client, body="yes", sid="SM-dana-idle")

    message = InboundMessage.objects.get(provider_message_id="SM-dana-idle")
    assert message.needs_review and message.ticket is None
    assert message.flags["technician"]["name"] == "Dana Whitfield"
    assert not Escalation.objects.exists()
    assert [m.template for m in _texts_to(DANA_PHONE)] == ["tech_ack_nothing_pending"]
    assert Ticket.objects.count() == tickets_before


# --- anything else goes to the dispatcher ---------------------------------------------------------------


def test_free_text_from_a_technician_reaches_the_dispatcher_and_opens_no_ticket(client, dana):
    ticket = _dispatched_to(dana, hour=9)
    tickets_before = Ticket.objects.count()
    text = "Customer not answering the door, gate is locked. Waiting 10 min."

    response = sms_post(client, body=text, sid="SM-dana-gate")

    assert response.status_code == 200
    assert Ticket.objects.count() == tickets_before
    assert not Conversation.objects.exists()
    assert not DispatchAcknowledgement.objects.exists()
    # Kept as it arrived, waiting for review, on the job she is on.
    message = InboundMessage.objects.get(provider_message_id="SM-dana-gate")
    assert message.body == text and message.needs_review and message.ticket_id == ticket.id
    assert (message.sender_name, message.sender_phone) == ("Dana Whitfield", DANA_PHONE)
    assert list(messages_for_review()) == [message]
    # On the dispatcher's board, under "Needs attention".
    escalation = Escalation.objects.get()
    assert (escalation.kind, escalation.ticket_id) == (EscalationKind.TECHNICIAN_MESSAGE, ticket.id)
    assert escalation.details["reason"] == f'Dana Whitfield texted: "{text}"'
    board = board_day(day=company_today(), now=timezone.now())
    assert [(item.kind, item.ref) for item in board.escalations] == [("TECHNICIAN_MESSAGE", ticket.short_ref)]
    assert board.escalations[0].kind_label == "Message from the technician"
    # One audit event, by her; no answer sent back.
    (event,) = _events("tech.message")
    assert (event.ticket_id, event.actor_role, event.actor_id) == (ticket.id, "technician", str(dana.user_id))
    assert not _texts_to(DANA_PHONE)


def test_the_back_office_lists_a_technicians_text_waiting_for_review(client, dana):
    _dispatched_to(dana, hour=9)
    sms_post(client, body="Need a second tech for the glass tomorrow", sid="SM-dana-glass")

    client.force_login(UserFactory(role="dispatcher"))
    response = client.get(reverse("admin:intake_inboundmessage_changelist") + "?needs_review__exact=1")

    assert response.status_code == 200
    assert [m.provider_message_id for m in response.context["cl"].queryset] == ["SM-dana-glass"]
    page = response.content.decode()
    assert "Dana Whitfield" in page and "Need a second tech for the glass tomorrow" in page


def test_the_board_entry_clears_once_the_job_moves_on_and_the_message_stays_for_review(client, dana):
    ticket = _dispatched_to(dana, hour=9)
    sms_post(client, body="Running 20 min late, traffic on 880", sid="SM-dana-late")
    assert escalations_resolve_cleared() == 0

    tech_check_in(
        actor=actor_for("technician", technician=dana),
        ticket_id=ticket.id,
        timestamp=timezone.now(),
        reason="Previous job finished early",
    )

    assert escalations_resolve_cleared() == 1
    escalation = Escalation.objects.get()
    assert escalation.resolution == "The job moved on since the technician's message."
    assert InboundMessage.objects.get(provider_message_id="SM-dana-late").needs_review


# --- customers and forgers are unaffected ---------------------------------------------------------------


def test_a_customers_y_still_goes_through_intake(client, dana):
    ticket = ticket_dispatched(technician=dana, customer_phone=CUSTOMER_PHONE)

    response = sms_post(client, body="Y", sender=CUSTOMER_PHONE, sid="SM-customer-y")

    assert response.status_code == 200
    message = InboundMessage.objects.get(provider_message_id="SM-customer-y")
    assert message.ticket_id == ticket.id and message.conversation is not None
    assert "technician" not in message.flags
    assert not DispatchAcknowledgement.objects.exists()
    assert not Escalation.objects.exists()
    assert not _texts_to(DANA_PHONE)


def test_a_new_customers_y_opens_a_ticket_as_before(client, dana):
    tickets_before = Ticket.objects.count()

    sms_post(client, body="Y", sender="+15105550199", sid="SM-stranger-y")

    message = InboundMessage.objects.get(provider_message_id="SM-stranger-y")
    assert Ticket.objects.count() == tickets_before + 1
    assert message.ticket.state in (TicketState.NEW, TicketState.NEEDS_INFO)
    assert "technician" not in message.flags


def test_a_technician_who_left_is_a_stranger_again(client, dana):
    ticket = _dispatched_to(dana, hour=9)
    dana.is_active = False
    dana.save(update_fields=["is_active"])

    sms_post(client, body="Y", sid="SM-dana-left")

    assert not DispatchAcknowledgement.objects.filter(ticket=ticket).exists()
    assert "technician" not in InboundMessage.objects.get(provider_message_id="SM-dana-left").flags


def test_a_forged_signature_is_refused_and_acknowledges_nothing(client, dana):
    _dispatched_to(dana, hour=9)

    response = sms_post(client, body="Y", signature="forged-signature=")

    assert response.status_code == 403
    assert not InboundMessage.objects.exists()
    assert not DispatchAcknowledgement.objects.exists()
    assert not _texts_to(DANA_PHONE)
