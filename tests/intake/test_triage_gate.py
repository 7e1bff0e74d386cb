"""The blind-intake gate, from both faces that triage: the agents' API and the back office's button.

One service decides (`intake_triage`): an agent is refused READY_TO_SCHEDULE for an intake it was
unsure of; a dispatcher at the back office sees the same refusal, and may override it with a
reason, which the triage's audit event keeps.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from dispatch.common.roles import Role, role_groups_sync
from dispatch.intake.services import ticket_blind_intake
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.states import TicketState
from tests.factories import SiteFactory, UserFactory, actor_for, jwt_for

pytestmark = pytest.mark.django_db


def unsure_intake() -> Ticket:
    site = SiteFactory()
    return ticket_blind_intake(
        actor=actor_for(Role.AGENT),
        account_id=site.account_id,
        site_id=site.id,
        summary="Front door will not lock",
        incident_type="CANNOT_SECURE_ENTRY",
        customer_name="Jordan Sample",
        priority="URGENT",
        identity_confidence=40,
        classification_confidence=90,
        contact_phone="(510) 555-0134",
    ).ticket


def api_triage(client: Client, ticket: Ticket, body: dict, role: str = "agent"):
    return client.post(
        f"/api/v1/tickets/{ticket.id}/triage",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for('agent-openclaw', role)}",
    )


@pytest.fixture
def dispatcher_client(client):
    role_groups_sync()
    client.force_login(UserFactory(role="dispatcher"))
    return client


def press_ready(client: Client, ticket: Ticket, **data) -> list[tuple[str, str]]:
    """Press "Triage → ready to schedule" as the browser does; the messages the user then reads."""
    url = reverse("admin:tickets_ticket_transition", args=[ticket.pk, "triage-ready"])
    form = {"expected_version": ticket.version, "priority": "URGENT", "incident_type": "CANNOT_SECURE_ENTRY", **data}
    response = client.post(url, form, follow=True)
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_the_api_refuses_an_agent_ready_to_schedule_below_the_threshold(client):
    ticket = unsure_intake()
    body = {"priority": "URGENT", "incident_type": "CANNOT_SECURE_ENTRY", "workflow_outcome": "READY_TO_SCHEDULE"}
    for sent in (body, {**body, "gate_override": True, "override_reason": "Trust me"}):
        response = api_triage(client, ticket, sent)
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert (error["code"], error["policy_error"]["dimension"]) == ("LOW_IDENTITY_CONFIDENCE", "identity")
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert (fresh.state, fresh.version) == (TicketState.TRIAGED, 1)


def test_the_triage_button_shows_the_gate_refusal_and_changes_nothing(dispatcher_client):
    ticket = unsure_intake()
    shown = press_ready(dispatcher_client, ticket)
    [(level, text)] = shown
    assert level == "error" and "[LOW_IDENTITY_CONFIDENCE]" in text
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert (fresh.state, fresh.version) == (TicketState.TRIAGED, 1)


def test_an_override_without_a_reason_is_refused_at_the_button(dispatcher_client):
    ticket = unsure_intake()
    shown = press_ready(dispatcher_client, ticket, gate_override="on")
    [(level, text)] = shown
    assert level == "error" and "[INVALID_REQUEST]" in text
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.TRIAGED


def test_a_dispatcher_who_overrides_with_a_reason_queues_the_job_and_the_audit_says_why(dispatcher_client):
    ticket = unsure_intake()
    shown = press_ready(
        dispatcher_client, ticket, gate_override="on", override_reason="Regular customer, confirmed by phone"
    )
    assert [level for level, _ in shown] == ["success"], shown
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.READY_TO_SCHEDULE
    event = AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()
    assert (event.tool_name, event.actor_type, event.after_state) == ("ticket.triage", "HUMAN", "READY_TO_SCHEDULE")
    # An intake held back for low confidence also waits for its SOP handoff: both are overridden.
    assert event.payload["gate_override"] == {
        "codes": ["LOW_IDENTITY_CONFIDENCE", "SOP_HANDOFF_REQUIRED"],
        "reason": "Regular customer, confirmed by phone",
    }
