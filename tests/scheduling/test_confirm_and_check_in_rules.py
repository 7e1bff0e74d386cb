"""The services behind the back office's scheduling buttons, as every face calls them: a confirmed
window assigns its technician (a dispatcher's confirm and a customer's numbered reply alike), and
a check-in far ahead of the booked visit needs a reason, recorded in its one audit event."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.intake.services import message_receive
from dispatch.scheduling.models import CheckIn
from dispatch.scheduling.replies import proposal_reply_apply
from dispatch.scheduling.services import schedule_confirm, tech_check_in
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import TechnicianFactory, actor_for, ticket_dispatched, ticket_proposed, window_at

pytestmark = pytest.mark.django_db

PHONE = "+15105550177"


def _options(*technicians):
    windows = [window_at(days=2 + n, hour=17) for n in range(len(technicians))]
    return [
        {"start": s.isoformat(), "end": e.isoformat(), **({"tech_id": str(t.id)} if t else {})}
        for (s, e), t in zip(windows, technicians)
    ], windows


def test_confirming_a_window_assigns_its_technician(dispatcher):
    luis, ana = TechnicianFactory(), TechnicianFactory()
    options, windows = _options(luis, ana)
    ticket = ticket_proposed(options=options)

    outcome = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=windows[1][0], end=windows[1][1])

    assert (outcome.ticket.state, outcome.ticket.assigned_tech_id) == ("SCHEDULED", ana.id)
    assert Ticket.objects.get(pk=ticket.pk).assigned_tech == ana
    assert outcome.event.payload["tech_id"] == str(ana.id)


def test_a_window_proposed_without_a_technician_leaves_the_job_unassigned(dispatcher):
    options, windows = _options(None)
    ticket = ticket_proposed(options=options)
    outcome = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=windows[0][0], end=windows[0][1])
    assert (outcome.ticket.state, outcome.ticket.assigned_tech_id) == ("SCHEDULED", None)


def test_a_window_proposed_without_a_technician_keeps_the_technician_already_on_the_job(dispatcher):
    # A job back from a hold (parts) is proposed again as the contract allows, with no tech_id:
    # its technician stays on it, and keeps their phone and toolset access to it.
    luis = TechnicianFactory()
    options, windows = _options(None)
    ticket = ticket_proposed(options=options)
    Ticket.objects.filter(pk=ticket.pk).update(assigned_tech=luis)

    outcome = schedule_confirm(actor=dispatcher, ticket_id=ticket.id, start=windows[0][0], end=windows[0][1])

    assert (outcome.ticket.state, outcome.ticket.assigned_tech_id) == ("SCHEDULED", luis.id)
    assert Ticket.objects.get(pk=ticket.pk).assigned_tech_id == luis.id
    assert "previous_tech_id" not in outcome.event.payload


def test_a_customers_reply_that_confirms_a_window_assigns_its_technician():
    luis, ana = TechnicianFactory(), TechnicianFactory()
    options, _ = _options(luis, ana)
    ticket = ticket_proposed(options=options, customer_phone=PHONE)

    result = message_receive(channel="SMS", provider_message_id=f"SM{uuid.uuid4().hex}", sender_phone=PHONE, body="1")
    outcome = proposal_reply_apply(result=result)

    assert outcome is not None
    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech) == ("SCHEDULED", luis)


# --- an arrival far ahead of the booked visit ------------------------------------------------------


def _two_days_out():
    visit = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    return {"start": visit, "end": visit + timedelta(hours=2)}


def test_a_check_in_two_days_before_the_visit_is_refused_without_a_reason_and_changes_nothing(dispatcher):
    ticket = ticket_dispatched(**_two_days_out())
    events = AuditEvent.objects.filter(ticket=ticket).count()

    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())

    error = refused.value
    assert (error.code, error.status, error.details["field"]) == ("INVALID_REQUEST", 400, "reason")
    assert error.details["requirement"] == "EARLY_CHECK_IN_REASON"
    assert "A check-in more than 4 h early needs a reason." in error.message
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"
    assert not CheckIn.objects.filter(ticket=ticket).exists()
    assert AuditEvent.objects.filter(ticket=ticket).count() == events


def test_a_check_in_two_days_early_with_a_reason_keeps_it_in_its_one_audit_event(dispatcher):
    ticket = ticket_dispatched(**_two_days_out())
    events = AuditEvent.objects.filter(ticket=ticket).count()

    outcome = tech_check_in(
        actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now(), reason="  Store asked us to come today  "
    )

    assert outcome.ticket.state == "IN_PROGRESS"
    assert AuditEvent.objects.filter(ticket=ticket).count() == events + 1
    assert outcome.event.payload["reason"] == "Store asked us to come today"
    assert outcome.event.payload["early_by_minutes"] >= 47 * 60


def test_a_technician_checking_in_far_ahead_of_the_visit_is_held_to_the_same_rule():
    technician = TechnicianFactory()
    ticket = ticket_dispatched(technician=technician, **_two_days_out())
    with pytest.raises(DispatchError) as refused:
        tech_check_in(
            actor=actor_for("technician", technician=technician), ticket_id=ticket.id, timestamp=timezone.now()
        )
    assert refused.value.details["field"] == "reason"


def test_the_early_check_in_margin_is_a_setting(dispatcher, settings):
    settings.DISPATCH_EARLY_CHECK_IN_MINUTES = 3 * 24 * 60
    ticket = ticket_dispatched(**_two_days_out())
    outcome = tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now())
    assert outcome.ticket.state == "IN_PROGRESS" and "reason" not in outcome.event.payload


@pytest.mark.parametrize("reason", [["a list"], {"why": "x"}, 42, "x" * 1001])
def test_a_check_in_reason_that_is_not_short_text_is_refused(dispatcher, reason):
    ticket = ticket_dispatched(**_two_days_out())
    with pytest.raises(DispatchError) as refused:
        tech_check_in(actor=dispatcher, ticket_id=ticket.id, timestamp=timezone.now(), reason=reason)
    assert (refused.value.code, refused.value.details["field"]) == ("INVALID_REQUEST", "reason")
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"


def test_the_early_check_in_warning_tells_the_visit_start_in_the_sites_time_zone():
    from datetime import datetime

    from dispatch.scheduling.onsite import early_check_in_warning

    visit = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)
    arrived = visit - timedelta(days=2)
    # The technician stands at the site: a New York job starts at 09:00 there, whatever the
    # company's own zone.
    assert "starts Thu Dec 10, 09:00" in early_check_in_warning(
        arrived_at=arrived, visit_start=visit, site_timezone="America/New_York"
    )
    assert "starts Thu Dec 10, 06:00" in early_check_in_warning(
        arrived_at=arrived, visit_start=visit, site_timezone="America/Los_Angeles"
    )
