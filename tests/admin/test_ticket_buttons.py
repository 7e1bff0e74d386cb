"""Pressing a button on the ticket page runs the service: one audit event, or a refusal that changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from dispatch.common.errors import DispatchError
from dispatch.tickets.admin_actions import ticket_action
from dispatch.tickets.models import Approval, AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import ticket_request_info
from tests.admin.conftest import logged_in
from tests.factories import DOOR_CHECKLIST, actor_for, door_evidence_add, ticket_at, ticket_in_progress, ticket_new

pytestmark = pytest.mark.django_db


def press(client, ticket, key, version=None, **data):
    """Post one button's form as the browser does, and follow the redirect back to the ticket page."""
    url = reverse("admin:tickets_ticket_transition", args=[ticket.pk, key])
    return client.post(url, {"expected_version": ticket.version if version is None else version, **data}, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    """The messages the page the user lands on shows."""
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_triage_button_moves_the_ticket_through_the_service(dispatcher_client):
    ticket = ticket_new()
    before = AuditEvent.objects.count()

    response = press(
        dispatcher_client, ticket, "triage-ready", priority="URGENT", incident_type="DOOR_WONT_LATCH", nte="450.00"
    )

    assert response.redirect_chain == [(reverse("admin:tickets_ticket_change", args=[ticket.pk]), 302)]
    ticket.refresh_from_db()
    assert ticket.state == "READY_TO_SCHEDULE"
    assert (ticket.priority, ticket.incident_type, ticket.nte_cents, ticket.version) == (
        "URGENT",
        "DOOR_WONT_LATCH",
        45000,
        2,
    )
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert (event.tool_name, event.before_state, event.after_state) == ("ticket.triage", "NEW", "READY_TO_SCHEDULE")
    assert (event.actor_type, event.actor_role, event.actor_id) == (
        "HUMAN",
        "dispatcher",
        str(dispatcher_client.user.pk),
    )
    assert list(StateTransition.objects.filter(audit_event=event).values_list("from_state", "to_state")) == [
        ("NEW", "TRIAGED"),
        ("TRIAGED", "READY_TO_SCHEDULE"),
    ]
    assert messages_of(response) == [
        ("success", f"{ticket.short_ref}: Triage → ready to schedule — NEW → READY_TO_SCHEDULE.")
    ]


def test_triage_for_approval_opens_the_approval(dispatcher_client):
    ticket = ticket_new()
    press(
        dispatcher_client,
        ticket,
        "triage-approval",
        priority="ROUTINE",
        incident_type="DOOR_WONT_LATCH",
        approval_reason="Closer must be replaced",
        approval_amount_delta="300",
    )
    ticket.refresh_from_db()
    assert ticket.state == "APPROVAL_REQUIRED"
    approval = Approval.objects.get(ticket=ticket)
    assert (approval.status, approval.amount_cents, approval.reason) == ("PENDING", 30000, "Closer must be replaced")


def test_approve_button_decides_the_pending_approval(client):
    ticket = ticket_new()
    press(
        logged_in(client, "dispatcher"),
        ticket,
        "triage-approval",
        priority="ROUTINE",
        incident_type="DOOR_WONT_LATCH",
        approval_reason="New closer",
        approval_amount_delta="300",
    )
    ticket.refresh_from_db()
    approver = logged_in(Client(), "approver")
    response = press(approver, ticket, "approve", notes="Go ahead")
    ticket.refresh_from_db()
    assert ticket.state == "READY_TO_SCHEDULE", messages_of(response)
    assert Approval.objects.get(ticket=ticket).status == "APPROVED"
    assert AuditEvent.objects.order_by("-created_at", "-id").first().tool_name == "approval.decide"


def test_a_stale_page_is_refused_and_changes_nothing(dispatcher_client):
    ticket = ticket_new()
    shown = ticket.version
    ticket_request_info(actor=actor_for("dispatcher"), ticket_id=ticket.id, question="Which door?")
    ticket.refresh_from_db()
    events = AuditEvent.objects.count()

    response = press(dispatcher_client, ticket, "cancel", version=shown, reason="Customer fixed it")

    ticket.refresh_from_db()
    assert (ticket.state, ticket.version) == ("NEEDS_INFO", shown + 1)
    assert AuditEvent.objects.count() == events
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "[CONCURRENT_MODIFICATION]" in text and "changed since you loaded it" in text


def test_a_stale_page_is_refused_by_a_closeout_button_too(dispatcher_client):
    ticket = ticket_at("VERIFIED")
    shown = ticket.version
    press(dispatcher_client, ticket, "reopen", reason="Door sticks again")
    ticket.refresh_from_db()
    events = AuditEvent.objects.count()

    response = press(dispatcher_client, ticket, "close", version=shown)

    ticket.refresh_from_db()
    assert ticket.state == "IN_PROGRESS"
    assert AuditEvent.objects.count() == events
    assert "[CONCURRENT_MODIFICATION]" in messages_of(response)[0][1]


def test_a_button_hands_the_page_version_to_its_service():
    # The page refuses a stale version before the form; the service checks it again under the row
    # lock, for a change that lands between the two.
    ticket = ticket_at("VERIFIED")
    close = ticket_action("close")
    with pytest.raises(DispatchError) as refused:
        close.run(actor=actor_for("dispatcher"), ticket=ticket, data={}, expected_version=ticket.version - 1)
    assert refused.value.code == "CONCURRENT_MODIFICATION"
    ticket.refresh_from_db()
    assert ticket.state == "VERIFIED"


def test_an_illegal_action_shows_the_refusal_and_changes_nothing(dispatcher_client):
    ticket = ticket_new()
    events = AuditEvent.objects.count()

    response = press(dispatcher_client, ticket, "reopen", reason="Try to reopen a new ticket")

    ticket.refresh_from_db()
    assert (ticket.state, ticket.version) == ("NEW", 1)
    assert AuditEvent.objects.count() == events
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "[INVALID_STATE_TRANSITION]" in text
    assert "reopen_after_verification cannot move a ticket to IN_PROGRESS from NEW" in text
    assert "Allowed next states: NEEDS_INFO, TRIAGED, CANCELLED." in text
    # The refusal is shown on the ticket page the browser lands on.
    assert "INVALID_STATE_TRANSITION" in response.content.decode()


def test_a_role_the_contract_does_not_allow_is_refused(client):
    ticket = ticket_new()
    response = press(logged_in(client, "qa"), ticket, "cancel", reason="QA may not cancel")
    ticket.refresh_from_db()
    assert ticket.state == "NEW"
    assert "[TOOL_ROLE_FORBIDDEN]" in messages_of(response)[0][1]


def test_bad_input_shows_the_form_again_and_changes_nothing(dispatcher_client):
    ticket = ticket_new()
    response = press(dispatcher_client, ticket, "cancel", reason="")
    assert response.status_code == 200 and not response.redirect_chain
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    ticket.refresh_from_db()
    assert ticket.state == "NEW"


def test_a_button_without_the_page_version_is_refused(dispatcher_client):
    ticket = ticket_new()
    url = reverse("admin:tickets_ticket_transition", args=[ticket.pk, "cancel"])
    response = dispatcher_client.post(url, {"reason": "no version"}, follow=True)
    ticket.refresh_from_db()
    assert ticket.state == "NEW"
    assert "did not say which version" in messages_of(response)[0][1]


def test_the_form_of_an_action_opens_on_its_own_page(dispatcher_client):
    ticket = ticket_new()
    url = reverse("admin:tickets_ticket_transition", args=[ticket.pk, "request-info"])
    response = dispatcher_client.get(url, {"version": ticket.version})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="question"' in html
    assert f'name="expected_version" value="{ticket.version}"' in html
    ticket.refresh_from_db()
    assert ticket.version == 1


def test_opening_the_form_of_a_refused_action_shows_the_refusal_instead(dispatcher_client):
    ticket = ticket_new()
    url = reverse("admin:tickets_ticket_transition", args=[ticket.pk, "reopen"])
    response = dispatcher_client.get(url, {"version": ticket.version}, follow=True)
    assert response.redirect_chain == [(reverse("admin:tickets_ticket_change", args=[ticket.pk]), 302)]
    [(level, text)] = messages_of(response)
    assert level == "error" and "[INVALID_STATE_TRANSITION]" in text
    assert "Allowed next states: NEEDS_INFO, TRIAGED, CANCELLED." in text


def test_a_refused_action_is_refused_before_its_form_is_checked(client):
    ticket = ticket_new()
    response = press(logged_in(client, "qa"), ticket, "cancel", reason="")
    assert response.redirect_chain == [(reverse("admin:tickets_ticket_change", args=[ticket.pk]), 302)]
    assert "[TOOL_ROLE_FORBIDDEN]" in messages_of(response)[0][1]


def test_actions_need_the_csrf_token():
    ticket = ticket_new()
    client = logged_in(Client(enforce_csrf_checks=True), "dispatcher")
    response = press(client, ticket, "cancel", reason="forged")
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.state == "NEW"


def test_edit_details_corrects_the_ticket_with_an_audited_diff(dispatcher_client):
    ticket = ticket_new(summary="Door broke")
    press(dispatcher_client, ticket, "edit-details", summary="Front sliding door stuck open", customer_name="Lee Park")
    ticket.refresh_from_db()
    assert (ticket.summary, ticket.customer_name) == ("Front sliding door stuck open", "Lee Park")
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert event.tool_name == "ticket.update_details"
    assert event.payload["changes"]["summary"] == {"from": "Door broke", "to": "Front sliding door stuck open"}


def test_the_field_work_buttons_walk_a_job_to_closed(dispatcher_client, client):
    """Scheduling and closeout through the page: propose, confirm, dispatch, check in, complete, verify, close."""
    from dispatch.scheduling.models import ScheduleProposal
    from tests.factories import TechnicianFactory

    technician = TechnicianFactory(skills=["DOOR_WONT_LATCH"])
    ticket = ticket_at("READY_TO_SCHEDULE")

    def step(key, **data):
        ticket.refresh_from_db()
        response = press(dispatcher_client, ticket, key, **data)
        assert response.redirect_chain, response.context["form"].errors
        assert messages_of(response)[0][0] == "success", messages_of(response)
        ticket.refresh_from_db()
        return ticket.state

    assert (
        step("schedule-propose", technician_1=technician.pk, start_1="2030-03-04T09:00", end_1="2030-03-04T11:00")
        == "SCHEDULE_PROPOSED"
    )
    assert ScheduleProposal.objects.get(ticket=ticket).options[0]["tech_id"] == str(technician.pk)
    assert step("schedule-confirm", window="0") == "SCHEDULED"
    assert step("dispatch", technician=technician.pk, dispatch_mode="STANDARD") == "DISPATCHED"
    assert ticket.assigned_tech == technician
    assert step("check-in", arrived_at="2030-03-04T09:05") == "IN_PROGRESS"
    door_evidence_add(ticket)
    assert step("complete", **{f"check_{key}": "on" for key in DOOR_CHECKLIST}) == "COMPLETED_PENDING_VERIFICATION"
    assert step("qa-verify", result="PASS") == "VERIFIED"
    assert step("close", reason="All good") == "CLOSED"
    tools = list(
        AuditEvent.objects.filter(ticket=ticket)
        .exclude(tool_name="closeout.add_evidence")
        .order_by("seq")
        .values_list("tool_name", flat=True)
    )
    assert tools[-7:] == [
        "schedule.propose",
        "schedule.confirm",
        "assignment.dispatch",
        "tech.check_in",
        "tech.complete",
        "qa.verify",
        "ticket.close",
    ]


def test_complete_is_refused_with_what_is_missing(dispatcher_client):
    ticket = ticket_in_progress()
    response = press(dispatcher_client, ticket, "complete")
    ticket.refresh_from_db()
    assert ticket.state == "IN_PROGRESS"
    assert "[CLOSEOUT_REQUIREMENTS_INCOMPLETE]" in messages_of(response)[0][1]


def test_finance_generates_the_invoice_with_a_button_that_needs_no_input(client):
    ticket = ticket_at("VERIFIED")
    finance = logged_in(client, "finance")
    page = finance.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "<details" not in page.split("Generate invoice draft")[0].rsplit("<form", 1)[1]
    response = press(finance, ticket, "invoice")
    ticket.refresh_from_db()
    assert ticket.state == "INVOICED", messages_of(response)
    assert AuditEvent.objects.order_by("-created_at", "-id").first().tool_name == "billing.generate_invoice"
    # A GET of an action without input never acts.
    ticket_before = Ticket.objects.get(pk=ticket.pk).version
    finance.get(reverse("admin:tickets_ticket_transition", args=[ticket.pk, "invoice"]))
    assert Ticket.objects.get(pk=ticket.pk).version == ticket_before
