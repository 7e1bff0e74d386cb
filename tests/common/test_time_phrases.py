"""One reader of time phrases: what intake stores from a message and what the slot engine lays
over its horizon read the same words with the same table of hours."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dispatch.common.time_phrases import (
    PARTS_OF_DAY,
    clock_text,
    days_named,
    hours_named,
    preference_rule,
    says_any_time,
    time_windows,
)

TZ = "America/Los_Angeles"
MONDAY = date(2026, 11, 23)
MONDAY_MORNING = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo(TZ))


@pytest.mark.parametrize(
    "text, spans",
    [
        ("tomorrow morning", [(time(8), time(12))]),
        ("Tuesday after 3pm", [(time(15), time(18))]),
        ("after 3", [(time(15), time(18))]),
        ("before 10am", [(time(8), time(10))]),
        ("between 9 and 11", [(time(9), time(11))]),
        ("thurs 1-3pm", [(time(13), time(15))]),
        ("this afternoon", [(time(12), time(17))]),
        ("tonight", [PARTS_OF_DAY["tonight"]]),
        ("at 4:30pm", [(time(16, 30), time(18, 30))]),
        ("mornings or afternoons", [(time(8), time(12)), (time(12), time(17))]),
        ("we open at 9", []),
    ],
)
def test_the_hours_a_phrase_asks_for(text, spans):
    assert [(start, end) for start, end, _words in hours_named(text)] == spans


def test_intake_and_the_engine_read_a_part_of_the_day_as_the_same_hours():
    said = "Wednesday afternoon"
    (stored,) = time_windows(said, now=MONDAY_MORNING, tz=TZ)
    rule = preference_rule(said, MONDAY)
    assert (stored["start"][11:16], stored["end"][11:16]) == ("12:00", "17:00")
    assert rule.spans == (PARTS_OF_DAY["afternoon"],) == ((time(12), time(17)),)
    assert rule.weekdays == {2}


def test_tomorrow_is_a_date_for_both_readers():
    (stored,) = time_windows("tomorrow morning", now=MONDAY_MORNING, tz=TZ)
    assert stored["start"].startswith("2026-11-24T08:00") and stored["label"] == "tomorrow morning"
    rule = preference_rule("tomorrow morning", MONDAY)
    assert rule.dates == {date(2026, 11, 24)} and rule.weekdays is None


def test_a_named_day_is_the_coming_one_in_a_message_and_every_such_day_as_a_preference():
    assert days_named("Tuesday", MONDAY) == [(date(2026, 11, 24), "Tuesday")]
    assert days_named("next friday", MONDAY) == [(date(2026, 12, 4), "Friday")]
    assert preference_rule("Tuesdays after 3pm", MONDAY).weekdays == {1}


def test_weekdays_and_weekends_are_standing_preferences():
    assert preference_rule("weekday mornings", MONDAY).weekdays == {0, 1, 2, 3, 4}
    assert preference_rule("weekends only", MONDAY).weekdays == {5, 6}


def test_sat_and_sun_are_days_only_where_a_day_is_expected():
    assert days_named("I sat down with the manager", MONDAY) == []
    assert [label for _day, label in days_named("sat or sun", MONDAY)] == ["Saturday", "Sunday"]
    assert not preference_rule("I sat down with the manager", MONDAY)


def test_an_iso_date_is_a_date_not_a_range_of_hours():
    rule = preference_rule("2026-11-26 morning", MONDAY)
    assert rule.dates == {date(2026, 11, 26)}
    assert rule.spans == ((time(8), time(12)),)


@pytest.mark.parametrize(
    "text, expected",
    [("3pm", time(15)), ("15:00", time(15)), ("9", time(9)), ("9:30 am", time(9, 30)), ("noon", time(12)), ("x", None)],
)
def test_clock_times(text, expected):
    assert clock_text(text) == expected


def test_words_that_set_no_preference():
    assert says_any_time("any time is fine") and says_any_time("ASAP please")
    assert not says_any_time("Tuesday morning")
    assert not preference_rule("door won't latch", MONDAY)
