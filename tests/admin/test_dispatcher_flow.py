"""A dispatcher's day on the ticket page: the confirmed window's technician is the job's, a form
that cannot be sent says why, an early check-in asks for a reason, and the duties around a
completion without the evidence gate are kept apart."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dispatch.tickets.models import AuditEvent
from tests.admin.conftest import logged_in
from tests.admin.test_ticket_buttons import messages_of, press
from tests.factories import (
    TechnicianFactory,
    ticket_at,
    ticket_dispatched,
    ticket_in_progress,
    ticket_ready_to_schedule,
    ticket_scheduled,
)

pytestmark = pytest.mark.django_db


def page_of(client, ticket) -> str:
    return client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()


def form_page(client, ticket, key) -> str:
    return client.get(reverse("admin:tickets_ticket_transition", args=[ticket.pk, key])).content.decode()


def last_event(ticket) -> AuditEvent:
    return AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()


# --- confirming a window -------------------------------------------------------------------------


def test_confirming_a_window_assigns_its_technician(dispatcher_client):
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    ticket = ticket_ready_to_schedule()
    start = (timezone.localtime() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    press(
        dispatcher_client,
        ticket,
        "schedule-propose",
        start_1=f"{start:%Y-%m-%dT%H:%M}",
        end_1=f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}",
        technician_1=luis.pk,
    )
    ticket.refresh_from_db()
    assert "Luis Ortega" in form_page(dispatcher_client, ticket, "schedule-confirm")

    response = press(dispatcher_client, ticket, "schedule-confirm", window="0")

    assert messages_of(response)[0][0] == "success"
    ticket.refresh_from_db()
    assert (ticket.state, ticket.assigned_tech) == ("SCHEDULED", luis)
    page = page_of(dispatcher_client, ticket)
    assert "unassigned" not in page and "Tech: Luis Ortega" in page
    listing = dispatcher_client.get(reverse("admin:tickets_ticket_changelist")).content.decode()
    row = listing.split(ticket.short_ref, 1)[1].split("</tr>", 1)[0]
    assert "Luis Ortega" in row


def test_the_dispatch_form_preselects_the_windows_technician_among_the_eligible_ones(dispatcher_client):
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    TechnicianFactory(display_name="Ana Skilled", skills=["DOOR_WONT_LATCH"])
    TechnicianFactory(display_name="Hugo Plumber", skills=["LEAKING_FAUCET"])
    TechnicianFactory(display_name="Zoe Elsewhere", skills=["DOOR_WONT_LATCH"], region_codes=["SOUTH_BAY"])
    ticket = ticket_scheduled(technician=luis)

    form = form_page(dispatcher_client, ticket, "dispatch")

    select = form.split('name="technician"', 1)[1].split("</select>", 1)[0]
    assert f'value="{luis.pk}" selected' in select
    assert "Ana Skilled" in select
    assert "Hugo Plumber" not in select and "Zoe Elsewhere" not in select
    response = press(dispatcher_client, ticket, "dispatch", technician=luis.pk, dispatch_mode="STANDARD")
    assert messages_of(response)[0][0] == "success"


def test_a_dispatch_sent_without_a_technician_says_why_on_the_page(dispatcher_client):
    ticket = ticket_scheduled()
    # The browser does not refuse the form on its own: the server checks it and says why.
    forms = re.findall(r"<form[^>]*rd-action__form[^>]*>", page_of(dispatcher_client, ticket))
    assert forms and all("novalidate" in form for form in forms)

    response = press(dispatcher_client, ticket, "dispatch", technician="", dispatch_mode="STANDARD")

    page = response.content.decode()
    assert response.status_code == 200 and not response.redirect_chain
    assert "Not sent: correct what is marked below" in page
    technician_field = page.split('<label for="id_technician"', 1)[1].split("<select", 1)[0]
    assert "This field is required." in technician_field
    assert "novalidate" in page
    ticket.refresh_from_db()
    assert ticket.state == "SCHEDULED"


def test_the_dispatch_form_says_when_no_technician_fits_before_it_is_sent(dispatcher_client):
    TechnicianFactory(display_name="Hugo Plumber", skills=["LEAKING_FAUCET"])
    ticket = ticket_scheduled()

    form = form_page(dispatcher_client, ticket, "dispatch")

    assert 'class="rd-form-warning"' in form
    assert "No active technician has the DOOR_WONT_LATCH skill and covers region EAST_BAY" in form


# --- checking in far ahead of the visit ------------------------------------------------------------


def test_a_check_in_two_days_before_the_visit_is_warned_and_needs_a_reason(dispatcher_client):
    visit = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    ticket = ticket_dispatched(start=visit, end=visit + timedelta(hours=2))
    now = f"{timezone.localtime():%Y-%m-%dT%H:%M}"

    form = form_page(dispatcher_client, ticket, "check-in")
    assert 'class="rd-form-warning"' in form and "A check-in more than 4 h early needs a reason." in form

    refused = press(dispatcher_client, ticket, "check-in", arrived_at=now)
    assert not refused.redirect_chain
    assert "Say why to go ahead." in refused.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == "DISPATCHED"

    done = press(dispatcher_client, ticket, "check-in", arrived_at=now, reason="Customer called us in early")
    assert messages_of(done)[0][0] == "success"
    ticket.refresh_from_db()
    assert ticket.state == "IN_PROGRESS"
    event = last_event(ticket)
    assert (event.tool_name, event.payload["reason"]) == ("tech.check_in", "Customer called us in early")
    assert event.payload["early_by_minutes"] > 24 * 60
    assert "Customer called us in early" in page_of(dispatcher_client, ticket)


def test_a_check_in_on_time_asks_for_nothing(dispatcher_client):
    soon = (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    ticket = ticket_dispatched(start=soon, end=soon + timedelta(hours=2))
    assert 'class="rd-form-warning"' not in form_page(dispatcher_client, ticket, "check-in")
    done = press(dispatcher_client, ticket, "check-in", arrived_at=f"{timezone.localtime():%Y-%m-%dT%H:%M}")
    assert messages_of(done)[0][0] == "success"
    assert "reason" not in last_event(ticket).payload


# --- completion without the evidence gate ----------------------------------------------------------


def test_completing_without_the_evidence_gate_is_offered_once(dispatcher_client):
    ticket = ticket_in_progress()
    assert "/transition/manual-bypass/" in page_of(dispatcher_client, ticket)

    missing = press(dispatcher_client, ticket, "manual-bypass", bypass_rationale="")
    assert not missing.redirect_chain and "This field is required." in missing.content.decode()

    done = press(dispatcher_client, ticket, "manual-bypass", bypass_rationale="Photos lost with a broken phone")
    assert messages_of(done)[0][0] == "success"
    ticket.refresh_from_db()
    assert ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert last_event(ticket).payload["reason"] == "Photos lost with a broken phone"
    assert "/transition/manual-bypass/" not in page_of(dispatcher_client, ticket)

    again = press(dispatcher_client, ticket, "manual-bypass", bypass_rationale="Once more")
    assert "[MANUAL_BYPASS_ALREADY_USED]" in messages_of(again)[0][1]
    assert AuditEvent.objects.filter(ticket=ticket, tool_name="dispatch.manual_bypass").count() == 1


def test_the_dispatcher_who_bypassed_a_job_cannot_qa_verify_it(dispatcher_client, client):
    ticket = ticket_in_progress()
    press(dispatcher_client, ticket, "manual-bypass", bypass_rationale="Customer signed on paper")
    ticket.refresh_from_db()

    page = page_of(dispatcher_client, ticket)
    assert "/transition/qa-verify/" not in page
    assert "someone else must QA-verify it" in page.split('class="rd-action-blocked"', 1)[1]
    refused = press(dispatcher_client, ticket, "qa-verify", result="PASS")
    assert "[SEPARATION_OF_DUTIES]" in messages_of(refused)[0][1]
    ticket.refresh_from_db()
    assert ticket.state == "COMPLETED_PENDING_VERIFICATION"

    colleague = logged_in(client.__class__(), "dispatcher")
    assert "/transition/qa-verify/" in page_of(colleague, ticket)
    verified = press(colleague, ticket, "qa-verify", result="PASS")
    assert messages_of(verified)[0][0] == "success"
    ticket.refresh_from_db()
    assert ticket.state == "VERIFIED"


def test_closing_a_job_without_an_invoice_draft_asks_for_a_reason(dispatcher_client):
    ticket = ticket_at("VERIFIED")
    assert "This job has no invoice draft" in page_of(dispatcher_client, ticket)

    refused = press(dispatcher_client, ticket, "close")
    assert not refused.redirect_chain and "This field is required." in refused.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == "VERIFIED"

    closed = press(dispatcher_client, ticket, "close", reason="Warranty callback, not billed")
    assert messages_of(closed)[0][0] == "success"
    ticket.refresh_from_db()
    assert ticket.state == "CLOSED"
    event = AuditEvent.objects.get(ticket=ticket, tool_name="ticket.close")
    assert (event.payload["reason"], event.payload["invoice_draft"]) == ("Warranty callback, not billed", False)
    words = " ".join(re.sub(r"<[^>]+>", " ", page_of(dispatcher_client, ticket)).split())
    # The timeline says it in words: closed without an invoice draft, and why.
    assert "closed the job without an invoice draft — Warranty callback, not billed" in words
