"""Reading a customer's message, deterministically: what is wrong, how urgent, where, when,
and how to reach them. Each fact comes with a confidence from 0 to 100.

Nothing here writes to the database or guesses beyond the words: a message that names no
address has no address. `message_extract` is a pure function of the text, the moment the
message arrived, the timezone and the incident keywords (editable per incident template in
the admin), so the same message always reads the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from django.conf import settings

from dispatch.common.time_phrases import time_windows
from dispatch.tickets import catalog

from .addresses import NOT_CITY_WORDS, address_search, place_key, street_key, street_parts
from .addresses import fold as _fold
from .sanitize import phone_normalize

EMERGENCY = "EMERGENCY"
URGENT = "URGENT"
ROUTINE = "ROUTINE"


@dataclass(frozen=True)
class Fact:
    name: str
    value: Any
    confidence: int


@dataclass
class Extraction:
    incident_type: Fact | None = None
    priority: Fact = field(default_factory=lambda: Fact("priority", ROUTINE, 60))
    address: Fact | None = None
    time_windows: Fact | None = None
    callback_phone: Fact | None = None
    email: Fact | None = None
    customer_name: Fact | None = None
    spam: list[str] = field(default_factory=list)
    # The priority came from words in the message rather than the default.
    priority_stated: bool = False

    def facts(self) -> list[Fact]:
        found = [
            self.incident_type,
            self.address,
            self.time_windows,
            self.callback_phone,
            self.email,
            self.customer_name,
        ]
        facts = [f for f in found if f is not None]
        if self.priority_stated:
            facts.append(self.priority)
        return facts


# --- Text normalisation -----------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _phrase_pattern(phrase: str, *, inflect: bool = False) -> re.Pattern:
    """A phrase as a pattern: words split by spaces, hyphens or line breaks, whole words only
    (so "closer" does not match "closed"); `inflect` lets the last word take -s, -es, -ed, -ing."""
    words = [re.escape(w) for w in re.split(r"[\s\-]+", _fold(phrase).strip()) if w]
    ending = r"(?:s|es|d|ed|ing)?" if inflect else ""
    return re.compile(r"(?<![a-z0-9])" + r"[\s\-]+".join(words) + ending + r"(?![a-z0-9])")


# --- Incident type ---------------------------------------------------------------------------


def _one_typo(word: str, token: str) -> bool:
    """Whether `token` is `word` with one letter missing, added, changed or two swapped."""
    if token == word or abs(len(token) - len(word)) > 1 or token[0] != word[0]:
        return False
    if len(token) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(token, word)) if a != b]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and token[diff[0]] == word[diff[1]]
            and token[diff[1]] == word[diff[0]]
        )
    shorter, longer = (token, word) if len(token) < len(word) else (word, token)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def incident_keywords() -> dict[str, list[str]]:
    """Keywords per incident type, as the incident templates say today (one query)."""
    # Read for every message, so that an edit in the admin counts at once.
    return catalog.incident_keywords()


@dataclass(frozen=True)
class _Keyword:
    folded: str
    pattern: re.Pattern
    # What one hit is worth: a phrase says more than a single word.
    weight: float
    # Long single words also count when typed with one typo ("autmatic").
    typo_ok: bool


@lru_cache(maxsize=16)
def _keyword_table(rows: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, tuple[_Keyword, ...]], ...]:
    """The incident keywords folded and compiled once per version of the templates. Keyed by the
    keywords themselves (not a timestamp), so an edit in the admin is seen by the next message."""
    table = []
    for incident_type, words in rows:
        # "won't close" and "wont close" are one keyword once folded: count it once.
        unique = sorted({_fold(k).strip() for k in words if k.strip()})
        table.append(
            (
                incident_type,
                tuple(
                    _Keyword(
                        k,
                        _phrase_pattern(k, inflect=True),
                        1.0 + 0.5 * (len(k.split()) - 1),
                        len(k) >= 7 and " " not in k,
                    )
                    for k in unique
                ),
            )
        )
    return tuple(table)


def _incident(folded: str, keywords: dict[str, list[str]]) -> Fact | None:
    scores: dict[str, float] = {}
    tokens = set(re.findall(r"[a-z]{6,}", folded))
    rows = tuple(
        (incident_type, tuple(k for k in words if isinstance(k, str))) for incident_type, words in keywords.items()
    )
    for incident_type, table in _keyword_table(rows):
        score = 0.0
        for keyword in table:
            hits = len(keyword.pattern.findall(folded))
            if hits:
                # Repeating a word adds a little.
                score += keyword.weight * (1 + 0.25 * min(hits - 1, 2))
            elif keyword.typo_ok and any(_one_typo(keyword.folded, t) for t in tokens):
                # "autmatic" is "automatic" typed on a phone; it counts, a little less.
                score += 0.75
        if score:
            scores[incident_type] = score
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    best, best_score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if runner_up == 0:
        confidence = 90 if best_score >= 1.5 else 86
    elif best_score - runner_up >= 1.0:
        confidence = 85
    elif best_score > runner_up:
        confidence = 70
    else:
        confidence = 50
    return Fact("incident_type", best, confidence)


# --- Urgency ----------------------------------------------------------------------------------

# Safety or security at stake: the building cannot be secured, someone is trapped, an exit is
# blocked, glass is broken. Any of these alone makes a job an emergency.
SAFETY_PHRASES = (
    "cant lock",
    "cannot lock",
    "can not lock",
    "unable to lock",
    "wont lock at all",
    "cant lock up",
    "cant be locked",
    "cannot be locked",
    "cant secure",
    "cannot secure",
    "can not secure",
    "unable to secure",
    "cant be secured",
    "cannot be secured",
    "not secure",
    "unsecured",
    "break in",
    "breakin",
    "broke in",
    "broken into",
    "burglary",
    "burglar",
    "robbed",
    "forced entry",
    "forced open",
    "kicked in",
    "pried",
    "shattered",
    "smashed",
    "glass everywhere",
    "broken glass",
    "trapped",
    "stuck inside",
    "locked inside",
    "locked in",
    "cant get out",
    "cannot get out",
    "fire exit",
    "fire door",
    "emergency exit",
    "exit blocked",
    "blocked exit",
    "injured",
    "hurt",
    "bleeding",
    "unsafe",
    "dangerous",
    "hazard",
)
EMERGENCY_WORDS = ("emergency", "emergancy", "emergencia", "911")
URGENT_WORDS = (
    "urgent",
    "urgently",
    "asap",
    "a s a p",
    "as soon as possible",
    "right away",
    "immediately",
    "today",
    "tonight",
    "this afternoon",
    "this morning",
    "this evening",
    "right now",
    "quickly",
    "same day",
    "same-day",
    "rush",
    "hurry",
    "by end of day",
    "before we close",
    "before closing",
    "cant wait",
    "cannot wait",
    "pronto",
    "urgente",
)
# Words that take the urgency out: "no rush", "not urgent", "whenever".
CALM_PHRASES = (
    "no rush",
    "not urgent",
    "not an emergency",
    "no emergency",
    "whenever",
    "no hurry",
    "not in a hurry",
    "when you can",
    "next week",
    "sometime",
)


def _any(folded: str, phrases: Iterable[str]) -> list[str]:
    return [p for p in phrases if _phrase_pattern(p).search(folded)]


def _priority(folded: str) -> tuple[Fact, bool]:
    safety = _any(folded, SAFETY_PHRASES)
    emergency = _any(folded, EMERGENCY_WORDS)
    calm = _any(folded, CALM_PHRASES)
    urgent = _any(folded, URGENT_WORDS)
    if safety or emergency:
        # "Not an emergency" is calm, not an emergency word.
        if emergency and not safety and any(p in calm for p in ("not an emergency", "no emergency")):
            return Fact("priority", ROUTINE, 80), True
        return Fact("priority", EMERGENCY, 90 if (safety and (emergency or urgent)) else 85), True
    if urgent and not calm:
        return Fact("priority", URGENT, 85), True
    if calm:
        return Fact("priority", ROUTINE, 85), True
    return Fact("priority", ROUTINE, 60), False


# --- Address ----------------------------------------------------------------------------------
# Found and split by usaddress in addresses.py; the names are kept here for intake's callers.
__all__ = ["NOT_CITY_WORDS", "address_find", "place_key", "street_key", "street_parts"]


def address_find(text: str) -> Fact | None:
    """The most complete US street address in the text (see addresses.address_search)."""
    found = address_search(text)
    return Fact("address", found[0], found[1]) if found else None


# --- Contact details --------------------------------------------------------------------------

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}(?![\w-])")
NAME_RE = re.compile(
    r"\b(?i:my name is|my names|this is|i am|i'm|im|it's|its)\s+(?P<name>[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)\b"
    r"|^\s*(?i:-|—|thanks,?|thank you,?|regards,?|best,?|cheers,?)\s*(?P<sign>[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)\s*$",
    re.MULTILINE,
)
_NOT_NAME = {
    "The",
    "This",
    "It",
    "Our",
    "My",
    "Your",
    "A",
    "An",
    "Not",
    "Urgent",
    "Here",
    "There",
    "Back",
    "Door",
    "Calling",
    "Writing",
    "Texting",
    "Still",
    "Going",
    "Having",
    "Sorry",
    "So",
    "Very",
    "Really",
    "Just",
    "At",
    "In",
    "On",
    "Outside",
    "Inside",
    "Locked",
    "Stuck",
    "Trapped",
    "Available",
    "Free",
    "Home",
    "Out",
    "Again",
    # "Thanks Guys", "Best Regards", "Thank you All": a closing, not a signature.
    "Guys",
    "Everyone",
    "All",
    "Team",
    "Folks",
    "Regards",
    "Wishes",
    "Much",
}
# Only the plain ways of giving one's name: a signature line, "my name is ...", "this is ...".
# ("I'm Outside", "it's Broken" are not names; reading one as a name would split a customer's
# reply off their own ticket.)
STATED_NAME_RE = re.compile(
    r"\b(?i:my name is|this is)\s+(?P<name>[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)\b"
    r"|^\s*(?i:-|—|thanks,?|thank you,?|regards,?|best,?|cheers,?)\s*(?P<sign>[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)\s*$",
    re.MULTILINE,
)
# Titles said before a name, which say nothing about who it is.
NAME_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "sr", "sra", "srta"})


def _callback(text: str) -> Fact | None:
    region = getattr(settings, "DISPATCH_DEFAULT_PHONE_REGION", "US") or "US"
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        number = phone_normalize(match.raw_string, strict=True)
        if number:
            return Fact("callback_phone", number, 90)
    return None


def _email(text: str) -> Fact | None:
    match = EMAIL_RE.search(text)
    return Fact("email", match.group(0).lower(), 90) if match else None


def _name(text: str) -> Fact | None:
    for match in NAME_RE.finditer(text):
        name = (match.group("name") or match.group("sign") or "").strip()
        if name and name.split()[0] not in _NOT_NAME:
            return Fact("customer_name", name, 70)
    return None


def stated_name(text: str) -> str:
    """The name the customer signs or introduces themselves with, or "" (see STATED_NAME_RE)."""
    for match in STATED_NAME_RE.finditer(text):
        name = (match.group("name") or match.group("sign") or "").strip()
        if name and name.split()[0] not in _NOT_NAME:
            return name
    return ""


def name_words(name: str) -> list[str]:
    """A name as comparable words: "Sra. Ana Souza" and "ana souza" give ["ana", "souza"]."""
    return [w for w in re.findall(r"[a-z]+", _fold(name)) if w not in NAME_TITLES]


def names_agree(first: str, second: str) -> bool:
    """Whether two names may be the same person: false only when they clearly differ. The same
    first name, one name inside the other ("Souza", "Souza, Ana"), an initial ("A. Souza") or a
    handle holding the other's name ("asouza") agree; a missing name says nothing against."""
    a, b = name_words(first), name_words(second)
    if not a or not b or a[0] == b[0]:
        return True
    if set(a) <= set(b) or set(b) <= set(a):
        return True
    if (len(a[0]) == 1 and b[0].startswith(a[0])) or (len(b[0]) == 1 and a[0].startswith(b[0])):
        return True
    for one, other in ((a, b), (b, a)):
        if len(one) == 1 and len(one[0]) >= 4 and any(len(w) >= 3 and w in one[0] for w in other):
            return True
    return False


# --- Spam ---------------------------------------------------------------------------------------

SPAM_PHRASES = (
    "win a free",
    "you have won",
    "youve won",
    "you won",
    "congratulations you",
    "claim your",
    "free cruise",
    "free gift",
    "gift card",
    "click here",
    "click the link",
    "click below",
    "limited time offer",
    "act now",
    "100% free",
    "risk free",
    "earn money",
    "make money fast",
    "work from home",
    "crypto",
    "bitcoin",
    "btc",
    "investment opportunity",
    "double your",
    "viagra",
    "cialis",
    "casino",
    "lottery",
    "prize",
    "loan approved",
    "pre-approved",
    "preapproved",
    "seo services",
    "rank your website",
    "first page of google",
    "unsubscribe",
    "reply stop",
    "text stop",
    "nigerian prince",
    "wire transfer",
    "urgent business proposal",
    "dear friend",
    "hot singles",
    "weight loss",
    "miracle",
    "cheap meds",
    "final notice",
    "your account has been suspended",
    "verify your account",
    "exclusive deal",
    "100% guaranteed",
)
URL_RE = re.compile(
    r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|io|ly|xyz|top|info|biz|co)/\S*", re.IGNORECASE
)


def _spam(text: str, folded: str, has_incident: bool) -> list[str]:
    reasons = [f"phrase:{p}" for p in SPAM_PHRASES if _phrase_pattern(p).search(folded)]
    without_links = URL_RE.sub(" ", text)
    words = re.findall(r"[A-Za-z]{2,}", without_links)
    links = URL_RE.findall(text)
    if links and len(words) < 3:
        reasons.append("links_only")
    elif len(links) >= 3:
        reasons.append("many_links")
    # A door problem in the message outweighs one spammy phrase ("click here for photos").
    threshold = 2 if has_incident else 1
    strong = "links_only" in reasons
    return reasons if (strong or len(reasons) >= threshold) else []


# --- The whole message --------------------------------------------------------------------------


def message_extract(
    text: str, *, now: datetime, tz: str | None = None, keywords: dict[str, list[str]] | None = None
) -> Extraction:
    """Everything deterministic in one message's text (subject and body)."""
    tz = tz or settings.TIME_ZONE
    folded = _fold(text)
    keywords = incident_keywords() if keywords is None else keywords
    result = Extraction()
    result.incident_type = _incident(folded, keywords)
    result.priority, result.priority_stated = _priority(folded)
    result.address = address_find(text)
    windows = time_windows(text, now=now, tz=tz)
    if windows:
        result.time_windows = Fact("time_windows", windows, 80)
    result.callback_phone = _callback(text)
    result.email = _email(text)
    result.customer_name = _name(text)
    result.spam = _spam(text, folded, result.incident_type is not None)
    return result
