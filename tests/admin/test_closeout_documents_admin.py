"""Closeout documents in the back office: the ticket page's packet and invoice section, finance's
invoice review (edit, approve, correct: each one service call and one audit event), the downloads
and who may have them, the billing settings, and the ticket list's "missing evidence" column and
filter with a query count that does not grow with the rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dispatch.closeout.admin_documents import InvoiceAdmin
from dispatch.closeout.models import (
    BillingSettings,
    CloseoutPacket,
    IncidentTemplate,
    Invoice,
    LaborEntry,
    TaxRate,
)
from dispatch.closeout.services import invoice_approve, invoice_generate, invoice_revise, packet_render
from dispatch.tickets.admin import TicketAdmin
from dispatch.tickets.models import AuditEvent, Ticket
from tests.admin.conftest import logged_in
from tests.factories import (
    SiteFactory,
    actor_for,
    door_evidence_add,
    ticket_at,
)

pytestmark = pytest.mark.django_db


def client_as(role: str | None = None, **fields) -> Client:
    return logged_in(Client(), role, **fields)


def events(ticket, tool: str) -> int:
    return AuditEvent.objects.filter(ticket=ticket, tool_name=tool).count()


def messages_of(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


def invoiced(*, nte_cents=None, minutes=60):
    """A verified job with an hour of labor, invoiced: (ticket, its draft)."""
    ticket = ticket_at("VERIFIED", nte_cents=nte_cents)
    LaborEntry.objects.create(ticket=ticket, minutes=minutes, rate_cents=10000, description="Realign strike")
    invoice = invoice_generate(actor=actor_for("finance"), ticket_id=ticket.id).result.invoice
    ticket.refresh_from_db()
    return ticket, invoice


def approved(**kwargs):
    ticket, draft = invoiced(**kwargs)
    invoice_approve(
        actor=actor_for("finance"),
        ticket_id=ticket.id,
        invoice_id=draft.id,
        nte_override_reason="Customer agreed by phone",
    )
    ticket.refresh_from_db()
    draft.refresh_from_db()
    return ticket, draft


def ticket_page(client, ticket):
    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert response.status_code == 200
    return response


def invoice_page(client, invoice):
    return client.get(reverse("admin:closeout_invoice_change", args=[invoice.pk]))


def lines_post(invoice, ticket, rows: list[dict], *, deleted=(), initial=None) -> dict:
    """The lines formset as the browser sends it."""
    initial = len(rows) if initial is None else initial
    data = {
        "expected_version": ticket.version,
        "lines-TOTAL_FORMS": len(rows),
        "lines-INITIAL_FORMS": initial,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 200,
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            if name == "taxable":
                if value:
                    data[f"lines-{index}-taxable"] = "on"
            else:
                data[f"lines-{index}-{name}"] = value
        if index in deleted:
            data[f"lines-{index}-DELETE"] = "on"
    return data


# --- the ticket page ---------------------------------------------------------------------------------


def test_the_ticket_page_lists_every_packet_version_with_hash_pdf_status_and_files(dispatcher_client):
    ticket, _invoice = approved()  # version 1: issued with the approval, its PDF rendered at once
    second = packet_render(actor=actor_for("dispatcher"), ticket_id=ticket.id, reason="photos added").result
    third = packet_render(actor=actor_for("dispatcher"), ticket_id=ticket.id, reason="").result
    CloseoutPacket.objects.filter(pk=third.pk).update(pdf_status="FAILED", pdf_error="OSError: font missing")
    first = CloseoutPacket.objects.get(ticket=ticket, version=1)

    response = ticket_page(dispatcher_client, ticket)
    html = response.content.decode()
    section = html[html.index('aria-labelledby="docs-h"') :]

    assert section.index(">v3<") < section.index(">v2<") < section.index(">v1<")  # newest first
    assert "Issued on request: photos added" in section and f"Invoice {_invoice.number} approved" in section
    for row in (first, second, third):
        assert f'title="{row.sha256}"' in section and f'value="{row.sha256}"' in section
        assert row.sha256[:12] + "…" in section
        assert reverse("admin:closeout_closeoutpacket_pdf", args=[row.pk]) in section
        assert reverse("admin:closeout_closeoutpacket_json", args=[row.pk]) in section
        assert f"/verify/{row.sha256}/" in section
    assert f"Ready · {first.pdf_pages} page" in section
    assert "Rendering…" in section
    assert "Failed" in section and "OSError: font missing" in section


def test_issue_packet_is_offered_in_the_section_and_calls_packet_render_once(dispatcher_client):
    ticket, _invoice = invoiced()
    response = ticket_page(dispatcher_client, ticket)
    panel = response.context["ticket_panels"][0]["context"]
    assert panel["issue"]["action"].key == "packet-render"
    # Offered once, in the documents section, not again under "Next step".
    assert "packet-render" not in [item["action"].key for item in response.context["ticket_actions"]]

    response = dispatcher_client.post(
        reverse("admin:tickets_ticket_transition", args=[ticket.pk, "packet-render"]),
        {"expected_version": ticket.version, "reason": "customer asked for the record"},
        follow=True,
    )

    packet = CloseoutPacket.objects.get(ticket=ticket)
    assert (packet.version, packet.reason) == (1, "Issued on request: customer asked for the record")
    assert events(ticket, "closeout.render_packet") == 1
    assert any("Issue packet" in text for text in messages_of(response))


def test_issue_packet_is_not_offered_before_the_work_is_done(dispatcher_client):
    ticket = ticket_at("IN_PROGRESS")
    response = ticket_page(dispatcher_client, ticket)
    assert response.context["ticket_panels"] == []

    response = dispatcher_client.post(
        reverse("admin:tickets_ticket_transition", args=[ticket.pk, "packet-render"]),
        {"expected_version": ticket.version},
        follow=True,
    )
    assert not CloseoutPacket.objects.filter(ticket=ticket).exists()
    assert events(ticket, "closeout.render_packet") == 0
    assert any("INVALID_STATE_TRANSITION" in text for text in messages_of(response))


def test_the_ticket_page_shows_the_current_invoice_and_the_versions_it_replaced(dispatcher_client):
    ticket, first = approved(nte_cents=5000)
    invoice_revise(actor=actor_for("finance"), ticket_id=ticket.id, reason="Wrong labor rate")
    second = Invoice.objects.get(ticket=ticket, version=2)

    html = ticket_page(dispatcher_client, ticket).content.decode()
    section = html[html.index('aria-labelledby="docs-h"') :]

    current = section[section.index('class="rd-inv-line"') : section.index('aria-label="Earlier invoice versions"')]
    assert second.number in current and '<span class="rd-inv rd-inv--draft">Draft</span>' in current
    assert "over NTE $50.00" in current  # an hour at $100 against a $50 not-to-exceed
    assert "$100.00" in current
    for name in ("pdf", "csv", "json"):
        assert reverse(f"admin:closeout_invoice_{name}", args=[second.pk]) in current
    assert f"replaces {first.number}" in current
    earlier = section[section.index('aria-label="Earlier invoice versions"') :]
    assert first.number in earlier and "rd-inv--superseded" in earlier
    assert reverse("admin:closeout_invoice_pdf", args=[first.pk]) in earlier
    # A dispatcher opens the invoice; finance is sent to review it.
    assert "Open invoice →" in section
    finance_html = ticket_page(client_as("finance"), ticket).content.decode()
    assert "Review and approve →" in finance_html


def test_a_ticket_with_missing_evidence_says_so_in_its_header(dispatcher_client):
    ticket = ticket_at("IN_PROGRESS")
    door_evidence_add(ticket, keys=["photo_before_door_edge_and_strike"], signature=False)

    html = ticket_page(dispatcher_client, ticket).content.decode()

    header = html[html.index('class="rd-ticket__chips"') : html.index("rd-ticket__grid")]
    assert "Missing evidence: photo · note · signature" in header


# --- downloads ---------------------------------------------------------------------------------------


def assert_download(response, content_type: str, filename: str) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_packet_downloads_are_the_pdf_and_the_json_exactly_as_hashed(dispatcher_client):
    ticket, _invoice = invoiced()
    row = packet_render(actor=actor_for("dispatcher"), ticket_id=ticket.id).result

    pdf = dispatcher_client.get(reverse("admin:closeout_closeoutpacket_pdf", args=[row.pk]))
    assert_download(pdf, "application/pdf", f"closeout-{ticket.short_ref}-v1.pdf")
    assert pdf.content.startswith(b"%PDF")
    row.refresh_from_db()
    assert row.pdf_status == "READY"  # rendered when asked for, before the worker got to it

    body = dispatcher_client.get(reverse("admin:closeout_closeoutpacket_json", args=[row.pk]))
    assert_download(body, "application/json", f"closeout-{ticket.short_ref}-v1.json")
    assert hashlib.sha256(body.content).hexdigest() == row.sha256


def test_invoice_downloads_are_its_pdf_csv_and_json(dispatcher_client):
    _ticket, invoice = invoiced()

    pdf = dispatcher_client.get(reverse("admin:closeout_invoice_pdf", args=[invoice.pk]))
    assert_download(pdf, "application/pdf", f"{invoice.number}.pdf")
    assert pdf.content.startswith(b"%PDF")

    sheet = dispatcher_client.get(reverse("admin:closeout_invoice_csv", args=[invoice.pk]))
    assert_download(sheet, "text/csv; charset=utf-8", f"{invoice.number}.csv")
    rows = list(csv.DictReader(io.StringIO(sheet.content.decode())))
    assert [(row["invoice_number"], row["amount"]) for row in rows] == [(invoice.number, "100.00")]

    body = dispatcher_client.get(reverse("admin:closeout_invoice_json", args=[invoice.pk]))
    assert_download(body, "application/json", f"{invoice.number}.json")
    document = json.loads(body.content)
    assert (document["invoice"]["number"], document["invoice"]["total_cents"]) == (invoice.number, 10000)


def download_urls(packet, invoice) -> list[str]:
    return [
        reverse("admin:closeout_closeoutpacket_pdf", args=[packet.pk]),
        reverse("admin:closeout_closeoutpacket_json", args=[packet.pk]),
        reverse("admin:closeout_invoice_pdf", args=[invoice.pk]),
        reverse("admin:closeout_invoice_csv", args=[invoice.pk]),
        reverse("admin:closeout_invoice_json", args=[invoice.pk]),
    ]


def test_downloads_are_refused_to_anyone_who_may_not_see_the_ticket(client):
    ticket, invoice = invoiced()
    packet = packet_render(actor=actor_for("qa"), ticket_id=ticket.id).result
    urls = download_urls(packet, invoice)

    for url in urls:  # not signed in, or a technician flagged staff by mistake: the login page
        assert client.get(url).status_code == 302
        assert client_as("technician", is_staff=True).get(url).status_code == 302

    for role in ("dispatcher", "qa", "finance", "approver"):
        reader = client_as(role)
        assert [reader.get(url).status_code for url in urls] == [200] * 5, role

    # A back-office role that may not see tickets does not learn that these exist.
    approvers = Group.objects.get(name="approver")
    approvers.permissions.remove(Permission.objects.get(content_type__app_label="tickets", codename="view_ticket"))
    assert [client_as("approver").get(url).status_code for url in urls] == [404] * 5
    # Nor one that may see the ticket but not the documents.
    qa = Group.objects.get(name="qa")
    qa.permissions.remove(*Permission.objects.filter(codename__in=["view_closeoutpacket", "view_invoice"]))
    assert [client_as("qa").get(url).status_code for url in urls] == [404] * 5
    assert client_as("dispatcher").get(urls[0].replace(str(packet.pk), "not-an-id")).status_code == 404


# --- finance's review ----------------------------------------------------------------------------------


def test_finance_edits_a_drafts_lines_through_one_service_call():
    finance = client_as("finance")
    ticket, invoice = invoiced()
    page = invoice_page(finance, invoice)
    assert page.status_code == 200
    assert page.context["formset"] is not None and page.context["approve_form"] is not None
    labor = {
        "kind": "LABOR",
        "item_code": "LABOR-STANDARD",
        "description": "Realign strike",
        "quantity": "1.00",
        "unit_price": "100.00",
        "taxable": False,
    }
    rows = [
        {**labor, "quantity": "1.50"},
        {
            "kind": "PART",
            "item_code": "STRIKE",
            "description": "ASA strike plate",
            "quantity": "2",
            "unit_price": "24.50",
        },
        {"kind": "", "item_code": "", "description": "", "quantity": "", "unit_price": ""},  # the blank row
    ]
    before = AuditEvent.objects.filter(ticket=ticket).count()

    response = finance.post(
        reverse("admin:closeout_invoice_lines", args=[invoice.pk]), lines_post(invoice, ticket, rows, initial=1)
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:closeout_invoice_change", args=[invoice.pk])
    assert AuditEvent.objects.filter(ticket=ticket).count() == before + 1
    event = AuditEvent.objects.filter(ticket=ticket).order_by("-seq").first()
    assert event.tool_name == "billing.edit_invoice"
    assert [line["description"] for line in event.payload["lines_after"]] == ["Realign strike", "ASA strike plate"]
    invoice.refresh_from_db()
    assert list(invoice.lines.values_list("kind", "quantity", "unit_cents", "total_cents")) == [
        ("LABOR", 1.5, 10000, 15000),
        ("PART", 2, 2450, 4900),
    ]
    assert invoice.subtotal_cents == 19900


def test_removing_a_line_sends_the_others_and_a_bad_row_writes_nothing():
    finance = client_as("finance")
    ticket, invoice = invoiced()
    line = {"kind": "LABOR", "description": "Realign strike", "quantity": "1", "unit_price": "100"}
    extra = {"kind": "FEE", "description": "Trip", "quantity": "1", "unit_price": "45"}
    url = reverse("admin:closeout_invoice_lines", args=[invoice.pk])

    refused = finance.post(url, lines_post(invoice, ticket, [line, {**extra, "quantity": "0"}], initial=1))
    assert refused.status_code == 400
    assert events(ticket, "billing.edit_invoice") == 0
    assert "Ensure this value is greater than or equal to 0.01." in refused.content.decode()

    finance.post(url, lines_post(invoice, ticket, [line, extra], initial=1))
    ticket.refresh_from_db()
    finance.post(url, lines_post(invoice, ticket, [line, extra], deleted=[0]))

    assert list(invoice.lines.values_list("description", flat=True)) == ["Trip"]
    assert events(ticket, "billing.edit_invoice") == 2


def test_a_dispatcher_reads_the_invoice_but_may_not_edit_approve_or_correct_it(dispatcher_client):
    ticket, invoice = invoiced()
    page = invoice_page(dispatcher_client, invoice)
    assert page.status_code == 200
    assert (page.context["formset"], page.context["approve_form"], page.context["revise_form"]) == (None, None, None)
    assert page.context["why_not"].startswith("Only finance may edit and approve invoices")

    line = {"kind": "FEE", "description": "Trip", "quantity": "1", "unit_price": "45"}
    lines = dispatcher_client.post(
        reverse("admin:closeout_invoice_lines", args=[invoice.pk]), lines_post(invoice, ticket, [line])
    )
    approve = dispatcher_client.post(
        reverse("admin:closeout_invoice_approve", args=[invoice.pk]), {"expected_version": ticket.version}
    )

    assert (lines.status_code, approve.status_code) == (403, 403)
    assert any("TOOL_ROLE_FORBIDDEN" in text for text in messages_of(lines))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.lines.count()) == ("DRAFT", 1)
    assert events(ticket, "billing.edit_invoice") + events(ticket, "billing.approve_invoice") == 0


def test_approving_over_the_nte_asks_why_and_writes_one_audit_event():
    finance = client_as("finance")
    ticket, invoice = invoiced(nte_cents=5000)
    page = invoice_page(finance, invoice)
    assert "nte_override_reason" in page.context["approve_form"].fields
    url = reverse("admin:closeout_invoice_approve", args=[invoice.pk])

    without = finance.post(url, {"expected_version": ticket.version})
    assert without.status_code == 400
    assert events(ticket, "billing.approve_invoice") == 0

    response = finance.post(
        url, {"expected_version": ticket.version, "nte_override_reason": "Customer approved $100 by phone"}
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "APPROVED" and invoice.pdf.name
    assert events(ticket, "billing.approve_invoice") == 1
    event = AuditEvent.objects.get(ticket=ticket, tool_name="billing.approve_invoice")
    assert event.actor_id == str(finance.user.pk)


def test_an_approved_invoice_is_read_only_and_is_corrected_by_a_new_version():
    finance = client_as("finance")
    ticket, invoice = approved()
    page = invoice_page(finance, invoice)
    assert (page.context["formset"], page.context["approve_form"]) == (None, None)
    assert page.context["revise_form"] is not None
    assert 'name="lines-TOTAL_FORMS"' not in page.content.decode()

    line = {"kind": "FEE", "description": "Trip", "quantity": "1", "unit_price": "45"}
    edit = finance.post(reverse("admin:closeout_invoice_lines", args=[invoice.pk]), lines_post(invoice, ticket, [line]))
    assert edit.status_code == 409
    assert any("INVOICE_NOT_DRAFT" in text for text in messages_of(edit))
    assert events(ticket, "billing.edit_invoice") == 0

    response = finance.post(
        reverse("admin:closeout_invoice_revise", args=[invoice.pk]),
        {"expected_version": ticket.version, "reason": "Labor billed at the wrong rate"},
    )

    second = Invoice.objects.get(ticket=ticket, version=2)
    assert response["Location"] == reverse("admin:closeout_invoice_change", args=[second.pk])
    invoice.refresh_from_db()
    assert (invoice.status, second.status, second.supersedes_id) == ("SUPERSEDED", "DRAFT", invoice.pk)
    assert events(ticket, "billing.revise_invoice") == 1
    # The superseded version offers nothing, not even to finance.
    page = invoice_page(finance, invoice)
    assert (page.context["formset"], page.context["approve_form"], page.context["revise_form"]) == (None, None, None)


def test_invoices_are_never_added_changed_or_deleted_through_django_forms():
    superuser = client_as(is_staff=True, is_superuser=True)
    _ticket, invoice = approved()
    request = superuser.get(reverse("admin:closeout_invoice_changelist")).wsgi_request
    model_admin = admin.site.get_model_admin(Invoice)
    assert isinstance(model_admin, InvoiceAdmin)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, invoice)
    assert not model_admin.has_delete_permission(request, invoice)
    assert superuser.post(reverse("admin:closeout_invoice_change", args=[invoice.pk]), {}).status_code == 405
    assert superuser.get(reverse("admin:closeout_invoice_delete", args=[invoice.pk])).status_code == 403


def test_the_invoice_list_filters_by_status_and_exports_the_selected_as_csv():
    finance = client_as("finance")
    _ticket, first = approved(nte_cents=5000)
    _other, draft = invoiced()
    url = reverse("admin:closeout_invoice_changelist")

    page = finance.get(url)
    html = page.content.decode()
    assert first.number in html and draft.number in html and "over NTE" in html
    drafts = finance.get(url, {"status__exact": "DRAFT"})
    assert list(drafts.context["cl"].result_list) == [draft]

    export = finance.post(url, {"action": "export_csv", "_selected_action": [first.pk, draft.pk]})

    assert export.status_code == 200 and export["Content-Type"] == "text/csv; charset=utf-8"
    assert export["Content-Disposition"].startswith('attachment; filename="invoices-')
    assert export["X-Content-Type-Options"] == "nosniff"
    numbers = [row["invoice_number"] for row in csv.DictReader(io.StringIO(export.content.decode()))]
    assert numbers == sorted([first.number, draft.number])


# --- packets, billing settings, tax rates, templates ------------------------------------------------


def test_the_packet_list_shows_versions_with_their_files_and_nothing_is_editable(dispatcher_client):
    ticket, _invoice = approved()
    row = CloseoutPacket.objects.get(ticket=ticket)

    html = dispatcher_client.get(reverse("admin:closeout_closeoutpacket_changelist")).content.decode()

    assert ticket.short_ref in html and row.reason in html and row.sha256[:12] in html
    assert "Ready · " in html
    assert reverse("admin:closeout_closeoutpacket_pdf", args=[row.pk]) in html
    detail = dispatcher_client.get(reverse("admin:closeout_closeoutpacket_change", args=[row.pk])).content.decode()
    assert row.sha256 in detail and 'name="_save"' not in detail


def test_billing_settings_are_one_row_finance_edits_and_nobody_adds_twice_or_deletes():
    finance = client_as("finance")
    BillingSettings.objects.all().delete()
    assert finance.get(reverse("admin:closeout_billingsettings_add")).status_code == 200
    row = BillingSettings.objects.create(company_name="Bay Door Co")

    assert finance.get(reverse("admin:closeout_billingsettings_add")).status_code == 403
    assert finance.get(reverse("admin:closeout_billingsettings_delete", args=[row.pk])).status_code == 403
    change = reverse("admin:closeout_billingsettings_change", args=[row.pk])
    form = finance.get(change).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: ("" if value is None else value) for name, value in data.items() if value is not False}
    data.update({"standard_rate_cents": "13500", "default_trip_charge_cents": "4500"})
    response = finance.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    row.refresh_from_db()
    assert (row.standard_rate_cents, row.default_trip_charge_cents) == (13500, 4500)
    assert client_as("dispatcher").post(change, data).status_code == 403

    # Rules that would misprice every job are refused with the field named, and nothing changes.
    for bad, field in (
        ({"business_hours_start": "18:00:00", "business_hours_end": "08:00:00"}, "business_hours_end"),
        ({"after_hours_multiplier": "0.50"}, "after_hours_multiplier"),
        ({"emergency_multiplier": "0"}, "emergency_multiplier"),
    ):
        refused = finance.post(change, {**data, **bad})
        assert refused.status_code == 200 and field in refused.context["adminform"].form.errors
    row.refresh_from_db()
    assert (row.business_hours_end.hour, row.after_hours_multiplier, row.emergency_multiplier) == (18, 1.5, 2)


def test_tax_rates_are_edited_and_one_a_site_names_cannot_be_deleted():
    finance = client_as("finance")
    response = finance.post(
        reverse("admin:closeout_taxrate_add"),
        {"jurisdiction": "CA-ALAMEDA", "name": "Alameda County", "labor_bps": "0", "parts_bps": "1025"},
    )
    assert response.status_code == 302
    rate = TaxRate.objects.get(jurisdiction="CA-ALAMEDA")
    SiteFactory(tax_jurisdiction="CA-ALAMEDA")
    html = finance.get(reverse("admin:closeout_taxrate_changelist")).content.decode()
    assert "10.25%" in html
    assert finance.get(reverse("admin:closeout_taxrate_delete", args=[rate.pk])).status_code == 403


def test_the_incident_template_form_sets_the_trip_charge():
    finance = client_as("finance")
    template = IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH")
    url = reverse("admin:closeout_incidenttemplate_change", args=[template.pk])
    form = finance.get(url).context["adminform"].form
    assert "trip_charge_cents" in form.fields
    data = {
        "incident_type": template.incident_type,
        "name": template.name,
        "version": template.version,
        "default_duration_minutes": template.default_duration_minutes,
        "crew_size": template.crew_size,
        "days": template.days,
        "trip_charge_cents": "6500",
        "required_evidence_keys": "\n".join(template.required_evidence_keys),
        "required_checklist_keys": "\n".join(template.required_checklist_keys),
        "keywords": "\n".join(template.keywords),
    }
    assert finance.post(url, data).status_code == 302
    template.refresh_from_db()
    assert template.trip_charge_cents == 6500


# --- the ticket list's missing evidence --------------------------------------------------------------


@pytest.fixture
def jobs():
    """Tickets across the pipeline, each with a known evidence gap (or none)."""
    bare = ticket_at("IN_PROGRESS")
    partial = ticket_at("COMPLETED_PENDING_VERIFICATION")
    door_evidence_add(partial, keys=["photo_before_door_edge_and_strike"], signature=False)
    complete = ticket_at("INVOICED")
    door_evidence_add(complete)
    untyped = ticket_at("ON_SITE", incident_type="NO_SUCH_TYPE")
    early = ticket_at("SCHEDULED")
    closed = ticket_at("CLOSED")
    return {
        "bare": bare,
        "partial": partial,
        "complete": complete,
        "untyped": untyped,
        "early": early,
        "closed": closed,
    }


def flagged(response) -> dict:
    return {
        ticket.pk: next((mark.text for flag, mark in ticket.flag_marks if flag.key == "missing_evidence"), None)
        for ticket in response.context["cl"].result_list
    }


def test_the_ticket_list_says_what_evidence_each_job_still_needs(dispatcher_client, jobs):
    response = dispatcher_client.get(reverse("admin:tickets_ticket_changelist"))

    marks = flagged(response)
    assert marks[jobs["bare"].pk] == "2 photos · note · signature"
    assert marks[jobs["partial"].pk] == "photo · note · signature"
    assert marks[jobs["untyped"].pk] == "no incident template"
    for quiet in ("complete", "early", "closed"):
        assert marks[jobs[quiet].pk] is None, quiet
    html = response.content.decode()
    assert '<th scope="col" class="column-flag_missing_evidence">' in html
    assert (
        '<span class="rd-flag rd-flag--missing_evidence" title="Missing: note adjustments and test cycles, '
        'photo after latched alignment, the customer&#x27;s signature (or why there is none)">'
        "photo\u00a0· note\u00a0· signature</span>"
    ) in html


def test_the_missing_evidence_filter_is_right_across_pages(dispatcher_client, jobs, monkeypatch):
    monkeypatch.setattr(TicketAdmin, "list_per_page", 2)
    url = reverse("admin:tickets_ticket_changelist")

    yes = dispatcher_client.get(url, {"missing_evidence": "yes"}).context["cl"]
    no = dispatcher_client.get(url, {"missing_evidence": "no"}).context["cl"]
    yes_all = dispatcher_client.get(url, {"missing_evidence": "yes", "p": 2}).context["cl"]

    assert yes.result_count == 3
    found = {*yes.result_list, *yes_all.result_list}
    assert found == {jobs["bare"], jobs["partial"], jobs["untyped"]}
    assert no.result_count == 1 and list(no.result_list) == [jobs["complete"]]
    # Combined with another filter: only the flagged tickets in that state.
    in_progress = dispatcher_client.get(url, {"missing_evidence": "yes", "state__exact": "IN_PROGRESS"}).context["cl"]
    assert list(in_progress.result_list) == [jobs["bare"]]


def queries_for(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


def add_work(count: int) -> None:
    for n in range(count):
        ticket = ticket_at(("IN_PROGRESS", "VERIFIED", "ON_HOLD")[n % 3], site=SiteFactory())
        if n % 2:
            door_evidence_add(ticket, keys=["photo_after_latched_alignment"])


@pytest.mark.parametrize("params", [{}, {"missing_evidence": "yes"}, {"missing_evidence": "no"}])
def test_the_column_and_filter_cost_the_same_queries_for_3_and_15_jobs(dispatcher_client, params):
    url = reverse("admin:tickets_ticket_changelist")
    add_work(3)
    queries_for(dispatcher_client, url, params)  # warm per-process caches (content types)
    few = queries_for(dispatcher_client, url, params)
    add_work(12)
    many = queries_for(dispatcher_client, url, params)
    assert few == many, (few, many)
    assert Ticket.objects.count() == 15
