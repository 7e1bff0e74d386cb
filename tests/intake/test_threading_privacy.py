"""A phone number or an email address is not a person: threading never mixes customers.

Ana Souza's job in Fremont is on hold. Someone else writing from her number (Maria Lopez, about
her shop in Oakland) gets a ticket of her own and hears nothing of Ana's: not its state, not its
reference, not its link. A dispatcher sees the possible duplicate. Ana's own replies ("any
update?", "1", "thanks") still join her ticket as they always did."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.cache import caches
from django.utils import timezone

from dispatch.intake.models import Conversation, InboundMessage
from dispatch.intake.selectors import messages_for_review
from dispatch.intake.services import message_receive
from dispatch.intake.status_links import status_token_verify
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.services import ticket_force_hold
from dispatch.tickets.states import TicketState
from tests.factories import ContactFactory, SiteFactory, actor_for, ticket_in_progress, ticket_proposed

pytestmark = pytest.mark.django_db

PHONE = "+15105550188"
ANA_EMAIL = "ana.souza@example.com"
PUBLIC_URL = "https://dispatch.harbordoor.example"
FREMONT = {"address_line1": "3900 Mowry Ave", "city": "Fremont", "region": "CA", "postal_code": "94538"}
# What a reply must never carry of Ana's ticket (its reference and link are checked apart).
ANAS_WORDS = ("paused", "on hold", "Mowry", "Fremont", "Ana", "Souza")
LINK_RE = re.compile(r"/s/([A-Za-z0-9_\-:]+)/")


@pytest.fixture(autouse=True)
def _public_site(settings):
    settings.DISPATCH_COMPANY_NAME = "Harbor Door & Gate Co."
    settings.DISPATCH_PUBLIC_URL = PUBLIC_URL
    caches["limits"].clear()


@pytest.fixture
def ana() -> Ticket:
    """Ana's job at her Fremont address, on hold while a part is ordered; she has texted us before."""
    ticket = ticket_in_progress(
        site=SiteFactory(**FREMONT), customer_name="Ana Souza", customer_phone=PHONE, customer_email=ANA_EMAIL
    )
    ticket = ticket_force_hold(actor=actor_for("dispatcher"), ticket_id=ticket.pk, reason="Part on order").ticket
    Conversation.objects.create(ticket=ticket, channel="SMS", customer_phone=PHONE, last_message_at=timezone.now())
    return ticket


def sms(body: str, *, sid: str, phone: str = PHONE):
    return message_receive(channel="SMS", provider_message_id=sid, sender_phone=phone, body=body)


def web_form(client, **fields):
    data = {
        "name": "Maria Lopez",
        "phone": "(510) 555-0188",
        "email": "",
        "address": "1450 Broadway, Oakland, CA 94612",
        "problem": "The front door of the shop won't latch.",
        "preferred_times": "",
        "website": "",
        "submission_id": str(uuid.uuid4()),
        **fields,
    }
    return client.post("/request/", data, follow=True)


def snapshot(ticket: Ticket) -> tuple:
    """Everything a stranger's message could have changed on a ticket."""
    fresh = Ticket.objects.get(pk=ticket.pk)
    return (
        fresh.state,
        fresh.version,
        fresh.updated_at,
        InboundMessage.objects.filter(ticket=ticket).count(),
        AuditEvent.objects.filter(ticket=ticket).count(),
        OutboundMessage.objects.filter(ticket=ticket).count(),
        fresh.extracted_fields.count(),
    )


def texts_since(before: set) -> list[OutboundMessage]:
    return list(OutboundMessage.objects.exclude(pk__in=before).order_by("created_at", "id"))


def outbox_ids() -> set:
    return set(OutboundMessage.objects.values_list("pk", flat=True))


def assert_tells_nothing_of(ana: Ticket, text: str) -> None:
    assert ana.short_ref not in text
    for word in ANAS_WORDS:
        assert word.lower() not in text.lower(), word
    for token in LINK_RE.findall(text):
        assert status_token_verify(token) != ana.pk


def assert_links_to(ticket: Ticket, text: str) -> None:
    tokens = LINK_RE.findall(text)
    assert tokens and all(status_token_verify(token) == ticket.pk for token in tokens)


def the_flag(ticket: Ticket) -> dict:
    message = InboundMessage.objects.get(ticket=ticket)
    assert message.needs_review and message in messages_for_review()
    (note,) = message.flags["possible_duplicate"]
    return note


# --- the issue ---------------------------------------------------------------------------------


def test_marias_web_request_from_anas_number_gets_her_own_ticket_and_nothing_of_anas(client, ana):
    before, sent = snapshot(ana), outbox_ids()

    response = web_form(client)

    assert response.status_code == 200
    maria = Ticket.objects.exclude(pk=ana.pk).get()
    assert maria.customer_name == "Maria Lopez" and maria.customer_phone == PHONE
    assert (maria.site.address_line1, maria.site.city) == ("1450 Broadway", "Oakland")
    assert maria.site_id != ana.site_id and maria.account_id != ana.account_id
    # The thanks page: her reference and her status link, nothing of Ana's job.
    page = response.content.decode()
    assert maria.short_ref in page
    assert_links_to(maria, page)
    assert_tells_nothing_of(ana, page)
    # The text she is sent: her confirmation only.
    (text,) = texts_since(sent)
    assert (text.ticket_id, text.template, text.recipient) == (maria.pk, "customer_confirmation", PHONE)
    assert maria.short_ref in text.body
    assert_links_to(maria, text.body)
    assert_tells_nothing_of(ana, text.body)
    # The link in it opens her request, not Ana's paused job.
    status = client.get(LINK_RE.search(text.body).group(0)).content.decode()
    assert maria.short_ref in status
    assert_tells_nothing_of(ana, status)
    # Ana's ticket: no message, no change, no audit event, nothing sent.
    assert snapshot(ana) == before
    assert Ticket.objects.get(pk=ana.pk).state == TicketState.ON_HOLD
    # A dispatcher sees the possible duplicate before Maria's job is scheduled.
    assert the_flag(maria) == {
        "ticket_id": str(ana.pk),
        "ticket_ref": ana.short_ref,
        "shared": ["phone"],
        "differs": ["address", "name"],
    }
    assert Ticket.objects.get(pk=maria.pk).state == TicketState.TRIAGED
    opened = AuditEvent.objects.get(ticket=maria, tool_name="intake.receive")
    assert opened.payload["possible_duplicate_of"] == [str(ana.pk)]
    assert "possible_duplicate" in opened.payload["flags"]


# --- texts from the same number ------------------------------------------------------------------


def test_a_text_about_another_address_opens_a_new_ticket_and_is_flagged(ana):
    before, sent = snapshot(ana), outbox_ids()

    result = sms("The back door at 1450 Broadway, Oakland CA 94612 won't latch", sid="SM-1")

    assert result.created_ticket and result.ticket.pk != ana.pk
    assert result.ticket.site.address_line1 == "1450 Broadway"
    texts = texts_since(sent)
    assert texts and all(t.ticket_id == result.ticket.pk and t.recipient == PHONE for t in texts)
    assert result.ticket.short_ref in texts[0].body
    assert_links_to(result.ticket, texts[0].body)
    for text in texts:
        assert_tells_nothing_of(ana, text.body)
    assert snapshot(ana) == before
    assert the_flag(result.ticket)["differs"] == ["address"]


def test_a_text_signed_by_someone_else_opens_a_new_ticket_and_is_flagged(ana):
    before, sent = snapshot(ana), outbox_ids()

    result = sms("Our front door won't latch since this morning.\nThanks, Maria Lopez", sid="SM-1")

    assert result.created_ticket and result.ticket.pk != ana.pk
    assert result.ticket.customer_name == "Maria Lopez"
    # She named no address: she is asked for hers, never shown Ana's.
    assert result.asked == ["address"]
    texts = texts_since(sent)
    assert [t.template for t in texts] == ["customer_confirmation", "needs_info"]
    assert_links_to(result.ticket, texts[0].body)
    for text in texts:
        assert result.ticket.short_ref in text.body
        assert_tells_nothing_of(ana, text.body)
    assert snapshot(ana) == before
    note = the_flag(result.ticket)
    assert (note["ticket_ref"], note["shared"], note["differs"]) == (ana.short_ref, ["phone"], ["name"])


def test_someone_else_on_a_known_contacts_number_is_not_placed_at_the_contacts_site(ana):
    ContactFactory(account=ana.account, site=ana.site, name="Ana Souza", phone=PHONE)

    result = sms("The shop door won't latch.\n- Maria Lopez", sid="SM-1")

    maria = Ticket.objects.get(pk=result.ticket.pk)
    assert result.created_ticket and maria.pk != ana.pk
    assert maria.account_id != ana.account_id and maria.site_id != ana.site_id
    assert maria.customer_name == "Maria Lopez" and result.asked == ["address"]


@pytest.mark.parametrize(
    "body", ["any update?", "thanks!", "yes", "ok", "Thanks, Ana", "ok, see you then\n- Ana Souza", "1"]
)
def test_a_plain_reply_from_the_number_joins_the_open_ticket_as_before(ana, body):
    before, sent = snapshot(ana), outbox_ids()

    result = sms(body, sid="SM-1")

    assert result.ticket.pk == ana.pk and not result.created_ticket and not result.flagged
    assert Ticket.objects.count() == 1
    assert result.message.conversation.ticket_id == ana.pk
    assert "possible_duplicate" not in InboundMessage.objects.get(pk=result.message.pk).flags
    # Nothing for intake to act on while the job is on hold: stored on her ticket, no answer.
    assert texts_since(sent) == []
    state, version = snapshot(ana)[:2]
    assert (state, version) == before[:2]


def test_a_choice_of_proposed_times_still_joins_the_proposal():
    ticket = ticket_proposed(customer_name="Ana Souza", customer_phone=PHONE)

    result = sms("2", sid="SM-1")

    assert result.ticket.pk == ticket.pk and result.reply_option == 2 and not result.created_ticket


def test_an_answer_to_our_question_completes_the_ticket_it_answers():
    first = sms("my door won't latch", sid="SM-1")
    answer = sms("It's 1450 Park St, Alameda CA 94501.\nThanks, Pat", sid="SM-2")

    assert answer.ticket.pk == first.ticket.pk and not answer.created_ticket
    assert Ticket.objects.get(pk=first.ticket.pk).site.address_line1 == "1450 Park St"


def test_the_first_customer_still_reaches_her_own_ticket_behind_the_newer_one(ana):
    maria = sms("Our front door won't latch.\nThanks, Maria Lopez", sid="SM-1").ticket

    result = sms("Any news on the part?\nThanks, Ana", sid="SM-2")

    assert result.ticket.pk == ana.pk != maria.pk and not result.created_ticket
    assert Ticket.objects.count() == 2


# --- the web form ----------------------------------------------------------------------------------


def test_the_same_customer_about_the_same_site_on_the_web_form_joins_her_ticket(client, ana):
    sent = outbox_ids()

    response = web_form(
        client, name="Ana Souza", address="3900 Mowry Avenue, Fremont, CA 94538", problem="Any news on the part?"
    )

    assert Ticket.objects.count() == 1
    message = InboundMessage.objects.get(channel="WEB")
    assert message.ticket_id == ana.pk and not message.needs_review
    # Her own job: her reference and her link.
    page = response.content.decode()
    assert ana.short_ref in page
    assert_links_to(ana, page)
    assert texts_since(sent) == []


def test_the_same_customer_about_another_of_her_addresses_on_the_web_form_opens_a_new_ticket(client, ana):
    web_form(client, name="Ana Souza", address="77 Clay Street, Oakland, CA 94607")

    other = Ticket.objects.exclude(pk=ana.pk).get()
    assert other.site.address_line1 == "77 Clay Street"
    assert the_flag(other)["differs"] == ["address"]


# --- email -----------------------------------------------------------------------------------------


def test_an_email_from_the_same_address_with_another_name_and_address_opens_a_new_ticket(ana):
    before, sent = snapshot(ana), outbox_ids()

    result = message_receive(
        channel="EMAIL",
        provider_message_id="<maria-1@mail.example>",
        sender_email="Ana.Souza@example.com",
        sender_name="Maria Lopez",
        subject="Door at the shop",
        body="The front door at 1450 Broadway, Oakland CA 94612 won't latch.",
    )

    assert result.created_ticket and result.ticket.pk != ana.pk
    (text,) = texts_since(sent)
    assert (text.channel, text.recipient, text.ticket_id) == ("EMAIL", ANA_EMAIL, result.ticket.pk)
    assert result.ticket.short_ref in text.body
    assert_links_to(result.ticket, text.body)
    assert_tells_nothing_of(ana, text.body + text.subject)
    assert snapshot(ana) == before
    note = the_flag(result.ticket)
    assert (note["shared"], note["differs"]) == (["email"], ["address", "name"])
