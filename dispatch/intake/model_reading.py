"""The optional model's reading of a customer's message, taken where it is sure and the rules are
silent or less sure, never where it could do harm.

When DISPATCH_LLM_URL names an OpenAI-compatible server, intake asks it (llm.py) for a structured
reading of the message before the message's transaction opens (a network call never holds the
sender's lock). What goes to it is the customer's sanitized text less every sentence addressed to
a machine, nothing else. What comes back is a suggestion the rule-based reading (extract.py)
takes in where the model says it is confident:

- the incident type, when the rules found none or were less sure;
- the priority, but never lower than the rules read it (gas, fire or someone hurt stay an
  emergency whatever the model says), and not at all on a message flagged as instruction-like;
- an address, a way in, a time preference or the language, only where the rules found none, and
  only when what the model quotes is in the message (a model that invents an address is ignored).

The model cannot call a tool, cannot clear a flag and cannot move a ticket: the reading changes
the extraction, and intake does what it always does with an extraction. Every message says in
its flags what the model contributed, or why it did not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from dispatch.common.time_phrases import says_any_time, time_windows
from dispatch.tickets import catalog

from . import extract, llm
from .addresses import fold

PRIORITY_RANK = {extract.ROUTINE: 0, extract.URGENT: 1, extract.EMERGENCY: 2}
# How sure intake is of what it took from the model: a confident model, still a machine's guess.
MODEL_CONFIDENCE_CAP = 85
# How much of what the model quotes must be words of the message.
QUOTED_SHARE = 0.6


@dataclass(frozen=True)
class Asked:
    """A reading asked for before the transaction: the model's answer (None when it failed)."""

    reading: llm.LlmReading | None


def reading_ask(text: str) -> Asked | None:
    """Ask the model for its reading of `text` (the message's sanitized words); None when no model
    is configured. Call it outside any transaction: it waits on the network."""
    if not llm.llm_configured():
        return None
    said = extract.instructions_removed(text).strip()
    if not said:
        return Asked(reading=None)
    return Asked(reading=llm.message_read(said, incident_types=catalog.incident_type_names()))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _quoted(value: str, text_words: set[str]) -> bool:
    """Whether what the model quotes is, for the most part, words of the message."""
    words = _words(value)
    return bool(words) and sum(1 for w in words if w in text_words) >= QUOTED_SHARE * len(words)


def _capped(confidence: int) -> int:
    return max(0, min(MODEL_CONFIDENCE_CAP, int(confidence)))


def reading_merge(
    found: extract.Extraction, asked: Asked | None, *, text: str, now, flags: dict, instruction_like: bool
) -> None:
    """Take the confident parts of the model's reading into `found` (see the module docstring) and
    record in `flags["model"]` what was used or why nothing was."""
    if asked is None:
        return
    reading = asked.reading
    if reading is None:
        flags["model"] = {"used": [], "reason": "unavailable"}
        return
    if not llm.reading_confident(reading):
        flags["model"] = {"used": [], "reason": "not_confident", "confidence": reading.confidence}
        return
    confidence = _capped(reading.confidence)
    text_words = set(_words(text))
    used: list[str] = []

    if reading.incident_type and (
        found.incident_type is None
        or (found.incident_type.value != reading.incident_type and found.incident_type.confidence < confidence)
    ):
        found.incident_type = extract.Fact("incident_type", reading.incident_type, confidence)
        used.append("incident_type")

    # Instructions in the message may have steered the model: the rules alone say how urgent it is.
    raised = reading.priority and PRIORITY_RANK[reading.priority] > PRIORITY_RANK[found.priority.value]
    if raised and not instruction_like:
        found.priority = extract.Fact("priority", reading.priority, confidence)
        found.priority_stated = True
        used.append("priority")

    address = reading.address or {}
    line1 = address.get("line1", "")
    number = re.match(r"\d+", line1)
    if found.address is None and number and number.group(0) in text_words and _quoted(line1, text_words):
        parts = {key: address.get(key, "") for key in ("line1", "city", "region", "postal_code")}
        found.address = extract.Fact(
            "address",
            {**parts, "line2": "", "text": ", ".join(v for v in parts.values() if v)},
            min(confidence, 70),
        )
        used.append("address")

    when = reading.time_preference
    if found.time_windows is None and found.time_preference is None and when and _quoted(when, text_words):
        windows = time_windows(when, now=now, tz=settings.TIME_ZONE)
        if windows:
            found.time_windows = extract.Fact("time_windows", windows, min(confidence, 75))
            used.append("time_windows")
        elif says_any_time(when):
            found.time_preference = extract.Fact("time_preference", "any time", min(confidence, 70))
            used.append("time_preference")

    if found.access is None and reading.access and _quoted(reading.access, text_words):
        found.access = extract.Fact("access", reading.access[: extract.ACCESS_MAX_CHARS], min(confidence, 70))
        used.append("access")

    if found.language is None and reading.language:
        found.language = reading.language
        used.append("language")

    flags["model"] = {"used": used, "confidence": reading.confidence}
