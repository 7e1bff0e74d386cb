"""The day planner: crossed routes are uncrossed, every customer keeps the arrival window they
were told, dispatched and started jobs stay put, a stale or hostile plan changes nothing, and
each moved booking is one audit event with its reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime

from dispatch.common.errors import DispatchError
from dispatch.scheduling.appointments import told_window
from dispatch.scheduling.booking import appointment_move
from dispatch.scheduling.day_planner import day_plan, day_plan_apply, schedule_optimize_day
from dispatch.scheduling.models import Appointment
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, actor_for, ticket_dispatched, ticket_scheduled
from tests.scheduling.board_desk import at, role_groups_fixture, technician, tomorrow  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

# Two neighbourhoods about 25 km apart: Ana lives in the north, Ben in the south.
NORTH = ("37.870000", "-122.270000")
SOUTH = ("37.650000", "-122.100000")


def _tech(name: str, home: tuple[str, str]):
    tech = technician(name)
    tech.home_lat, tech.home_lng = home
    tech.save(update_fields=["home_lat", "home_lng"])
    return tech


def _site(where: tuple[str, str], n: int):
    lat, lng = where
    return SiteFactory(lat=f"{float(lat) + n * 0.004:.6f}", lng=lng)


@pytest.fixture
def crossed():
    """Each technician booked on the other's side of the bay, 9:00 and 11:00."""
    ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)
    jobs = {
        "south_9": ticket_scheduled(technician=ana, site=_site(SOUTH, 1), start=at(9), end=at(10, 30)),
        "south_11": ticket_scheduled(technician=ana, site=_site(SOUTH, 2), start=at(11), end=at(12, 30)),
        "north_9": ticket_scheduled(technician=ben, site=_site(NORTH, 1), start=at(9), end=at(10, 30)),
        "north_11": ticket_scheduled(technician=ben, site=_site(NORTH, 2), start=at(11), end=at(12, 30)),
    }
    return ana, ben, jobs


def _booked(ticket) -> Appointment:
    return Appointment.objects.get(ticket=ticket, status="CONFIRMED")


def test_the_preview_uncrosses_the_routes_and_changes_nothing(crossed, dispatcher):
    ana, ben, jobs = crossed
    events = AuditEvent.objects.count()
    before = {key: _booked(t).pk for key, t in jobs.items()}

    answer = schedule_optimize_day(actor=dispatcher, day=tomorrow().isoformat())

    assert answer["dry_run"] is True and answer["status"] == "improved"
    assert answer["minutes_saved"] > 60 and answer["travel_minutes_after"] < answer["travel_minutes_before"]
    moved = {m["ticket_id"]: m for m in answer["moves"]}
    assert set(moved) == {str(t.id) for t in jobs.values()}
    assert {moved[str(jobs["north_9"].id)]["tech_id"], moved[str(jobs["north_11"].id)]["tech_id"]} == {str(ana.id)}
    assert {moved[str(jobs["south_9"].id)]["tech_id"], moved[str(jobs["south_11"].id)]["tech_id"]} == {str(ben.id)}
    assert all("min of driving" in m["reason"] for m in answer["moves"])
    per_tech = {row["name"]: row for row in answer["technicians"]}
    assert per_tech["Ana North"]["minutes_saved"] > 0 and per_tech["Ben South"]["minutes_saved"] > 0
    # A dry run writes nothing.
    assert AuditEvent.objects.count() == events
    assert {key: _booked(t).pk for key, t in jobs.items()} == before


def test_applying_moves_each_booking_once_and_keeps_every_told_window(crossed, dispatcher):
    ana, ben, jobs = crossed
    told_before = {key: told_window(_booked(t)) for key, t in jobs.items()}
    plan = day_plan(day=tomorrow())

    result = day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves])

    assert result["applied"] == 4
    for key, ticket in jobs.items():
        booked = _booked(ticket)
        assert booked.technician_id == (ana.id if key.startswith("north") else ben.id)
        # The customer's arrival window is exactly what they were told, and the job starts inside it.
        assert told_window(booked) == told_before[key]
        assert told_before[key][0] <= booked.start <= told_before[key][1]
        ticket.refresh_from_db()
        assert ticket.state == "SCHEDULED" and ticket.scheduled_start == booked.start
        events = list(AuditEvent.objects.filter(ticket=ticket, tool_name="schedule.optimize_day"))
        assert len(events) == 1
        assert "min of driving" in events[0].payload["reason"]
        assert parse_datetime(events[0].payload["promised_window"]["start"]) == told_before[key][0]
        # The old booking is history, cancelled with the reason.
        assert Appointment.objects.filter(ticket=ticket, status="CANCELLED").count() == 1
    # Planned again, the day is already as good as the solver finds.
    assert day_plan(day=tomorrow()).status == "unchanged"


def test_a_dispatched_job_never_moves_even_when_moving_it_would_save_driving(dispatcher):
    ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)
    far = ticket_dispatched(technician=ana, site=_site(SOUTH, 1), start=at(9), end=at(10, 30))
    ticket_scheduled(technician=ben, site=_site(NORTH, 1), start=at(13), end=at(14, 30))
    held_at = _booked(far)

    answer = schedule_optimize_day(actor=dispatcher, day=tomorrow().isoformat(), apply=True)

    assert str(far.id) not in {m["ticket_id"] for m in answer["moves"]}
    assert _booked(far).pk == held_at.pk and _booked(far).technician_id == ana.id


def test_a_job_starting_within_the_freeze_margin_stays(dispatcher, settings):
    settings.DISPATCH_PLAN_FREEZE_MINUTES = 60 * 48
    _ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)
    ticket_scheduled(technician=ben, site=_site(NORTH, 1), start=at(9), end=at(10, 30))

    assert day_plan(day=tomorrow()).moves == []


def test_a_plan_made_before_a_booking_changed_is_refused_whole(crossed, dispatcher):
    _ana, ben, jobs = crossed
    plan = day_plan(day=tomorrow())
    # Meanwhile a dispatcher moves one of the jobs on the board.
    appointment_move(actor=dispatcher, appointment_id=_booked(jobs["north_11"]).pk, technician_id=ben.id, start=at(14))
    events = AuditEvent.objects.count()
    booked = {key: (_booked(t).pk, _booked(t).technician_id) for key, t in jobs.items()}

    with pytest.raises(DispatchError) as refused:
        day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves])

    assert refused.value.code == "PLAN_STALE" and refused.value.status == 409
    assert AuditEvent.objects.count() == events
    assert {key: (_booked(t).pk, _booked(t).technician_id) for key, t in jobs.items()} == booked


def test_a_move_outside_the_told_window_or_onto_a_busy_technician_changes_nothing(crossed, dispatcher):
    ana, ben, jobs = crossed
    appointment = _booked(jobs["north_9"])
    move = {
        "kind": "move",
        "ticket_id": str(jobs["north_9"].id),
        "appointment_id": str(appointment.pk),
        "from_tech_id": str(ben.id),
        "from_start": appointment.start.isoformat(),
        "tech_id": str(ana.id),
        "start": (appointment.start + timedelta(hours=4)).isoformat(),
    }
    events = AuditEvent.objects.count()

    with pytest.raises(DispatchError) as late:
        day_plan_apply(actor=dispatcher, moves=[move])
    assert late.value.code == "INVALID_REQUEST" and "window the customer was told" in late.value.message

    # Ana is busy at 9:00 with her own job, which this plan does not move.
    with pytest.raises(DispatchError) as busy:
        day_plan_apply(actor=dispatcher, moves=[{**move, "start": appointment.start.isoformat()}])
    assert busy.value.code in ("SLOT_RULE_VIOLATION", "TECH_UNAVAILABLE")
    assert AuditEvent.objects.count() == events
    assert _booked(jobs["north_9"]).pk == appointment.pk


@pytest.mark.parametrize(
    "moves",
    [
        [],
        "everything",
        [{"kind": "teleport"}],
        [{"kind": "move", "ticket_id": "not-a-uuid"}],
        [{"kind": "move", "ticket_id": "00000000-0000-0000-0000-000000000001", "start": "tomorrow"}],
    ],
)
def test_malformed_moves_are_refused_with_a_stable_code(dispatcher, moves):
    with pytest.raises(DispatchError) as refused:
        day_plan_apply(actor=dispatcher, moves=moves)
    assert refused.value.code == "INVALID_REQUEST"


def test_only_a_dispatcher_plans_the_day(crossed):
    for role in ("technician", "customer", "agent"):
        with pytest.raises(DispatchError) as refused:
            schedule_optimize_day(actor=actor_for(role), day=tomorrow().isoformat())
        assert refused.value.status == 403


def test_a_day_in_the_past_or_a_malformed_day_is_refused(dispatcher):
    for day in ("2001-01-01", "next week", "2026-13-45"):
        with pytest.raises(DispatchError) as refused:
            schedule_optimize_day(actor=dispatcher, day=day)
        assert refused.value.code == "INVALID_REQUEST"


def test_a_day_of_200_technicians_and_1000_jobs_plans_in_under_ten_seconds(dispatcher):
    """Bulk-built like a large company's evening: 200 technicians on shift 7:00-19:00 in four
    neighbourhoods, five 90-minute jobs each in their own neighbourhood, booked in the order
    the calls came (without regard to which of them lives nearest)."""
    import random
    import time
    from datetime import datetime
    from datetime import time as clock

    from dispatch.scheduling.models import Shift
    from dispatch.technicians.models import Region, Technician, TechnicianSkill
    from dispatch.tickets.models import Account, Site, Ticket
    from tests.factories import UserFactory
    from tests.scheduling.board_desk import LA

    rng = random.Random(7)
    centres = [(37.77, -122.42), (37.80, -122.27), (37.56, -122.33), (37.34, -121.89)]
    region = Region.objects.get_or_create(code="EAST_BAY", defaults={"name": "East Bay"})[0]
    account = Account.objects.create(name="Large company")
    day = tomorrow()
    techs = Technician.objects.bulk_create(
        Technician(
            user=UserFactory(role="technician"),
            display_name=f"Tech {n:03d}",
            home_lat=round(centres[n % 4][0] + rng.uniform(-0.05, 0.05), 6),
            home_lng=round(centres[n % 4][1] + rng.uniform(-0.05, 0.05), 6),
        )
        for n in range(200)
    )
    Technician.regions.through.objects.bulk_create(
        Technician.regions.through(technician_id=t.pk, region_id=region.pk) for t in techs
    )
    TechnicianSkill.objects.bulk_create(TechnicianSkill(technician=t, incident_type="DOOR_WONT_LATCH") for t in techs)
    Shift.objects.bulk_create(
        Shift(technician=t, weekday=day.weekday(), start_time=clock(7), end_time=clock(19)) for t in techs
    )
    sites = Site.objects.bulk_create(
        Site(
            account=account,
            name=f"Site {n}",
            address_line1=f"{n} Main St",
            city="Bay Area",
            lat=round(centres[n % 4][0] + rng.uniform(-0.05, 0.05), 6),
            lng=round(centres[n % 4][1] + rng.uniform(-0.05, 0.05), 6),
            service_region="EAST_BAY",
        )
        for n in range(1000)
    )
    tickets = Ticket.objects.bulk_create(
        Ticket(account=account, site=site, state="SCHEDULED", incident_type="DOOR_WONT_LATCH", summary="Job")
        for site in sites
    )
    starts = [datetime.combine(day, clock(hour), tzinfo=LA) for hour in (8, 10, 12, 14, 16)]
    # Site n is in neighbourhood n % 4; technician n % 200 too, so every booking is reachable.
    order = list(range(1000))
    rng.shuffle(order)
    by_centre = {c: [n for n in order if n % 4 == c] for c in range(4)}
    rows = []
    for tech_n, tech in enumerate(techs):
        for slot, start in enumerate(starts):
            ticket = tickets[by_centre[tech_n % 4][(tech_n // 4) * 5 + slot]]
            rows.append(
                Appointment(
                    ticket=ticket, technician=tech, start=start, end=start + timedelta(minutes=90), status="CONFIRMED"
                )
            )
    Appointment.objects.bulk_create(rows)

    started = time.perf_counter()
    plan = day_plan(day=day)
    elapsed = time.perf_counter() - started

    assert elapsed < 10, f"planning took {elapsed:.1f} s"
    assert plan.status == "improved" and plan.travel_after < plan.travel_before
    assert len({m.ticket_id for m in plan.moves}) == len(plan.moves) > 0


def _api(client, role: str, body: dict):
    import uuid

    from tests.factories import jwt_for

    return client.post(
        "/api/v1/schedule/optimize-day",
        data=body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for(f'{role}-caller', role)}",
    )


def test_an_agent_developer_previews_then_applies_the_day_through_the_toolset(client, crossed):
    _ana, _ben, _jobs = crossed
    day = tomorrow().isoformat()

    preview = _api(client, "dispatcher", {"day": day})
    assert preview.status_code == 200, preview.content
    body = preview.json()
    assert body["dry_run"] is True and body["status"] == "improved" and len(body["moves"]) == 4
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 0

    # An agent may read the day's schedule through other tools, but not re-plan it.
    assert _api(client, "agent", {"day": day}).status_code == 403
    # The preview's moves, sent back as they came, are applied exactly.
    applied = _api(client, "dispatcher", {"day": day, "apply": True, "moves": body["moves"]})
    assert applied.status_code == 200, applied.content
    assert applied.json()["applied"] == 4
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 4
    # Sent again, the same moves name bookings that no longer exist: refused, nothing changes.
    again = _api(client, "dispatcher", {"day": day, "apply": True, "moves": body["moves"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "PLAN_STALE"
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 4
    # A body of the wrong shape is refused by the schema before anything runs.
    assert _api(client, "dispatcher", {"day": day, "apply": "yes"}).status_code == 400


def test_the_board_offers_optimize_day_only_to_the_desk_and_only_for_days_ahead(client, crossed):
    from django.urls import reverse

    from tests.factories import UserFactory

    client.force_login(UserFactory(username="tomas", role="technician"))
    assert client.post(reverse("board:optimize"), {"day": tomorrow().isoformat()}).status_code == 403
    client.force_login(UserFactory(username="riley", role="dispatcher"))
    page = client.get(reverse("board:day"), {"day": tomorrow().isoformat()})
    assert b"Optimize day" in page.content
    yesterday = (tomorrow() - timedelta(days=2)).isoformat()
    assert b"Optimize day" not in client.get(reverse("board:day"), {"day": yesterday}).content
    refused = client.post(reverse("board:optimize"), {"day": yesterday})
    assert refused.status_code == 400 and b"cannot be planned" in refused.content
    garbled = client.post(reverse("board:optimize_apply"), {"day": tomorrow().isoformat(), "moves": "{not json"})
    assert garbled.status_code == 400 and b"INVALID_REQUEST" in garbled.content
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 0


def test_a_job_moved_inside_its_window_keeps_the_window_on_the_reminder_and_the_status_page(client, dispatcher):
    from datetime import datetime, time

    from dispatch.intake.status_links import status_token
    from dispatch.messaging.models import OutboundMessage
    from dispatch.scheduling import tasks
    from tests.scheduling.board_desk import LA

    ben = _tech("Ben South", SOUTH)
    ticket = ticket_scheduled(
        technician=ben, site=_site(SOUTH, 1), start=at(9), end=at(10, 30), customer_phone="+15105550142"
    )
    appointment = _booked(ticket)
    # The customer was told 9-11 AM (the arrival window); the plan has the technician arrive at 10.
    day_plan_apply(
        actor=dispatcher,
        moves=[
            {
                "ticket_id": str(ticket.id),
                "appointment_id": str(appointment.pk),
                "from_tech_id": str(ben.id),
                "from_start": appointment.start.isoformat(),
                "tech_id": str(ben.id),
                "start": at(10).isoformat(),
            }
        ],
    )
    moved = _booked(ticket)
    assert moved.start == at(10) and told_window(moved) == (at(9), at(11))

    page = client.get(f"/s/{status_token(ticket)}/").content.decode()
    assert "9:00 – 11:00 AM" in page

    evening_before = datetime.combine(tomorrow() - timedelta(days=1), time(18), tzinfo=LA)
    assert tasks.appointment_reminders_send(now=evening_before) == 1
    assert tasks.appointment_reminders_send(now=evening_before + timedelta(minutes=30)) == 0
    (reminder,) = OutboundMessage.objects.filter(ticket=ticket, template="reminder")
    assert "9-11 AM" in reminder.body


def test_a_queued_job_that_fits_joins_the_day_only_when_asked(dispatcher):
    from tests.factories import ticket_ready_to_schedule

    ana = _tech("Ana North", NORTH)
    ticket_scheduled(technician=ana, site=_site(NORTH, 1), start=at(9), end=at(10, 30))
    queued = ticket_ready_to_schedule(site=_site(NORTH, 2), customer_phone="+15105550143")

    assert day_plan(day=tomorrow()).moves == []  # the queue is left alone unless asked
    plan = day_plan(day=tomorrow(), include_queue=True)

    (book,) = [m for m in plan.moves if m.kind == "book"]
    assert book.ticket_id == queued.id and book.to_tech_id == ana.id
    result = day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves])

    assert result["changes"][-1]["kind"] == "book" and result["changes"][-1]["tech_name"] == "Ana North"
    queued.refresh_from_db()
    assert queued.state == "SCHEDULED" and _booked(queued).technician_id == ana.id
    # A new booking, unlike a move inside a window, is news for the customer.
    assert AuditEvent.objects.filter(ticket=queued, tool_name="schedule.book").count() == 1
    from dispatch.messaging.models import OutboundMessage

    assert OutboundMessage.objects.filter(ticket=queued, template="schedule_confirmed").count() == 1


def test_the_same_day_plans_the_same_way_twice(crossed):
    first, second = day_plan(day=tomorrow()), day_plan(day=tomorrow())
    assert [m.as_json() for m in first.moves] == [m.as_json() for m in second.moves]
    assert first.travel_after == second.travel_after


def test_a_failing_solver_leaves_todays_plan_standing(crossed, dispatcher, monkeypatch):
    from dispatch.scheduling import routing

    def broken(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(routing, "routes_solve", broken)
    answer = schedule_optimize_day(actor=dispatcher, day=tomorrow().isoformat(), apply=True)

    assert answer["status"] == "fallback" and answer["moves"] == [] and answer["minutes_saved"] == 0
    assert "today's plan stands" in answer["message"]
    assert AuditEvent.objects.filter(tool_name="schedule.optimize_day").count() == 0


def test_a_malformed_technician_filter_is_refused_on_the_board_and_in_the_toolset(client, crossed, dispatcher):
    from django.urls import reverse

    from tests.factories import UserFactory

    with pytest.raises(DispatchError) as refused:
        schedule_optimize_day(actor=dispatcher, day=tomorrow().isoformat(), technician_ids=["not-a-uuid"])
    assert refused.value.code == "INVALID_REQUEST"
    client.force_login(UserFactory(username="riley", role="dispatcher"))
    answer = client.post(reverse("board:optimize"), {"day": tomorrow().isoformat(), "tech": "../etc"})
    assert answer.status_code == 400 and b"technician_ids must be a UUID" in answer.content


# --- what a careful reading of the planner found ---------------------------------------------------


def test_a_day_on_which_the_clocks_change_is_planned_on_the_hour(dispatcher):
    """2027-11-07 has 25 hours in Los Angeles: counted in clock hours, every job came out an hour late."""
    from datetime import date, datetime, time

    from tests.scheduling.board_desk import LA

    day = date(2027, 11, 7)
    ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)

    def when(hour):
        return datetime.combine(day, time(hour), tzinfo=LA)

    for tech, where in ((ana, SOUTH), (ben, NORTH)):
        for n, hour in enumerate((9, 11)):
            ticket_scheduled(
                technician=tech, site=_site(where, n), start=when(hour), end=when(hour) + timedelta(minutes=90)
            )

    plan = day_plan(day=day)

    assert plan.status == "improved" and len(plan.moves) == 4
    for move in plan.moves:
        assert move.promised[0] <= move.start <= move.promised[1]
    result = day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves], day=day)
    assert result["applied"] == 4


def test_a_preview_applied_too_late_does_not_move_a_job_about_to_start(crossed, dispatcher, settings):
    plan = day_plan(day=tomorrow())
    events = AuditEvent.objects.count()
    late = at(9) - timedelta(minutes=30)

    with pytest.raises(DispatchError) as refused:
        day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves], now=late)

    assert refused.value.code == "PLAN_STALE" and "too soon" in refused.value.message
    assert AuditEvent.objects.count() == events


def test_a_queued_job_offered_times_since_the_plan_is_not_booked_behind_the_customer(dispatcher):
    from dispatch.scheduling.models import ScheduleProposal
    from dispatch.scheduling.proposals import schedule_propose
    from tests.factories import ticket_ready_to_schedule

    ana = _tech("Ana North", NORTH)
    ticket_scheduled(technician=ana, site=_site(NORTH, 1), start=at(9), end=at(10, 30))
    queued = ticket_ready_to_schedule(site=_site(NORTH, 2))
    plan = day_plan(day=tomorrow(), include_queue=True)
    schedule_propose(
        actor=dispatcher,
        ticket_id=queued.id,
        options=[{"start": at(14).isoformat(), "end": at(15, 30).isoformat(), "tech_id": str(ana.id)}],
    )

    with pytest.raises(DispatchError) as refused:
        day_plan_apply(actor=dispatcher, moves=[m.as_json() for m in plan.moves])

    assert refused.value.code == "PLAN_STALE"
    assert ScheduleProposal.objects.get(ticket=queued).status == "OPEN"
    assert not Appointment.objects.filter(ticket=queued).exists()


def test_a_board_drag_inside_the_told_window_keeps_it_and_one_outside_tells_the_customer(dispatcher):
    from dispatch.scheduling.models import CustomerNotice

    ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)
    ticket = ticket_scheduled(
        technician=ana, site=_site(NORTH, 1), start=at(9), end=at(10, 30), customer_phone="+15105550144"
    )
    notices = CustomerNotice.objects.filter(ticket=ticket, kind="BOOKING").count()

    appointment_move(actor=dispatcher, appointment_id=_booked(ticket).pk, technician_id=ben.id, start=at(10))
    assert told_window(_booked(ticket)) == (at(9), at(11))
    assert CustomerNotice.objects.filter(ticket=ticket, kind="BOOKING").count() == notices

    appointment_move(actor=dispatcher, appointment_id=_booked(ticket).pk, technician_id=ben.id, start=at(14))
    assert told_window(_booked(ticket)) == (at(14), at(16))
    assert CustomerNotice.objects.filter(ticket=ticket, kind="BOOKING").count() == notices + 1


def test_moves_for_another_day_or_an_impossible_moment_are_refused(crossed, dispatcher):
    plan = day_plan(day=tomorrow())
    moves = [m.as_json() for m in plan.moves]
    with pytest.raises(DispatchError) as wrong_day:
        day_plan_apply(actor=dispatcher, moves=moves, day=tomorrow() + timedelta(days=1))
    assert wrong_day.value.code == "INVALID_REQUEST"
    with pytest.raises(DispatchError) as impossible:
        day_plan_apply(actor=dispatcher, moves=[{**moves[0], "start": "2026-13-45T10:00:00Z"}])
    assert impossible.value.code == "INVALID_REQUEST"


def test_overlapping_time_off_and_a_split_shift_still_leave_a_plan(dispatcher):
    from datetime import time

    from dispatch.scheduling.models import Shift
    from tests.factories import TimeOffFactory

    ana, ben = _tech("Ana North", NORTH), _tech("Ben South", SOUTH)
    # Ben works 7-11 and 13-17 (his shifts that day), and has two overlapping time-off rows at 11:00.
    Shift.objects.filter(technician=ben, weekday=tomorrow().weekday()).update(end_time=time(11))
    Shift.objects.create(technician=ben, weekday=tomorrow().weekday(), start_time=time(13), end_time=time(17))
    TimeOffFactory(technician=ben, start=at(15), end=at(16), reason="Dentist")
    TimeOffFactory(technician=ben, start=at(15, 30), end=at(16, 30), reason="School run")
    ticket_scheduled(technician=ana, site=_site(SOUTH, 1), start=at(9), end=at(10, 30))
    ticket_scheduled(technician=ben, site=_site(NORTH, 1), start=at(9), end=at(10, 30))

    plan = day_plan(day=tomorrow())

    assert plan.status == "improved" and len(plan.moves) == 2
