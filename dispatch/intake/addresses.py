"""US street addresses in customers' words: found in free text, split into parts by `usaddress`
(a trained parser of US addresses), and compared.

A regular expression only says where a street line may start (a house number); which words
after it are the street, the unit, the city, the state and the ZIP code is usaddress's call,
so "4120 Blackhawk Plaza Cir" keeps its "Plaza" and "1 Town Center Dr" its "Center". What
follows is checked the way a dispatcher would: a street is not called "on" or "doors", "the
side door won't latch" is not a city, and a city without a state or ZIP code must be a place a
US post office knows or end the sentence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import usaddress

from dispatch.common.geocode import place_key, place_known

__all__ = ["address_search", "place_key", "street_key", "street_parts"]


def fold(text: str) -> str:
    """Lower case, straight apostrophes dropped, accents folded: "Won’t" and "wont" read alike."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = text.replace("'", "")
    return re.sub(r"[ \t]+", " ", text)


STREET_SUFFIXES = {
    "street": "st",
    "st": "st",
    "str": "st",
    "avenue": "ave",
    "ave": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "blvd": "blvd",
    "road": "rd",
    "rd": "rd",
    "drive": "dr",
    "dr": "dr",
    "lane": "ln",
    "ln": "ln",
    "way": "way",
    "court": "ct",
    "ct": "ct",
    "place": "pl",
    "pl": "pl",
    "terrace": "ter",
    "ter": "ter",
    "parkway": "pkwy",
    "pkwy": "pkwy",
    "highway": "hwy",
    "hwy": "hwy",
    "circle": "cir",
    "cir": "cir",
    "square": "sq",
    "sq": "sq",
    "loop": "loop",
    "trail": "trl",
    "trl": "trl",
    "plaza": "plz",
    "plz": "plz",
    "pike": "pike",
    "alley": "aly",
    "expressway": "expy",
    "freeway": "fwy",
    "crescent": "cres",
    "center": "ctr",
    "centre": "ctr",
    "ctr": "ctr",
    "row": "row",
    "walk": "walk",
    "path": "path",
    "run": "run",
    "park": "park",
    "point": "pt",
    "pt": "pt",
    "crossing": "xing",
    "commons": "cmns",
    "mall": "mall",
    "heights": "hts",
    "cove": "cv",
}
DIRECTIONS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "n": "n",
    "s": "s",
    "e": "e",
    "w": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "ne": "ne",
    "nw": "nw",
    "se": "se",
    "sw": "sw",
}
STATE_NAMES = {
    "alabama": "AL",
    "alaska": "AK",
    "arizona": "AZ",
    "arkansas": "AR",
    "california": "CA",
    "colorado": "CO",
    "connecticut": "CT",
    "delaware": "DE",
    "district of columbia": "DC",
    "florida": "FL",
    "georgia": "GA",
    "hawaii": "HI",
    "idaho": "ID",
    "illinois": "IL",
    "indiana": "IN",
    "iowa": "IA",
    "kansas": "KS",
    "kentucky": "KY",
    "louisiana": "LA",
    "maine": "ME",
    "maryland": "MD",
    "massachusetts": "MA",
    "michigan": "MI",
    "minnesota": "MN",
    "mississippi": "MS",
    "missouri": "MO",
    "montana": "MT",
    "nebraska": "NE",
    "nevada": "NV",
    "new hampshire": "NH",
    "new jersey": "NJ",
    "new mexico": "NM",
    "new york": "NY",
    "north carolina": "NC",
    "north dakota": "ND",
    "ohio": "OH",
    "oklahoma": "OK",
    "oregon": "OR",
    "pennsylvania": "PA",
    "rhode island": "RI",
    "south carolina": "SC",
    "south dakota": "SD",
    "tennessee": "TN",
    "texas": "TX",
    "utah": "UT",
    "vermont": "VT",
    "virginia": "VA",
    "washington": "WA",
    "west virginia": "WV",
    "wisconsin": "WI",
    "wyoming": "WY",
}
US_STATES = frozenset(STATE_NAMES.values())
# Streets whose names carry no suffix ("1200 Broadway").
NAMED_STREETS = frozenset({"broadway", "embarcadero", "the embarcadero", "the alameda", "bowery", "kingsway"})
# Words no street name holds: "2 doors on Main St" names no street at number 2.
STREET_STOP_WORDS = frozenset(
    {
        "on",
        "at",
        "in",
        "and",
        "or",
        "is",
        "are",
        "was",
        "of",
        "for",
        "to",
        "my",
        "our",
        "a",
        "an",
        "it",
        "its",
        "door",
        "doors",
        "but",
        "with",
        "by",
        "near",
        "from",
        "we",
        "i",
        "min",
        "mins",
        "minute",
        "minutes",
        "hour",
        "hours",
        "hrs",
        "day",
        "days",
        "times",
        "years",
        "am",
        "pm",
    }
)
# Days, times and fillers: never a city, whatever the parser thinks.
NOT_CITY_WORDS = frozenset(
    {
        "today",
        "tomorrow",
        "tonight",
        "asap",
        "please",
        "thanks",
        "thank",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "morning",
        "afternoon",
        "evening",
        "next",
        "this",
        "call",
        "text",
        "the",
        "it",
        "we",
        "i",
        "my",
        "our",
        "front",
        "back",
        "side",
        "rear",
        "main",
        "door",
        "can",
        "need",
        "is",
        "and",
        "apt",
        "unit",
        "suite",
        "after",
        "before",
        "between",
        "anytime",
        "any",
        "around",
        "by",
        "if",
        "so",
        "but",
        "hi",
        "hello",
    }
)
# Words that start the unit part of a street line ("Suite 200", "Apt 4B").
UNIT_WORDS = frozenset({"apt", "apartment", "unit", "suite", "ste", "bldg", "building", "fl", "floor", "rm", "room"})

# Where a street line may start: a house number, not part of a phone number, price or reference.
_NUMBER_START = re.compile(r"(?<![\w#$.,/:+\-])\d{1,6}(?:-\d{1,4})?[A-Za-z]?(?=\s+[A-Za-z0-9])")
# How far after the house number an address may run (one line, a few dozen words at most).
_SPAN_CHARS = 140
_ZIP_RE = re.compile(r"^\d{5}(?:-\d{4})?$")
_CLAUSE_END = re.compile(r"\s*(?:$|[.!?;\n]|\s-\s)")

_STREET_LABELS = (
    "AddressNumberPrefix",
    "AddressNumber",
    "AddressNumberSuffix",
    "StreetNamePreModifier",
    "StreetNamePreDirectional",
    "StreetNamePreType",
    "StreetName",
    "StreetNamePostType",
    "StreetNamePostDirectional",
    "StreetNamePostModifier",
)
_UNIT_LABELS = frozenset({"OccupancyType", "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier"})


@dataclass(frozen=True)
class _Token:
    text: str
    label: str
    start: int
    end: int

    @property
    def bare(self) -> str:
        return self.text.rstrip(",;:")


def _tokens(span: str) -> list[_Token]:
    """usaddress's tokens and labels, each with where it stands in `span`."""
    out, at = [], 0
    for text, label in usaddress.parse(span):
        start = span.find(text, at)
        if start < 0:
            break
        at = start + len(text)
        out.append(_Token(text, label, start, at))
    return out


def _ends_sentence(token: _Token) -> bool:
    """A token closing its sentence ("Oakland." but not "N." or "St.")."""
    if not token.text.endswith((".", "!", "?", ";")):
        return False
    word = token.text.rstrip(".!?;").lower()
    return token.text[-1] != "." or not (
        word in STREET_SUFFIXES or word in DIRECTIONS or word in UNIT_WORDS or len(word) <= 2
    )


def _state(text: str) -> str:
    """A state's two-letter code from its code or name ("California", "ca."), or ""."""
    word = text.strip(" ,.?!").lower()
    if word.upper() in US_STATES and len(word) == 2:
        return word.upper()
    return STATE_NAMES.get(word, "")


def _city_ok(words: list[str], *, with_state_or_zip: bool, ends_clause: bool, after_comma: bool) -> bool:
    """Whether the words after a street are its city: never a day, a time or a filler; with a
    state or ZIP code, any such name; without, a place a post office knows (capitalised, or
    alone at the end of the sentence) or a capitalised name that ends the sentence."""
    if not words or len(words) > 3 or any(w.lower().strip(".") in NOT_CITY_WORDS for w in words):
        return False
    if not all(re.fullmatch(r"(?:St\.|Mt\.|Ft\.)|[A-Za-z][A-Za-z'\-.]*", w) for w in words):
        return False
    capitalised = words[0][:1].isupper()
    if with_state_or_zip:
        return True
    if place_known(" ".join(words)):
        return capitalised or ends_clause
    return ends_clause and (capitalised or after_comma)


@dataclass(frozen=True)
class _Parsed:
    value: dict
    confidence: int


def _tidy(span: str, tokens: list[_Token]) -> str:
    """The words of `tokens` as typed (spacing collapsed), without the punctuation after them."""
    line = " ".join(span[tokens[0].start : tokens[-1].end].split()).strip(" ,;:")
    if line.endswith(".") and not line.endswith(("N.", "S.", "E.", "W.")):
        line = line[:-1]
    return line


def _named_street_cut(street: list[_Token], index: int) -> tuple[list[_Token], int]:
    """A street without a type ("55 Broadway Oakland", read by the parser as one street name)
    ends after its name when that is one of NAMED_STREETS; the words after go back to be read
    as the city."""
    if any(t.label in ("StreetNamePostType", "StreetNamePreType") for t in street):
        return street, index
    names = [i for i, t in enumerate(street) if t.label == "StreetName"]
    for size in (2, 1):
        if len(names) > size and fold(" ".join(street[i].bare for i in names[:size])).strip(".") in NAMED_STREETS:
            keep = names[size - 1] + 1
            return street[:keep], index - (len(street) - keep)
    return street, index


def _parse_at(text: str, start: int) -> _Parsed | None:
    """The street address starting at the house number `text[start]`, or None."""
    # The street's line and the next: a signature or a form puts the city on a line of its own.
    line_end = text.find("\n", start)
    next_end = text.find("\n", line_end + 1) if line_end >= 0 else -1
    span = text[start : min(start + _SPAN_CHARS, next_end if next_end >= 0 else len(text))]
    span = span.replace("\n", ", ", 1) if line_end >= 0 and span[: line_end - start].strip() else span
    tokens = _tokens(span)
    if not tokens or tokens[0].label != "AddressNumber":
        return None
    index, street, seen = 0, [], set()
    sentence_over = False
    # The street line: number, directions, name and type, in the parser's order (a second
    # house number, or a street part after the type's end, is another sentence).
    while index < len(tokens) and tokens[index].label in _STREET_LABELS:
        token = tokens[index]
        if token.label == "AddressNumber" and "AddressNumber" in seen:
            break
        rank = _STREET_LABELS.index(token.label)
        if any(_STREET_LABELS.index(label) > rank for label in seen if label != "StreetName") and token.label in (
            "StreetName",
            "StreetNamePreDirectional",
            "StreetNamePreType",
        ):
            break
        seen.add(token.label)
        street.append(token)
        index += 1
        if _ends_sentence(token) or token.text.endswith(","):
            sentence_over = _ends_sentence(token)
            break
    street, index = _named_street_cut(street, index)
    parts = {label: [t.bare for t in street if t.label == label] for label in _STREET_LABELS}
    name_words = parts["StreetName"]
    if not parts["AddressNumber"] or not name_words:
        return None
    if any(fold(w).strip(".") in STREET_STOP_WORDS for w in name_words + parts["StreetNamePostType"]):
        return None
    suffix = fold(" ".join(parts["StreetNamePostType"])).strip(".")
    if not (
        suffix in STREET_SUFFIXES
        or parts["StreetNamePreType"]
        or fold(" ".join(name_words)).strip(".") in NAMED_STREETS
    ):
        return None
    line1 = _tidy(span, street)
    unit: list[_Token] = []
    while not sentence_over and index < len(tokens) and tokens[index].label in _UNIT_LABELS:
        unit.append(tokens[index])
        index += 1
        if _ends_sentence(tokens[index - 1]) or tokens[index - 1].text.endswith(","):
            sentence_over = _ends_sentence(tokens[index - 1])
            break
    line2 = _tidy(span, unit) if unit else ""
    if unit and not (any(t.label == "OccupancyIdentifier" for t in unit) and re.fullmatch(r"[\w#\- ]{1,16}", line2)):
        line2 = ""
    city = state = postal = ""
    if not sentence_over:
        city, state, postal = _place_after(span, tokens, index, after=(unit or street)[-1])
    if line1 == line1.lower():
        line1 = " ".join(w if w[:1].isdigit() else w.title() for w in line1.split())
    value = {
        "line1": line1,
        "line2": line2,
        "city": city.title() if city.islower() else city,
        "region": state,
        "postal_code": postal,
    }
    value["text"] = ", ".join(
        p for p in (line1, line2, value["city"], f"{value['region']} {value['postal_code']}".strip()) if p
    )
    return _Parsed(value, 90 if (city or postal) else 75)


def _place_after(span: str, tokens: list[_Token], index: int, *, after: _Token) -> tuple[str, str, str]:
    """City, state and ZIP code after the street line (or after "in": "88 21st St in Oakland")."""
    rest = tokens[index:]
    if rest and rest[0].bare.lower() == "in" and not rest[0].text.endswith(","):
        rest = rest[1:]
    city_words: list[str] = []
    state = postal = ""
    last = after
    for token in rest:
        word = token.bare.rstrip(".!?")
        if _ZIP_RE.match(word):
            postal, last = word, token
            break
        code = _state(word) if city_words and not state and token.label in ("StateName", "PlaceName") else ""
        # A state after the city ("Oakland CA", "Portland, Oregon"); a ZIP code may follow it.
        if code and (len(word) > 2 or word[0].isupper()):
            state, last = code, token
        elif state or len(city_words) >= 3 or token.label in _STREET_LABELS[:2] or token.label in _UNIT_LABELS:
            break
        else:
            city_words.append(word.rstrip("."))
            last = token
        if _ends_sentence(token):
            break
    # "California 94105" after the city: a two-word state name.
    if not state and len(city_words) >= 2:
        for size in (3, 2):
            code = STATE_NAMES.get(" ".join(city_words[-size:]).lower()) if len(city_words) > size else None
            if code:
                state, city_words = code, city_words[:-size]
                break
    after_comma = after.text.endswith(",")
    ends_clause = bool(_CLAUSE_END.match(span[last.end :])) or last.text.endswith((".", "!", "?", ";"))
    # The longest run of the words that is a city: "Portland the door is stuck" is Portland.
    for size in range(min(3, len(city_words)), 0, -1):
        words = city_words[:size]
        whole = size == len(city_words)
        if _city_ok(
            words,
            with_state_or_zip=whole and bool(state or postal),
            ends_clause=whole and ends_clause,
            after_comma=after_comma,
        ):
            return " ".join(words), state if whole else "", postal if whole else ""
    return "", "", postal if not city_words else ""


def address_search(text: str) -> tuple[dict, int] | None:
    """The most complete US street address in the text (number, street, type, unit, city, state,
    ZIP code) with its confidence: 90 with a city or ZIP code, 75 without; None when there is none."""
    best = None
    for match in _NUMBER_START.finditer(text or ""):
        parsed = _parse_at(text, match.start())
        if parsed is not None and (best is None or parsed.confidence > best.confidence):
            best = parsed
    return (best.value, best.confidence) if best else None


@lru_cache(maxsize=4096)
def _labelled(line: str) -> tuple[tuple[str, str], ...]:
    return tuple((fold(word).strip(".,#"), label) for word, label in usaddress.parse(line or ""))


@lru_cache(maxsize=4096)
def street_key(line: str) -> str:
    """A comparable form of a street line: '123 N. Main Street' and '123 north main st' agree."""
    out = []
    for word, label in _labelled(line):
        for part in re.findall(r"[a-z0-9]+", word):
            if label.endswith("Directional"):
                out.append(DIRECTIONS.get(part, part))
            elif label.endswith("Type"):
                out.append(STREET_SUFFIXES.get(part, part))
            else:
                out.append(part)
    return " ".join(out)


@lru_cache(maxsize=4096)
def street_parts(line: str) -> tuple[str, tuple[str, ...]]:
    """The house number and the street's name words of a street line, without direction, type
    or unit: "1450 N. Park Street, Apt 4" and "1450 park st" both give ("1450", ("park",))."""
    labelled = _labelled(line)
    number = next((w for w, label in labelled if label == "AddressNumber"), "")
    name = tuple(part for word, label in labelled if label == "StreetName" for part in re.findall(r"[a-z0-9]+", word))
    if not name:
        # A street that is all direction or type ("100 North St" read as a direction): its words.
        name = tuple(
            part
            for word, label in labelled
            if label in ("StreetNamePreDirectional", "StreetNamePostType", "StreetNamePreType")
            for part in re.findall(r"[a-z0-9]+", word)
        )[:1]
    return number, name
