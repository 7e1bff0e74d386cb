"""What a dispatcher sees of the autopilot and does about it: suggestions applied or dismissed
(through the same services, only while the ticket is as it was), the autopilot's bookings marked
on the board and undone there, the ladder and the suggestions in the admin, today's numbers on
the admin index, and the autopilot's reasons on the ticket's timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dispatch.autopilot.models import AutonomyLevel, Suggestion
from dispatch.autopilot.selectors import autopilot_decisions, today_numbers
from dispatch.autopilot.services import autopilot_pass
from dispatch.autopilot.suggestions import suggestion_apply, suggestion_dismiss
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_groups_sync
from dispatch.intake.services import message_receive
from dispatch.scheduling.board import board_version, company_today
from dispatch.scheduling.models import Appointment, ScheduleProposal
from dispatch.scheduling.replies import proposal_reply_apply
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.services import ticket_update_details
from dispatch.tickets.states import TicketState
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    UserFactory,
    actor_for,
    shifts_every_day,
    ticket_dispatched,
    ticket_ready_to_schedule,
    ticket_triaged,
    window_at,
)

pytestmark = pytest.mark.django_db

PHONE = "+15105550123"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _role_groups(db):
    role_groups_sync()


@pytest.fixture
def technician():
    tech = TechnicianFactory(display_name="Dana Whitfield", skills=["DOOR_WONT_LATCH"])
    shifts_every_day(tech, start="00:00", end="23:59", timezone="UTC")
    return tech


@pytest.fixture
def desk(client):
    client.force_login(UserFactory(username="riley", role="dispatcher"))
    return client


@pytest.fixture
def boss(client):
    client.force_login(UserFactory(username="morgan", is_staff=True, is_superuser=True))
    return client


def level(value: int, *, incident_type: str = "", priority: str = "") -> None:
    AutonomyLevel.objects.update_or_create(incident_type=incident_type, priority=priority, defaults={"level": value})


def suggested_proposal(**fields) -> tuple[Ticket, Suggestion]:
    level(0)
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE, **fields)
    autopilot_pass()
    return ticket, Suggestion.objects.get(ticket=ticket)


def booked_by_autopilot() -> Ticket:
    """Proposed by the autopilot, the first window chosen by the customer's "1"."""
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    autopilot_pass()
    reply = message_receive(channel="SMS", provider_message_id="SM-1", sender_phone=PHONE, body="1")
    proposal_reply_apply(result=reply)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULED
    return ticket


def board_day_of(ticket: Ticket) -> str:
    appointment = Appointment.objects.filter(ticket=ticket, status="CONFIRMED").first()
    moment = appointment.start if appointment else ticket.scheduled_start
    return timezone.localtime(moment).date().isoformat()


# --- 1. Suggestions: applied through the same services, or dismissed ----------------------------------


def test_a_dispatcher_applies_a_suggested_proposal_as_themselves_with_the_autopilots_reason(technician):
    ticket, suggestion = suggested_proposal()
    dispatcher = actor_for(Role.DISPATCHER, actor_id="42")

    outcome = suggestion_apply(actor=dispatcher, suggestion_id=suggestion.pk)

    ticket.refresh_from_db()
    suggestion.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULE_PROPOSED
    assert (suggestion.status, suggestion.decided_by) == (Suggestion.Status.APPLIED, "42")
    assert suggestion.decided_at is not None
    event = outcome.event
    assert (event.tool_name, event.actor_type, event.actor_id) == ("schedule.propose", "HUMAN", "42")
    assert event.payload["request"]["reason"] == suggestion.reason
    assert event.payload["request"]["suggestion_id"] == str(suggestion.pk)
    proposal = ScheduleProposal.objects.get(ticket=ticket)
    assert [o["start"] for o in proposal.options] == [o["start"] for o in suggestion.payload["options"]]


def test_an_applied_emergency_suggestion_dispatches_as_a_confirmed_bypass(technician):
    ticket = ticket_triaged(site=SiteFactory(), customer_phone=PHONE)
    autopilot_pass()  # below level 2: suggested
    suggestion = Suggestion.objects.get(ticket=ticket, action="assignment.dispatch")

    outcome = suggestion_apply(actor=actor_for(Role.DISPATCHER), suggestion_id=suggestion.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech_id) == (TicketState.DISPATCHED, technician.pk)
    assert outcome.event.payload["dispatch_mode"] == "EMERGENCY_BYPASS"
    assert outcome.event.payload["dispatch_rationale"] == suggestion.reason


def test_a_suggestion_for_a_ticket_that_changed_since_is_stale_and_refused(technician):
    ticket, suggestion = suggested_proposal()
    ticket_update_details(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.pk, changes={"summary": "Door sticks"})

    with pytest.raises(DispatchError) as refused:
        suggestion_apply(actor=actor_for(Role.DISPATCHER), suggestion_id=suggestion.pk)

    assert (refused.value.code, refused.value.status) == ("SUGGESTION_STALE", 409)
    suggestion.refresh_from_db()
    ticket.refresh_from_db()
    assert suggestion.status == Suggestion.Status.STALE
    assert ticket.state == TicketState.READY_TO_SCHEDULE
    # The next pass suggests afresh, on the ticket as it is now.
    autopilot_pass()
    fresh = Suggestion.objects.get(ticket=ticket, status=Suggestion.Status.OPEN)
    assert fresh.ticket_version == ticket.version


@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.QA, Role.FINANCE, Role.CUSTOMER])
def test_only_the_dispatch_desk_answers_a_suggestion(technician, role):
    _ticket, suggestion = suggested_proposal()
    for answer in (suggestion_apply, suggestion_dismiss):
        with pytest.raises(DispatchError) as refused:
            answer(actor=actor_for(role), suggestion_id=suggestion.pk)
        assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    suggestion.refresh_from_db()
    assert suggestion.status == Suggestion.Status.OPEN


def test_a_dismissed_suggestion_leaves_the_ticket_and_is_on_its_trail(technician):
    ticket, suggestion = suggested_proposal()
    version = ticket.version

    suggestion_dismiss(actor=actor_for(Role.DISPATCHER, actor_id="42"), suggestion_id=suggestion.pk)

    suggestion.refresh_from_db()
    ticket.refresh_from_db()
    assert (suggestion.status, suggestion.decided_by) == (Suggestion.Status.DISMISSED, "42")
    assert (ticket.state, ticket.version) == (TicketState.READY_TO_SCHEDULE, version)
    event = AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()
    assert event.tool_name == "autopilot.suggestion_dismiss"
    assert event.payload["suggested_reason"] == suggestion.reason
    with pytest.raises(DispatchError) as refused:
        suggestion_apply(actor=actor_for(Role.DISPATCHER), suggestion_id=suggestion.pk)
    assert refused.value.code == "SUGGESTION_DECIDED"


def test_a_suggested_reassignment_unassigns_and_sends_the_next_technician(technician):
    ticket = ticket_dispatched(technician=technician, site=SiteFactory())
    other = TechnicianFactory(display_name="Sam Okafor", skills=["DOOR_WONT_LATCH"])
    shifts_every_day(other, start="00:00", end="23:59", timezone="UTC")
    suggestion = Suggestion.objects.create(
        ticket=ticket,
        action="assignment.reassign",
        payload={"tech_id": str(other.pk)},
        reason="Dana has not acknowledged the job; Sam is the next best fit.",
        ticket_version=ticket.version,
    )

    suggestion_apply(actor=actor_for(Role.DISPATCHER), suggestion_id=suggestion.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech_id) == (TicketState.DISPATCHED, other.pk)
    tools = list(AuditEvent.objects.filter(ticket=ticket).order_by("-seq").values_list("tool_name", flat=True)[:2])
    assert tools == ["assignment.dispatch", "dispatch.force_unassign"]


# --- 2. The board: suggestions waiting, applied or dismissed from the panel -------------------------------


def test_the_board_lists_a_waiting_suggestion_and_the_panel_offers_apply_and_dismiss(desk, technician):
    ticket, suggestion = suggested_proposal()

    page = desk.get(reverse("board:day"))
    html = page.content.decode()
    assert "Suggestion waiting" in html and ticket.short_ref in html
    assert "bd-esc--suggestion_waiting" in html

    panel = desk.get(reverse("board:ticket", args=[ticket.pk])).content.decode()
    assert reverse("autopilot:suggestion_apply", args=[suggestion.pk]) in panel
    assert reverse("autopilot:suggestion_dismiss", args=[suggestion.pk]) in panel
    assert suggestion.reason[:40] in panel


def test_apply_from_the_board_panel_proposes_and_refreshes_the_board(desk, technician):
    ticket, suggestion = suggested_proposal()

    answer = desk.post(reverse("autopilot:suggestion_apply", args=[suggestion.pk]), {"day": "2030-01-01"}, **HTMX)

    assert answer.status_code == 200
    assert answer["HX-Trigger"] == "board-changed"
    html = answer.content.decode()
    assert "applied (schedule.propose)" in html and 'class="bd-card"' in html
    ticket.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULE_PROPOSED
    event = AuditEvent.objects.filter(ticket=ticket, tool_name="schedule.propose").get()
    assert event.actor_type == "HUMAN" and event.actor_id == str(desk.session["_auth_user_id"])


def test_a_stale_suggestion_is_refused_in_the_panel_with_409(desk, technician):
    ticket, suggestion = suggested_proposal()
    ticket_update_details(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.pk, changes={"summary": "Door sticks"})

    answer = desk.post(reverse("autopilot:suggestion_apply", args=[suggestion.pk]), **HTMX)

    assert answer.status_code == 409
    assert "SUGGESTION_STALE" in answer.content.decode()
    assert "HX-Trigger" not in answer


def test_dismiss_as_a_plain_form_returns_to_the_ticket_page(desk, technician):
    ticket, suggestion = suggested_proposal()
    back = reverse("admin:tickets_ticket_change", args=[ticket.pk])

    answer = desk.post(reverse("autopilot:suggestion_dismiss", args=[suggestion.pk]), {"next": back})

    assert answer.status_code == 302 and answer["Location"] == back
    suggestion.refresh_from_db()
    assert suggestion.status == Suggestion.Status.DISMISSED
    # An address elsewhere is not followed.
    _other, again = suggested_proposal()
    answer = desk.post(reverse("autopilot:suggestion_dismiss", args=[again.pk]), {"next": "https://example.com/"})
    assert answer["Location"] == reverse("admin:tickets_ticket_change", args=[again.ticket_id])


def test_answering_a_suggestion_needs_post_csrf_and_the_dispatch_desk(client, technician):
    _ticket, suggestion = suggested_proposal()
    url = reverse("autopilot:suggestion_apply", args=[suggestion.pk])

    client.force_login(UserFactory(role="qa", is_staff=True))
    assert client.post(url).status_code == 403
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(UserFactory(role="dispatcher"))
    assert checked.get(url).status_code == 405
    assert checked.post(url).status_code == 403  # no CSRF token
    suggestion.refresh_from_db()
    assert suggestion.status == Suggestion.Status.OPEN


def test_a_new_suggestion_changes_the_boards_live_version(technician):
    level(0)
    ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    before = board_version(day=company_today())
    autopilot_pass()
    assert board_version(day=company_today()) != before


# --- 3. The board: the autopilot's bookings, marked and undone ------------------------------------------------


def test_a_booking_from_the_autopilots_proposal_is_marked_with_its_reason(desk, technician):
    ticket = booked_by_autopilot()

    decision = autopilot_decisions([ticket.pk])[ticket.pk]
    assert decision.tool_name == "schedule.propose" and decision.reason.startswith("Offered the")

    page = desk.get(reverse("board:day") + f"?day={board_day_of(ticket)}").content.decode()
    assert "bd-mark--autopilot" in page and "booked" in page
    panel = desk.get(reverse("board:ticket", args=[ticket.pk])).content.decode()
    assert "Autopilot: booked" in panel and "The customer picked one of the windows it offered." in panel
    assert reverse("autopilot:undo", args=[ticket.pk]) in panel


def test_undo_moves_the_autopilots_booking_to_the_dispatchers_pick_and_clears_the_mark(desk, technician):
    ticket = booked_by_autopilot()
    old = Appointment.objects.get(ticket=ticket, status="CONFIRMED")

    offer = desk.get(reverse("autopilot:undo", args=[ticket.pk]))
    assert offer.status_code == 200
    html = offer.content.decode()
    assert "Undo the autopilot's booking" in html and "Move here" in html
    window = offer.context["windows"][0]

    answer = desk.post(
        reverse("autopilot:undo_apply", args=[ticket.pk]),
        {
            "technician_id": window["technician_id"],
            "start": window["start_iso"],
            "end": window["end_iso"],
            "version": ticket.version,
        },
        **HTMX,
    )

    assert answer.status_code == 200 and answer["HX-Trigger"] == "board-changed"
    ticket.refresh_from_db()
    new = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    assert ticket.state == TicketState.SCHEDULED and new.pk != old.pk
    assert new.start.isoformat() == window["start_iso"]
    moved = AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()
    assert (moved.tool_name, moved.actor_type) == ("schedule.move", "HUMAN")
    assert moved.payload["request"]["reason"].startswith("The dispatcher replaced the autopilot's booking")
    # The booking is the dispatcher's now: no autopilot mark, and the autopilot leaves it be.
    assert autopilot_decisions([ticket.pk]) == {}
    assert [d for d in autopilot_pass() if d.ticket_id == str(ticket.pk)] == []


def test_undo_of_a_proposal_books_the_dispatchers_pick_instead(desk, technician):
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    autopilot_pass()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULE_PROPOSED
    queue = desk.get(reverse("board:day")).content.decode()
    assert "bd-qitem__mark bd-mark bd-mark--autopilot" in queue

    offer = desk.get(reverse("autopilot:undo", args=[ticket.pk]))
    assert "Undo the autopilot's proposal" in offer.content.decode()
    window = offer.context["windows"][-1]
    answer = desk.post(
        reverse("autopilot:undo_apply", args=[ticket.pk]),
        {
            "technician_id": window["technician_id"],
            "start": window["start_iso"],
            "end": window["end_iso"],
            "version": ticket.version,
        },
        **HTMX,
    )

    assert answer.status_code == 200
    ticket.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULED
    assert ScheduleProposal.objects.get(ticket=ticket).status == ScheduleProposal.Status.SUPERSEDED
    assert AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first().tool_name == "schedule.book"


def test_a_refused_undo_comes_back_as_the_undo_panel_with_the_reason(desk, technician):
    ticket = booked_by_autopilot()
    answer = desk.post(
        reverse("autopilot:undo_apply", args=[ticket.pk]),
        {"technician_id": str(technician.pk), "start": "not a time", "version": ticket.version},
        **HTMX,
    )
    assert answer.status_code == 400
    assert "Not changed" in answer.content.decode() and "INVALID_REQUEST" in answer.content.decode()


def test_the_ticket_list_has_an_autopilot_column_and_filter(desk, technician):
    mine = booked_by_autopilot()
    theirs = ticket_ready_to_schedule(site=SiteFactory())

    listed = desk.get(reverse("admin:tickets_ticket_changelist") + "?autopilot=yes")

    assert listed.status_code == 200
    rows = list(listed.context["cl"].result_list)
    assert [t.pk for t in rows] == [mine.pk]
    assert "rd-flag--autopilot" in listed.content.decode()
    assert theirs.pk not in [t.pk for t in rows]


# --- 4. The admin: the ladder and the suggestions ----------------------------------------------------------


def test_the_ladder_is_edited_in_the_admin_with_the_templates_incident_types(boss):
    add = boss.get(reverse("admin:autopilot_autonomylevel_add"))
    choices = dict(add.context["adminform"].form.fields["incident_type"].choices)
    assert choices[""].startswith("any") and "DOOR_WONT_LATCH" in choices

    saved = boss.post(
        reverse("admin:autopilot_autonomylevel_add"),
        {"incident_type": "DOOR_WONT_LATCH", "priority": "", "level": "2"},
    )

    assert saved.status_code == 302
    row = AutonomyLevel.objects.get()
    assert (row.incident_type, row.priority, row.level, row.updated_by) == ("DOOR_WONT_LATCH", "", 2, "morgan")
    listed = boss.get(reverse("admin:autopilot_autonomylevel_changelist")).content.decode()
    assert "any" in listed and "Where no row applies" in listed
    refused = boss.post(
        reverse("admin:autopilot_autonomylevel_add"),
        {"incident_type": "NOT_A_TYPE", "priority": "", "level": "1"},
    )
    assert refused.status_code == 200 and AutonomyLevel.objects.count() == 1


def test_a_dispatcher_sees_the_ladder_but_does_not_change_it(desk):
    level(1)
    assert desk.get(reverse("admin:autopilot_autonomylevel_changelist")).status_code == 200
    assert desk.get(reverse("admin:autopilot_autonomylevel_add")).status_code == 403


def test_suggestions_are_listed_read_only_and_applied_by_an_admin_action(desk, technician):
    ticket, suggestion = suggested_proposal()
    url = reverse("admin:autopilot_suggestion_changelist")

    listed = desk.get(url + "?status__exact=OPEN&action=schedule.propose")
    assert listed.status_code == 200
    assert ticket.short_ref in listed.content.decode()
    assert set(listed.context["cl"].model_admin.get_actions(listed.wsgi_request)) >= {
        "apply_selected",
        "dismiss_selected",
    }
    assert desk.get(reverse("admin:autopilot_suggestion_change", args=[suggestion.pk])).status_code == 200

    done = desk.post(url, {"action": "apply_selected", "_selected_action": [str(suggestion.pk)]}, follow=True)

    assert "Applied 1 suggestion." in done.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.SCHEDULE_PROPOSED


def test_the_ticket_page_offers_the_suggestion_and_shows_the_autopilots_reasons_on_the_timeline(desk, technician):
    ticket, suggestion = suggested_proposal()
    page = desk.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "Suggests:" in page and reverse("autopilot:suggestion_apply", args=[suggestion.pk]) in page

    level(1)
    other = ticket_ready_to_schedule(site=SiteFactory(), customer_phone="+15105550199")
    autopilot_pass()
    page = desk.get(reverse("admin:tickets_ticket_change", args=[other.pk])).content.decode()
    reason = AuditEvent.objects.get(ticket=other, actor_id="autopilot").payload["request"]["reason"]
    sentence = f'<span class="rd-event__reason rd-event__reason--machine">{reason}</span>'.replace("'", "&#x27;")
    assert sentence in page
    assert "rd-event--agent" in page and '<strong class="rd-event__who">Autopilot</strong>' in page


# --- 5. The admin index: today's numbers as small charts ----------------------------------------------------


def test_todays_numbers_count_the_day_and_the_autopilots_share(technician):
    booked_by_autopilot()
    ticket_triaged(site=SiteFactory())

    numbers = today_numbers()

    assert numbers.received.total == 2 and sum(numbers.received.hours) == 2
    assert numbers.received.note == "1 message in"
    assert numbers.booked.total == 1
    assert numbers.time_to_book.count == 1 and numbers.time_to_book.median is not None
    assert 0 < numbers.autopilot.part < numbers.autopilot.whole
    assert numbers.autopilot.part == AuditEvent.objects.filter(actor_id="autopilot").count()


def test_the_index_draws_todays_numbers_in_a_bounded_number_of_queries(desk, technician, django_assert_max_num_queries):
    booked_by_autopilot()
    with django_assert_max_num_queries(30), CaptureQueriesContext(connection) as quiet_queries:
        quiet = desk.get(reverse("admin:index"))
    for n in range(6):
        ticket_ready_to_schedule(site=SiteFactory(), customer_phone=f"+1510555020{n}")
    autopilot_pass()
    with django_assert_max_num_queries(30), CaptureQueriesContext(connection) as busy_queries:
        page = desk.get(reverse("admin:index"))

    assert quiet.status_code == page.status_code == 200
    # The charts cost the same whatever the day's volume.
    assert len(busy_queries) == len(quiet_queries)
    html = page.content.decode()
    assert html.count('<svg class="rd-chart') == 7
    for label in ("Received", "Booked", "On site", "Done", "Escalations", "Autopilot share", "Time to book"):
        assert f">{label}</h2>" in html
    assert "waiting now, by kind" in html
    assert "<script" not in html.split('class="rd-today"')[1].split("</section>")[0]
    assert page.context["today"].received.total == 7


def test_an_empty_day_draws_empty_charts():
    numbers = today_numbers(now=timezone.now() + timedelta(days=400))
    assert numbers.received.total == numbers.booked.total == 0
    assert numbers.autopilot.percent is None and numbers.time_to_book.median is None


def test_an_undo_picked_before_the_customer_answered_does_not_override_their_choice(desk, technician):
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    autopilot_pass()
    ticket.refresh_from_db()
    offer = desk.get(reverse("autopilot:undo", args=[ticket.pk]))
    window = offer.context["windows"][-1]
    seen_version = ticket.version
    # Meanwhile the customer answers "1": the job is booked on the window they chose.
    reply = message_receive(channel="SMS", provider_message_id="SM-undo-race", sender_phone=PHONE, body="1")
    proposal_reply_apply(result=reply)
    ticket.refresh_from_db()
    booked = Appointment.objects.get(ticket=ticket, status="CONFIRMED")
    answer = desk.post(
        reverse("autopilot:undo_apply", args=[ticket.pk]),
        {
            "technician_id": window["technician_id"],
            "start": window["start_iso"],
            "end": window["end_iso"],
            "version": seen_version,
        },
        **HTMX,
    )
    assert answer.status_code == 409
    assert Appointment.objects.get(ticket=ticket, status="CONFIRMED").pk == booked.pk


def test_undo_refuses_a_job_the_autopilot_never_touched(desk, technician):
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    start, end = window_at(days=2)
    answer = desk.post(
        reverse("autopilot:undo_apply", args=[ticket.pk]),
        {"technician_id": str(technician.pk), "start": start.isoformat(), "end": end.isoformat(), "version": 2},
        **HTMX,
    )
    assert answer.status_code == 409 and "UNDO_NOT_APPLICABLE" in answer.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.READY_TO_SCHEDULE


def test_the_desk_endpoints_refuse_what_a_hostile_caller_sends(desk, technician):
    ticket = ticket_ready_to_schedule(site=SiteFactory(), customer_phone=PHONE)
    # A GET where a change is a POST, and ids that name nothing.
    assert desk.get(reverse("autopilot:undo_apply", args=[ticket.pk])).status_code == 405
    missing = "00000000-0000-0000-0000-000000000000"
    assert desk.post(reverse("autopilot:suggestion_apply", args=[missing])).status_code == 404
    assert desk.post("/autopilot/suggestions/not-a-uuid/apply/").status_code == 404
    # A technician signed in to the desk's endpoints gets nothing done.
    tech_client = Client()
    tech_client.force_login(technician.user)
    answer = tech_client.post(reverse("autopilot:undo_apply", args=[ticket.pk]), {"version": ticket.version})
    assert answer.status_code in (302, 403)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.READY_TO_SCHEDULE
