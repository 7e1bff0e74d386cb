"""What the customer is told: proposed windows, confirmation, on-my-way with an ETA, delay notices.

Messages are queued in the outbox in the business transaction; these tests read the queued
rows (what would be sent), the ledger that keeps each to one, and the audit events.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.messaging.models import MessageTemplate, OutboundMessage
from dispatch.scheduling.engine import travel_minutes
from dispatch.scheduling.eta import dispatch_acknowledge, tech_depart, tech_eta_update
from dispatch.scheduling.models import Appointment, CustomerNotice, Departure, DispatchAcknowledgement
from dispatch.scheduling.notifications import booking_notify, proposal_notify, window_phrase
from dispatch.scheduling.selectors import proposal_open_for_ticket
from dispatch.tickets.models import AuditEvent
from tests.factories import (
    TechnicianFactory,
    actor_for,
    ticket_dispatched,
    ticket_proposed,
    ticket_scheduled,
    window_at,
)

pytestmark = pytest.mark.django_db

PHONE = "+15105550142"
LA = ZoneInfo("America/Los_Angeles")
template_migration = importlib.import_module("dispatch.messaging.migrations.0003_scheduling_customer_templates")


def _local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=LA)


def _messages(ticket, template):
    return list(OutboundMessage.objects.filter(ticket=ticket, template=template).order_by("created_at"))


# --- phrasing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (_local(2030, 3, 5, 9), _local(2030, 3, 5, 11), "Tue Mar 5, 9-11 AM"),
        (_local(2030, 3, 5, 11, 30), _local(2030, 3, 5, 13), "Tue Mar 5, 11:30 AM-1 PM"),
        (_local(2030, 3, 5, 13), _local(2030, 3, 5, 15, 15), "Tue Mar 5, 1-3:15 PM"),
        (_local(2030, 3, 5, 22), _local(2030, 3, 6, 2), "Tue Mar 5, 10 PM - Wed Mar 6, 2 AM"),
    ],
)
def test_windows_are_written_short_in_the_sites_clock(start, end, expected):
    utc = ZoneInfo("UTC")
    assert window_phrase(start.astimezone(utc), end.astimezone(utc), LA) == expected


# --- proposed windows and confirmation --------------------------------------------------------------


def _three_windows():
    return [window_at(days=2, hour=17), window_at(days=3, hour=21), window_at(days=4, hour=16)]


def _options(windows):
    return [{"start": s.isoformat(), "end": e.isoformat()} for s, e in windows]


def test_the_proposal_sms_numbers_each_window_in_the_sites_timezone():
    windows = _three_windows()
    ticket = ticket_proposed(options=_options(windows), customer_phone=PHONE)
    proposal = proposal_open_for_ticket(ticket_id=ticket.id)

    sent = proposal_notify(ticket=ticket, proposal=proposal)

    (message,) = _messages(ticket, "proposal_windows")
    assert (message.channel, message.recipient) == ("SMS", PHONE)
    assert sent["outbox_id"] == str(message.id)
    for number, (start, end) in enumerate(windows, start=1):
        assert f"{number}) {window_phrase(start, end, LA)}" in message.body
    assert "Reply with the number" in message.body
    assert ticket.short_ref in message.body
    assert "–" not in message.body  # plain ASCII keeps an SMS in the 160-character encoding


def test_a_proposal_is_announced_once_however_often_it_is_asked_for():
    ticket = ticket_proposed(options=_options(_three_windows()), customer_phone=PHONE)
    proposal = proposal_open_for_ticket(ticket_id=ticket.id)

    first = proposal_notify(ticket=ticket, proposal=proposal)
    second = proposal_notify(ticket=ticket, proposal=proposal)

    assert len(_messages(ticket, "proposal_windows")) == 1
    assert second["already_sent"] is True
    assert second["outbox_id"] == first["outbox_id"] == str(_messages(ticket, "proposal_windows")[0].id)


def test_a_customer_without_a_phone_is_written_to_by_email_with_a_subject():
    ticket = ticket_scheduled(customer_email="pat@example.com")
    appointment = Appointment.objects.get(ticket=ticket)

    booking_notify(ticket=ticket, appointment=appointment)

    (message,) = _messages(ticket, "schedule_confirmed")
    assert (message.channel, message.recipient) == ("EMAIL", "pat@example.com")
    assert message.subject == "Your appointment is confirmed"
    assert window_phrase(appointment.start, appointment.end, LA) in message.body


def test_an_unusable_phone_falls_back_to_email_and_no_contact_at_all_sends_nothing():
    reachable = ticket_scheduled(customer_phone="12", customer_email="pat@example.com")
    booking_notify(ticket=reachable, appointment=Appointment.objects.get(ticket=reachable))
    (message,) = _messages(reachable, "schedule_confirmed")
    assert message.channel == "EMAIL"

    unreachable = ticket_scheduled()
    sent = booking_notify(ticket=unreachable, appointment=Appointment.objects.get(ticket=unreachable))
    assert sent["outbox_id"] is None
    assert _messages(unreachable, "schedule_confirmed") == []
    # The occasion still counts as handled: it is not retried on every later call.
    assert CustomerNotice.objects.filter(ticket=unreachable, kind="BOOKING", message__isnull=True).count() == 1


def test_the_message_templates_ask_for_a_number_and_an_office_edit_is_kept():
    assert "Reply with the number" in MessageTemplate.objects.get(language="en", code="proposal_windows").body
    for code in ("proposal_reminder", "proposal_reply_help", "proposal_reply_unavailable", "already_booked"):
        assert len(MessageTemplate.objects.get(language="en", code=code).body) <= 140, code

    edited = "{company}: pick one of {windows} ({ticket_ref})"
    MessageTemplate.objects.filter(code="proposal_windows", language="en").update(body=edited)
    template_migration.seed(
        MigrationLoader(connection).project_state(("messaging", "0003_scheduling_customer_templates")).apps, None
    )
    assert MessageTemplate.objects.get(language="en", code="proposal_windows").body == edited
    assert MessageTemplate.objects.filter(code="proposal_reminder", language="en").count() == 1


# --- acknowledgement, on my way and delays --------------------------------------------------------------

OAKLAND = (37.8044, -122.2711)  # the factory sites
SAN_FRANCISCO = (37.7749, -122.4194)


def _dispatched(**fields):
    technician = TechnicianFactory(home_lat=str(SAN_FRANCISCO[0]), home_lng=str(SAN_FRANCISCO[1]))
    ticket = ticket_dispatched(technician=technician, customer_phone=PHONE, **fields)
    return ticket, technician, actor_for("technician", technician=technician)


def test_the_eta_uses_the_slot_engines_travel_estimate(settings):
    # San Francisco to Oakland: 13.4 km as the crow flies, x 1.3 on the road, at 40 km/h.
    assert travel_minutes(SAN_FRANCISCO, OAKLAND) == 27
    settings.DISPATCH_TRAVEL_SPEED_KMH = 20
    ticket, _technician, actor = _dispatched()
    tech_depart(actor=actor, ticket_id=ticket.id)
    departure = Departure.objects.get(ticket=ticket)
    assert travel_minutes(SAN_FRANCISCO, OAKLAND) == 53
    assert departure.eta_at - departure.departed_at == timedelta(minutes=53)


def test_on_my_way_tells_the_customer_the_eta_from_the_technicians_home_base():
    ticket, technician, actor = _dispatched()
    before = timezone.now()

    outcome = tech_depart(actor=actor, ticket_id=ticket.id)

    departure = Departure.objects.get(ticket=ticket)
    assert departure.origin_source == "HOME_BASE"
    assert before + timedelta(minutes=27) <= departure.eta_at <= timezone.now() + timedelta(minutes=27)
    (message,) = _messages(ticket, "on_my_way")
    assert message.recipient == PHONE
    assert f"{technician.first_name} is on the way" in message.body
    assert "(about 27 min)" in message.body
    assert outcome.ticket.state == "DISPATCHED"  # no state change until check-in
    assert outcome.event.tool_name == "tech.depart"
    assert outcome.event.payload["customer_notification"]["outbox_id"] == str(message.id)
    # Setting off acknowledges the dispatch too.
    assert DispatchAcknowledgement.objects.filter(ticket=ticket).count() == 1


def test_on_my_way_uses_the_reported_location_or_the_technicians_own_minutes():
    ticket, _technician, actor = _dispatched()
    tech_depart(actor=actor, ticket_id=ticket.id, location={"lat": OAKLAND[0], "lng": OAKLAND[1] + 0.01})
    departure = Departure.objects.get(ticket=ticket)
    assert departure.origin_source == "DEVICE"
    assert departure.eta_at - departure.departed_at == timedelta(minutes=2)

    other, _technician, other_actor = _dispatched()
    tech_depart(actor=other_actor, ticket_id=other.id, eta_minutes=40)
    departure = Departure.objects.get(ticket=other)
    assert departure.origin_source == "REPORTED_ETA"
    assert departure.eta_at - departure.departed_at == timedelta(minutes=40)
    assert "(about 40 min)" in _messages(other, "on_my_way")[0].body


def test_setting_off_twice_is_refused_and_only_the_assigned_technician_may():
    ticket, _technician, actor = _dispatched()
    with pytest.raises(DispatchError) as stranger:
        tech_depart(actor=actor_for("technician", technician=TechnicianFactory()), ticket_id=ticket.id, eta_minutes=10)
    assert stranger.value.code == "FORBIDDEN_SCOPE"

    tech_depart(actor=actor, ticket_id=ticket.id, eta_minutes=10)
    with pytest.raises(DispatchError) as again:
        tech_depart(actor=actor, ticket_id=ticket.id, eta_minutes=10)
    assert again.value.code == "TECH_ALREADY_DEPARTED"
    assert len(_messages(ticket, "on_my_way")) == 1


@pytest.mark.parametrize("location", [{"lat": 91, "lng": 0}, {"lat": "north", "lng": 0}, "here", {"lng": 1}])
def test_a_bad_location_is_refused_before_anything_is_written(location):
    ticket, _technician, actor = _dispatched()
    events = AuditEvent.objects.count()
    with pytest.raises(DispatchError) as refused:
        tech_depart(actor=actor, ticket_id=ticket.id, location=location)
    assert refused.value.code == "INVALID_REQUEST"
    assert AuditEvent.objects.count() == events
    assert not Departure.objects.filter(ticket=ticket).exists()


def test_a_delay_notice_goes_out_only_when_the_eta_slips_past_the_margin_once_per_slip(settings):
    settings.DISPATCH_DELAY_NOTICE_MINUTES = 15
    ticket, _technician, actor = _dispatched()
    tech_depart(actor=actor, ticket_id=ticket.id, eta_minutes=20)

    # 10 minutes later than promised: within the margin, the customer is not bothered.
    small = tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=30)
    assert small.result["delay_notice"] is None
    assert _messages(ticket, "delay_notice") == []

    # 25 minutes later than promised: one delay notice with the new estimate.
    slipped = tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=45)
    (notice,) = _messages(ticket, "delay_notice")
    assert "(about 45 min)" in notice.body
    assert slipped.event.tool_name == "tech.eta_update"
    assert slipped.event.payload["delay_notice"]["outbox_id"] == str(notice.id)

    # The same slip reported again (and a little more) is not a new slip.
    tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=45)
    tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=55)
    assert len(_messages(ticket, "delay_notice")) == 1

    # Slipping past the margin again, measured from what the customer was last told, is.
    tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=65)
    assert len(_messages(ticket, "delay_notice")) == 2
    assert Departure.objects.get(ticket=ticket).delay_notices == 2


def test_an_eta_update_needs_a_departure_first():
    ticket, _technician, actor = _dispatched()
    with pytest.raises(DispatchError) as refused:
        tech_eta_update(actor=actor, ticket_id=ticket.id, eta_minutes=10)
    assert refused.value.code == "TECH_NOT_DEPARTED"


def test_the_technician_acknowledges_a_dispatch_once():
    ticket, technician, actor = _dispatched()

    outcome = dispatch_acknowledge(actor=actor, ticket_id=ticket.id)

    acknowledgement = DispatchAcknowledgement.objects.get(ticket=ticket)
    assert acknowledgement.technician == technician
    assert acknowledgement.dispatch_transition.to_state == "DISPATCHED"
    assert (outcome.event.tool_name, outcome.event.actor_role) == ("tech.acknowledge", "technician")
    assert outcome.ticket.state == "DISPATCHED"
    with pytest.raises(DispatchError) as again:
        dispatch_acknowledge(actor=actor, ticket_id=ticket.id)
    assert (again.value.code, again.value.status) == ("DISPATCH_ALREADY_ACKNOWLEDGED", 409)


def test_acknowledging_is_refused_outside_a_dispatch():
    ticket = ticket_scheduled()
    with pytest.raises(DispatchError) as refused:
        dispatch_acknowledge(actor=actor_for("dispatcher"), ticket_id=ticket.id)
    assert refused.value.code == "INVALID_STATE_TRANSITION"
