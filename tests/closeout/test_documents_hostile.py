"""Hostile input against the closeout documents (packet versions and invoice versions) on every
face that serves them: the toolset's reads and commands, the customer's signed status link and
the public verification page, and the back office's downloads and invoice review forms.

Every refusal is pinned with its status and stable error code, and with the proof that it wrote
nothing: no audit event, no idempotency record, no outbox message, no invoice line or status
changed, no packet version, no file left in storage. Every file answer carries a safe name, is
never sniffed and never cached.

Scope: a scoped credential asking for another account's ticket gets exactly the answer the ticket
read itself gives it (403 FORBIDDEN_SCOPE, tests/api/test_auth.py), before anything about the
ticket's documents is looked at; a ticket that does not exist, a malformed id and the id of
another kind of record are 404 TICKET_NOT_FOUND on every route.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dispatch.closeout.models import CloseoutPacket, Invoice, InvoiceLine, LaborEntry
from dispatch.closeout.services import invoice_approve, invoice_generate
from dispatch.common.roles import role_groups_sync
from dispatch.intake.status_links import status_token
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import AuditEvent, IdempotencyRecord
from tests.admin.conftest import logged_in
from tests.factories import SiteFactory, actor_for, jwt_for, ticket_at

pytestmark = pytest.mark.django_db

API = "/api/v1/tickets"
SAFE_FILENAME = re.compile(r'^(inline|attachment); filename="[A-Za-z0-9][A-Za-z0-9._-]{0,120}"$')
LINE = {"kind": "FEE", "description": "Trip charge", "quantity": 1, "unit_cents": 4500}


# --- helpers -------------------------------------------------------------------------------------


def bearer(role: str, **claims) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {jwt_for(f'{role}-hostile', role, **claims)}"}


def api_get(client, path: str, role: str = "dispatcher", *, claims: dict | None = None, **headers):
    return client.get(f"{API}/{path}", **headers, **bearer(role, **(claims or {})))


def api_post(
    client,
    path: str,
    role: str = "finance",
    payload: dict | None = None,
    *,
    key: str | None = None,
    claims: dict | None = None,
    **headers,
):
    return client.post(
        f"{API}/{path}",
        data=json.dumps(payload if payload is not None else {}),
        content_type=headers.pop("content_type", "application/json"),
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
        **headers,
        **bearer(role, **(claims or {})),
    )


def error_of(response) -> tuple[int, str | None]:
    """(status, the envelope's error code); None for an answer that is not the toolset's error."""
    if not response["Content-Type"].startswith("application/json"):
        return response.status_code, None
    return response.status_code, response.json().get("error", {}).get("code")


def stored_files() -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def footprint(ticket) -> dict:
    """Everything a document command could change: compared before and after each refusal."""
    ticket.refresh_from_db()
    return {
        "ticket": (ticket.state, ticket.version),
        "audit_events": AuditEvent.objects.count(),
        "idempotency_records": IdempotencyRecord.objects.count(),
        "outbox": OutboundMessage.objects.count(),
        "invoices": list(
            Invoice.objects.filter(ticket=ticket)
            .order_by("version")
            .values_list("id", "version", "status", "total_cents", "pdf_sha256", "approved_at")
        ),
        "lines": list(
            InvoiceLine.objects.filter(invoice__ticket=ticket)
            .order_by("invoice__version", "position")
            .values_list("kind", "description", "quantity", "unit_cents", "total_cents", "taxable")
        ),
        "packets": list(
            CloseoutPacket.objects.filter(ticket=ticket).order_by("version").values_list("version", "sha256")
        ),
        "files": stored_files(),
    }


def assert_file_answer(response, content_type: str, disposition: str) -> None:
    """A document as a file: its media type, a name of ours, never sniffed, never cached."""
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == content_type
    assert SAFE_FILENAME.match(response["Content-Disposition"]), response["Content-Disposition"]
    assert response["Content-Disposition"].startswith(disposition + ";")
    assert response["X-Content-Type-Options"] == "nosniff"
    cache = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= cache, response["Cache-Control"]


def draft_invoiced(**kwargs):
    """A verified job with an hour of labor, invoiced by finance: the ticket, INVOICED, with a draft."""
    ticket = ticket_at("VERIFIED", **kwargs)
    LaborEntry.objects.create(ticket=ticket, minutes=60, rate_cents=10000, description="Realign strike")
    invoice_generate(actor=actor_for("finance"), ticket_id=ticket.id)
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def draft():
    return draft_invoiced()


@pytest.fixture
def approved(django_capture_on_commit_callbacks):
    """An approved invoice and the packet version issued with it (its PDF rendered)."""
    ticket = draft_invoiced()
    with django_capture_on_commit_callbacks(execute=True):
        invoice_approve(actor=actor_for("finance"), ticket_id=ticket.id, nte_override_reason="")
    ticket.refresh_from_db()
    assert CloseoutPacket.objects.get(ticket=ticket).pdf_status == CloseoutPacket.PdfStatus.READY
    return ticket


READ_PATHS = (
    "closeout/packet",
    "closeout/packet.pdf",
    "closeout/packet.json",
    "closeout/packet?version=1",
    "invoice",
    "invoice.pdf",
    "invoice.csv",
    "invoice?version=1",
)


# (path, a role allowed to run it, a payload it would accept) for every document command.
COMMANDS = (
    ("closeout/packet/render", "dispatcher", {"reason": "For the landlord"}),
    ("invoice/lines", "finance", {"lines": [LINE]}),
    ("invoice/approve", "finance", {}),
    ("invoice/revise", "finance", {"reason": "Parts were missed"}),
)
INVOICE_COMMANDS = COMMANDS[1:]


# --- the toolset: whose ticket ---------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["account_ids", "site_ids"])
def test_a_scoped_credential_gets_the_ticket_reads_refusal_on_every_document_route(client, approved, scope):
    mine = SiteFactory()  # the credential's own account and site; the job is another account's
    claims = {scope: [str(mine.account_id if scope == "account_ids" else mine.id)]}
    before = footprint(approved)
    # The refusal the ticket itself gives this credential: every document route gives that one.
    baseline = api_get(client, f"{approved.id}", claims=claims)
    assert error_of(baseline) == (403, "FORBIDDEN_SCOPE")
    expected = baseline.json()["error"]
    secrets = (approved.short_ref, Invoice.objects.get(ticket=approved).number, *[s for _, s in before["packets"]])

    answers = [api_get(client, f"{approved.id}/{path}", claims=claims) for path in READ_PATHS]
    # Asked for a file by Accept, or with a version that does not parse: still the scope refusal.
    answers.append(api_get(client, f"{approved.id}/closeout/packet", claims=claims, HTTP_ACCEPT="application/pdf"))
    answers.append(api_get(client, f"{approved.id}/invoice", claims=claims, HTTP_ACCEPT="text/csv"))
    answers.append(api_get(client, f"{approved.id}/closeout/packet?version=-1", claims=claims))
    answers.append(api_get(client, f"{approved.id}/invoice.pdf?version=99", claims=claims))
    for path, role, payload in COMMANDS:
        answers.append(api_post(client, f"{approved.id}/{path}", role, payload, claims=claims))
    for response in answers:
        assert error_of(response) == (403, "FORBIDDEN_SCOPE"), response.request["PATH_INFO"]
        body = response.json()["error"]
        assert (body["message"], body.get("policy_error")) == (expected["message"], expected.get("policy_error"))
        assert not any(secret in response.content.decode() for secret in secrets)
    assert footprint(approved) == before

    # The same claims reach a ticket of their own: the refusal above is the scope, not the claim.
    own = ticket_at("VERIFIED", site=mine)
    assert error_of(api_get(client, f"{own.id}/invoice", claims=claims)) == (404, "INVOICE_NOT_FOUND")


def test_a_missing_malformed_or_foreign_ticket_id_is_ticket_not_found_on_every_route(client, approved):
    invoice = Invoice.objects.get(ticket=approved)
    packet = CloseoutPacket.objects.get(ticket=approved)
    ids = [
        str(uuid.uuid4()),  # no such ticket
        "not-a-ticket",
        approved.id.hex,  # the right ticket, not in the 36-character form
        "{" + str(approved.id) + "}",
        f"urn:uuid:{approved.id}",
        approved.short_ref,
        "1",
        "%00",
        "x" * 300,
        str(invoice.id),  # ids of other records
        str(packet.id),
        str(approved.site_id),
        str(approved.account_id),
    ]
    before = footprint(approved)
    for ticket_id in ids:
        answers = [api_get(client, f"{ticket_id}/{path}") for path in READ_PATHS]
        answers.append(api_get(client, f"{ticket_id}/invoice", HTTP_ACCEPT="application/pdf"))
        answers += [api_post(client, f"{ticket_id}/{path}", role, p) for path, role, p in COMMANDS]
        for response in answers:
            assert error_of(response) == (404, "TICKET_NOT_FOUND"), (ticket_id, response.request["PATH_INFO"])
            # Only a bounded slice of what the caller sent is echoed.
            assert len(response.json()["error"]["message"]) < 100
    assert footprint(approved) == before
    # The canonical id in capitals is the same ticket.
    assert api_get(client, f"{str(approved.id).upper()}/closeout/packet").json()["packet"]["version"] == 1


# --- the toolset: versions, formats, Accept -----------------------------------------------------------


@pytest.mark.parametrize(
    "base, missing",
    [
        ("closeout/packet", "PACKET_NOT_FOUND"),
        ("closeout/packet.pdf", "PACKET_NOT_FOUND"),
        ("closeout/packet.json", "PACKET_NOT_FOUND"),
        ("invoice", "INVOICE_NOT_FOUND"),
        ("invoice.pdf", "INVOICE_NOT_FOUND"),
        ("invoice.csv", "INVOICE_NOT_FOUND"),
    ],
)
def test_the_version_parameter_is_a_small_whole_number_or_a_refusal(client, approved, base, missing):
    path = f"{approved.id}/{base}"
    for bad in ("-1", "1.5", "99999999999", "١", "１", "1e0", "0x1", "%2B1", "1%00", "one", "0000001"):
        response = api_get(client, f"{path}?version={bad}")
        assert error_of(response) == (400, "INVALID_REQUEST"), bad
        assert response.json()["error"]["field"] == "version"
    for absent in ("0", "2", "999999"):
        response = api_get(client, f"{path}?version={absent}")
        assert error_of(response) == (404, missing), absent
        assert response.json()["error"]["version"] == int(absent)
    # Empty is "not given" (the newest); a repeated parameter: the last one counts, as for every
    # single-valued parameter of the toolset (QueryDict.get).
    for fine in ("", "1", "%201%20", "2&version=1"):
        assert api_get(client, f"{path}?version={fine}").status_code == 200, fine
    assert error_of(api_get(client, f"{path}?version=1&version=2")) == (404, missing)


def test_accept_headers_and_file_routes_answer_json_or_a_safe_file(client, approved):
    packet, invoice = f"{approved.id}/closeout/packet", f"{approved.id}/invoice"
    browser = "text/html,application/xhtml+xml,*/*;q=0.8"
    json_asked = [(path, accept) for path in (packet, invoice) for accept in ("*/*", "application/json", browser, "")]
    json_asked.append((packet, "text/csv"))  # the packet has no CSV
    for path, accept in json_asked:
        response = api_get(client, path, HTTP_ACCEPT=accept)
        assert (response.status_code, response["Content-Type"]) == (200, "application/json"), (path, accept)
        assert "Content-Disposition" not in response
    # The packet has no CSV, the invoice no .json route: the toolset's 404 for an unknown route.
    for path in (f"{packet}.csv", f"{packet}.pdf.pdf", f"{packet}.PDF", f"{invoice}.json", f"{invoice}.xlsx"):
        assert error_of(api_get(client, path)) == (404, "NOT_FOUND"), path
    # Files are read with GET only.
    for path in (f"{packet}.pdf", f"{packet}.json", f"{invoice}.pdf", f"{invoice}.csv", invoice, packet):
        refused = api_post(client, path, "finance", {})
        assert error_of(refused) == (405, "METHOD_NOT_ALLOWED"), path
        assert api_get(client, path).status_code == 200
    assert client.head(f"{API}/{packet}.pdf", **bearer("dispatcher")).status_code == 405

    files = [
        (api_get(client, packet, HTTP_ACCEPT="application/pdf"), "application/pdf", "inline"),
        (api_get(client, f"{packet}.pdf"), "application/pdf", "inline"),
        (api_get(client, f"{packet}.pdf?version=1"), "application/pdf", "inline"),
        (api_get(client, f"{packet}.json"), "application/json", "attachment"),
        (api_get(client, invoice, HTTP_ACCEPT="application/pdf"), "application/pdf", "inline"),
        (api_get(client, invoice, HTTP_ACCEPT="text/csv"), "text/csv; charset=utf-8", "attachment"),
        (api_get(client, f"{invoice}.pdf", "finance"), "application/pdf", "inline"),
        (api_get(client, f"{invoice}.csv", "qa"), "text/csv; charset=utf-8", "attachment"),
    ]
    for response, content_type, disposition in files:
        assert_file_answer(response, content_type, disposition)
    # A file asked for before there is one is the toolset's JSON refusal, not an empty file.
    bare = draft_invoiced()
    for asked in (
        api_get(client, f"{bare.id}/closeout/packet", HTTP_ACCEPT="application/pdf"),
        api_get(client, f"{bare.id}/closeout/packet.pdf"),
        api_get(client, f"{bare.id}/closeout/packet.json"),
    ):
        assert error_of(asked) == (404, "PACKET_NOT_FOUND")


def test_an_accept_header_that_refuses_a_file_format_with_q_0_gets_the_json_answer(client, approved):
    """RFC 9110 12.4.2: q=0 means "not acceptable": the file so refused is never the answer."""
    for path, accept in (
        ("closeout/packet", "application/pdf;q=0"),
        ("closeout/packet", "application/json, application/pdf;q=0"),
        ("invoice", "application/pdf; q=0"),
        ("invoice", "text/csv;q=0, application/json"),
    ):
        response = api_get(client, f"{approved.id}/{path}", HTTP_ACCEPT=accept)
        assert (response.status_code, response["Content-Type"]) == (200, "application/json"), accept


# --- the toolset: roles and states ---------------------------------------------------------------------


def test_the_field_the_customer_and_agents_may_not_read_or_command_documents(client, draft):
    before = footprint(draft)
    for role in ("technician", "customer", "agent"):
        for path in READ_PATHS:
            assert error_of(api_get(client, f"{draft.id}/{path}", role)) == (403, "TOOL_ROLE_FORBIDDEN"), (role, path)
        for path, _role, payload in COMMANDS:
            refused = api_post(client, f"{draft.id}/{path}", role, payload)
            assert error_of(refused) == (403, "TOOL_ROLE_FORBIDDEN"), (role, path)
    # The office's other roles read the documents, but only finance edits, approves and corrects.
    for role in ("dispatcher", "qa", "approver"):
        for path, _role, payload in INVOICE_COMMANDS:
            refused = api_post(client, f"{draft.id}/{path}", role, payload)
            assert error_of(refused) == (403, "TOOL_ROLE_FORBIDDEN"), (role, path)
            assert refused.json()["error"]["allowed_roles"] == ["finance"]
    assert footprint(draft) == before


def test_no_role_issues_a_packet_or_touches_an_invoice_while_the_work_is_in_progress(client):
    ticket = ticket_at("IN_PROGRESS")
    before = footprint(ticket)
    for role in ("finance", "dispatcher", "qa", "approver"):
        refused = api_post(client, f"{ticket.id}/closeout/packet/render", role, {"reason": "early"})
        assert error_of(refused) == (409, "INVALID_STATE_TRANSITION"), role
    for path, role, payload in INVOICE_COMMANDS:
        assert error_of(api_post(client, f"{ticket.id}/{path}", role, payload)) == (409, "INVALID_STATE_TRANSITION")
    # The back office's "Issue packet" button, posted by finance anyway: refused with the same code.
    role_groups_sync()
    finance = logged_in(Client(), "finance")
    response = finance.post(
        reverse("admin:tickets_ticket_transition", args=[ticket.pk, "packet-render"]),
        {"expected_version": ticket.version, "reason": "early"},
        follow=True,
    )
    assert any("INVALID_STATE_TRANSITION" in m.message for m in response.context["messages"])
    assert footprint(ticket) == before


# --- the toolset: what a command is sent ------------------------------------------------------------------


def lines_with(**fields) -> dict:
    return {"lines": [{**LINE, **fields}]}


HOSTILE_PAYLOADS = [
    ("invoice/lines", {"lines": {"0": LINE}}, "lines"),
    ("invoice/lines", {"lines": [[LINE]]}, "lines.0"),
    ("invoice/lines", {"lines": [[[[[[[[[[[[[[[[[[LINE]]]]]]]]]]]]]]]]]]}, None),
    ("invoice/lines", {"lines": []}, "lines"),
    ("invoice/lines", {"lines": None}, "lines"),
    ("invoice/lines", {"lines": "everything"}, "lines"),
    ("invoice/lines", {"lines": [LINE], "total_cents": 1}, "total_cents"),
    ("invoice/lines", {"lines": [LINE] * 201}, "lines"),
    ("invoice/lines", lines_with(total_cents=1), None),
    ("invoice/lines", lines_with(description=None), "lines.0.description"),
    ("invoice/lines", lines_with(description=""), "lines.0.description"),
    ("invoice/lines", lines_with(description="   "), "description"),
    ("invoice/lines", lines_with(description="x" * 301), "lines.0.description"),
    ("invoice/lines", lines_with(description="x" * 20_001), None),
    ("invoice/lines", lines_with(description="Trip\x00charge"), None),
    ("invoice/lines", lines_with(kind="fee"), "lines.0.kind"),
    ("invoice/lines", lines_with(kind=None), "lines.0.kind"),
    ("invoice/lines", lines_with(item_code=None), "lines.0.item_code"),
    ("invoice/lines", lines_with(item_code="x" * 65), "lines.0.item_code"),
    ("invoice/lines", lines_with(quantity=None), "lines.0.quantity"),
    ("invoice/lines", lines_with(quantity=True), "lines.0.quantity"),
    ("invoice/lines", lines_with(quantity="NaN"), "lines"),
    ("invoice/lines", lines_with(quantity="Infinity"), "lines"),
    ("invoice/lines", lines_with(quantity="one"), "lines"),
    ("invoice/lines", lines_with(quantity="0x10"), "lines"),
    ("invoice/lines", lines_with(quantity=0), "lines"),
    ("invoice/lines", lines_with(quantity=0.004), "lines"),
    ("invoice/lines", lines_with(quantity=-1), "lines"),
    ("invoice/lines", lines_with(quantity=10000.01), "lines"),
    ("invoice/lines", lines_with(quantity=1e308), "lines"),
    ("invoice/lines", lines_with(unit_cents=None), "lines.0.unit_cents"),
    ("invoice/lines", lines_with(unit_cents="4500"), "lines.0.unit_cents"),
    ("invoice/lines", lines_with(unit_cents=45.5), "lines.0.unit_cents"),
    ("invoice/lines", lines_with(unit_cents=-1), "lines.0.unit_cents"),
    ("invoice/lines", lines_with(unit_cents=True), "lines.0.unit_cents"),
    ("invoice/lines", lines_with(unit_cents=10**11 + 1), "lines"),
    ("invoice/lines", lines_with(unit_cents=2**70), "lines"),
    ("invoice/lines", lines_with(taxable="true"), "lines.0.taxable"),
    ("invoice/lines", lines_with(taxable=None), "lines.0.taxable"),
    ("invoice/lines", {"invoice_id": None, "lines": [LINE]}, "invoice_id"),
    ("invoice/lines", {"invoice_id": "not-a-uuid", "lines": [LINE]}, "invoice_id"),
    ("invoice/lines", {"invoice_id": uuid.UUID(int=1).hex, "lines": [LINE]}, "invoice_id"),
    ("invoice/lines", {}, "lines"),
    ("invoice/approve", {"nte_override_reason": None}, "nte_override_reason"),
    ("invoice/approve", {"nte_override_reason": "x" * 501}, "nte_override_reason"),
    ("invoice/approve", {"invoice_id": 7}, "invoice_id"),
    ("invoice/approve", {"approved": True}, "approved"),
    ("invoice/approve", {"status": "APPROVED", "total_cents": 0}, None),
    ("invoice/revise", {}, "reason"),
    ("invoice/revise", {"reason": None}, "reason"),
    ("invoice/revise", {"reason": ""}, "reason"),
    ("invoice/revise", {"reason": ["x"]}, "reason"),
    ("invoice/revise", {"reason": "x" * 501}, "reason"),
    ("invoice/revise", {"reason": "x", "lines": [LINE]}, "lines"),
    ("closeout/packet/render", {"reason": None}, "reason"),
    ("closeout/packet/render", {"reason": 5}, "reason"),
    ("closeout/packet/render", {"reason": "x" * 251}, "reason"),
    ("closeout/packet/render", {"reason": "x", "version": 9}, "version"),
]


def test_commands_refuse_wrong_types_and_shapes_and_write_nothing(client, draft):
    before = footprint(draft)
    for path, payload, field in HOSTILE_PAYLOADS:
        role = "dispatcher" if path.startswith("closeout") else "finance"
        refused = api_post(client, f"{draft.id}/{path}", role, payload)
        assert error_of(refused) == (400, "INVALID_REQUEST"), (path, str(payload)[:120], refused.content[:300])
        if field is not None:
            assert refused.json()["error"].get("field") == field, (path, str(payload)[:120], refused.json())
    assert footprint(draft) == before


def test_bodies_that_are_not_a_json_object_are_refused_before_anything_runs(client, draft):
    url = f"{API}/{draft.id}/invoice/approve"
    before = footprint(draft)

    def send(body: bytes, content_type: str = "application/json", **headers):
        headers.setdefault("HTTP_IDEMPOTENCY_KEY", str(uuid.uuid4()))
        return client.post(url, data=body, content_type=content_type, **headers, **bearer("finance"))

    for body in (b"[]", b"null", b'"approve"', b"42", b"true"):
        assert error_of(send(body)) == (400, "INVALID_REQUEST"), body
    for body in (b"{", b"{'a': 1}", b'{"a": NaN}', b'{"a": Infinity}', b"\xff\xfe{}", b'{"r": "\\ud800"}'):
        assert error_of(send(body)) == (400, "INVALID_JSON"), body
    # What a browser sends across origins without asking first never reaches the command.
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-patch+json",
    ):
        assert error_of(send(b"{}", content_type)) == (415, "UNSUPPORTED_MEDIA_TYPE"), content_type
    # Oversized: refused from the Content-Length, before the body is read.
    big = b'{"lines": [' + b'{"kind":"FEE","description":"x","unit_cents":1},' * 25_000 + b"{}]}"
    assert len(big) > 1024 * 1024
    too_big = client.post(
        f"{API}/{draft.id}/invoice/lines",
        data=big,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **bearer("finance"),
    )
    assert error_of(too_big) == (413, "PAYLOAD_TOO_LARGE")
    # Keys: none, not a UUID, a UUID in another spelling.
    assert error_of(send(b"{}", HTTP_IDEMPOTENCY_KEY="")) == (400, "MISSING_IDEMPOTENCY_KEY")
    for key in ("approve-once", "0" * 36, uuid.uuid4().hex, "{" + str(uuid.uuid4()) + "}"):
        assert error_of(send(b"{}", HTTP_IDEMPOTENCY_KEY=key)) == (400, "INVALID_IDEMPOTENCY_KEY"), key
    # A tool named for another endpoint.
    assert error_of(send(b"{}", HTTP_X_TOOL_NAME="billing.revise_invoice")) == (403, "TOOL_NOT_ALLOWED")
    # Reads are GET, commands POST.
    for path in ("invoice/lines", "invoice/approve", "invoice/revise", "closeout/packet/render"):
        assert error_of(api_get(client, f"{draft.id}/{path}", "finance")) == (405, "METHOD_NOT_ALLOWED"), path
    assert footprint(draft) == before


def test_a_reused_idempotency_key_with_another_body_is_a_conflict_and_changes_nothing(client, draft):
    key = str(uuid.uuid4())
    first = api_post(client, f"{draft.id}/invoice/lines", "finance", {"lines": [LINE]}, key=key)
    assert first.status_code == 200, first.content
    after_first = footprint(draft)

    other = {"lines": [{**LINE, "description": "Something else", "unit_cents": 1}]}
    conflict = api_post(client, f"{draft.id}/invoice/lines", "finance", other, key=key)
    assert error_of(conflict) == (409, "IDEMPOTENCY_PAYLOAD_MISMATCH")
    assert conflict.json()["error"]["idempotency_key"] == key
    # Extra fields or a changed type are another body too, never a replay of the first.
    assert error_of(api_post(client, f"{draft.id}/invoice/lines", "finance", lines_with(quantity="1"), key=key)) == (
        409,
        "IDEMPOTENCY_PAYLOAD_MISMATCH",
    )
    replay = api_post(client, f"{draft.id}/invoice/lines", "finance", {"lines": [LINE]}, key=key)
    assert (replay.status_code, replay["Idempotency-Replayed"]) == (200, "true")
    assert replay.json() == first.json()
    assert footprint(draft) == after_first
    assert AuditEvent.objects.filter(ticket=draft, tool_name="billing.edit_invoice").count() == 1

    # Approve: the same key with an override reason added is another request, refused.
    approve_key = str(uuid.uuid4())
    assert api_post(client, f"{draft.id}/invoice/approve", "finance", {}, key=approve_key).status_code == 200
    approved_once = footprint(draft)
    mismatch = api_post(
        client, f"{draft.id}/invoice/approve", "finance", {"nte_override_reason": "Agreed by phone"}, key=approve_key
    )
    assert error_of(mismatch) == (409, "IDEMPOTENCY_PAYLOAD_MISMATCH")
    assert footprint(draft) == approved_once


def test_replaying_a_packet_render_leaves_no_second_file_in_storage(
    client, approved, django_capture_on_commit_callbacks
):
    """A retry is what Idempotency-Key is for: it is answered from the record before anything runs,
    so a rendered packet's files are written once, not once per retry."""
    key = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        first = api_post(client, f"{approved.id}/closeout/packet/render", "qa", {"reason": "landlord"}, key=key)
    assert first.status_code == 200, first.content
    after_first = footprint(approved)

    with django_capture_on_commit_callbacks(execute=True):
        replay = api_post(client, f"{approved.id}/closeout/packet/render", "qa", {"reason": "landlord"}, key=key)
        mismatch = api_post(client, f"{approved.id}/closeout/packet/render", "qa", {"reason": "tenant"}, key=key)
    assert (replay.status_code, replay["Idempotency-Replayed"]) == (200, "true")
    assert replay.json()["closeout_packet"] == first.json()["closeout_packet"]
    assert error_of(mismatch) == (409, "IDEMPOTENCY_PAYLOAD_MISMATCH")
    assert [v for v, _ in footprint(approved)["packets"]] == [1, 2]
    assert footprint(approved) == after_first


def test_an_invoice_id_in_capitals_names_the_same_invoice(client, draft):
    """The schema's uuid format accepts any case (ticket ids in the path are canonicalised too): the
    current invoice's own id in capitals names it."""
    invoice = Invoice.objects.get(ticket=draft)
    shouted = str(invoice.id).upper()
    edited = api_post(client, f"{draft.id}/invoice/lines", "finance", {"invoice_id": shouted, "lines": [LINE]})
    assert edited.status_code == 200, edited.content
    approved = api_post(client, f"{draft.id}/invoice/approve", "finance", {"invoice_id": shouted})
    assert (approved.status_code, approved.json()["invoice"]["status"]) == (200, "APPROVED")
    revised = api_post(client, f"{draft.id}/invoice/revise", "finance", {"invoice_id": shouted, "reason": "typo"})
    assert (revised.status_code, revised.json()["invoice"]["version"]) == (200, 2)


@pytest.mark.parametrize(
    "description",
    [
        "Adjust\x07closer",  # BEL
        "\x1b[2JAdjust closer",  # an ANSI escape
        "Adjust closer\x7f",  # DEL
        "Adjust\x85closer",  # C1 (NEL)
        "Adjust \u202eresolc",  # RIGHT-TO-LEFT OVERRIDE: reverses what the reader sees
        "Adjust \u202aclos\u202cer",  # LEFT-TO-RIGHT EMBEDDING ... POP
    ],
)
def test_control_characters_in_a_line_description_are_refused(client, draft, description):
    """Finance's line text goes into the accounting CSV and the JSON as typed: control characters
    and invisible formatting, which no honest description carries, are refused like a NUL."""
    before = footprint(draft)
    refused = api_post(client, f"{draft.id}/invoice/lines", "finance", lines_with(description=description))
    assert error_of(refused) == (400, "INVALID_REQUEST"), refused.content[:300]
    assert refused.json()["error"]["field"] in ("lines", "description", "lines.0.description")
    assert footprint(draft) == before


def test_formula_like_descriptions_are_stored_as_typed_and_never_a_formula_in_the_csv(client, draft):
    lines = [
        {**LINE, "description": text, "item_code": code}
        for text, code in (('=HYPERLINK("http://x")', "+1"), ("\t@SUM(A1)", "-2"), ("  -1+1", "@x"))
    ]
    assert api_post(client, f"{draft.id}/invoice/lines", "finance", {"lines": lines}).status_code == 200
    stored = list(InvoiceLine.objects.filter(invoice__ticket=draft).order_by("position").values_list("description"))
    assert stored == [('=HYPERLINK("http://x")',), ("@SUM(A1)",), ("-1+1",)]
    rows = list(csv.DictReader(io.StringIO(api_get(client, f"{draft.id}/invoice.csv", "finance").content.decode())))
    assert [(row["item"], row["description"]) for row in rows] == [
        ("'+1", '\'=HYPERLINK("http://x")'),
        ("'-2", "'@SUM(A1)"),
        ("'@x", "'-1+1"),
    ]


# --- the customer's link -----------------------------------------------------------------------------


def test_a_status_link_opens_only_its_own_tickets_files_and_only_while_it_is_valid(client, approved):
    other = draft_invoiced()
    token, theirs = status_token(approved), status_token(other)
    for name in ("invoice.pdf", "packet.pdf"):
        response = client.get(f"/s/{token}/{name}")
        assert_file_answer(response, "application/pdf", "inline")
        assert response["Referrer-Policy"] == "no-referrer"

    days = settings.DISPATCH_STATUS_LINK_MAX_AGE_DAYS
    packed, _stamp, _signature = token.split(":")
    their_packed = theirs.split(":")[0]
    refused = [
        theirs,  # the other ticket's valid link: its draft is not the customer's yet
        f"{their_packed}:{token.split(':', 1)[1]}",  # the other ticket's id under this link's signature
        f"{packed}:{theirs.split(':', 1)[1]}",  # this id under the other's signature
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token.upper(),
        packed,
        "x" * 201,
        "..%2F..%2Fadmin",
        status_token(approved, signed_at=timezone.now() - timedelta(days=days, minutes=1)),
    ]
    for bad in refused:
        if bad != theirs:
            assert client.get(f"/s/{bad}/").status_code == 404, bad
        for name in ("invoice.pdf", "packet.pdf"):
            response = client.get(f"/s/{bad}/{name}")
            assert response.status_code == 404, (bad, name)
            assert not response.content.startswith(b"%PDF")
    fresh_enough = status_token(approved, signed_at=timezone.now() - timedelta(days=days - 1))
    assert client.get(f"/s/{fresh_enough}/invoice.pdf").status_code == 200

    # Downloads are GET only.
    for name in ("invoice.pdf", "packet.pdf"):
        for method in ("head", "post", "put", "delete"):
            response = getattr(client, method)(f"/s/{token}/{name}")
            assert (response.status_code, response["Allow"]) == (405, "GET"), (method, name)


def test_the_verification_page_recognises_only_an_issued_hash_and_checks_files_safely(approved):
    packet = CloseoutPacket.objects.get(ticket=approved)
    before = footprint(approved)
    client = Client(enforce_csrf_checks=True)

    shouted = client.get(f"/verify/{packet.sha256.upper()}/")
    assert (shouted.status_code, shouted.context["packet"]) == (200, packet)
    for bad in (
        packet.sha256[:63],
        packet.sha256 + "0",
        packet.sha256[:63] + "g",
        "..%5C..%5Cetc%5Cpasswd",
        "%2e%2e",
        "....",
        "%3Cscript%3Ealert(1)%3C%5Cscript%3E",
        "a" * 5000,
    ):
        response = client.get(f"/verify/{bad}/")
        assert response.status_code == 404, bad
        assert response.context["packet"] is None
        assert b"<script>alert" not in response.content
        assert len(response.context["sha256"]) <= 64
    # A slash, encoded or not, is no part of a hash: no route at all.
    assert client.get("/verify/..%2F..%2Fetc%2Fpasswd/").status_code == 404

    url = f"/verify/{packet.sha256}/"
    forged = client.post(url, {"file": SimpleUploadedFile("p.pdf", b"%PDF-1.7")})
    assert forged.status_code == 403  # no CSRF token
    page = client.get(url)
    token = page.cookies["csrftoken"].value
    no_file = client.post(url, {"csrfmiddlewaretoken": token})
    assert (no_file.status_code, no_file.context["checked"]) == (
        200,
        {"error": "Choose the packet's PDF or JSON file to check."},
    )
    empty = client.post(url, {"csrfmiddlewaretoken": token, "file": SimpleUploadedFile("empty.pdf", b"")})
    assert empty.status_code == 200
    assert empty.context["checked"]["matches"] is False
    assert empty.context["checked"]["sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    long_name = client.post(url, {"csrfmiddlewaretoken": token, "file": SimpleUploadedFile("n" * 300 + ".pdf", b"x")})
    assert len(long_name.context["checked"]["name"]) <= 120
    unknown = client.post(
        f"/verify/{'0' * 64}/", {"csrfmiddlewaretoken": token, "file": SimpleUploadedFile("p.pdf", b"x")}
    )
    assert (unknown.status_code, unknown.context["checked"]) == (404, None)
    assert Client().put(url).status_code == 405
    assert footprint(approved) == before


# --- the back office ----------------------------------------------------------------------------------


def admin_urls(ticket) -> dict[str, list[str]]:
    packet = CloseoutPacket.objects.get(ticket=ticket)
    invoice = Invoice.objects.get(ticket=ticket)
    return {
        "downloads": [
            reverse("admin:closeout_closeoutpacket_pdf", args=[packet.pk]),
            reverse("admin:closeout_closeoutpacket_json", args=[packet.pk]),
            reverse("admin:closeout_invoice_pdf", args=[invoice.pk]),
            reverse("admin:closeout_invoice_csv", args=[invoice.pk]),
            reverse("admin:closeout_invoice_json", args=[invoice.pk]),
        ],
        "forms": [
            reverse(f"admin:closeout_invoice_{name}", args=[invoice.pk]) for name in ("lines", "approve", "revise")
        ],
        "pages": [
            reverse("admin:closeout_invoice_change", args=[invoice.pk]),
            reverse("admin:tickets_ticket_transition", args=[ticket.pk, "packet-render"]),
        ],
    }


def test_admin_downloads_and_forms_are_for_signed_in_office_users_only(approved):
    role_groups_sync()
    urls = admin_urls(approved)
    before = footprint(approved)
    outsiders = [Client(), logged_in(Client(), "technician"), logged_in(Client(), "technician", is_staff=True)]
    for outsider in outsiders:
        for url in [*urls["downloads"], *urls["forms"], *urls["pages"]]:
            for response in (outsider.get(url), outsider.post(url, {"reason": "x", "expected_version": 1})):
                assert response.status_code == 302, url
                assert response["Location"].startswith("/admin/login/?next=")
    assert footprint(approved) == before

    finance = logged_in(Client(), "finance")
    kinds = [
        ("application/pdf", ".pdf"),
        ("application/json", ".json"),
        ("application/pdf", ".pdf"),
        ("text/csv; charset=utf-8", ".csv"),
        ("application/json", ".json"),
    ]
    for url, (content_type, suffix) in zip(urls["downloads"], kinds, strict=True):
        response = finance.get(url)
        assert_file_answer(response, content_type, "attachment")
        assert response["Content-Disposition"].endswith(f'{suffix}"')
    # Hostile object ids find nothing.
    packet_pdf = urls["downloads"][0]
    packet_id = packet_pdf.split("/")[-3]
    for bad in ("not-an-id", "..%2F..%2F", "%00", "x" * 400, str(uuid.uuid4()), "1 OR 1=1"):
        assert finance.get(packet_pdf.replace(packet_id, bad)).status_code == 404, bad
    # The form endpoints take POST only (the review page's own forms post there).
    for url in urls["forms"]:
        assert finance.get(url).status_code == 405
    assert footprint(approved) == before


def test_office_roles_other_than_finance_posting_the_review_forms_change_nothing(draft):
    role_groups_sync()
    invoice = Invoice.objects.get(ticket=draft)
    line = {
        "expected_version": draft.version,
        "lines-TOTAL_FORMS": 1,
        "lines-INITIAL_FORMS": 0,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 200,
        "lines-0-kind": "FEE",
        "lines-0-description": "Trip",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "45",
    }
    before = footprint(draft)
    for role in ("dispatcher", "qa", "approver"):
        user = logged_in(Client(), role)
        lines = user.post(reverse("admin:closeout_invoice_lines", args=[invoice.pk]), line)
        approve = user.post(
            reverse("admin:closeout_invoice_approve", args=[invoice.pk]), {"expected_version": draft.version}
        )
        assert (lines.status_code, approve.status_code) == (403, 403), role
        for response in (lines, approve):
            assert any("TOOL_ROLE_FORBIDDEN" in m.message for m in response.context["messages"]), role
    assert footprint(draft) == before

    # Finance itself: only with the page's CSRF token, and never more lines than the form allows.
    finance = logged_in(Client(enforce_csrf_checks=True), "finance")
    for url, data in (
        (reverse("admin:closeout_invoice_lines", args=[invoice.pk]), line),
        (reverse("admin:closeout_invoice_approve", args=[invoice.pk]), {"expected_version": draft.version}),
    ):
        assert finance.post(url, data).status_code == 403
    finance = logged_in(Client(), "finance")
    url = reverse("admin:closeout_invoice_lines", args=[invoice.pk])
    for total in ("100000", "201", "-1", "abc", "0"):
        assert finance.post(url, {**line, "lines-TOTAL_FORMS": total}).status_code == 400, total
    for field, value in (("quantity", "NaN"), ("quantity", "0"), ("unit_price", "-1"), ("kind", "REFUND")):
        assert finance.post(url, {**line, f"lines-0-{field}": value}).status_code == 400, (field, value)
    assert footprint(draft) == before


def test_a_dispatcher_may_not_correct_an_approved_invoice_from_its_page(approved):
    role_groups_sync()
    invoice = Invoice.objects.get(ticket=approved)
    before = footprint(approved)
    dispatcher = logged_in(Client(), "dispatcher")
    response = dispatcher.post(
        reverse("admin:closeout_invoice_revise", args=[invoice.pk]),
        {"reason": "Wrong rate", "expected_version": approved.version},
    )
    assert response.status_code == 403
    assert any("TOOL_ROLE_FORBIDDEN" in m.message for m in response.context["messages"])
    # An approved invoice offers no edit or approve, whoever posts them.
    finance = logged_in(Client(), "finance")
    again = finance.post(
        reverse("admin:closeout_invoice_approve", args=[invoice.pk]), {"expected_version": approved.version}
    )
    assert again.status_code == 409
    assert any("INVOICE_NOT_DRAFT" in m.message for m in again.context["messages"])
    assert footprint(approved) == before
