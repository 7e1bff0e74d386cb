"""The ticket page: facts, timeline, and one button per action the user's role may take from the state."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import ticket_request_info
from tests.admin.conftest import logged_in
from tests.factories import SiteFactory, TechnicianFactory, actor_for, ticket_at, ticket_new

pytestmark = pytest.mark.django_db


def page_of(client, ticket):
    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert response.status_code == 200
    return response


def buttons(response) -> list[str]:
    return [item["action"].key for item in response.context["ticket_actions"]]


def test_the_page_shows_the_job_and_its_timeline(dispatcher_client):
    site = SiteFactory(access_instructions="Loading dock at the back; ask for Sam.", access_code="4471")
    ticket = ticket_new(site=site, summary="Rear door slams shut", customer_name="Ana Ortiz", nte_cents=35000)
    ticket_request_info(actor=actor_for("dispatcher"), ticket_id=ticket.id, question="Which door is it?")

    html = page_of(dispatcher_client, ticket).content.decode()

    assert "Rear door slams shut" in html
    assert ticket.short_ref in html
    assert "rd-badge rd-state-needs_info" in html
    assert site.address in html
    assert "Loading dock at the back; ask for Sam." in html
    assert "Ana Ortiz" in html
    assert "$350.00" in html
    timeline = html[html.index('class="rd-timeline"') :]
    # Oldest first: the creation, then the question.
    assert timeline.index("opened the ticket") < timeline.index("asked the customer")
    assert "Which door is it?" in timeline
    # No Save button: a ticket is never saved from a form here.
    assert 'name="_save"' not in html


def test_the_timeline_names_the_back_office_user_who_acted(dispatcher_client):
    ticket = ticket_new()
    dispatcher_client.post(
        reverse("admin:tickets_ticket_transition", args=[ticket.pk, "request-info"]),
        {"expected_version": ticket.version, "question": "Is the door glass or steel?"},
    )
    html = page_of(dispatcher_client, ticket).content.decode()
    assert f'<strong class="rd-event__who">{dispatcher_client.user.username}</strong> asked the customer' in html


def test_a_dispatcher_gets_the_buttons_of_a_new_ticket(dispatcher_client):
    keys = buttons(page_of(dispatcher_client, ticket_new()))
    assert keys[:4] == ["triage-ready", "triage", "triage-approval", "request-info"]
    assert "cancel" in keys and "edit-details" in keys
    assert not {"reopen", "resume-work", "force-hold", "schedule-propose", "qa-verify"} & set(keys)


@pytest.mark.parametrize(
    ("state", "expected", "absent"),
    [
        ("READY_TO_SCHEDULE", {"schedule-propose", "cancel"}, {"triage", "dispatch"}),
        ("IN_PROGRESS", {"complete", "manual-bypass", "force-hold"}, {"check-in", "qa-verify"}),
        ("ON_HOLD", {"resume-work", "resume-schedule"}, {"force-hold"}),
        ("VERIFIED", {"close", "reopen"}, {"invoice", "complete"}),
        ("CLOSED", set(), {"cancel", "reopen", "close"}),
    ],
)
def test_buttons_follow_the_state(dispatcher_client, state, expected, absent):
    keys = set(buttons(page_of(dispatcher_client, ticket_at(state))))
    assert expected <= keys
    assert not absent & keys


def test_unassign_is_offered_only_when_a_technician_is_assigned(dispatcher_client):
    assert "force-unassign" not in buttons(page_of(dispatcher_client, ticket_at("READY_TO_SCHEDULE")))
    assigned = ticket_at("DISPATCHED", technician=TechnicianFactory())
    assert "force-unassign" in buttons(page_of(dispatcher_client, assigned))


def test_buttons_follow_the_role(client):
    verified = ticket_at("VERIFIED")
    finance = buttons(page_of(logged_in(client, "finance"), verified))
    assert finance == ["invoice", "close", "cancel"]
    qa = buttons(page_of(logged_in(client, "qa"), verified))
    assert qa == ["reopen", "evidence-exception"]
    audit = page_of(logged_in(client, "audit"), verified)
    assert buttons(audit) == []
    assert "Nothing your role can do" in audit.content.decode()


def test_an_admin_gets_the_dispatch_desk_buttons(admin_client_):
    keys = buttons(page_of(admin_client_, ticket_new()))
    assert keys[:4] == ["triage-ready", "triage", "triage-approval", "request-info"]


def test_each_button_posts_the_version_the_page_showed(dispatcher_client):
    ticket = ticket_new()
    html = page_of(dispatcher_client, ticket).content.decode()
    forms = re.findall(
        r'<form method="post" action="([^"]+)"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"[^>]*>\s*'
        r'<input type="hidden" name="expected_version" value="(\d+)">',
        html,
    )
    assert len(forms) == len(buttons(page_of(dispatcher_client, ticket)))
    assert {version for _, version in forms} == {str(ticket.version)}
    assert all("/transition/" in action for action, _ in forms)


def test_the_timeline_shows_redacted_payloads(dispatcher_client):
    ticket = ticket_new(
        customer_phone="+15105550199", request={"summary": "Door won't latch", "customer_phone": "+15105550199"}
    )
    event = AuditEvent.objects.filter(ticket=ticket).get()
    html = page_of(dispatcher_client, ticket).content.decode()
    timeline = html.split('class="rd-timeline"')[1].split("</ol>")[0]
    assert f"#{event.seq}" in timeline
    # The caller's request is in the raw record, the phone number masked.
    assert "&quot;request&quot;: {" in timeline and "&quot;customer_phone&quot;: &quot;[redacted]&quot;" in timeline
    assert "+15105550199" not in timeline
