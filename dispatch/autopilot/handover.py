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

from dispatch.intake.confidence import classification_threshold, identity_threshold
from dispatch.intake.models import InboundMessage
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import Ticket
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


def handover_reason(ticket: Ticket, messages: list[InboundMessage]) -> Handover | None:
    """The reason this ticket must go to a person before the autopilot acts, or None. A message
    still waiting for a dispatcher's review that intake left unflagged is a reason too."""
    for message in messages:
        # Intake's flags count while the message waits for review: clearing it is a person's answer.
        flags = (message.flags or {}) if message.needs_review else {}
        for flag, code, reason in FLAG_REASONS:
            if flags.get(flag):
                return Handover(code, reason)
        text = f"{message.subject} {message.body}"
        if _THREAT_RE.search(text):
            return Handover("threat", "The customer's message reads as a threat.")
        if _PERSON_RE.search(text):
            return Handover("asks_for_person", "The customer asks to speak to a person.")
    if OutboundMessage.objects.filter(ticket=ticket, status=OutboundMessage.Status.DEAD_LETTER).exists():
        return Handover("unreachable", "Messages to the customer could not be delivered after every retry.")
    if any(m.needs_review for m in messages):
        return Handover("review", "A customer's message waits for a dispatcher's review.")
    # Confidences are intake's, and only a ticket it left in TRIAGED can be one it was unsure of: a
    # job ready to schedule was judged ready (by intake when sure, or by a person), and a ticket a
    # person or an agent opened has none.
    if ticket.state != TicketState.TRIAGED:
        return None
    identity, classification = ticket.identity_confidence, ticket.classification_confidence
    if identity is not None and identity < identity_threshold():
        return Handover("identity", f"Unsure who the customer is ({identity}% sure).")
    if classification is not None and classification < classification_threshold():
        return Handover("classification", f"Unsure what the problem is ({classification}% sure).")
    return None
