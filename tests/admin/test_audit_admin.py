"""The audit trail in the back office is read-only: no add, change or delete, for anyone."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from tests.factories import ticket_new

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [AuditEvent, StateTransition])
def test_audit_rows_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client_, model):
    request = RequestFactory().get("/")
    request.user = admin_client_.user
    model_admin = admin.site._registry[model]
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False


def test_the_audit_pages_refuse_every_write(admin_client_):
    ticket = ticket_new()
    event = AuditEvent.objects.get(ticket=ticket)
    original = (event.tool_name, event.payload, event.hash)

    assert admin_client_.get(reverse("admin:tickets_auditevent_add")).status_code == 403
    assert admin_client_.post(reverse("admin:tickets_auditevent_add"), {"tool_name": "forged"}).status_code == 403
    change = reverse("admin:tickets_auditevent_change", args=[event.pk])
    assert admin_client_.post(change, {"tool_name": "forged", "_save": "Save"}).status_code == 403
    delete = reverse("admin:tickets_auditevent_delete", args=[event.pk])
    assert admin_client_.get(delete).status_code == 403
    assert admin_client_.post(delete, {"post": "yes"}).status_code == 403

    event.refresh_from_db()
    assert (event.tool_name, event.payload, event.hash) == original
    page = admin_client_.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "deletelink" not in html
    listing = admin_client_.get(reverse("admin:tickets_auditevent_changelist")).content.decode()
    assert "delete_selected" not in listing


def test_tickets_are_never_deleted_nor_saved_from_a_form(admin_client_):
    ticket = ticket_new(summary="Front door won't latch")
    delete = reverse("admin:tickets_ticket_delete", args=[ticket.pk])
    assert admin_client_.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    response = admin_client_.post(change, {"summary": "Edited behind the service's back", "_save": "Save"})
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert (ticket.summary, ticket.version) == ("Front door won't latch", 1)
    assert Ticket.objects.count() == 1
