"""The "Cancel selected tickets" action: a reason once, then ticket_cancel per ticket, refusals named per ticket."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from dispatch.tickets.models import AuditEvent, Ticket
from tests.admin.conftest import logged_in
from tests.factories import ticket_at, ticket_new

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tickets_ticket_changelist"


def test_cancel_selected_asks_for_a_reason_first(dispatcher_client):
    tickets = [ticket_new(), ticket_new()]
    response = dispatcher_client.post(
        reverse(CHANGELIST), {"action": "cancel_selected", ACTION_CHECKBOX_NAME: [t.pk for t in tickets], "index": 0}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cancel 2 tickets?" in html
    assert all(t.short_ref in html for t in tickets)
    assert set(Ticket.objects.values_list("state", flat=True)) == {"NEW"}


def test_cancel_selected_cancels_each_ticket_and_names_each_refusal(dispatcher_client):
    open_one, open_two = ticket_new(), ticket_at("SCHEDULED")
    closed = ticket_at("CLOSED")
    events = AuditEvent.objects.count()

    response = dispatcher_client.post(
        reverse(CHANGELIST),
        {
            "action": "cancel_selected",
            "index": 0,
            "confirm": "yes",
            "reason": "Customer moved out",
            "cancellation_code": "CUSTOMER_REQUEST",
            ACTION_CHECKBOX_NAME: [open_one.pk, open_two.pk, closed.pk],
        },
        follow=True,
    )

    states = dict(Ticket.objects.values_list("pk", "state"))
    assert (states[open_one.pk], states[open_two.pk], states[closed.pk]) == ("CANCELLED", "CANCELLED", "CLOSED")
    assert AuditEvent.objects.count() == events + 2
    cancels = AuditEvent.objects.filter(tool_name="ticket.cancel")
    assert {e.payload["reason"] for e in cancels} == {"Customer moved out"}
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert ("success", "Cancelled 2 tickets.") in messages
    [refusal] = [text for level, text in messages if level == "error"]
    assert refusal.startswith(f"{closed.short_ref}: Refused")
    assert "[INVALID_STATE_TRANSITION]" in refusal and "from CLOSED" in refusal


def test_roles_that_may_not_cancel_do_not_get_the_action(client):
    ticket_new()
    response = logged_in(client, "qa").get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert "cancel_selected" not in response.content.decode()
    assert "delete_selected" not in response.content.decode()
