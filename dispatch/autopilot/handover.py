"""When the autopilot stops and hands a job to a person, and why.

Anything unsafe or ambiguous is a person's: gas, fire, smoke or someone hurt; a threat; a
customer asking for a person; instruction-like text; a possible duplicate or another customer's
job; an address outside the area; a change or cancellation request; intake unsure of the
customer or the problem. Each reason is read from what intake recorded on the ticket's messages
and the ticket itself; the first that applies is the one given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dispatch.intake.confidence import classification_threshold, identity_threshold
from dispatch.intake.gate import gate_refusals
from dispatch.intake.models import InboundMessage
from dispatch.intake.selectors import blind_intake_of
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import Priority, Ticket
from dispatch.tickets.states import TicketState

# A customer who asks for a person gets one; a threat goes to a person too.
_PERSON_RE = re.compile(
    r"\b(?:speak|talk)\s+(?:to|with)\s+(?:a\s+)?(?:person|human|someone|somebody|manager|dispatcher|representative)"
    r"|\breal person\b|\bhuman being\b|\bcall me back\b|\bhablar con (?:una persona|alguien|un gerente)\b",
    re.IGNORECASE,
)
_THREAT_RE = re.compile(
    r"\b(?:lawyer|attorney|sue you|sue your|lawsuit|kill you|hurt you|going to get you|abogado|demanda(?:r)?)\b",
    re.IGNORECASE,
)

# Flags intake puts on a message, each a reason a person must look.
FLAG_REASONS = (
    ("life_threat", "safety", "Gas, fire, smoke or someone hurt: a person calls the customer."),
    ("injection", "instructions", "The customer's message contains instruction-like text."),
    ("possible_duplicate", "duplicate", "Possibly another customer's request, or a second job at another address."),
    ("outside_service_area", "outside_area", "The address is outside the service area."),
    ("change_request", "change_request", "The customer asks to change or cancel the visit."),
    ("unanswered", "no_answer", "The customer has not sent what was asked twice."),
)


@dataclass(frozen=True)
class Handover:
    code: str
    reason: str
    # When what raised it was said (the message's arrival); None for a standing condition.
    since: datetime | None = None


def handover_reasons(ticket: Ticket, messages: list[InboundMessage]) -> list[Handover]:
    """Every reason this ticket must go to a person before the autopilot acts, most pressing
    first. A message still waiting for a dispatcher's review that intake left unflagged is a
    reason too."""
    found: list[Handover] = []
    for message in messages:
        flags = message.flags or {}
        # Intake's flags count while the message waits for review: clearing it is a person's answer.
        if message.needs_review:
            found += [
                Handover(code, reason, message.received_at) for flag, code, reason in FLAG_REASONS if flags.get(flag)
            ]
        if flags.get("city_assumed") and ticket.priority == Priority.EMERGENCY:
            # Nobody goes to a city the customer never named before they confirm the address.
            found.append(
                Handover(
                    "address_assumed",
                    f"The city was taken to be {flags['city_assumed']}; the customer has not confirmed it.",
                    message.received_at,
                )
            )
        text = f"{message.subject} {message.body}"
        if _THREAT_RE.search(text):
            found.append(Handover("threat", "The customer's message reads as a threat.", message.received_at))
        if _PERSON_RE.search(text):
            found.append(Handover("asks_for_person", "The customer asks to speak to a person.", message.received_at))
    if OutboundMessage.objects.filter(ticket=ticket, status=OutboundMessage.Status.DEAD_LETTER).exists():
        found.append(Handover("unreachable", "Messages to the customer could not be delivered after every retry."))
    waiting = [m.received_at for m in messages if m.needs_review]
    if waiting:
        found.append(Handover("review", "A customer's message waits for a dispatcher's review.", max(waiting)))
    # Confidences are intake's, and only a ticket it left in TRIAGED can be one it was unsure of: a
    # job ready to schedule was judged ready (by intake when sure, or by a person), and a ticket a
    # person or an agent opened has none. Blind intake's gate (an SOP hand-off) is a person's too.
    if ticket.state == TicketState.TRIAGED:
        refusals = gate_refusals(ticket, blind_intake_of(ticket.id))
        if refusals:
            found.append(
                Handover("intake_gate", "Blind intake's gate holds the job: " + " ".join(r.message for r in refusals))
            )
        identity, classification = ticket.identity_confidence, ticket.classification_confidence
        if identity is not None and identity < identity_threshold():
            found.append(Handover("identity", f"Unsure who the customer is ({identity}% sure)."))
        if classification is not None and classification < classification_threshold():
            found.append(Handover("classification", f"Unsure what the problem is ({classification}% sure)."))
    return found
