"""Texts from our own technicians' phones: recognised by the sender's number, kept, and never
taken for a customer's request.

Intake stores such a message like any other (same dedupe, same sanitizing) but opens or threads
no ticket and answers nothing: it marks who sent it (flags["technician"]) and whether it reads
as an acknowledgement ("Y", "yes", "ok", "on it"), and leaves it waiting for a dispatcher's
review until someone acts on it. Acting on it is scheduling's business
(dispatch.scheduling.tech_replies); the SMS webhook hands the message there and then settles it
here with `technician_message_settle`.
"""

from __future__ import annotations

import re
import uuid

from dispatch.technicians.models import Technician

from .models import InboundMessage
from .sanitize import phone_normalize

# What a technician texts back to say "I saw the job and I'm taking it", once lower-cased and
# stripped of punctuation ("Yes!", "OK.", "On it 👍" all count).
ACKNOWLEDGEMENT_WORDS = frozenset({"y", "yes", "yep", "yeah", "ok", "okay", "k", "on it", "will do", "got it"})
_NOT_WORD = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def acknowledgement_read(text: str) -> bool:
    """Whether a technician's text is a plain acknowledgement (case, spacing and punctuation aside)."""
    words = _SPACES.sub(" ", _NOT_WORD.sub(" ", (text or "").lower().replace("_", " "))).strip()
    return words in ACKNOWLEDGEMENT_WORDS


def technician_for_phone(phone: str) -> Technician | None:
    """The active technician (with an active login) whose registered phone is `phone` (E.164), or None.

    Phones typed into the back office may not be in E.164 ("(510) 555-0110"), so candidates are
    found by their last four digits and compared once normalised the way intake normalises a
    sender. Two technicians sharing a number is a data error; nobody is picked then.
    """
    if not phone or len(phone) < 5:
        return None
    candidates = Technician.objects.select_related("user").filter(
        is_active=True, user__is_active=True, phone__contains=phone[-4:]
    )
    matches = [t for t in candidates if phone_normalize(t.phone) == phone]
    return matches[0] if len(matches) == 1 else None


def technician_flag(technician: Technician, *, acknowledgement: bool) -> dict:
    """What a technician's message carries in its flags."""
    return {
        "id": str(technician.pk),
        "name": technician.display_name,
        "user_id": technician.user_id,
        "acknowledgement": acknowledgement,
    }


def technician_message_settle(
    *, message: InboundMessage, for_dispatcher: bool, ticket_id: uuid.UUID | None = None, outcome: dict | None = None
) -> InboundMessage:
    """Record what became of a technician's message: the ticket it was about or acted on, what was
    done (flags["technician_reply"]), and whether it still waits for a dispatcher's review."""
    flags = dict(message.flags or {})
    if outcome:
        flags["technician_reply"] = outcome
    message.flags = flags
    message.needs_review = bool(for_dispatcher)
    fields = ["flags", "needs_review"]
    if ticket_id is not None and message.ticket_id is None:
        message.ticket_id = ticket_id
        fields.append("ticket")
    message.save(update_fields=fields)
    return message
