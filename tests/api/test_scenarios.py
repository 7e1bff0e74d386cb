"""Whole jobs driven over real HTTP against a live server, the way an agent runtime drives them.

Each actor acts with its own identity (development headers): the dispatcher and the agent
create and triage, the technician checks in and completes on their own job, QA verifies,
finance invoices. Afterwards the timeline must hold one event per successful command, in
order, and the state transition rows must match the path the ticket took.
"""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
import requests
from django.utils import timezone

from dispatch.closeout.models import CloseoutPacket, IncidentTemplate
from dispatch.closeout.seed_templates import seed_templates
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from tests.factories import SiteFactory, TechnicianFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHECKLIST_DONE = {
    "work_performed": True,
    "parts_used_or_needed": True,
    "resolution_status": True,
    "onsite_photos_after": True,
    "billing_authorization": True,
}


class Caller:
    """One actor talking to /api/v1 with its own identity and a fresh Idempotency-Key per command."""

    def __init__(self, base_url: str, actor_id: str, role: str, actor_type: str | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update({"X-Actor-Id": actor_id, "X-Actor-Role": role})
        if actor_type:
            self.session.headers["X-Actor-Type"] = actor_type

    def post(self, path: str, body: dict, *, key: str | None = None) -> requests.Response:
        return self.session.post(
            self.base_url + path, json=body, headers={"Idempotency-Key": key or str(uuid.uuid4())}, timeout=30
        )

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30)


def ok(response: requests.Response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def refused(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["policy_error"]["code"] == code
    return error


def ticket_of(body: dict) -> dict:
    """Tools answer with the ticket, or with `{"ticket": ..., ...}` when they say more."""
    return body["ticket"] if "ticket" in body and isinstance(body["ticket"], dict) else body


@pytest.fixture
def world(live_server, settings):
    """A site in the East Bay, a technician who can secure doors there, and the seed templates."""
    settings.DISPATCH_DEV_AUTH = True
    # A transactional test starts from an emptied database: put back the seeded templates.
    for template in seed_templates():
        IncidentTemplate.objects.get_or_create(incident_type=template["incident_type"], defaults=template)
    site = SiteFactory(service_region="EAST_BAY", access_code="4821")
    technician = TechnicianFactory(
        skills=["CANNOT_SECURE_ENTRY", "DOOR_WONT_LATCH"], region_codes=["EAST_BAY"], user__username="dana.tech"
    )
    base = live_server.url + "/api/v1"
    callers = {
        "dispatcher": Caller(base, "dispatcher-maria", "dispatcher"),
        "agent": Caller(base, "agent-openclaw", "agent", "AGENT"),
        "tech": Caller(base, technician.user.username, "technician"),
        "qa": Caller(base, "qa-lee", "qa"),
        "finance": Caller(base, "finance-ana", "finance"),
    }
    yield {"site": site, "technician": technician, **callers}
    # Hang up while this test's database is still in place, so that the server's request threads
    # finish now rather than when a later test has replaced the connection they share.
    for caller in callers.values():
        caller.session.close()


def add_four_evidence_items(tech: Caller, ticket_id: str, keys: list[str]) -> list[str]:
    kinds = {"photo": "PHOTO", "note": "NOTE", "signature": "SIGNATURE"}
    ids = []
    for key in keys:
        kind = kinds[key.split("_")[0]]
        body = {"kind": kind, "uri": f"s3://dispatch-evidence/{ticket_id}/{key}.bin", "evidence_key": key}
        if kind == "NOTE":
            body["metadata"] = {"text": "Temporary lock fitted; owner shown how to use it."}
        evidence = ok(tech.post(f"/tickets/{ticket_id}/evidence", body), 201)
        assert evidence["id"]
        ids.append(evidence["id"])
    return ids


def transitions_of(ticket_id: str) -> list[tuple[str, str]]:
    return list(
        StateTransition.objects.filter(ticket_id=ticket_id).order_by("seq").values_list("from_state", "to_state")
    )


def test_canonical_emergency_from_first_call_to_closed(world):
    dispatcher, tech, qa, finance = world["dispatcher"], world["tech"], world["qa"], world["finance"]
    site, technician = world["site"], world["technician"]
    done: list[str] = []  # the tools that succeeded, in order

    created = ok(
        dispatcher.post(
            "/tickets",
            {
                "account_id": str(site.account_id),
                "site_id": str(site.id),
                "summary": "Storefront door cannot be locked after a break-in",
                "description": "Glass intact, lock cylinder punched out. Store closes at 21:00.",
            },
        ),
        201,
    )
    ticket_id = created["id"]
    assert created["state"] == "NEW"
    done.append("ticket.create")

    triaged = ok(
        dispatcher.post(
            f"/tickets/{ticket_id}/triage",
            {"priority": "EMERGENCY", "incident_type": "CANNOT_SECURE_ENTRY", "nte_cents": 75000},
        )
    )
    assert (triaged["state"], triaged["priority"], triaged["incident_type"]) == (
        "TRIAGED",
        "EMERGENCY",
        "CANNOT_SECURE_ENTRY",
    )
    done.append("ticket.triage")

    # From TRIAGED a dispatch is an emergency bypass: without its rationale and confirmation it is refused.
    refused(
        dispatcher.post(f"/tickets/{ticket_id}/assignment/dispatch", {"tech_id": str(technician.id)}),
        409,
        "ASSIGNMENT_BYPASS_DENIED",
    )
    dispatched = ok(
        dispatcher.post(
            f"/tickets/{ticket_id}/assignment/dispatch",
            {
                "tech_id": str(technician.id),
                "dispatch_mode": "EMERGENCY_BYPASS",
                "dispatch_rationale": "Store cannot be secured overnight; nearest qualified technician.",
                "dispatch_confirmation": True,
            },
        )
    )
    assert (dispatched["state"], dispatched["assigned_tech_id"]) == ("DISPATCHED", str(technician.id))
    done.append("assignment.dispatch")

    checked_in = ok(
        tech.post(
            f"/tickets/{ticket_id}/tech/check-in",
            {"timestamp": timezone.now().isoformat(), "location": {"lat": 37.8044, "lng": -122.2711}},
        )
    )
    assert checked_in["state"] == "IN_PROGRESS"
    done.append("tech.check_in")

    # Completion with every checklist answer but no evidence: refused for the signature, naming
    # every evidence key still missing.
    template = IncidentTemplate.objects.get(incident_type="CANNOT_SECURE_ENTRY")
    events_before = AuditEvent.objects.filter(ticket_id=ticket_id).count()
    error = refused(
        tech.post(f"/tickets/{ticket_id}/tech/complete", {"checklist_status": CHECKLIST_DONE}),
        409,
        "CLOSEOUT_REQUIREMENTS_INCOMPLETE",
    )
    assert error["requirement_code"] == "MISSING_SIGNATURE_CONFIRMATION"
    assert error["policy_error"]["dimension"] == "evidence"
    assert sorted(error["missing_evidence_keys"]) == sorted(template.required_evidence_keys)
    assert error["missing_checklist_keys"] == []
    assert AuditEvent.objects.filter(ticket_id=ticket_id).count() == events_before

    add_four_evidence_items(tech, ticket_id, template.required_evidence_keys)
    done.extend(["closeout.add_evidence"] * 4)
    listed = ok(tech.get(f"/tickets/{ticket_id}/evidence"))
    assert sorted(item["metadata"]["evidence_key"] for item in listed["evidence"]) == sorted(
        template.required_evidence_keys
    )

    completed = ok(tech.post(f"/tickets/{ticket_id}/tech/complete", {"checklist_status": CHECKLIST_DONE}))
    assert completed["state"] == "COMPLETED_PENDING_VERIFICATION"
    done.append("tech.complete")

    verified = ok(
        qa.post(f"/tickets/{ticket_id}/qa/verify", {"timestamp": timezone.now().isoformat(), "result": "PASS"})
    )
    assert verified["state"] == "VERIFIED"
    done.append("qa.verify")

    invoiced = ok(finance.post(f"/tickets/{ticket_id}/billing/generate-invoice", {}))
    assert ticket_of(invoiced)["state"] == "INVOICED"
    done.append("billing.generate_invoice")

    closed = ok(dispatcher.post(f"/tickets/{ticket_id}/close", {"reason": "Door secured, invoice sent."}))
    assert ticket_of(closed)["state"] == "CLOSED"
    assert closed["closeout_packet"]["status"] == "COMPILING"
    done.append("ticket.close")
    # The worker (synchronous in tests) compiles the packet once the close commits and chains its hash.
    done.append("closeout.packet_compiled")
    assert str(CloseoutPacket.objects.get(ticket_id=ticket_id).id) == closed["closeout_packet"]["id"]

    timeline = ok(dispatcher.get(f"/tickets/{ticket_id}/timeline"))
    assert timeline["ticket_id"] == ticket_id
    events = timeline["events"]
    assert [e["tool_name"] for e in events] == done
    assert [(e["before_state"], e["after_state"]) for e in events if e["tool_name"] != "closeout.add_evidence"] == [
        (None, "NEW"),
        ("NEW", "TRIAGED"),
        ("TRIAGED", "DISPATCHED"),
        ("DISPATCHED", "IN_PROGRESS"),
        ("IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION"),
        ("COMPLETED_PENDING_VERIFICATION", "VERIFIED"),
        ("VERIFIED", "INVOICED"),
        ("INVOICED", "CLOSED"),
        ("CLOSED", "CLOSED"),
    ]
    by_tool = {e["tool_name"]: e for e in events}
    assert (by_tool["tech.check_in"]["actor_role"], by_tool["tech.check_in"]["actor_id"]) == ("technician", "dana.tech")
    assert by_tool["qa.verify"]["actor_role"] == "qa"
    assert by_tool["billing.generate_invoice"]["actor_role"] == "finance"
    assert all(e["request_id"] for e in events)

    # The transition rows follow the same path; check-in wrote two, in order, under one event.
    assert transitions_of(ticket_id) == [
        ("", "NEW"),
        ("NEW", "TRIAGED"),
        ("TRIAGED", "DISPATCHED"),
        ("DISPATCHED", "ON_SITE"),
        ("ON_SITE", "IN_PROGRESS"),
        ("IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION"),
        ("COMPLETED_PENDING_VERIFICATION", "VERIFIED"),
        ("VERIFIED", "INVOICED"),
        ("INVOICED", "CLOSED"),
    ]
    check_in_rows = StateTransition.objects.filter(ticket_id=ticket_id, audit_event_id=by_tool["tech.check_in"]["id"])
    assert list(check_in_rows.order_by("seq").values_list("to_state", flat=True)) == ["ON_SITE", "IN_PROGRESS"]
    ticket = Ticket.objects.get(pk=ticket_id)
    assert (ticket.state, ticket.version) == ("CLOSED", 12)


def test_standard_path_with_scheduling_hold_and_release(world):
    dispatcher, agent, tech, qa, finance = (world[k] for k in ("dispatcher", "agent", "tech", "qa", "finance"))
    site, technician = world["site"], world["technician"]
    done: list[str] = []

    created = ok(
        agent.post(
            "/tickets",
            {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Back door will not latch"},
        ),
        201,
    )
    ticket_id = created["id"]
    done.append("ticket.create")
    ready = ok(
        agent.post(
            f"/tickets/{ticket_id}/triage",
            {"priority": "ROUTINE", "incident_type": "DOOR_WONT_LATCH", "workflow_outcome": "READY_TO_SCHEDULE"},
        )
    )
    assert ready["state"] == "READY_TO_SCHEDULE"
    done.append("ticket.triage")

    tomorrow = (timezone.now() + timedelta(days=1)).replace(hour=17, minute=0, second=0, microsecond=0)
    options = [
        {"start": tomorrow.isoformat(), "end": (tomorrow + timedelta(hours=2)).isoformat()},
        {
            "start": (tomorrow + timedelta(days=1)).isoformat(),
            "end": (tomorrow + timedelta(days=1, hours=2)).isoformat(),
        },
    ]
    proposed = ok(agent.post(f"/tickets/{ticket_id}/schedule/propose", {"options": options}))
    assert ticket_of(proposed)["state"] == "SCHEDULE_PROPOSED"
    done.append("schedule.propose")

    now = timezone.now()
    held = ok(
        dispatcher.post(
            f"/tickets/{ticket_id}/schedule/hold",
            {
                "hold_reason": "CUSTOMER_PENDING",
                "confirmation_window": {"start": now.isoformat(), "end": (now + timedelta(hours=4)).isoformat()},
            },
        )
    )
    assert ticket_of(held)["state"] == "PENDING_CUSTOMER_CONFIRMATION"
    confirmation_id = held.get("confirmation_id") or held.get("hold_id")
    assert confirmation_id
    done.append("schedule.hold")

    released = ok(
        dispatcher.post(f"/tickets/{ticket_id}/schedule/release", {"customer_confirmation_id": confirmation_id})
    )
    released_state = ticket_of(released)["state"]
    assert released_state == "SCHEDULE_PROPOSED"  # exactly where the hold found it
    done.append("schedule.release")

    confirmed = ok(dispatcher.post(f"/tickets/{ticket_id}/schedule/confirm", options[0]))
    confirmed_ticket = ticket_of(confirmed)
    assert confirmed_ticket["state"] == "SCHEDULED"
    assert confirmed_ticket["scheduled_start"].startswith(tomorrow.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
    done.append("schedule.confirm")

    dispatched = ok(dispatcher.post(f"/tickets/{ticket_id}/assignment/dispatch", {"tech_id": str(technician.id)}))
    assert (dispatched["state"], dispatched["assigned_tech_id"]) == ("DISPATCHED", str(technician.id))
    done.append("assignment.dispatch")

    packet = ok(tech.get(f"/ux/technician/job-packet/{ticket_id}"))["packet"]
    assert packet["site_and_access"]["access_code"] == "4821"
    check_in_action = next(a for a in packet["actions"] if a["tool_name"] == "tech.check_in")
    assert check_in_action["enabled"] is True

    # The visit was booked for tomorrow: arriving today needs the reason, which the audit keeps.
    early = {"timestamp": timezone.now().isoformat(), "reason": "The customer asked us to come a day early."}
    ok(tech.post(f"/tickets/{ticket_id}/tech/check-in", early))
    done.append("tech.check_in")
    template = IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH")
    add_four_evidence_items(tech, ticket_id, template.required_evidence_keys)
    done.extend(["closeout.add_evidence"] * 4)

    packet = ok(tech.get(f"/ux/technician/job-packet/{ticket_id}"))["packet"]
    assert packet["evidence_requirements"]["missing_evidence_keys"] == []
    complete_action = next(a for a in packet["actions"] if a["tool_name"] == "tech.complete")
    assert complete_action["enabled"] is True, complete_action

    ok(tech.post(f"/tickets/{ticket_id}/tech/complete", {"checklist_status": CHECKLIST_DONE}))
    done.append("tech.complete")
    ok(qa.post(f"/tickets/{ticket_id}/qa/verify", {"timestamp": timezone.now().isoformat(), "result": "PASS"}))
    done.append("qa.verify")
    ok(finance.post(f"/tickets/{ticket_id}/billing/generate-invoice", {}))
    done.append("billing.generate_invoice")
    closed = ok(finance.post(f"/tickets/{ticket_id}/close", {}))
    assert ticket_of(closed)["state"] == "CLOSED"
    done.extend(["ticket.close", "closeout.packet_compiled"])

    events = ok(agent.get(f"/tickets/{ticket_id}/timeline"))["events"]
    assert [e["tool_name"] for e in events] == done
    assert transitions_of(ticket_id) == [
        ("", "NEW"),
        ("NEW", "TRIAGED"),
        ("TRIAGED", "READY_TO_SCHEDULE"),
        ("READY_TO_SCHEDULE", "SCHEDULE_PROPOSED"),
        ("SCHEDULE_PROPOSED", "PENDING_CUSTOMER_CONFIRMATION"),
        ("PENDING_CUSTOMER_CONFIRMATION", "SCHEDULE_PROPOSED"),
        ("SCHEDULE_PROPOSED", "SCHEDULED"),
        ("SCHEDULED", "DISPATCHED"),
        ("DISPATCHED", "ON_SITE"),
        ("ON_SITE", "IN_PROGRESS"),
        ("IN_PROGRESS", "COMPLETED_PENDING_VERIFICATION"),
        ("COMPLETED_PENDING_VERIFICATION", "VERIFIED"),
        ("VERIFIED", "INVOICED"),
        ("INVOICED", "CLOSED"),
    ]


def blind_intake_body(site) -> dict:
    return {
        "account_id": str(site.account_id),
        "site_id": str(site.id),
        "summary": "Front door won't latch",
        "incident_type": "DOOR_WONT_LATCH",
        "customer_name": "Pat Sample",
        "contact_phone": "(510) 555-0142",
        "priority": "URGENT",
        "identity_confidence": 60,
        "classification_confidence": 95,
    }


def test_blind_intake_over_http_opens_triaged_or_ready_and_refuses_the_duplicate(world):
    agent, site = world["agent"], world["site"]
    body = blind_intake_body(site)
    first = ok(agent.post("/tickets/intake", body), 201)
    assert (first["state"], first["customer_phone"]) == ("TRIAGED", "+15105550142")

    duplicate = refused(
        agent.post("/tickets/intake", {**body, "contact_phone": "510-555-0142"}), 409, "DUPLICATE_INTAKE"
    )
    assert duplicate["duplicate_ticket_id"] == first["id"]
    assert duplicate["policy_error"]["dimension"] == "identity"

    other_site = SiteFactory(account=site.account)
    confident = ok(
        agent.post(
            "/tickets/intake",
            {**body, "site_id": str(other_site.id), "identity_confidence": 90, "classification_confidence": 88},
        ),
        201,
    )
    assert confident["state"] == "READY_TO_SCHEDULE"


def test_triage_to_ready_refuses_a_low_confidence_blind_intake_over_http(world):
    agent, dispatcher, site = world["agent"], world["dispatcher"], world["site"]
    unsure = ok(agent.post("/tickets/intake", blind_intake_body(site)), 201)
    refused(
        dispatcher.post(
            f"/tickets/{unsure['id']}/triage",
            {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH", "workflow_outcome": "READY_TO_SCHEDULE"},
        ),
        409,
        "LOW_IDENTITY_CONFIDENCE",
    )
    assert Ticket.objects.get(pk=unsure["id"]).state == "TRIAGED"


def test_reads_over_http_respect_the_caller(world):
    dispatcher, tech, site, technician = world["dispatcher"], world["tech"], world["site"], world["technician"]
    created = ok(
        dispatcher.post("/tickets", {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Latch"}),
        201,
    )
    ticket_id = created["id"]
    got = ok(dispatcher.get(f"/tickets/{ticket_id}"))
    assert got == created | {"updated_at": got["updated_at"]}
    # Not assigned to this technician: neither the ticket nor its packet.
    refused(tech.get(f"/tickets/{ticket_id}"), 403, "FORBIDDEN_SCOPE")
    refused(tech.get(f"/ux/technician/job-packet/{ticket_id}"), 403, "FORBIDDEN_SCOPE")
    refused(dispatcher.get(f"/tickets/{uuid.uuid4()}"), 404, "TICKET_NOT_FOUND")

    cockpit = ok(dispatcher.get("/ux/dispatcher/cockpit?state=NEW&limit=5"))
    row = next(r for r in cockpit["queue"] if r["ticket_id"] == ticket_id)
    triage = next(a for a in row["actions"] if a["tool_name"] == "schedule.propose")
    assert triage["enabled"] is False and triage["policy_error"]["code"] == "INVALID_STATE_TRANSITION"
    assert "ticket.triage" in row["allowed_tools"]
    assert cockpit["page"]["limit"] == 5 and cockpit["counts"]["by_state"]["NEW"] >= 1
    refused(dispatcher.get("/ux/dispatcher/cockpit?state=BOGUS"), 400, "INVALID_REQUEST")
    refused(tech.get("/ux/dispatcher/cockpit"), 403, "TOOL_ROLE_FORBIDDEN")
    assert technician.id  # the technician exists but has no job yet
