"""Extraction accuracy on a corpus of realistic inbound messages (tests/intake/corpus.py).

Each message goes through the real intake (sanitize, extract, thread, open the ticket) from a
sender the system does not know; it counts as right when the incident type, the priority and
the missing items all match what a dispatcher reading it would say."""

from __future__ import annotations

import pytest

from dispatch.intake.services import message_receive, missing_items
from tests.intake.corpus import CORPUS, SPAM

pytestmark = pytest.mark.django_db

INCIDENT_TYPES = {
    "DOOR_WONT_LATCH",
    "CLOSER_LEAKING_OR_SLAMMING",
    "AUTO_OPERATOR_FAULT",
    "CANNOT_SECURE_ENTRY",
    "HARDWARE_REPLACEMENT",
    "FRAME_OR_GLASS_DAMAGE",
}
MINIMUM_ACCURACY = 0.90


def test_the_corpus_is_varied_enough():
    assert len(CORPUS) >= 40
    assert {row[3] for row in CORPUS} >= INCIDENT_TYPES | {None, SPAM}
    assert {row[4] for row in CORPUS} >= {"EMERGENCY", "URGENT", "ROUTINE"}
    assert sum(1 for row in CORPUS if row[3] == SPAM) >= 4
    assert sum(1 for row in CORPUS if row[5]) >= 10
    greetings = ("hola", "bonjour", "olá", "xin chào")
    assert all(any(g in row[2].lower() for row in CORPUS) for g in greetings)


def test_extraction_accuracy_on_the_corpus():
    right, misses = 0, []
    for index, (channel, subject, body, incident_type, priority, missing) in enumerate(CORPUS):
        sender = (
            {"sender_phone": f"+1510555{2000 + index:04d}"}
            if channel == "SMS"
            else {"sender_email": f"c{index}@example.com"}
        )
        result = message_receive(
            channel=channel, provider_message_id=f"corpus-{index}", subject=subject, body=body, **sender
        )
        if result.spam:
            got = (SPAM, None, None)
        else:
            ticket = result.ticket
            got = (ticket.incident_type or None, ticket.priority, set(missing_items(ticket)))
        expected = (incident_type, priority, missing)
        if got == expected:
            right += 1
        else:
            misses.append(f"#{index} {body[:60]!r}: expected {expected}, got {got}")
    accuracy = right / len(CORPUS)
    print(f"intake extraction accuracy: {accuracy:.1%} on {len(CORPUS)} messages")
    for miss in misses:
        print("  miss", miss)
    assert accuracy >= MINIMUM_ACCURACY, (
        f"intake extraction accuracy {accuracy:.1%} on {len(CORPUS)} messages is below {MINIMUM_ACCURACY:.0%}:\n"
        + "\n".join(misses)
    )
