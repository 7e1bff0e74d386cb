"""What the canonical emergency costs in SQL: no tool's query count grows with the ticket's or
the database's history, and the core tools stay inside the budget of 12 queries per call.

Queries are counted as the statements a request sends, without BEGIN/SAVEPOINT/RELEASE/COMMIT,
including the work it hands over after commit (queueing a delivery or a packet compilation on the
ORM broker), but not what the worker then does.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import defaultdict

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.api.services import api_token_create
from dispatch.tickets.models import AuditEvent, IdempotencyRecord, Ticket
from tests.factories import SiteFactory, TechnicianFactory

pytestmark = pytest.mark.django_db

QUERY_BUDGET = 12
# The invoice also reads the company's billing rules, the site's tax rate, the job type's trip
# charge and the approvals it cites: one query each, whatever the job.
# An emergency dispatch also tells the customer who is coming: the notice ledger, the message
# template and the outbox row, once each.
BUDGETS = {"billing.generate_invoice": 18, "assignment.dispatch": 15}
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
CHECKLIST_DONE = {
    "work_performed": True,
    "parts_used_or_needed": True,
    "resolution_status": True,
    "onsite_photos_after": True,
    "billing_authorization": True,
}
EVIDENCE = (
    ("PHOTO", "photo_before_security_risk"),
    ("PHOTO", "photo_after_temporary_or_permanent_securement"),
    ("NOTE", "note_risk_mitigation_and_customer_handoff"),
    ("SIGNATURE", "signature_or_no_signature_reason"),
)


def data_queries(captured) -> int:
    return sum(1 for q in captured if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL))


class Census:
    """Drives the toolset through Django's test client with bearer tokens, counting queries per tool."""

    def __init__(self, on_commit=None):
        self.client = Client()
        self.counts: dict[str, list[int]] = defaultdict(list)
        self.on_commit = on_commit or contextlib.nullcontext

    def call(self, tool, method, path, token, body=None, expect=200):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        with CaptureQueriesContext(connection) as queries, self.on_commit():
            if method == "POST":
                response = self.client.post(
                    "/api/v1" + path,
                    data=json.dumps(body or {}),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                    **headers,
                )
            else:
                response = self.client.get("/api/v1" + path, **headers)
        assert response.status_code == expect, (tool, response.status_code, response.content[:400])
        self.counts[tool].append(data_queries(queries.captured_queries))
        return response.json()


@pytest.fixture
def tokens():
    return {role: api_token_create(name=f"budget-{role}", role=role)[1] for role in ("dispatcher", "qa", "finance")}


def technician_token(skills=("CANNOT_SECURE_ENTRY",)):
    technician = TechnicianFactory(skills=list(skills), region_codes=["EAST_BAY"])
    return str(technician.id), api_token_create(
        name=f"budget-{technician.id}", role="technician", user=technician.user
    )[1]


def emergency_chain(census: Census, tokens: dict, site) -> str:
    tech_id, tech = technician_token()
    ticket = census.call(
        "ticket.create",
        "POST",
        "/tickets",
        tokens["dispatcher"],
        {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Door cannot be locked"},
        201,
    )
    path = f"/tickets/{ticket['id']}"
    census.call(
        "ticket.triage",
        "POST",
        path + "/triage",
        tokens["dispatcher"],
        {"priority": "EMERGENCY", "incident_type": "CANNOT_SECURE_ENTRY"},
    )
    census.call(
        "assignment.dispatch",
        "POST",
        path + "/assignment/dispatch",
        tokens["dispatcher"],
        {
            "tech_id": tech_id,
            "dispatch_mode": "EMERGENCY_BYPASS",
            "dispatch_rationale": "Unsecured store.",
            "dispatch_confirmation": True,
        },
    )
    census.call("tech.check_in", "POST", path + "/tech/check-in", tech, {"timestamp": timezone.now().isoformat()})
    census.call("tech.complete", "POST", path + "/tech/complete", tech, {"checklist_status": CHECKLIST_DONE}, 409)
    for kind, key in EVIDENCE:
        census.call(
            "closeout.add_evidence",
            "POST",
            path + "/evidence",
            tech,
            {"kind": kind, "uri": f"s3://evidence/{ticket['id']}/{key}", "evidence_key": key},
            201,
        )
    census.call("tech.complete", "POST", path + "/tech/complete", tech, {"checklist_status": CHECKLIST_DONE})
    census.call(
        "qa.verify",
        "POST",
        path + "/qa/verify",
        tokens["qa"],
        {"timestamp": timezone.now().isoformat(), "result": "PASS"},
    )
    census.call("billing.generate_invoice", "POST", path + "/billing/generate-invoice", tokens["finance"], {})
    census.call("ticket.close", "POST", path + "/close", tokens["dispatcher"], {})
    census.call("ticket.timeline", "GET", path + "/timeline", tokens["dispatcher"])
    census.call("ticket.get", "GET", path, tokens["dispatcher"])
    census.call("dispatcher.cockpit", "GET", "/ux/dispatcher/cockpit", tokens["dispatcher"])
    return ticket["id"]


def test_no_tool_of_the_chain_costs_more_as_history_grows(tokens):
    site = SiteFactory(service_region="EAST_BAY")
    first = Census()
    emergency_chain(first, tokens, site)
    # Warm-up effects (a token's first use stamps it) are over; now grow the history and compare.
    baseline = Census()
    emergency_chain(baseline, tokens, site)
    for _ in range(3):
        emergency_chain(Census(), tokens, SiteFactory(account=site.account, service_region="EAST_BAY"))
    later = Census()
    emergency_chain(later, tokens, site)
    assert dict(later.counts) == dict(baseline.counts)


MUTATING = [
    "ticket.create",
    "ticket.triage",
    "assignment.dispatch",
    "tech.check_in",
    "tech.complete",
    "closeout.add_evidence",
    "qa.verify",
    "billing.generate_invoice",
    "ticket.close",
]


@pytest.fixture
def queued(monkeypatch, django_capture_on_commit_callbacks):
    """After-commit work runs as in production: handed to the ORM broker, not run inline."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.mark.parametrize("tool", [*MUTATING, "ticket.get", "ticket.timeline", "dispatcher.cockpit"])
def test_every_tool_of_the_chain_stays_within_the_query_budget(tokens, queued, tool):
    site = SiteFactory(service_region="EAST_BAY")
    emergency_chain(Census(queued), tokens, site)
    census = Census(queued)
    emergency_chain(census, tokens, site)
    assert max(census.counts[tool]) <= BUDGETS.get(tool, QUERY_BUDGET), census.counts[tool]


def test_the_census_counts_the_hand_over_to_the_worker(tokens, queued):
    """The close queues its packet's compilation on the broker; that insert is part of the close's cost."""
    from django_q.models import OrmQ

    site = SiteFactory(service_region="EAST_BAY")
    ticket_id = emergency_chain(Census(queued), tokens, site)
    queued_tasks = [(row.task["func"], tuple(row.task["args"])) for row in OrmQ.objects.all()]
    assert ("dispatch.closeout.tasks.closeout_packet_build", (ticket_id,)) in queued_tasks


@pytest.mark.django_db(transaction=True)
def test_a_refused_command_leaves_nothing_and_the_next_one_works(tokens):
    site = SiteFactory(service_region="EAST_BAY")
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens['dispatcher']}"}
    body = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Door cannot be locked"}
    ticket_id = client.post(
        "/api/v1/tickets",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **auth,
    ).json()["id"]
    events_before = AuditEvent.objects.filter(ticket_id=ticket_id).count()

    # Refused inside the executor, after the ticket row was locked: the whole block rolls back.
    refused = client.post(
        f"/api/v1/tickets/{ticket_id}/close",
        data=json.dumps({}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **auth,
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "INVALID_STATE_TRANSITION"
    assert AuditEvent.objects.filter(ticket_id=ticket_id).count() == events_before
    assert not IdempotencyRecord.objects.filter(endpoint__endswith="/close").exists()
    assert Ticket.objects.get(pk=ticket_id).version == 1

    triaged = client.post(
        f"/api/v1/tickets/{ticket_id}/triage",
        data=json.dumps({"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **auth,
    )
    assert triaged.status_code == 200 and triaged.json()["state"] == "TRIAGED"
