"""Reading when a customer wants a visit: "tomorrow morning", "Tuesday after 3pm", "weekdays".

One table of day names and parts of the day, one way to read a clock time and one set of
patterns, read two ways:
  - `time_windows`: the windows a message asks for, as dates relative to when it was sent
    ("Tuesday" is the coming Tuesday); intake stores these with the message.
  - `preference_rule`: a standing preference ("Tuesdays after 3pm", "weekday mornings") as the
    weekdays, dates and hours it allows; the slot engine lays it over its search horizon.
Pure functions of the text (and the reference moment): nothing here reads the database.
"""

from __future__ import annotations

import re
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The working day that "tomorrow", "after 3pm" or "before 10" are read within.
DAY_START = time(8, 0)
DAY_END = time(18, 0)
# How long "at 4:30pm", or "after 7pm" past the working day, is taken to last.
AROUND = timedelta(hours=2)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_INDEX = {
    **{name: index for index, name in enumerate(WEEKDAYS)},
    "mon": 0,
    "tue": 1,
    "tues": 1,
    "wed": 2,
    "weds": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
PARTS_OF_DAY = {
    "morning": (time(8, 0), time(12, 0)),
    "afternoon": (time(12, 0), time(17, 0)),
    "evening": (time(17, 0), time(20, 0)),
    "tonight": (time(17, 0), time(21, 0)),
    "lunch": (time(11, 30), time(13, 30)),
    "noon": (time(11, 0), time(13, 0)),
    "midday": (time(11, 0), time(14, 0)),
}

_WEEKDAY_WORDS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues?|weds?|thu(?:rs?)?|fri|sat|sun"
_CLOCK = r"(?P<{n}h>\d{{1,2}})(?::(?P<{n}m>\d{{2}}))?\s*(?P<{n}ap>a\.?m\.?|p\.?m\.?)?"
_NOT_A_DURATION = r"(?!\s*(?:min|minutes|hours|hrs|days))"
_DAY_RE = re.compile(
    r"\b(?P<rel>today|tonight|tomorrow|tmrw|tmr|tomorow|tommorow|tommorrow|day after tomorrow|next week|this week"
    r"|this weekend|weekend)\b"
    rf"|\b(?P<qual>this|next|on)?\s*(?P<wd>{_WEEKDAY_WORDS})\b",
    re.IGNORECASE,
)
# Recurring days: "Tuesdays", "weekday mornings", "weekends".
_EVERY_DAY_RE = re.compile(rf"\b(?P<qual>on\s+)?(?P<wd>{_WEEKDAY_WORDS}|weekday|weekend)s?\b", re.IGNORECASE)
_PART_RE = re.compile(r"\b(?P<part>morning|afternoon|evening|tonight|lunch(?:time)?|midday|noon)s?\b", re.IGNORECASE)
_AFTER_RE = re.compile(
    r"\b(?:after|from|anytime after|any time after|not before|past)\s+" + _CLOCK.format(n="a") + _NOT_A_DURATION,
    re.IGNORECASE,
)
_BEFORE_RE = re.compile(
    r"\b(?:before|by|until|til|till|no later than)\s+(?:(?P<noon>noon|midday|lunch)|"
    + _CLOCK.format(n="b")
    + r")"
    + _NOT_A_DURATION,
    re.IGNORECASE,
)
_BETWEEN_RE = re.compile(
    r"\b(?:between|btwn|from)\s+"
    + _CLOCK.format(n="s")
    + r"\s*(?:and|-|–|to)\s*"
    + _CLOCK.format(n="e")
    + r"|\b"
    + _CLOCK.format(n="x")
    + r"\s*(?:-|–|to)\s*"
    + _CLOCK.format(n="y"),
    re.IGNORECASE,
)
# "at 4:30pm", "around 10am": a clock time needs am/pm here ("we open at 9" is no preference).
_AT_RE = re.compile(
    r"\b(?:at|around|about|@)\s+(?P<th>\d{1,2})(?::(?P<tm>\d{2}))?\s*(?P<tap>a\.?m\.?|p\.?m\.?)(?![a-z])", re.IGNORECASE
)
_CLOCK_TEXT_RE = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?")
_ISO_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})(?:[t ][\d:.+-]+z?)?\b", re.IGNORECASE)
_ANY_TIME_RE = re.compile(
    r"\b(any ?time|whenever|asap|no preference|flexible|any day|all day|cualquier (?:dia|hora|momento)|todo el dia"
    r"|a cualquier hora)\b",
    re.IGNORECASE,
)

# Spanish time words, rewritten into the English ones the patterns read ("mañana en la tarde" is
# "tomorrow afternoon", "el martes después de las 3" is "tuesday after 3"), in this order: the
# longer phrase before the words inside it. Applied to the text with its accents folded.
_SPANISH_TIMES = tuple(
    (re.compile(pattern, re.IGNORECASE), english)
    for pattern, english in (
        (r"\b(\d{1,2}(?::\d{2})?)\s*de la manana\b", r"\1am"),
        (r"\b(\d{1,2}(?::\d{2})?)\s*de la (?:tarde|noche)\b", r"\1pm"),
        (r"\bpasado manana\b", "day after tomorrow"),
        (r"\bmanana (?:por|en|a) la manana\b", "tomorrow morning"),
        (r"\bmanana (?:por|en|a) la tarde\b", "tomorrow afternoon"),
        (r"\bmanana (?:por|en|a) la noche\b", "tomorrow evening"),
        (r"\b(?:por|en) las? mananas?\b", "morning"),
        (r"\b(?:por|en|a) las? tardes?\b", "afternoon"),
        (r"\besta noche\b", "tonight"),
        (r"\b(?:por|en) las? noches?\b", "evening"),
        (r"\bal mediodia\b|\bmediodia\b", "noon"),
        (r"\bhoy\b", "today"),
        (r"\bmanana\b", "tomorrow"),
        (r"\b(?:la )?proxima semana\b|\bla semana que viene\b", "next week"),
        (r"\besta semana\b", "this week"),
        (r"\beste fin de semana\b", "this weekend"),
        (r"\b(?:los )?fines? de semana\b", "weekend"),
        (r"\bentre semana\b", "weekdays"),
        (r"\blunes\b", "monday"),
        (r"\bmartes\b", "tuesday"),
        (r"\bmiercoles\b", "wednesday"),
        (r"\bjueves\b", "thursday"),
        (r"\bviernes\b", "friday"),
        (r"\bsabados?\b", "saturday"),
        (r"\bdomingos?\b", "sunday"),
        (r"\bentre (?:las |la )?(\d{1,2}(?::\d{2})?\s*(?:am|pm)?) y (?:las |la )?", r"between \1 and "),
        (r"\bdespues de (?:las |la )?", "after "),
        (r"\bantes de (?:las |la )?", "before "),
        (r"\bde (?:las |la )?(\d{1,2}(?::\d{2})?\s*(?:am|pm)?) a (?:las |la )?", r"from \1 to "),
        (r"\ba (?:las |la )(?=\d)", "at "),
    )
)


def _english_times(text: str) -> str:
    """The text with Spanish time words in English (English text comes back as it was), less the
    time words that ask for no visit (_NOT_A_PREFERENCE_RE)."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    folded = _NOT_A_PREFERENCE_RE.sub(" ", folded)
    for pattern, english in _SPANISH_TIMES:
        folded = pattern.sub(english, folded)
    return folded


def clock(hour: str | None, minute: str | None, ampm: str | None) -> time | None:
    """The time of day an hour, minute and am/pm mean; a bare 1 to 6 is the afternoon
    ("after 3" in a service business means 3 pm, not 3 am)."""
    if hour is None:
        return None
    h, m = int(hour), int(minute or 0)
    if h > 23 or m > 59:
        return None
    marker = (ampm or "").lower().replace(".", "")
    if marker == "pm" and h < 12:
        h += 12
    elif marker == "am" and h == 12:
        h = 0
    elif not marker and 1 <= h <= 6:
        h += 12
    return time(h, m)


def clock_text(text: str) -> time | None:
    """'3pm', '15:00', '9', '9:30 am', 'noon' → a time (None when it is not one)."""
    text = text.strip().lower().replace(".", "")
    if text in ("noon", "midday"):
        return time(12)
    if text == "midnight":
        return time(0)
    match = _CLOCK_TEXT_RE.fullmatch(text)
    return clock(*match.groups()) if match else None


def says_any_time(text: str) -> bool:
    """'any time', 'whenever', 'ASAP', 'flexible': words that set no preference."""
    return bool(_ANY_TIME_RE.search(_english_times(text)))


def part_of_day(word: str) -> tuple[time, time] | None:
    """The hours of a part of the day ('morning', 'lunchtime', 'evenings'), or None."""
    word = word.strip().lower().rstrip("s")
    if word.startswith("lunch"):
        word = "lunch"
    return PARTS_OF_DAY.get(word)


def _weekday_meant(text: str, match: re.Match) -> bool:
    """'sat' and 'sun' are days only where a day is expected ('on sat', 'fri or sat')."""
    word = match.group("wd").lower()
    if word not in ("sat", "sun") or match.group("qual"):
        return True
    return bool(
        re.search(r"(\bor|\band|,|/)\s*$", text[: match.start("wd")], re.IGNORECASE)
        or re.match(r"\s*(or|and|,|/)\s*(sat|sun)", text[match.end() :], re.IGNORECASE)
    )


def _weekday_date(today: date, weekday: int, qualifier: str) -> date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and qualifier != "this":
        # "Tuesday" said on a Tuesday means next week's; "this Tuesday" means today.
        ahead = 7
    if qualifier == "next" and today.weekday() + ahead <= 6:
        # "next Friday" said on a Monday is the Friday of next week, not this one.
        ahead += 7
    return today + timedelta(days=ahead)


# Words about times that ask for no visit: a greeting ("Good morning,") or when something
# happened ("since this morning", "since yesterday"). Removed before a message is read for times.
_NOT_A_PREFERENCE_RE = re.compile(
    r"\b(?:good|gud|gd) (?:morning|afternoon|evening|night)\b|\bmorning all\b"
    r"|\bbuen(?:os|as) (?:dias|tardes|noches)\b"
    r"|\bsince (?:this |last )?(?:morning|afternoon|evening|night|yesterday)\b"
    r"|\bdesde (?:ayer|anoche|esta manana|la manana de hoy)\b",
    re.IGNORECASE,
)


def _recurring_days(text: str, today: date) -> list[tuple[date, str]]:
    """The coming week's days a standing preference names ("weekdays", "weekends", "Tuesdays")."""
    weekdays: set[int] = set()
    for match in _EVERY_DAY_RE.finditer(text):
        word = match.group("wd").lower()
        plural = match.group(0).lower().rstrip().endswith("s")
        if word == "weekday":
            weekdays.update(range(5))
        elif word == "weekend":
            weekdays.update((5, 6))
        elif plural and word in WEEKDAY_INDEX:
            weekdays.add(WEEKDAY_INDEX[word])
    return [
        (day, WEEKDAYS[day.weekday()].title())
        for day in (today + timedelta(days=offset) for offset in range(7))
        if day.weekday() in weekdays
    ]


def days_named(text: str, today: date) -> list[tuple[date, str]]:
    """The days a message names, soonest first, each with the words that named it; a standing
    preference ("weekdays after 2pm", "Saturdays") names the matching days of the coming week."""
    days: list[tuple[date, str]] = []
    for match in _DAY_RE.finditer(text):
        rel = (match.group("rel") or "").lower()
        if rel in ("today", "tonight"):
            days.append((today, rel))
        elif rel == "day after tomorrow":
            days.append((today + timedelta(days=2), rel))
        elif rel.startswith(("tom", "tm")):
            days.append((today + timedelta(days=1), "tomorrow"))
        elif rel == "next week":
            monday = today + timedelta(days=7 - today.weekday())
            days.extend((monday + timedelta(days=i), "next week") for i in range(5))
        elif rel == "this week":
            days.extend((today + timedelta(days=i), "this week") for i in range(max(0, 5 - today.weekday())))
        elif rel in ("weekend", "this weekend"):
            saturday = today + timedelta(days=(5 - today.weekday()) % 7)
            days.extend([(saturday, "weekend"), (saturday + timedelta(days=1), "weekend")])
        elif match.group("wd") and _weekday_meant(text, match):
            weekday = WEEKDAY_INDEX[match.group("wd").lower()]
            qualifier = (match.group("qual") or "").lower()
            days.append((_weekday_date(today, weekday, qualifier), WEEKDAYS[weekday].title()))
    if not days:
        days = _recurring_days(text, today)
    unique: dict[date, str] = {}
    for day, label in days:
        unique.setdefault(day, label)
    return sorted(unique.items())


def hours_named(text: str) -> list[tuple[time, time, str]]:
    """Every span of hours a message asks for, as (start, end, words), the most precise first:
    a range ("between 9 and 11", "1-3pm"), then after/before, parts of the day, "at 4:30pm"."""
    spans: list[tuple[time, time, str]] = []

    def add(start: time | None, end: time | None, label: str) -> None:
        if start and end and end > start and all((start, end) != (a, b) for a, b, _ in spans):
            spans.append((start, end, label))

    for between in _BETWEEN_RE.finditer(text):
        g = between.groupdict()
        prefix = "s" if g.get("sh") else "x"
        end_prefix = "e" if g.get("eh") else "y"
        end_ap = g.get(f"{end_prefix}ap")
        start = clock(g.get(f"{prefix}h"), g.get(f"{prefix}m"), g.get(f"{prefix}ap") or end_ap)
        add(start, clock(g.get(f"{end_prefix}h"), g.get(f"{end_prefix}m"), end_ap), between.group(0).strip())
    after = _AFTER_RE.search(text)
    before = _BEFORE_RE.search(text)
    if after or before:
        start = clock(after.group("ah"), after.group("am"), after.group("aap")) if after else DAY_START
        if before and before.group("noon"):
            end = time(12, 0)
        elif before:
            end = clock(before.group("bh"), before.group("bm"), before.group("bap"))
        else:
            end = DAY_END
        if start and end and end > start:
            add(start, end, " ".join(m.group(0).strip() for m in (after, before) if m))
        elif start and not before:
            # "after 7pm", past the working day: a couple of hours from then.
            add(start, (datetime.combine(date.min, start) + AROUND).time(), after.group(0).strip())
    for part in _PART_RE.finditer(text):
        word = part.group("part").lower()
        hours = part_of_day(word)
        if hours:
            add(*hours, word)
    for at in _AT_RE.finditer(text):
        start = clock(at.group("th"), at.group("tm"), at.group("tap"))
        if start and time(6, 0) <= start <= time(20, 0):
            add(start, (datetime.combine(date.min, start) + AROUND).time(), at.group(0).strip())
    return spans


def time_windows(text: str, *, now: datetime, tz: str) -> list[dict]:
    """Preferred windows ("tomorrow morning", "after 3pm", "Tuesday", "next week") as
    [{"start", "end", "label"}] in ISO-8601 with the site's offset, soonest first."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    today = local_now.date()
    text = _english_times(text)
    days = days_named(text, today)
    spans = hours_named(text)
    hours = spans[0] if spans else None
    if not days and hours is None:
        return []
    if not days:
        # "after 3pm" with no day: today if that is still ahead, otherwise tomorrow.
        _start, end, _label = hours
        day = today if datetime.combine(today, end, zone) > local_now else today + timedelta(days=1)
        days = [(day, "today" if day == today else "tomorrow")]
    windows = []
    for day, day_label in days:
        if hours:
            start_t, end_t, hours_label = hours
        elif day_label == "tonight":
            (start_t, end_t), hours_label = PARTS_OF_DAY["tonight"], ""
        else:
            start_t, end_t, hours_label = DAY_START, DAY_END, ""
        start = datetime.combine(day, start_t, zone)
        end = datetime.combine(day, end_t, zone)
        if end <= local_now:
            continue
        start = max(start, local_now.replace(second=0, microsecond=0))
        label = day_label if hours_label in ("", day_label) else f"{day_label} {hours_label}"
        windows.append({"start": start.isoformat(), "end": end.isoformat(), "label": label})
    return windows[:7]


@dataclass(frozen=True)
class PreferenceRule:
    """A standing preference: on these weekdays (None: any), these dates (None: any), in these
    hours (empty: the working day)."""

    weekdays: frozenset[int] | None
    dates: frozenset[date] | None
    spans: tuple[tuple[time, time], ...]

    def __bool__(self) -> bool:
        return bool(self.weekdays or self.dates or self.spans)


def preference_rule(text: str, reference: date) -> PreferenceRule:
    """The weekdays, dates and hours a stated preference allows ("Tuesdays after 3pm", "tomorrow
    morning", "weekday mornings"); relative days are read from `reference`."""
    weekdays: set[int] = set()
    dates: set[date] = set()
    text = _english_times(text)
    for match in _EVERY_DAY_RE.finditer(text):
        word = match.group("wd").lower()
        if word == "weekday":
            weekdays.update(range(5))
        elif word == "weekend":
            weekdays.update((5, 6))
        elif _weekday_meant(text, match):
            weekdays.add(WEEKDAY_INDEX[word])
    # Dates are read, then removed, so "2026-11-12" is not taken for the hours 11–12.
    for iso in _ISO_DATE_RE.findall(text):
        with suppress(ValueError):
            dates.add(date.fromisoformat(iso))
    text = _ISO_DATE_RE.sub(" ", text)
    for match in _DAY_RE.finditer(text):
        rel = (match.group("rel") or "").lower()
        if rel in ("today", "tonight"):
            dates.add(reference)
        elif rel == "day after tomorrow":
            dates.add(reference + timedelta(days=2))
        elif rel.startswith(("tom", "tm")):
            dates.add(reference + timedelta(days=1))
    spans = tuple((start, end) for start, end, _label in hours_named(text))
    return PreferenceRule(frozenset(weekdays) or None, frozenset(dates) or None, spans)
