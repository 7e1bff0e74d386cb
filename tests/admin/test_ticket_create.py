"""Opening a ticket in the back office goes through ticket_create."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import AssetFactory, SiteFactory

pytestmark = pytest.mark.django_db

ADD = "admin:tickets_ticket_add"


def test_the_form_opens(dispatcher_client):
    response = dispatcher_client.get(reverse(ADD))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="site"' in html and 'name="summary"' in html and 'name="nte"' in html
    assert 'name="state"' not in html and 'name="version"' not in html


def test_a_dispatcher_opens_a_ticket_through_the_service(dispatcher_client):
    site = SiteFactory()
    asset = AssetFactory(site=site)

    response = dispatcher_client.post(
        reverse(ADD),
        {
            "site": site.pk,
            "asset": asset.pk,
            "summary": "  Sliding door stuck open  ",
            "description": "Lobby entrance",
            "priority": "URGENT",
            "incident_type": "AUTO_OPERATOR_FAULT",
            "nte": "600",
            "customer_name": "Sam Lee",
            "customer_phone": "+15105550123",
            "customer_email": "sam@example.com",
        },
    )

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tickets_ticket_change", args=[ticket.pk])
    assert (ticket.account, ticket.site, ticket.asset, ticket.summary) == (
        site.account,
        site,
        asset,
        "Sliding door stuck open",
    )
    assert (ticket.state, ticket.version, ticket.priority, ticket.nte_cents) == ("NEW", 1, "URGENT", 60000)
    event = AuditEvent.objects.get(ticket=ticket)
    assert (event.tool_name, event.before_state, event.after_state) == ("ticket.create", "", "NEW")
    assert (event.actor_role, event.actor_id) == ("dispatcher", str(dispatcher_client.user.pk))


def test_a_refusal_of_the_service_is_shown_on_the_form(dispatcher_client):
    site, other_site = SiteFactory(), SiteFactory()
    asset_elsewhere = AssetFactory(site=other_site)

    response = dispatcher_client.post(
        reverse(ADD),
        {
            "site": site.pk,
            "asset": asset_elsewhere.pk,
            "summary": "Door",
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 200
    assert "The asset is not at that site." in response.content.decode()
    assert not Ticket.objects.exists()


def test_the_site_picker_searches_sites(dispatcher_client):
    site = SiteFactory(name="Lakeside Commons")
    SiteFactory(name="Mission Bay Tower")
    response = dispatcher_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "tickets", "model_name": "ticket", "field_name": "site", "term": "lakeside"},
    )
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(site.pk)]
