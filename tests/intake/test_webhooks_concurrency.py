"""Retried deliveries arriving at the same moment, over real HTTP on PostgreSQL: one message, one ticket."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid

import pytest
import requests
from django.core.cache import cache
from twilio.request_validator import RequestValidator

from dispatch.intake.models import InboundMessage
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PUBLIC_URL = "https://dispatch.doorservice.example"
AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
MAILGUN_KEY = "key-mailgun-signing-for-tests-abcdef"
DELIVERIES = 8


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.DISPATCH_PUBLIC_URL = PUBLIC_URL
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.MAILGUN_SIGNING_KEY = MAILGUN_KEY
    cache.clear()


def _all_at_once(send) -> list[int]:
    """Run `send()` on DELIVERIES threads released together; their HTTP statuses."""
    barrier = threading.Barrier(DELIVERIES)
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver():
        barrier.wait()
        status = send()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=deliver) for _ in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_the_same_message_sid_delivered_concurrently_makes_one_message_and_one_ticket(live_server):
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": "+15105550177",
        "To": "+15105550100",
        "Body": "Our storefront door won't lock, 88 Market St, Oakland CA 94607",
        "NumMedia": "0",
    }
    # Signed for the public URL, posted to the live server's own address: the signature holds.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/hooks/twilio/sms", form)

    statuses = _all_at_once(
        lambda: (
            requests.post(
                live_server.url + "/hooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}, timeout=60
            ).status_code
        )
    )

    assert statuses == [200] * DELIVERIES
    assert InboundMessage.objects.filter(provider_message_id=form["MessageSid"]).count() == 1
    assert Ticket.objects.count() == 1
    ticket = Ticket.objects.get()
    confirmations = OutboundMessage.objects.filter(ticket=ticket, template="customer_confirmation")
    assert confirmations.count() == 1


def test_the_same_email_delivered_concurrently_makes_one_message_and_one_ticket(live_server):
    message_id = f"{uuid.uuid4().hex}@mail.example.com"

    def send() -> int:
        # Each redelivery carries its own token and signature, as Mailgun's do.
        stamp, token = str(int(time.time())), uuid.uuid4().hex * 2
        form = {
            "sender": "lee@example.com",
            "from": "Lee Park <lee@example.com>",
            "subject": "Garage door stuck",
            "body-plain": "The garage door is stuck half open at 12 Pine St, Berkeley CA 94704.",
            "Message-Id": f"<{message_id}>",
            "timestamp": stamp,
            "token": token,
            "signature": hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest(),
        }
        return requests.post(live_server.url + "/hooks/email/inbound", data=form, timeout=60).status_code

    assert _all_at_once(send) == [200] * DELIVERIES
    assert InboundMessage.objects.filter(provider_message_id=message_id).count() == 1
    assert Ticket.objects.count() == 1
