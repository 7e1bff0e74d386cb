"""The slot engine: hard rules exclude exactly what they should, the weights decide the order,
and every answer says why (or why nothing fits)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dispatch.scheduling.engine import preference_windows_parse, slot_check, slots_suggest, travel_minutes
from dispatch.technicians.models import TechnicianSkill
from dispatch.tickets.models import Ticket
from tests.factories import (
    AppointmentFactory,
    RegionFactory,
    SiteFactory,
    TechnicianFactory,
    TimeOffFactory,
    shifts_every_day,
    ticket_new,
    ticket_ready_to_schedule,
)

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
OAKLAND = ("37.804400", "-122.271100")  # the factory sites
BERKELEY = ("37.871600", "-122.272700")  # 7.5 km north: 15 min by the default road factor and speed
SAN_JOSE = ("37.338200", "-121.886300")
WEEKDAYS = range(5)
# For the hard-rule tests: rank by start time alone, so the first window is the earliest allowed.
EARLIEST_ONLY = {"travel_per_minute": 0, "workload_per_hour": 0, "skill_level": 0, "previous_technician": 0}


def _monday() -> date:
    today = datetime.now(LA).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


MONDAY = _monday()
NOW = datetime.combine(MONDAY, time(6, 0), LA)


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Los Angeles, `day_offset` days after the test Monday."""
    return datetime.combine(MONDAY + timedelta(days=day_offset), time(hour, minute), LA)


def tech(
    name,
    *,
    skills=("DOOR_WONT_LATCH",),
    level=3,
    regions=("EAST_BAY",),
    home=OAKLAND,
    shifts=True,
    weekdays=WEEKDAYS,
    **kwargs,
):
    technician = TechnicianFactory(
        display_name=name, skills=list(skills), region_codes=list(regions), home_lat=home[0], home_lng=home[1], **kwargs
    )
    TechnicianSkill.objects.filter(technician=technician).update(level=level)
    if shifts:
        shifts_every_day(technician, weekdays=weekdays)
    return technician


def job(*, site=None, incident_type="DOOR_WONT_LATCH", priority="ROUTINE"):
    ticket = ticket_ready_to_schedule(site=site or SiteFactory(), incident_type=incident_type, priority=priority)
    # Opened "now" in the engine's frozen clock, so the SLA due time is relative to it.
    Ticket.objects.filter(pk=ticket.pk).update(created_at=NOW)
    return Ticket.objects.select_related("site").get(pk=ticket.pk)


def booked(technician, start, end, *, site=None):
    ticket = ticket_new(site=site or SiteFactory())
    return AppointmentFactory(technician=technician, ticket=ticket, start=start, end=end)


def suggest(ticket, **kwargs):
    kwargs.setdefault("now", NOW)
    return slots_suggest(ticket=ticket, **kwargs)


def names(suggestion) -> list[str]:
    return [w.technician_name for w in suggestion.windows]


# --- hard rules, one at a time ----------------------------------------------------------------


def test_only_technicians_with_the_skill_are_offered():
    tech("Dana Reyes", skills=("AUTO_OPERATOR_FAULT",))
    tech("Eli Park", skills=("DOOR_WONT_LATCH",))
    suggestion = suggest(job(), limit=5)
    assert set(names(suggestion)) == {"Eli Park"}
    assert suggestion.excluded["skill"] == 1


def test_only_technicians_covering_the_region_are_offered_and_a_site_without_region_takes_anyone():
    tech("Dana Reyes", regions=("PENINSULA",))
    tech("Eli Park", regions=("EAST_BAY",))
    assert set(names(suggest(job(), per_technician=True))) == {"Eli Park"}
    anywhere = job(site=SiteFactory(service_region=""))
    assert set(names(suggest(anywhere, per_technician=True))) == {"Dana Reyes", "Eli Park"}


def test_windows_lie_inside_shifts_in_the_technicians_timezone():
    late = tech("Lou Night", shifts=False)
    shifts_every_day(late, start="14:00", end="22:00", weekdays=WEEKDAYS)
    tech("Nobody Scheduled", shifts=False)
    suggestion = suggest(job(), limit=3)
    assert set(names(suggestion)) == {"Lou Night"}
    for window in suggestion.windows:
        local_start, local_end = window.start.astimezone(LA), window.end.astimezone(LA)
        assert time(14) <= local_start.time() and local_end.time() <= time(22)
        assert local_start.weekday() < 5
    assert suggestion.windows[0].start == at(0, 14)
    assert suggestion.excluded["shift"] == 1


def test_time_off_excludes_its_days(settings):
    settings.DISPATCH_SLOT_WEIGHTS = EARLIEST_ONLY
    dana = tech("Dana Reyes")
    TimeOffFactory(technician=dana, start=at(0, 0), end=at(2, 0), reason="Training")
    suggestion = suggest(job(), limit=3)
    assert all(w.start >= at(2, 7) for w in suggestion.windows)
    assert suggestion.windows[0].start == at(2, 7)


def test_booked_jobs_are_never_overlapped(settings):
    settings.DISPATCH_SLOT_WEIGHTS = EARLIEST_ONLY
    dana = tech("Dana Reyes")
    booked(dana, at(0, 7), at(0, 12))
    suggestion = suggest(job(), limit=5)
    assert suggestion.windows[0].start == at(0, 12)  # same site: no drive between the two
    assert all(not (w.start < at(0, 12) and w.end > at(0, 7)) for w in suggestion.windows)


def test_travel_from_the_previous_job_and_to_the_next_is_kept_free(settings):
    settings.DISPATCH_SLOT_WEIGHTS = EARLIEST_ONLY
    dana = tech("Dana Reyes")
    berkeley = SiteFactory(lat=BERKELEY[0], lng=BERKELEY[1])
    assert travel_minutes(tuple(map(float, BERKELEY)), tuple(map(float, OAKLAND))) == 15
    booked(dana, at(0, 7), at(0, 9), site=berkeley)
    booked(dana, at(0, 11), at(0, 16), site=berkeley)
    ticket = job()  # in Oakland, 60 minutes
    # 09:00 + 15 min drive = 09:15 → the 30-minute grid gives 09:30; the job ends 10:30 and
    # the drive back to Berkeley ends 10:45, before the 11:00 job.
    assert suggest(ticket, limit=1).windows[0].start == at(0, 9, 30)
    # Without room for the drive back, the gap is unusable: the next free day is offered.
    booked(dana, at(0, 10, 40), at(0, 10, 59), site=berkeley)
    suggestion = suggest(ticket, limit=1)
    assert suggestion.windows[0].start == at(1, 7)
    # slot_check says which drive does not fit.
    problems = slot_check(ticket=ticket, technician=dana, start=at(0, 9, 30), end=at(0, 10, 30), now=NOW)
    assert problems == ["Dana Reyes needs 15 min to reach the job at 10:40 but would have only 10 min."]


def test_the_first_job_of_a_shift_includes_the_drive_from_home(settings):
    settings.DISPATCH_SLOT_WEIGHTS = EARLIEST_ONLY
    tech("Sam Far", home=SAN_JOSE)
    minutes = travel_minutes(tuple(map(float, SAN_JOSE)), tuple(map(float, OAKLAND)))
    assert minutes > 60
    suggestion = suggest(job(), limit=1)
    earliest = at(0, 7) + timedelta(minutes=minutes)
    assert earliest <= suggestion.windows[0].start < earliest + timedelta(minutes=30)
    assert f"{minutes} min from home" in suggestion.windows[0].reason


def test_the_customers_preferred_times_bound_the_whole_arrival_window(settings):
    settings.DISPATCH_ARRIVAL_WINDOW_MINUTES = 120
    tech("Dana Reyes")
    afternoon = [(at(1, 13), at(1, 17))]
    suggestion = suggest(job(), limit=3, preferences=afternoon)
    assert suggestion.windows
    for window in suggestion.windows:
        assert at(1, 13) <= window.arrival_start and window.arrival_end <= at(1, 17)
        assert "inside the customer's preferred times" in window.reason
    assert suggestion.windows[0].start == at(1, 13)
    # A preference no shift can meet: nothing, and the explanation says why.
    evening = [(at(1, 18), at(1, 21))]
    nothing = suggest(job(), preferences=evening)
    assert nothing.windows == []
    assert nothing.explanation == "No free slot inside the customer's preferred times in the next 14 days."
    assert nothing.excluded == {"preference": 1}


def test_the_preferences_intake_extracted_are_read_from_the_ticket():
    from dispatch.intake.models import ExtractedField, InboundMessage

    tech("Dana Reyes")
    ticket = job()
    message = InboundMessage.objects.create(
        channel="SMS", provider_message_id="SM-pref-1", body="Wednesday afternoon please", received_at=NOW
    )
    ExtractedField.objects.create(
        ticket=ticket,
        name="time_windows",
        value=[{"start": at(2, 12).isoformat(), "end": at(2, 17).isoformat(), "label": "Wednesday afternoon"}],
        confidence=80,
        source_message=message,
    )
    suggestion = suggest(ticket, limit=2)
    assert suggestion.windows[0].start == at(2, 12)
    assert all(at(2, 12) <= w.start and w.arrival_end <= at(2, 17) for w in suggestion.windows)


def test_free_text_preferences_become_windows():
    zone = LA
    start, end = at(0, 0), at(7, 0)
    windows = preference_windows_parse(["Tuesday after 3pm"], zone=zone, start=start, end=end, reference=MONDAY)
    assert windows == [(at(1, 15), at(1, 18))]
    windows = preference_windows_parse(["weekday mornings"], zone=zone, start=start, end=end, reference=MONDAY)
    assert windows[0] == (at(0, 8), at(0, 12)) and len(windows) == 5
    assert preference_windows_parse(["any time is fine"], zone=zone, start=start, end=end) is None


# --- ranking ----------------------------------------------------------------------------------


def test_least_added_travel_wins_between_equally_early_windows():
    tech("Near Nia", home=OAKLAND)
    tech("Far Fred", home=BERKELEY)
    suggestion = suggest(job(), per_technician=True)
    assert names(suggestion) == ["Near Nia", "Far Fred"]
    near, far = suggestion.windows
    assert near.added_travel_minutes == 0 and far.added_travel_minutes == 30


def test_changing_a_weight_changes_the_order(settings):
    # Both work Mondays only, so the choice is between the two of them on the same day.
    busy = tech("Busy Bea", home=OAKLAND, weekdays=[0])
    tech("Idle Ian", home=BERKELEY, weekdays=[0])
    booked(busy, at(0, 7), at(0, 10))
    booked(busy, at(0, 13), at(0, 16))
    ticket = job()
    # Default weights: Bea is right here (no drive); Ian's 15-minute drive each way costs more
    # than Bea's six booked hours. Weigh workload up and Ian wins; weigh travel up too and Bea does.
    assert names(suggest(ticket, limit=1)) == ["Busy Bea"]
    settings.DISPATCH_SLOT_WEIGHTS = {"workload_per_hour": 10.0}
    assert names(suggest(ticket, limit=1)) == ["Idle Ian"]
    settings.DISPATCH_SLOT_WEIGHTS = {"workload_per_hour": 10.0, "travel_per_minute": 5.0}
    assert names(suggest(ticket, limit=1)) == ["Busy Bea"]


def test_a_job_after_the_days_last_one_weighs_a_share_of_how_the_drive_home_changes(settings):
    # Ada lives in San Jose and is in Oakland until 11:00; Ben lives 40 minutes from the new job
    # and has nothing booked. Ada would drive 43 minutes on and her drive home would grow by
    # 37 (121 to 158): 80 minutes added, the same as Ben's round trip, and Ben starts earlier.
    ada = tech("Ada Route", home=SAN_JOSE, weekdays=[0])
    tech("Ben Home", home=("37.820000", "-122.270000"), weekdays=[0])
    booked(ada, at(0, 9, 30), at(0, 11))
    ticket = job(site=SiteFactory(lat="38.000000", lng="-122.270000"))
    settings.DISPATCH_SLOT_WEIGHTS = {"home_leg_after_work": 1.0}
    assert names(suggest(ticket, limit=1)) == ["Ben Home"]
    # By default only a share of the change to Ada's drive home counts: another job may yet
    # follow hers and move it again, while Ben's round trip is all his day would hold.
    settings.DISPATCH_SLOT_WEIGHTS = {}
    window = suggest(ticket, limit=1).windows[0]
    assert window.technician_name == "Ada Route"
    assert window.start == at(0, 12)
    # What a window shows is the driving itself, not its weight.
    assert window.added_travel_minutes == 80


def test_after_time_off_or_as_the_days_first_job_the_drive_home_counts_in_full():
    # Time off is not a job: the day has no work to continue from, so nothing of the drive home
    # is discounted; nor when the job is the first of the day.
    ada = tech("Ada Route", weekdays=[0])
    TimeOffFactory(technician=ada, start=at(0, 7), end=at(0, 11), reason="Dentist")
    after_time_off = suggest(job(site=SiteFactory(lat=BERKELEY[0], lng=BERKELEY[1])), limit=1).windows[0]
    assert after_time_off.start == at(0, 11, 30)
    assert after_time_off.added_travel_minutes == 30
    assert after_time_off.breakdown["travel"] == -30
    ben = tech("Ben First", weekdays=[1])
    first = suggest(job(site=SiteFactory(lat=BERKELEY[0], lng=BERKELEY[1])), technician_ids=[ben.pk], limit=1)
    assert (first.windows[0].added_travel_minutes, first.windows[0].breakdown["travel"]) == (30, -30)


def test_priority_weights_trade_travel_for_an_earlier_start():
    near = tech("Near Late", home=OAKLAND, shifts=False)
    shifts_every_day(near, start="12:00", end="20:00", weekdays=WEEKDAYS)
    tech("Far Early", home=BERKELEY)
    routine = suggest(job(priority="ROUTINE"), limit=1)
    emergency = suggest(job(priority="EMERGENCY"), limit=1)
    # Routine work waits for the technician who is already close; an emergency takes the first truck.
    assert names(routine) == ["Near Late"]
    assert names(emergency) == ["Far Early"]


def test_the_sites_previous_technician_is_preferred():
    site = SiteFactory()
    tech("Ann First")
    regular = tech("Reg Ular")
    earlier = ticket_new(site=site)
    AppointmentFactory(
        technician=regular,
        ticket=earlier,
        start=NOW - timedelta(days=20),
        end=NOW - timedelta(days=20, hours=-1),
        status="COMPLETED",
    )
    suggestion = suggest(job(site=site), limit=1)
    assert names(suggestion) == ["Reg Ular"]
    assert "worked at this site last time" in suggestion.windows[0].reason


def test_windows_after_the_sla_due_time_are_penalised():
    # Urgent: due 24 h after opening. Dana is closer but only free the day after tomorrow.
    dana = tech("Dana Close", home=OAKLAND)
    TimeOffFactory(technician=dana, start=at(0, 0), end=at(2, 0))
    tech("Eli Farther", home=BERKELEY)
    suggestion = suggest(job(priority="URGENT"), limit=1)
    assert names(suggestion) == ["Eli Farther"]
    late = suggest(job(priority="URGENT"), limit=5, technician_ids=[dana.pk])
    assert late.windows[0].breakdown["sla"] < 0
    assert "after the urgent SLA due" in late.windows[0].reason


# --- reasons and explanations -------------------------------------------------------------------


def test_the_reason_names_the_deciding_facts():
    dana = tech("Dana Reyes", skills=("AUTO_OPERATOR_FAULT",), level=3, weekdays=[0])
    berkeley = SiteFactory(lat=BERKELEY[0], lng=BERKELEY[1])
    booked(dana, at(0, 7), at(0, 9), site=berkeley)
    booked(dana, at(0, 14), at(0, 16), site=berkeley)
    window = suggest(job(incident_type="AUTO_OPERATOR_FAULT"), limit=1).windows[0]
    assert window.reason.startswith(
        "Dana Reyes: has AUTO_OPERATOR_FAULT level 3, 15 min from the 07:00 job, free 09:00–14:00, "
        "4 h already booked that day"
    )
    assert window.travel_minutes == 15
    assert window.start == at(0, 9, 30)
    assert window.end - window.start == timedelta(minutes=120)  # the incident template's duration
    assert window.arrival_end - window.arrival_start == timedelta(minutes=120)


def test_an_impossible_ticket_says_which_rule_excluded_everyone():
    tech("Dana Reyes", skills=("DOOR_WONT_LATCH",))
    nobody = suggest(job(incident_type="FRAME_OR_GLASS_DAMAGE"))
    assert nobody.windows == []
    # Nobody in the company has the skill: a setup gap, named as Setup health names it.
    assert nobody.explanation == (
        "No active technician is skilled for Frame or glass damage. "
        "A setup gap: add the skill to a technician (see Setup health)."
    )

    for name in ("Ann", "Ben", "Cy"):
        tech(name, skills=("CANNOT_SECURE_ENTRY",), regions=("EAST_BAY",))
    peninsula = job(site=SiteFactory(service_region="PENINSULA"), incident_type="CANNOT_SECURE_ENTRY")
    outside = suggest(peninsula)
    assert outside.explanation == (
        "Sites name the region PENINSULA, which does not exist, so no technician covers it. "
        "A setup gap: add the region (see Setup health)."
    )
    assert outside.excluded == {"skill": 1, "region": 3}

    off = tech("Off Duty", skills=("HARDWARE_REPLACEMENT",), shifts=False)
    assert suggest(job(incident_type="HARDWARE_REPLACEMENT")).explanation == (
        "1 technician has HARDWARE_REPLACEMENT and covers EAST_BAY, but none has a shift in the next 14 days."
    )
    shifts_every_day(off, weekdays=WEEKDAYS)
    TimeOffFactory(technician=off, start=NOW, end=NOW + timedelta(days=15), reason="Leave")
    assert "but none has 1.5 h free (with travel) inside a shift in the next 14 days" in (
        suggest(job(incident_type="HARDWARE_REPLACEMENT")).explanation
    )


def test_no_window_among_the_technicians_asked_about_is_not_called_a_setup_gap():
    tech("Dana Reyes", skills=("FRAME_OR_GLASS_DAMAGE",))
    eli = tech("Eli Park", skills=("DOOR_WONT_LATCH",))
    # Someone in the company has the skill: only the board's filter left them out.
    narrowed = suggest(job(incident_type="FRAME_OR_GLASS_DAMAGE"), technician_ids=[eli.id])
    assert narrowed.windows == []
    assert narrowed.explanation == "No technician has FRAME_OR_GLASS_DAMAGE."


def test_no_window_names_a_region_no_active_technician_covers():
    tech("Dana Reyes", skills=("DOOR_WONT_LATCH",), regions=("EAST_BAY",))
    RegionFactory(code="PENINSULA", name="Peninsula")
    tech("Retired", skills=("DOOR_WONT_LATCH",), regions=("PENINSULA",), is_active=False)
    peninsula = suggest(job(site=SiteFactory(service_region="PENINSULA")))
    assert peninsula.explanation == (
        "No active technician covers Peninsula. A setup gap: give a technician this region (see Setup health)."
    )


# --- slot_check -----------------------------------------------------------------------------------


def test_slot_check_names_every_broken_rule():
    dana = tech("Dana Reyes", skills=("AUTO_OPERATOR_FAULT",), regions=("SF",))
    TimeOffFactory(technician=dana, start=at(1, 0), end=at(2, 0), reason="Dentist")
    other = booked(dana, at(0, 9), at(0, 11))
    ticket = job()
    check = lambda start, end, **kw: slot_check(ticket=ticket, technician=dana, start=start, end=end, now=NOW, **kw)  # noqa: E731
    assert check(at(0, 10), at(0, 11)) == [
        "Dana Reyes does not have DOOR_WONT_LATCH.",
        "Dana Reyes does not cover EAST_BAY.",
        f"Overlaps Dana Reyes's job {at(0, 9):%a %b} {MONDAY.day} 09:00–11:00.",
    ]
    TechnicianSkill.objects.create(technician=dana, incident_type="DOOR_WONT_LATCH", level=2)
    dana.regions.add(RegionFactory(code="EAST_BAY", name="East Bay"))
    assert check(at(0, 10), at(0, 11), ignore_appointment_id=other.pk) == []
    assert check(at(0, 17), at(0, 18)) == [
        f"Dana Reyes is not on shift {at(0, 17):%a %b} {MONDAY.day} 17:00–18:00 (shift that day 07:00–16:00)."
    ]
    assert (
        check(at(1, 9), at(1, 10))[0].startswith("Dana Reyes is off ") and "(Dentist)" in check(at(1, 9), at(1, 10))[0]
    )
    assert check(at(0, 7), at(0, 8)) == []  # same coordinates as home: no drive
    assert check(at(0, 5), at(0, 6)) == [
        f"{at(0, 5):%a %b} {MONDAY.day} 05:00–06:00 has already begun.",
        f"Dana Reyes is not on shift {at(0, 5):%a %b} {MONDAY.day} 05:00–06:00 (shift that day 07:00–16:00).",
    ]
    assert check(at(2, 9), at(2, 10), preferences=[(at(2, 12), at(2, 17))]) == [
        "The arrival window 09:00–11:00 is outside the customer's preferred times."
    ]


def test_slot_check_ignores_the_tickets_own_booking():
    dana = tech("Dana Reyes")
    ticket = job()
    AppointmentFactory(technician=dana, ticket=ticket, start=at(0, 9), end=at(0, 10))
    assert slot_check(ticket=ticket, technician=dana, start=at(0, 9, 30), end=at(0, 10, 30), now=NOW) == []


# --- cost ---------------------------------------------------------------------------------------


def _queries(count: int) -> tuple[int, int]:
    site = SiteFactory()
    technicians = [tech(f"Load {count}-{n}", regions=("EAST_BAY", "PENINSULA")) for n in range(count)]
    for n, technician in enumerate(technicians):
        booked(technician, at(n % 5, 8), at(n % 5, 10), site=site)
        if n % 4 == 0:
            TimeOffFactory(technician=technician, start=at(1, 0), end=at(2, 0))
    ticket = job(site=site)
    with CaptureQueriesContext(connection) as suggest_queries:
        suggestion = suggest(ticket, limit=3)
    assert len(suggestion.windows) == 3
    with CaptureQueriesContext(connection) as check_queries:
        slot_check(ticket=ticket, technician=technicians[0], start=at(3, 12), end=at(3, 13), now=NOW)
    return len(suggest_queries.captured_queries), len(check_queries.captured_queries)


def test_a_constant_number_of_queries_for_5_or_50_technicians():
    assert _queries(5) == _queries(50)
