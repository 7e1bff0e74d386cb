"""Extraction accuracy on a corpus of realistic inbound messages (tests/intake/corpus.py).

Each message goes through the real intake (sanitize, extract, thread, open the ticket) from a
sender the system does not know, and is compared with what a dispatcher reading it would record.
Three figures are reported and held to separately: the incident type, the priority, and whether
the ticket waits for information (the missing items are non-empty exactly when a dispatcher
would ask). Messages that try to instruct the system never move their ticket past intake."""

from __future__ import annotations

import pytest

from dispatch.intake.receive import INTAKE_STATES
from dispatch.intake.services import message_receive, missing_items
from dispatch.scheduling.models import Appointment
from tests.intake.corpus import CORPUS, INJECTIONS, SPAM, SPANISH

pytestmark = pytest.mark.django_db

INCIDENT_TYPES = {
    "DOOR_WONT_LATCH",
    "CLOSER_LEAKING_OR_SLAMMING",
    "AUTO_OPERATOR_FAULT",
    "CANNOT_SECURE_ENTRY",
    "HARDWARE_REPLACEMENT",
    "FRAME_OR_GLASS_DAMAGE",
}
INCIDENT_MINIMUM = 0.90
PRIORITY_MINIMUM = 0.85
NEEDS_INFO_MINIMUM = 0.90


def _receive(index: int, channel: str, subject: str, body: str):
    """One corpus message through the real intake, as its channel would deliver it."""
    sender = (
        {"sender_phone": f"+1510555{2000 + index:04d}"}
        if channel == "SMS"
        else {"sender_email": f"c{index}@example.com"}
    )
    if channel == "WEB":
        # The web form keeps the address apart from the words (the subject slot holds it).
        return message_receive(
            channel="WEB",
            provider_message_id=f"corpus-{index}",
            body=body,
            extra={"address": subject, "preferred_times": ""},
            **sender,
        )
    return message_receive(channel=channel, provider_message_id=f"corpus-{index}", subject=subject, body=body, **sender)


def test_the_corpus_is_varied_enough():
    assert len(CORPUS) >= 150
    assert {row[0] for row in CORPUS} >= {"SMS", "EMAIL", "WEB"}
    assert {row[3] for row in CORPUS} >= INCIDENT_TYPES | {None, SPAM}
    assert {row[4] for row in CORPUS} >= {"EMERGENCY", "URGENT", "ROUTINE"}
    assert sum(1 for row in CORPUS if row[3] == SPAM) >= 10
    assert sum(1 for row in CORPUS if row[2].strip().upper() in {"STOP", "UNSUBSCRIBE"}) >= 2
    assert sum(1 for row in CORPUS if row[5]) >= 15
    assert len(INJECTIONS) >= 5 and all(row in CORPUS for row in INJECTIONS)
    assert len(SPANISH) >= 25 and all(row in CORPUS for row in SPANISH)
    assert any(row[5] and "time_window" in row[5] for row in CORPUS)
    assert any(row[5] and "access" in row[5] for row in CORPUS)
    bodies = " ".join(row[2].lower() for row in CORPUS)
    for phrase in ("can't lock up tonight", "tenant locked out", "stuck open in the rain", "smell gas", "bleeding"):
        assert phrase in bodies, phrase
    greetings = ("hola", "bonjour", "olá", "xin chào")
    assert all(g in bodies for g in greetings)


def _accuracy(rows: list[tuple[int, tuple]]) -> tuple[dict[str, float], dict[str, list[int]], list[str]]:
    """Each corpus row through intake, judged as a dispatcher would: the figures, the counts, the misses."""
    counts = {"incident type": [0, 0], "priority": [0, 0], "needs info": [0, 0]}
    misses = []
    for index, (channel, subject, body, incident_type, priority, missing) in rows:
        result = _receive(index, channel, subject, body)
        if result.spam:
            got = (SPAM, None, None)
        else:
            ticket = result.ticket
            got = (ticket.incident_type or None, ticket.priority, set(missing_items(ticket)))
        # A message that is not a customer's request counts once, on the incident type.
        judged = {"incident type": (incident_type, got[0])}
        if incident_type != SPAM:
            judged["priority"] = (priority, got[1])
            judged["needs info"] = (bool(missing), bool(got[2]))
        for name, (expected, found) in judged.items():
            counts[name][1] += 1
            if expected == found:
                counts[name][0] += 1
            else:
                misses.append(f"#{index} {name}: {body[:60]!r} expected {expected}, got {found}")
    figures = {name: right / total for name, (right, total) in counts.items()}
    return figures, counts, misses


@pytest.mark.parametrize("part", ["all", "spanish"])
def test_extraction_accuracy_on_the_corpus(part):
    rows = list(enumerate(CORPUS))
    if part == "spanish":
        # Spanish is held to the same figures on its own, not carried by the English majority.
        rows = [(index, row) for index, row in rows if row in SPANISH]
    figures, counts, misses = _accuracy(rows)
    print(
        f"intake accuracy on {len(rows)} messages ({part}): "
        + ", ".join(f"{name} {figure:.1%} ({counts[name][0]}/{counts[name][1]})" for name, figure in figures.items())
    )
    for miss in misses:
        print("  miss", miss)
    report = "\n".join(misses)
    assert figures["incident type"] >= INCIDENT_MINIMUM, report
    assert figures["priority"] >= PRIORITY_MINIMUM, report
    assert figures["needs info"] >= NEEDS_INFO_MINIMUM, report


def test_no_injection_moves_a_ticket_past_intake():
    for index, (channel, subject, body, *_labels) in enumerate(INJECTIONS, start=1000):
        result = _receive(index, channel, subject, body)
        assert result.ticket is not None, body
        result.ticket.refresh_from_db()
        assert result.ticket.state in INTAKE_STATES, (body, result.ticket.state)
        assert result.message.needs_review, body
    assert not Appointment.objects.exists()
