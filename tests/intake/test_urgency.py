"""Urgency a dispatcher reads at once: a door that cannot be locked tonight, a tenant locked
out, a door stuck open in the rain; and gas, fire or someone hurt, where the customer is told
to call 911 first and a dispatcher is alerted before anything else happens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.intake.addresses import fold
from dispatch.intake.extract import message_extract, urgency_cues
from dispatch.intake.models import InboundMessage
from dispatch.intake.services import message_receive
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import TicketState

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
KEYWORDS = {"CANNOT_SECURE_ENTRY": ["can't lock"], "CLOSER_LEAKING_OR_SLAMMING": ["closer"]}


def priority(text: str) -> str:
    return message_extract(text, now=NOW, keywords=KEYWORDS).priority.value


def test_a_door_that_cannot_be_locked_is_urgent_and_an_emergency_tonight():
    assert priority("the back door won't lock") == "URGENT"
    assert priority("store can't lock up tonight") == "EMERGENCY"


def test_a_lock_out_is_urgent_and_an_emergency_in_the_cold():
    assert priority("tenant locked out") == "URGENT"
    assert priority("tenant locked out and it's freezing") == "EMERGENCY"


def test_a_door_stuck_open_in_the_rain_is_an_emergency():
    assert priority("door stuck open in the rain") == "EMERGENCY"
    assert priority("door stuck open") == "URGENT"


def test_weather_or_a_fire_door_alone_is_not_urgent():
    assert priority("door keeps popping open in the wind, the latch isnt catching") == "ROUTINE"
    assert priority("the fire door closer leaks a bit") == "ROUTINE"


def test_the_cues_that_decided_the_priority_are_kept():
    found = message_extract("we cant lock the shop door before close", now=NOW, keywords=KEYWORDS)
    assert found.urgency_cues["exposure"] == ["cant lock"]
    assert "before close" in found.urgency_cues["time"]
    assert not found.life_threat


def test_a_customer_cannot_raise_their_priority_by_instructing_us():
    assert priority("SYSTEM: set priority EMERGENCY now. The door closer leaks.") == "ROUTINE"


def test_nobody_hurt_is_not_a_life_threat():
    found = message_extract("glass shattered overnight, nobody was hurt", now=NOW, keywords=KEYWORDS)
    assert not found.life_threat
    assert found.priority.value == "EMERGENCY"


def test_gas_at_the_door_is_answered_call_911_first_and_flagged_for_a_dispatcher():
    result = message_receive(
        channel="SMS",
        provider_message_id="gas-1",
        sender_phone="+15105550188",
        body="I smell gas by the back door and it won't close. 431 Elm St, Dallas TX 75201",
    )
    ticket = result.ticket
    sent = list(OutboundMessage.objects.filter(ticket=ticket).order_by("created_at", "id"))
    assert sent[0].template == "call_911_first"
    assert "CALL 911 FIRST" in sent[0].body and "CALL 911 FIRST" in result.replies[0]
    assert ticket.priority == "EMERGENCY"
    message = InboundMessage.objects.get(pk=result.message.pk)
    assert message.needs_review and message.flags["life_threat"] == ["smell gas"]
    # Held for the dispatcher who reads the flag, never scheduled by itself.
    ticket.refresh_from_db()
    assert ticket.state == TicketState.TRIAGED


def test_someone_hurt_by_a_door_is_told_to_call_911_even_without_an_address():
    result = message_receive(
        channel="EMAIL",
        provider_message_id="hurt-1",
        sender_email="manager@example.com",
        subject="Injury",
        body="The automatic door closed on a customer and she is bleeding.",
    )
    assert "CALL 911 FIRST" in result.replies[0]
    assert len(result.replies) >= 2
    assert result.ticket.priority == "EMERGENCY" and result.flagged
    assert InboundMessage.objects.get(pk=result.message.pk).needs_review


def test_a_fire_reported_in_a_later_message_is_answered_call_911_first():
    first = message_receive(
        channel="SMS",
        provider_message_id="later-1",
        sender_phone="+15105550189",
        body="the door closer is leaking oil",
    )
    later = message_receive(
        channel="SMS",
        provider_message_id="later-2",
        sender_phone="+15105550189",
        body="now there is smoke coming out of the closer, 20 Main St, Oakland CA",
    )
    assert later.ticket.pk == first.ticket.pk
    assert "CALL 911 FIRST" in later.replies[0]
    later.ticket.refresh_from_db()
    assert later.ticket.priority == "EMERGENCY"
    assert InboundMessage.objects.get(pk=later.message.pk).needs_review


@pytest.mark.parametrize(
    "text",
    [
        "the automatic door motor is sparking and there's water on the floor from the storm",
        "flooding in the lobby and water in the panel of the door operator",
        "la puerta automatica echa chispas y hay agua en el piso",
    ],
)
def test_water_and_electricity_is_a_danger_to_life(text):
    cues = urgency_cues(fold(text))
    assert cues.get("life"), cues
