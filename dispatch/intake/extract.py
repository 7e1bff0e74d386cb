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

from dispatch.common.languages import language_detect
from dispatch.common.time_phrases import says_any_time, time_windows
from dispatch.tickets import catalog

from .addresses import NOT_CITY_WORDS, address_search, place_key, street_key, street_parts
from .addresses import fold as _fold
from .sanitize import instruction_flags, phone_normalize

# The incident type of a door that cannot be locked (see the urgency cues).
SECURE_ENTRY = "CANNOT_SECURE_ENTRY"
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
    # "Any time", "todo el día": no window, and no limit either (a time window need is met).
    time_preference: Fact | None = None
    callback_phone: Fact | None = None
    email: Fact | None = None
    customer_name: Fact | None = None
    # How the technician gets to the door, in the customer's words ("ask for Dana at the front desk").
    access: Fact | None = None
    spam: list[str] = field(default_factory=list)
    # The priority came from words in the message rather than the default.
    priority_stated: bool = False
    # The urgency cues that fired, by group ("exposure": ["cant lock"], "time": ["tonight"]).
    urgency_cues: dict[str, list[str]] = field(default_factory=dict)
    # "en" or "es" when the message clearly reads as one (dispatch.common.languages), else None.
    language: str | None = None

    @property
    def life_threat(self) -> bool:
        """Gas, fire, smoke or someone hurt: the customer is told to call 911 first."""
        return bool(self.urgency_cues.get("life"))

    def facts(self) -> list[Fact]:
        found = [
            self.incident_type,
            self.address,
            self.time_windows,
            self.time_preference,
            self.callback_phone,
            self.email,
            self.customer_name,
            self.access,
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
# A dispatcher reads urgency from what is at stake, not only from "urgent". The cues are grouped
# by what they say, and the groups combine: a door that cannot be locked is urgent, the same door
# tonight, in the rain or with someone at risk is an emergency. Every cue that fired is kept
# (Extraction.urgency_cues), so a priority can always be explained.

# Life at stake: gas, fire, smoke, someone hurt. The customer is told to call 911 first.
LIFE_PHRASES = (
    "gas leak",
    "gas leaking",
    "smell gas",
    "smelled gas",
    "smelling gas",
    "smells like gas",
    "smell of gas",
    "gas smell",
    "smell natural gas",
    "on fire",
    "caught fire",
    "fire in",
    "flames",
    "burning smell",
    "smells like burning",
    "injured",
    "injury",
    "bleeding",
    "blood",
    "is hurt",
    "got hurt",
    "was hurt",
    "were hurt",
    "badly hurt",
    "hurt badly",
    "hurt bad",
    "someone hurt",
    "someone is hurt",
    "broke her",
    "broke his",
    "crushed",
    "ambulance",
    "unconscious",
    "passed out",
    # Water and electricity together, live wires: someone can be electrocuted.
    "sparks",
    "sparking",
    "electrocuted",
    "electric shock",
    "got shocked",
    "live wire",
    "live wires",
    "exposed wire",
    "exposed wires",
    "water in the outlet",
    "water in the panel",
    "flooding near the panel",
    # "Fingers got caught" is an injury; "almost got his fingers caught" is a near miss (safety).
    "fingers got caught",
    "finger got caught",
    "urgent care",
)
# A fire, but not a fire door, exit, alarm or inspection.
_FIRE_RE = re.compile(
    r"(?<![a-z])fire(?![a-z])(?! (?:exit|door|doors|alarm|alarms|marshal|marshall|code|rated|inspection|inspector|"
    r"extinguisher|department|dept|escape|lane|panel|sprinkler|sprinklers)(?![a-z]))"
    r"|(?<![a-z])smoke(?![a-z])(?! (?:detector|detectors|alarm|alarms|door|doors|seal|seals)(?![a-z]))"
)
# Said to rule a danger out: "nobody was hurt", "no smoke". Removed before the cues are read.
_NEGATED_LIFE_RE = re.compile(
    r"(?<![a-z])(?:no one|noone|nobody|no body|not anyone)(?: (?:is|was|got|has been|were))? "
    r"(?:hurt|injured|bleeding)|(?<![a-z])no (?:injuries|injury|one hurt|smoke|fire|gas)(?![a-z])"
    r"|(?<![a-z])not (?:a fire|on fire|hurt|injured)(?![a-z])|(?<![a-z])(?:fire|gas) (?:company|station|bill|meter)(?![a-z])"
    # "nadie salió herido", "no hay heridos", "no hay humo"
    r"|(?<![a-z])nadie (?:(?:esta|salio|resulto|quedo) )?(?:herido|herida|lastimado|lastimada)"
    r"|(?<![a-z])no hay (?:heridos|humo|fuego|olor a gas)(?![a-z])"
)
# Someone cannot get out, or the way out is shut: an emergency on its own.
TRAPPED_PHRASES = (
    "trapped",
    "stuck inside",
    "locked inside",
    "locked in",
    "cant get out",
    "cannot get out",
    "can not get out",
    "exit blocked",
    "blocked exit",
)
EXIT_PHRASES = ("fire exit", "emergency exit", "fire door", "exit door")
EXIT_SHUT_PHRASES = ("wont open", "doesnt open", "will not open", "jammed", "stuck shut", "cant open", "blocked")
# The premises are open to anyone right now: an emergency on its own.
BREACH_PHRASES = (
    "break in",
    "breakin",
    "broke in",
    "broken into",
    "broke into",
    "burglary",
    "burglar",
    "burglarized",
    "robbed",
    "vandalized",
    "forced entry",
    "forced open",
    "rock through",
    "threw a rock",
    "kicked in",
    "pried",
    "cant secure",
    "cannot secure",
    "can not secure",
    "unable to secure",
    "cant be secured",
    "cannot be secured",
    "unsecured",
)
# The door cannot be locked or shut, or its glass is out: urgent, an emergency when compounded.
EXPOSURE_PHRASES = (
    "cant lock",
    "cnt lock",
    "cant lok",
    "cannot lock",
    "can not lock",
    "unable to lock",
    "wont lock",
    "will not lock",
    "doesnt lock",
    "does not lock",
    "cant be locked",
    "cannot be locked",
    "not secure",
    "stuck open",
    "stays open",
    "stuck wide open",
    "wont close at all",
    "cant close it",
    "cant get it closed",
    "cant get it to close",
    "nobody can lock",
    "no one can lock",
    "cant leave the store open",
    "cant leave it open",
    "shattered",
    "smashed",
    "glass broken",
    "glass is broken",
    "broken glass",
    "glass everywhere",
    "glass is out",
    "broke the glass",
    "glass broke",
    "cracked through",
)
LOCKOUT_PHRASES = (
    "locked out",
    "lockd out",
    "locked outside",
    "lock out",
    "lockout",
    "cant get in",
    "cnt get in",
    "cannot get in",
    "can not get in",
    "unable to get in",
    "cant get inside",
    "cant open the door",
    "cant open the front door",
    "cant open our door",
    "key wont turn",
    "key doesnt work",
    "keys dont work",
    "key wont go in",
    "keys wont go in",
    "stuck outside",
)
# Time pressure: the place has to be closed or used soon.
TIME_PHRASES = (
    "tonight",
    "tonite",
    "tnite",
    "2nite",
    "for the night",
    "overnight",
    "over night",
    "before close",
    "before closing",
    "before we close",
    "b4 close",
    "b4 closing",
    "b4 we close",
    "closing time",
    "end of day",
    "end of the day",
    "eod",
    "this weekend",
    "over the weekend",
    "after hours",
    "afterhours",
    # The time the place closes: it has to be locked by then.
    "close at",
    "closes at",
    "closing at",
    "supposed to close",
    "getting dark",
)
WEATHER_PHRASES = (
    "rain",
    "raining",
    "rainy",
    "pouring",
    "storm",
    "stormy",
    "wind",
    "windy",
    "snow",
    "snowing",
    "freezing",
    "ice",
    "icy",
    "hurricane",
    "heat wave",
)
# Someone may be hurt or shut out if nothing is done: urgent, compounds an exposure.
SAFETY_PHRASES = (
    "could get hurt",
    "could hurt",
    "might get hurt",
    "will get hurt",
    "going to hurt",
    "gonna hurt",
    "someone could",
    "almost hit",
    "nearly hit",
    "slammed on",
    "elderly",
    "seniors",
    "wheelchair",
    "wheelchairs",
    "trip hazard",
    "glass everywhere",
    "glass on the floor",
    "glass on the ground",
    "glass on the sidewalk",
    "hazard",
    "only exit",
    "unsafe",
    "dangerous",
    "safety issue",
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
    "tonite",
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
    "end of day",
    "before we close",
    "before closing",
    "before close",
    "overnight",
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
    "when you get a chance",
    "next week",
    "sometime",
)


@lru_cache(maxsize=4096)
def _first_word(phrase: str) -> str:
    return next(iter(re.findall(r"[a-z0-9%]+", _fold(phrase))), "")


@lru_cache(maxsize=32)
def _word_set(folded: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9%]+", folded))


def _any(folded: str, phrases: Iterable[str]) -> list[str]:
    """The phrases of the list found in the folded text, in the list's order. A phrase whose first
    word is not in the text is passed over without a search: most messages hold few of them."""
    words = _word_set(folded)
    return [p for p in phrases if _first_word(p) in words and _phrase_pattern(p).search(folded)]


# The same cues as customers write them in Spanish, accents folded ("me quedé afuera" is "me quede
# afuera"), by the group they belong to.
SPANISH_CUES: dict[str, tuple[str, ...]] = {
    "life": (
        "olor a gas",
        "huele a gas",
        "fuga de gas",
        "se huele gas",
        "incendio",
        "fuego",
        "humo",
        "se esta quemando",
        "herido",
        "herida",
        "heridos",
        "lastimado",
        "lastimada",
        "se lastimo",
        "sangre",
        "sangrando",
        "ambulancia",
        "inconsciente",
        "se desmayo",
        "le agarro los dedos",
        "chispas",
        "cables pelados",
        "se electrocuto",
        "toques electricos",
        "se machuco",
    ),
    "trapped": (
        "atrapado",
        "atrapada",
        "atrapados",
        "encerrado",
        "encerrada",
        "encerrados",
        "no puede salir",
        "no pueden salir",
        "no puedo salir",
        "no podemos salir",
    ),
    "breach": (
        "se metieron",
        "se metio",
        "entraron a robar",
        "se metieron a robar",
        "nos robaron",
        "robo",
        "asalto",
        "forzaron",
        "la forzaron",
        "patearon la puerta",
        "rompieron la puerta",
        "no se puede asegurar",
        "no puedo asegurar",
        "no podemos asegurar",
    ),
    "exposure": (
        "no puedo cerrar",
        "no podemos cerrar",
        "no se puede cerrar",
        "no cierra con llave",
        "no puedo poner llave",
        "no se puede trancar",
        "no tranca",
        "se queda abierta",
        "trabada abierta",
        "atorada abierta",
        "atascada abierta",
        "no podemos dejar el local abierto",
        "la chapa no cierra",
        "la cerradura no cierra",
        "no asegura",
        "quedo abierta",
        "queda abierta",
        "vidrio roto",
        "vidrio quebrado",
        "cristal roto",
        "cristal quebrado",
        "vidrios por todos lados",
    ),
    "lockout": (
        "me quede afuera",
        "quede afuera",
        "nos quedamos afuera",
        "se quedo afuera",
        "no puedo entrar",
        "no podemos entrar",
        "no puede entrar",
        "la llave no gira",
        "la llave no funciona",
        "llaves adentro",
        "llaves dentro",
    ),
    "time": (
        "esta noche",
        "hoy en la noche",
        "toda la noche",
        "antes de cerrar",
        "cerramos a las",
        "cierran a las",
        "se esta haciendo de noche",
        "este fin de semana",
        "el fin de semana",
        "fuera de horario",
    ),
    "weather": (
        "lluvia",
        "lloviendo",
        "llueve",
        "tormenta",
        "viento",
        "nieve",
        "nevando",
        "nieva",
        "helada",
        "helando",
        "mucho frio",
    ),
    "safety": (
        "peligro",
        "peligroso",
        "peligrosa",
        "se puede lastimar",
        "se pueden lastimar",
        "alguien se puede",
        "ancianos",
        "personas mayores",
        "silla de ruedas",
        "unica salida",
        "vidrios por todos lados",
        "vidrio por todos lados",
        "inseguro",
        "insegura",
    ),
    "urgent": (
        "urgencia",
        "lo antes posible",
        "lo mas pronto posible",
        "cuanto antes",
        "hoy mismo",
        "ahorita",
        "ya mismo",
        "rapido",
        "hoy",
    ),
    "calm": (
        "no es urgente",
        "no hay prisa",
        "sin prisa",
        "cuando puedan",
        "cuando tengan tiempo",
        "la proxima semana",
        "la semana que viene",
    ),
}


# "el vidrio de la puerta está quebrado", "se rompió el cristal": the glass is out, in Spanish word order.
_SPANISH_GLASS_RE = re.compile(
    r"(?<![a-z])(?:vidrio|cristal)s?(?: [a-z]+){0,4} (?:esta |estan |quedo |quedaron )?"
    r"(?:roto|rota|rotos|quebrado|quebrada|quebrados|estrellado|estrellada)(?![a-z])"
    r"|(?<![a-z])se (?:rompio|quebro|estrello) el (?:vidrio|cristal)(?![a-z])"
)
_EMERGENCY_DOOR_RE = re.compile(r"(?<![a-z])(?:emergency (?:exit|door)s?|(?:salida|puerta)s? de emergencia)(?![a-z])")


def urgency_cues(folded: str) -> dict[str, list[str]]:
    """The urgency cues in a folded text, by group (only the groups that fired)."""
    text = _NEGATED_LIFE_RE.sub(" ", folded)

    def found(group: str, phrases: tuple[str, ...]) -> list[str]:
        return _any(text, phrases) + _any(text, SPANISH_CUES.get(group, ()))

    trapped = found("trapped", TRAPPED_PHRASES)
    shut = _any(text, EXIT_SHUT_PHRASES)
    exits = _any(text, EXIT_PHRASES)
    groups = {
        "life": found("life", LIFE_PHRASES) + [m.group(0) for m in _FIRE_RE.finditer(text)][:1],
        # A fire exit that will not open is someone who cannot get out; a fire exit alone is not.
        "trapped": trapped + (exits + shut if exits and (trapped or shut) else []),
        "breach": found("breach", BREACH_PHRASES),
        "exposure": found("exposure", EXPOSURE_PHRASES) + [m.group(0) for m in _SPANISH_GLASS_RE.finditer(text)][:1],
        "lockout": found("lockout", LOCKOUT_PHRASES),
        "time": found("time", TIME_PHRASES),
        "weather": found("weather", WEATHER_PHRASES),
        "safety": found("safety", SAFETY_PHRASES),
        # An emergency exit is a kind of door, not an emergency.
        "emergency": _any(_EMERGENCY_DOOR_RE.sub(" ", text), EMERGENCY_WORDS),
        "urgent": found("urgent", URGENT_WORDS),
        "calm": found("calm", CALM_PHRASES),
    }
    return {name: hits for name, hits in groups.items() if hits}


def instructions_removed(text: str) -> str:
    """The text less its sentences addressed to a machine ("SYSTEM: set priority EMERGENCY"): a
    customer cannot raise their own priority by telling us to (sanitize flags the message)."""
    sentences = re.split(r"(?<=[.!?\n])\s+|(?=<!--)", text)
    return " ".join(s for s in sentences if not instruction_flags(s).get("injection"))


def _priority(folded: str) -> tuple[Fact, bool, dict[str, list[str]]]:
    cues = urgency_cues(instructions_removed(folded))
    has = cues.__contains__
    calm = cues.get("calm", [])
    compounded = has("time") or has("weather") or has("safety") or has("emergency")
    if has("life") or has("trapped") or has("breach"):
        return Fact("priority", EMERGENCY, 95 if has("life") else 90), True, cues
    if has("exposure") or has("lockout"):
        if compounded:
            return Fact("priority", EMERGENCY, 90), True, cues
        return Fact("priority", URGENT, 85), True, cues
    if has("emergency"):
        # "Not an emergency" is calm, not an emergency word.
        if any(p in calm for p in ("not an emergency", "no emergency")):
            return Fact("priority", ROUTINE, 80), True, cues
        return Fact("priority", EMERGENCY, 85), True, cues
    if (has("urgent") or has("safety")) and not calm:
        return Fact("priority", URGENT, 85), True, cues
    if calm:
        return Fact("priority", ROUTINE, 85), True, cues
    return Fact("priority", ROUTINE, 60), False, cues


# --- Address ----------------------------------------------------------------------------------
# Found and split by usaddress in addresses.py; the names are kept here for intake's callers.
__all__ = ["NOT_CITY_WORDS", "address_find", "place_key", "street_key", "street_parts"]


def address_find(text: str) -> Fact | None:
    """The most complete US street address in the text (see addresses.address_search)."""
    found = address_search(text)
    return Fact("address", found[0], found[1]) if found else None


# --- Contact details --------------------------------------------------------------------------

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}(?![\w-])")
# A signature line's closing word, in English or Spanish ("Thanks, Priya", "Gracias, Rosa").
_SIGN_OFF = r"-|—|thanks,?|thank you,?|regards,?|best,?|cheers,?|gracias,?|saludos,?|atentamente,?"
_A_NAME = r"[A-ZÁÉÍÓÚÑ][a-záéíóúñü'\-]+(?:\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñü'\-]+)?"
NAME_RE = re.compile(
    rf"\b(?i:my name is|my names|this is|i am|i'm|im|it's|its|me llamo|mi nombre es|soy)\s+(?P<name>{_A_NAME})\b"
    rf"|^\s*(?i:{_SIGN_OFF})\s*(?P<sign>{_A_NAME})\s*$",
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
    rf"\b(?i:my name is|this is|me llamo|mi nombre es)\s+(?P<name>{_A_NAME})\b"
    rf"|^\s*(?i:{_SIGN_OFF})\s*(?P<sign>{_A_NAME})\s*$",
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


# --- Access -------------------------------------------------------------------------------------
# How a technician gets to the door: who lets them in, a code, the hours the place is open. Kept in
# the customer's words (the sentences that say it), for the technician to read on site.

ACCESS_PHRASES = (
    "gate code",
    "door code",
    "access code",
    "entry code",
    "code is",
    "lockbox",
    "lock box",
    "key is under",
    "key under",
    "buzz",
    "buzzer",
    "intercom",
    "ring the bell",
    "ring the doorbell",
    "front desk",
    "reception",
    "receptionist",
    "security desk",
    "security guard",
    "ask for",
    "check in at",
    "loading dock",
    "back entrance",
    "side entrance",
    "rear entrance",
    "service entrance",
    "call when you arrive",
    "call when you get here",
    "call on arrival",
    "call me when",
    "text me when",
    "text when you arrive",
    "text when here",
    "someone will be there",
    "someone is always there",
    "ill be there",
    "i will be there",
    "ill be home",
    "i will be home",
    "we are open",
    "were open",
    "open from",
    "open until",
    "store hours",
    "business hours",
    "our hours",
    "hours are",
    "super will",
    "superintendent",
    "manager on duty",
    "concierge",
    # Spanish
    "codigo del porton",
    "codigo de la puerta",
    "codigo de acceso",
    "el codigo es",
    "porton",
    "timbre",
    "recepcion",
    "pregunte por",
    "preguntar por",
    "pregunten por",
    "llame al llegar",
    "llamen al llegar",
    "llamar al llegar",
    "avisen al llegar",
    "al llegar",
    "estamos abiertos",
    "abrimos",
    "horario",
    "alguien va a estar",
    "va a haber alguien",
    "estare en casa",
    "el encargado",
    "la encargada",
    "entrada de atras",
    "entrada lateral",
    "muelle de carga",
)
# "open 9-5", "de 9 a 5", "7am to 10pm": opening hours said as a range.
_HOURS_RE = re.compile(
    r"(?<![a-z0-9])(?:open|abierto|abiertos|de)\s+\d{1,2}(?::\d{2})?\s*(?:am|pm)?\s*(?:-|to|a|till|til|until|hasta)\s*"
    r"\d{1,2}(?::\d{2})?\s*(?:am|pm)?(?![0-9])"
)
ACCESS_MAX_CHARS = 300


def _access(text: str) -> Fact | None:
    """The sentences of the message that say how to get to the door, or None."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?\n])\s+", text) if s.strip()]
    said = [s for s in sentences if _any(_fold(s), ACCESS_PHRASES) or _HOURS_RE.search(_fold(s))]
    if not said:
        return None
    return Fact("access", " ".join(said)[:ACCESS_MAX_CHARS], 75)


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
    # Spanish
    "ganaste",
    "has ganado",
    "felicidades ganaste",
    "reclama tu",
    "tarjeta de regalo",
    "premio",
    "haz clic",
    "dinero facil",
)
URL_RE = re.compile(
    r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|io|ly|xyz|top|info|biz|co)/\S*", re.IGNORECASE
)


# A carrier's opt-out keywords, sent alone: the sender asks for no more texts, not for a repair.
OPT_OUT_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "opt out"})


def _spam(text: str, folded: str, has_incident: bool) -> list[str]:
    if re.sub(r"[^a-z ]+", " ", folded).strip() in OPT_OUT_WORDS:
        return ["opt_out"]
    reasons = [f"phrase:{p}" for p in _any(folded, SPAM_PHRASES)]
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
    result.priority, result.priority_stated, result.urgency_cues = _priority(folded)
    if result.incident_type is None and (
        result.urgency_cues.get("breach") or any("lock" in cue for cue in result.urgency_cues.get("exposure", []))
    ):
        # "we cnt lock the shop door": no template keyword, but a door that cannot be locked
        # is a door that cannot be secured. Less sure than a keyword.
        result.incident_type = Fact("incident_type", SECURE_ENTRY, 70)
    result.address = address_find(text)
    windows = time_windows(text, now=now, tz=tz)
    if windows:
        result.time_windows = Fact("time_windows", windows, 80)
    elif says_any_time(text):
        # "Any time", "todo el día": no window, and no limit either (a time window need is met).
        result.time_preference = Fact("time_preference", "any time", 70)
    result.callback_phone = _callback(text)
    result.email = _email(text)
    result.customer_name = _name(text)
    result.access = _access(text)
    result.spam = _spam(text, folded, result.incident_type is not None)
    result.language = language_detect(text)
    return result
