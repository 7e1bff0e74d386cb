"""Every back-office list and record page opens for a dispatcher."""

from __future__ import annotations

import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from dispatch.closeout.models import IncidentTemplate
from dispatch.technicians.models import Region, Technician, TechnicianSkill
from dispatch.tickets.models import (
    Account,
    Approval,
    Asset,
    AuditEvent,
    Contact,
    IdempotencyRecord,
    Site,
    StateTransition,
    Ticket,
)
from dispatch.tickets.services import ticket_triage
from tests.factories import (
    AssetFactory,
    ContactFactory,
    TechnicianFactory,
    actor_for,
    door_evidence_add,
    ticket_in_progress,
    ticket_new,
)

pytestmark = pytest.mark.django_db

# The models this app's admin registers itself; each must have a row for its change page to be opened.
CORE_MODELS = (
    Account,
    Site,
    Contact,
    Asset,
    Ticket,
    AuditEvent,
    StateTransition,
    Approval,
    IdempotencyRecord,
    Region,
    Technician,
    TechnicianSkill,
    IncidentTemplate,
)
# The sign-in record (accounts) is for admins and auditors; its own tests cover who opens it.
DISPATCH_APPS = {config.label for config in apps.get_app_configs() if config.name.startswith("dispatch.")} - {
    "accounts"
}


@pytest.fixture
def records():
    """One of everything: a job in progress with evidence, a ticket waiting on approval, people, an API answer."""
    technician = TechnicianFactory(skills=["DOOR_WONT_LATCH"])
    in_progress = ticket_in_progress(technician=technician)
    door_evidence_add(in_progress)
    ContactFactory(account=in_progress.account, site=in_progress.site)
    AssetFactory(site=in_progress.site)
    waiting = ticket_new()
    ticket_triage(
        actor=actor_for("dispatcher"),
        ticket_id=waiting.id,
        priority="URGENT",
        incident_type="DOOR_WONT_LATCH",
        outcome="APPROVAL_REQUIRED",
        approval_reason="Replace the closer",
        approval_amount_delta_cents=45000,
    )
    IdempotencyRecord.objects.create(
        actor_id="agent-1",
        endpoint="ticket.create",
        key=uuid.uuid4(),
        request_hash="0" * 64,
        status_code=201,
        response_body={"id": str(in_progress.id)},
    )


def registered_dispatch_models():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in DISPATCH_APPS
    ]


def test_every_core_model_is_registered():
    registered = {model for model, _ in registered_dispatch_models()}
    assert set(CORE_MODELS) <= registered


def test_the_audit_chain_head_is_not_in_the_back_office():
    from dispatch.tickets.models import AuditChainHead

    assert AuditChainHead not in admin.site._registry


def test_every_list_and_record_page_opens_for_a_dispatcher(dispatcher_client, records):
    opened = []
    for model, _ in registered_dispatch_models():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = dispatcher_client.get(changelist)
        assert response.status_code == 200, (changelist, response.status_code)
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            assert model not in CORE_MODELS, f"the fixture made no {opts.label} row"
            continue
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        response = dispatcher_client.get(change)
        assert response.status_code == 200, (change, response.status_code)
        opened.append(opts.label)
    assert {m._meta.label for m in CORE_MODELS} <= set(opened)


def test_list_search_and_filters_answer(dispatcher_client, records):
    ticket = Ticket.objects.filter(state="IN_PROGRESS").get()
    url = reverse("admin:tickets_ticket_changelist")
    by_ref = dispatcher_client.get(url, {"q": ticket.short_ref})
    assert by_ref.status_code == 200
    assert list(by_ref.context["cl"].result_list) == [ticket]
    by_city = dispatcher_client.get(
        url, {"q": ticket.site.city, "state__exact": "IN_PROGRESS", "priority__exact": "ROUTINE"}
    )
    assert by_city.status_code == 200
    assert ticket in by_city.context["cl"].result_list


def test_the_incident_template_lists_are_edited_one_item_per_line(dispatcher_client):
    template = IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH")
    url = reverse("admin:closeout_incidenttemplate_change", args=[template.pk])
    page = dispatcher_client.get(url)
    assert "photo_after_latched_alignment\nnote_adjustments_and_test_cycles" in page.content.decode()

    response = dispatcher_client.post(
        url,
        {
            "incident_type": template.incident_type,
            "name": template.name,
            "version": "1.1.0",
            "default_duration_minutes": 60,
            "crew_size": 1,
            "days": 1,
            "required_evidence_keys": "photo_before\n\n photo_after \nphoto_before\n",
            "required_checklist_keys": "work_performed\nresolution_status",
            "keywords": "latch\nstrike plate",
        },
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    template.refresh_from_db()
    assert template.required_evidence_keys == ["photo_before", "photo_after"]
    assert template.required_checklist_keys == ["work_performed", "resolution_status"]
    assert template.keywords == ["latch", "strike plate"]
    assert template.version == "1.1.0"


def test_the_links_between_pages_open_filtered_lists(dispatcher_client, records):
    ticket = Ticket.objects.filter(state="IN_PROGRESS").get()
    tickets_of_account = dispatcher_client.get(
        reverse("admin:tickets_ticket_changelist"), {"account__id__exact": ticket.account_id}
    )
    assert tickets_of_account.status_code == 200
    assert list(tickets_of_account.context["cl"].result_list) == [ticket]
    accounts = dispatcher_client.get(reverse("admin:tickets_account_changelist")).content.decode()
    assert f"account__id__exact={ticket.account_id}" in accounts

    for page in ("admin:tickets_auditevent_changelist", "admin:tickets_statetransition_changelist"):
        response = dispatcher_client.get(reverse(page), {"ticket__id__exact": ticket.pk})
        assert response.status_code == 200
        assert {row.ticket_id for row in response.context["cl"].result_list} == {ticket.pk}
