"""The toolset's packet and invoice reads and commands: JSON by default, files by Accept or route,
for the office's roles only, refusals in the toolset's envelope."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid

import pytest
from pypdf import PdfReader

from dispatch.closeout.models import CloseoutPacket, Invoice
from dispatch.tickets.models import AuditEvent
from tests.factories import jwt_for, ticket_at

pytestmark = pytest.mark.django_db


def auth(role: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {jwt_for(f'{role}-caller', role)}"}


def post(client, path: str, role: str, payload: dict | None = None, key: str | None = None):
    return client.post(
        f"/api/v1/tickets/{path}",
        data=payload or {},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
        **auth(role),
    )


@pytest.fixture
def invoiced(client):
    ticket = ticket_at("VERIFIED")
    assert post(client, f"{ticket.id}/billing/generate-invoice", "finance").status_code == 200
    return ticket


def test_a_packet_is_read_as_json_pdf_or_the_exact_json_that_was_hashed(
    client, invoiced, django_capture_on_commit_callbacks
):
    base = f"/api/v1/tickets/{invoiced.id}/closeout/packet"
    missing = client.get(base, **auth("dispatcher"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "PACKET_NOT_FOUND"

    with django_capture_on_commit_callbacks(execute=True):
        issued = post(client, f"{invoiced.id}/closeout/packet/render", "qa", {"reason": "For the landlord"})
    assert issued.status_code == 200, issued.content
    summary = issued.json()["closeout_packet"]
    assert summary["version"] == 1 and summary["verify_url"].endswith(f"/verify/{summary['sha256']}/")

    answer = client.get(base, **auth("finance")).json()
    assert answer["packet"]["sha256"] == summary["sha256"] and answer["packet"]["pdf"]["status"] == "READY"
    assert answer["packet"]["document"]["header"]["reference"] == invoiced.short_ref
    assert [v["version"] for v in answer["versions"]] == [1]

    by_accept = client.get(base, HTTP_ACCEPT="application/pdf", **auth("approver"))
    by_route = client.get(base + ".pdf", **auth("dispatcher"))
    assert by_accept["Content-Type"] == by_route["Content-Type"] == "application/pdf"
    assert by_accept.content == by_route.content and by_route["X-Content-Type-Options"] == "nosniff"
    assert invoiced.short_ref in PdfReader(io.BytesIO(by_route.content)).pages[0].extract_text()
    raw = client.get(base + ".json", **auth("dispatcher"))
    assert hashlib.sha256(raw.content).hexdigest() == summary["sha256"]
    assert client.get(base + "?version=1", **auth("dispatcher")).json()["packet"]["version"] == 1
    assert client.get(base + "?version=7", **auth("dispatcher")).status_code == 404
    assert client.get(base + "?version=1e3", **auth("dispatcher")).json()["error"]["code"] == "INVALID_REQUEST"


def test_an_invoice_is_read_as_json_pdf_or_csv_and_reviewed_through_commands(client, invoiced):
    base = f"/api/v1/tickets/{invoiced.id}/invoice"
    answer = client.get(base, **auth("finance")).json()
    invoice = answer["invoice"]
    assert invoice["status"] == "DRAFT" and invoice["version"] == 1 and invoice["lines"]

    edited = post(
        client,
        f"{invoiced.id}/invoice/lines",
        "finance",
        {
            "invoice_id": invoice["id"],
            "lines": [{"kind": "LABOR", "description": "Adjust closer", "quantity": 1.5, "unit_cents": 12000}],
        },
    )
    assert edited.status_code == 200 and edited.json()["invoice"]["subtotal_cents"] == 18000

    pdf = client.get(base, HTTP_ACCEPT="application/pdf", **auth("finance"))
    assert (
        pdf["Content-Type"] == "application/pdf"
        and "DRAFT" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    )
    rows = list(csv.DictReader(io.StringIO(client.get(base + ".csv", **auth("finance")).content.decode())))
    assert [(row["description"], row["amount"]) for row in rows] == [("Adjust closer", "180.00")]
    assert client.get(base, HTTP_ACCEPT="text/csv", **auth("qa"))["Content-Type"].startswith("text/csv")

    key = str(uuid.uuid4())
    approved = post(client, f"{invoiced.id}/invoice/approve", "finance", {"invoice_id": invoice["id"]}, key=key)
    assert approved.status_code == 200 and approved.json()["invoice"]["status"] == "APPROVED"
    replay = post(client, f"{invoiced.id}/invoice/approve", "finance", {"invoice_id": invoice["id"]}, key=key)
    assert replay.status_code == 200 and replay["Idempotency-Replayed"] == "true"
    assert AuditEvent.objects.filter(ticket=invoiced, tool_name="billing.approve_invoice").count() == 1
    again = post(client, f"{invoiced.id}/invoice/approve", "finance")
    assert again.status_code == 409 and again.json()["error"]["code"] == "INVOICE_NOT_DRAFT"

    revised = post(client, f"{invoiced.id}/invoice/revise", "finance", {"reason": "Parts were missed"})
    assert revised.status_code == 200 and revised.json()["invoice"]["version"] == 2
    versions = client.get(base, **auth("dispatcher")).json()["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(2, "DRAFT"), (1, "SUPERSEDED")]
    old_pdf = client.get(base + ".pdf?version=1", **auth("dispatcher"))
    assert old_pdf.content == Invoice.objects.get(ticket=invoiced, version=1).pdf.open("rb").read()


@pytest.mark.parametrize("role", ["technician", "customer", "agent"])
def test_documents_are_the_offices_not_the_field_the_customer_or_an_agent(client, invoiced, role):
    for path in ("closeout/packet", "closeout/packet.pdf", "invoice", "invoice.pdf", "invoice.csv"):
        refused = client.get(f"/api/v1/tickets/{invoiced.id}/{path}", **auth(role))
        assert refused.status_code == 403, (path, refused.content)
        assert refused.json()["error"]["code"] == "TOOL_ROLE_FORBIDDEN"


def test_the_review_commands_refuse_hostile_input_and_write_nothing(client, invoiced):
    base = f"{invoiced.id}/invoice"
    invoice = Invoice.objects.get(ticket=invoiced)
    for payload in (
        {"lines": "everything"},
        {"lines": [{"kind": "LABOR", "description": "x", "unit_cents": "12000"}]},
        {"lines": [{"kind": "LABOR", "description": "x", "unit_cents": 1, "extra": True}]},
        {"lines": [{"kind": "LABOR", "description": "<script>", "unit_cents": 1}] * 201},
        {"invoice_id": "not-a-uuid", "lines": [{"kind": "FEE", "description": "x", "unit_cents": 1}]},
    ):
        refused = post(client, base + "/lines", "finance", payload)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_REQUEST", payload
    stranger = post(
        client,
        base + "/lines",
        "finance",
        {"invoice_id": str(uuid.uuid4()), "lines": [{"kind": "FEE", "description": "x", "unit_cents": 1}]},
    )
    assert stranger.status_code == 409 and stranger.json()["error"]["code"] == "INVOICE_NOT_CURRENT"
    not_approved = post(client, base + "/revise", "finance", {"reason": "x"})
    assert not_approved.json()["error"]["code"] == "INVOICE_NOT_APPROVED"
    assert post(client, base + "/approve", "dispatcher").status_code == 403
    big = client.post(
        f"/api/v1/tickets/{base}/lines",
        data=b'{"lines": [' + b'{"kind":"FEE","description":"x","unit_cents":1},' * 40000 + b"{}]}",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **auth("finance"),
    )
    assert big.status_code == 413
    assert list(invoice.lines.values_list("description", "total_cents")) == list(
        Invoice.objects.get(pk=invoice.pk).lines.values_list("description", "total_cents")
    )
    assert (
        not AuditEvent.objects.filter(ticket=invoiced, tool_name__startswith="billing.")
        .exclude(tool_name="billing.generate_invoice")
        .exists()
    )
    assert not CloseoutPacket.objects.filter(ticket=invoiced).exists()
