"""Deterministic extraction: each fact read from the words alone, with a confidence."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.closeout.models import IncidentTemplate
from dispatch.intake.extract import address_find, message_extract, street_key, time_windows

pytestmark = pytest.mark.django_db

TZ = "America/Los_Angeles"
# A Monday, 10:30 in the morning in Oakland.
MONDAY = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo(TZ))


def windows(text, now=MONDAY, tz=TZ):
    return [(w["start"][:16], w["end"][11:16], w["label"]) for w in time_windows(text, now=now, tz=tz)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("tomorrow morning", [("2026-11-24T08:00", "12:00", "tomorrow morning")]),
        ("after 3pm", [("2026-11-23T15:00", "18:00", "today after 3pm")]),
        ("after 3", [("2026-11-23T15:00", "18:00", "today after 3")]),
        ("Tuesday", [("2026-11-24T08:00", "18:00", "Tuesday")]),
        ("this afternoon", [("2026-11-23T12:00", "17:00", "today afternoon")]),
        ("before noon", [("2026-11-23T10:30", "12:00", "today before noon")]),
        ("between 9 and 11 on friday", [("2026-11-27T09:00", "11:00", "Friday between 9 and 11")]),
        ("thurs 1-3pm", [("2026-11-26T13:00", "15:00", "Thursday 1-3pm")]),
        ("tonight", [("2026-11-23T17:00", "21:00", "tonight")]),
        ("next friday morning", [("2026-12-04T08:00", "12:00", "Friday morning")]),
        ("at 4:30pm today", [("2026-11-23T16:30", "18:30", "today at 4:30pm")]),
        ("sat or sun", [("2026-11-28T08:00", "18:00", "Saturday"), ("2026-11-29T08:00", "18:00", "Sunday")]),
        ("Monday", [("2026-11-30T08:00", "18:00", "Monday")]),
        ("I sat down and we open at 9", []),
        ("door won't latch", []),
    ],
)
def test_time_preferences_become_windows_relative_to_the_message(text, expected):
    assert windows(text) == expected


def test_next_week_is_its_five_working_days():
    found = windows("sometime next week")
    assert [w[0][:10] for w in found] == ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]


def test_a_time_already_past_today_means_tomorrow():
    evening = datetime(2026, 11, 23, 19, 0, tzinfo=ZoneInfo(TZ))
    assert windows("after 3pm", now=evening) == [("2026-11-24T15:00", "18:00", "tomorrow after 3pm")]


def test_windows_are_in_the_sites_timezone():
    now = datetime(2026, 11, 23, 18, 30, tzinfo=ZoneInfo("UTC"))  # 13:30 in New York, 10:30 in Oakland
    ((start, _end, _label),) = windows("tomorrow morning", now=now, tz="America/New_York")
    assert start == "2026-11-24T08:00" and time_windows("tomorrow morning", now=now, tz="America/New_York")[0][
        "start"
    ].endswith("-05:00")


@pytest.mark.parametrize(
    "text,line1,line2,city,region,postal",
    [
        ("It's 1200 Broadway St, Oakland CA 94612", "1200 Broadway St", "", "Oakland", "CA", "94612"),
        ("at 55 elm street apt 4b, berkeley", "55 Elm Street", "apt 4b", "Berkeley", "", ""),
        (
            "12 N. Market Street, Suite 200, San Francisco, California 94105",
            "12 N. Market Street",
            "Suite 200",
            "San Francisco",
            "CA",
            "94105",
        ),
        ("we are at 88 21st st. in oakland", "88 21st St", "", "Oakland", "", ""),
        ("1200 Broadway, Oakland", "1200 Broadway", "", "Oakland", "", ""),
        ("42 Harbor Way 94607", "42 Harbor Way", "", "", "", "94607"),
        ("door at 300 Lakeshore Ave tomorrow morning", "300 Lakeshore Ave", "", "", "", ""),
        ("99 Jack London Sq, Oakland. Door forced", "99 Jack London Sq", "", "Oakland", "", ""),
    ],
)
def test_us_street_addresses_are_found(text, line1, line2, city, region, postal):
    found = address_find(text)
    assert (
        found.value["line1"],
        found.value["line2"],
        found.value["city"],
        found.value["region"],
        found.value["postal_code"],
    ) == (line1, line2, city, region, postal)
    assert found.confidence == (90 if city or postal else 75)


@pytest.mark.parametrize("text", ["I have 2 doors on Main St", "5 min walk", "call me after 3 pm", "unit 4 is broken"])
def test_words_with_numbers_are_not_addresses(text):
    assert address_find(text) is None


def test_street_keys_compare_spellings_of_one_street():
    assert street_key("123 N. Main Street") == street_key("123 north main st") == "123 n main st"


def test_callback_number_email_and_name_are_read_with_confidences():
    found = message_extract(
        "This is Maria. Call me back at (510) 555-0199 or maria@shop.example. Door won't latch.", now=MONDAY
    )
    assert found.callback_phone.value == "+15105550199" and found.callback_phone.confidence == 90
    assert found.email.value == "maria@shop.example"
    assert found.customer_name.value == "Maria"
    assert found.incident_type.value == "DOOR_WONT_LATCH" and 0 < found.incident_type.confidence <= 100


@pytest.mark.parametrize(
    "text,priority",
    [
        ("door closer leaking, no rush", "ROUTINE"),
        ("door won't latch, can you come today?", "URGENT"),
        ("need it fixed ASAP", "URGENT"),
        ("urgent: closer slamming", "URGENT"),
        ("this is an emergency, door won't latch", "EMERGENCY"),
        # Exposure alone is urgent; tonight, weather or danger makes it an emergency.
        ("the glass is shattered", "URGENT"),
        ("the glass is shattered and it's raining in", "EMERGENCY"),
        ("someone is trapped in the vestibule", "EMERGENCY"),
        ("fire exit blocked by a jammed door", "EMERGENCY"),
        ("break-in last night", "EMERGENCY"),
        ("we can't lock the store", "URGENT"),
        ("we can't lock the store tonight", "EMERGENCY"),
        ("not an emergency, but the latch is loose", "ROUTINE"),
        ("hinge squeaks", "ROUTINE"),
    ],
)
def test_urgency_words_set_the_priority(text, priority):
    assert message_extract(text, now=MONDAY).priority.value == priority


@pytest.mark.parametrize("greeting", ["Hola", "Bonjour", "Olá", "Xin chào", "Guten Tag", "こんにちは"])
def test_non_english_greetings_do_not_break_extraction(greeting):
    found = message_extract(
        f"{greeting}! The door closer is leaking oil. 25 Mission St, San Francisco CA 94105", now=MONDAY
    )
    assert found.incident_type.value == "CLOSER_LEAKING_OR_SLAMMING"
    assert found.address.value["line1"] == "25 Mission St" and not found.spam


def test_keywords_edited_in_the_admin_are_used():
    template = IncidentTemplate.objects.get(incident_type="HARDWARE_REPLACEMENT")
    assert message_extract("the mail slot flap fell off", now=MONDAY).incident_type is None
    template.keywords = [*template.keywords, "mail slot"]
    template.save()
    assert message_extract("the mail slot flap fell off", now=MONDAY).incident_type.value == "HARDWARE_REPLACEMENT"


def test_a_phone_typo_in_a_keyword_still_counts_a_little():
    found = message_extract("the autmatic door keeps opening by itself", now=MONDAY)
    assert found.incident_type.value == "AUTO_OPERATOR_FAULT"


def test_mixed_signals_give_a_lower_confidence():
    clear = message_extract("the automatic sliding door sensor is dead", now=MONDAY).incident_type
    mixed = message_extract("the glass near the hinge", now=MONDAY).incident_type
    assert clear.confidence >= 85 > mixed.confidence


@pytest.mark.parametrize(
    "text,spam",
    [
        ("Congratulations! You have won a FREE cruise. Click here: http://bit.ly/x", True),
        ("http://cheap-pills.xyz/buy", True),
        ("We offer SEO services. Reply STOP to unsubscribe", True),
        ("Click here for photos of the broken latch: https://photos.example.com/a", False),
        ("my door won't latch", False),
    ],
)
def test_spam_is_recognised(text, spam):
    assert bool(message_extract(text, now=MONDAY).spam) is spam
