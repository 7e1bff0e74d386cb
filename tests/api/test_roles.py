"""Every tool × every role, and every ticket tool from a state it does not start from."""

from __future__ import annotations

import uuid

import pytest

from dispatch.api.registry import TOOLS, TOOLS_BY_NAME
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent, IdempotencyRecord
from tests.factories import TechnicianFactory, jwt_for, payload_example, ticket_at

pytestmark = pytest.mark.django_db

START, END = "2030-03-04T17:00:00Z", "2030-03-04T19:00:00Z"

# Where the minimal schema example would fail the service's own input checks, a realistic value.
REALISTIC = {
    "schedule.propose": {"options": [{"start": START, "end": END}]},
    "schedule.confirm": {"start": START, "end": END},
    "schedule.hold": {"hold_reason": "CUSTOMER_PENDING", "confirmation_window": {"start": START, "end": END}},
    "assignment.recommend": {"service_type": "DOOR_WONT_LATCH"},
    "tech.request_change": {
        "approval_type": "NTE_INCREASE",
        "reason": "Closer is cracked",
        "amount_delta_cents": 12000,
    },
    "approval.decide": {"decision": "APPROVED"},
    "closeout.add_evidence": {
        "kind": "PHOTO",
        "uri": "s3://evidence/door.jpg",
        "evidence_key": "photo_before_door_edge_and_strike",
    },
    "closeout.candidate": {"checklist_status": {"work_performed": True}},
    "tech.complete": {"checklist_status": {"work_performed": True}},
    "qa.verify": {"result": "PASS", "timestamp": START},
    "ticket.force_close": {
        "override_code": "OVR-123",
        "override_reason": "Customer signed off by phone, QA backlog",
        "approver_role": "dispatcher",
    },
    "ticket.cancel": {"reason": "Customer fixed it"},
    # A job closed before its invoice draft says why.
    "ticket.close": {"reason": "Warranty callback, not billed"},
    "reopen_after_verification": {"reason": "Door still drags"},
    "closeout.evidence_exception": {"exception_reason": "Camera broken on site"},
    "dispatch.manual_bypass": {"bypass_rationale": "Supervisor verified on site"},
    "ops.autonomy.pause": {"scope_type": "GLOBAL", "reason": "Reviewing agent closeouts"},
    "ops.autonomy.rollback": {"scope_type": "GLOBAL", "reason": "Review done"},
    "tech.depart": {"eta_minutes": 20},
    "tech.eta_update": {"eta_minutes": 35},
    "tech.pause": {"reason": "Waiting on a part"},
    "closeout.add_labor": {"minutes": 30},
    "closeout.update_labor": {"labor_entry_id": 1, "minutes": 45},
    "closeout.add_part": {"description": "Shims", "unit_cents": 120},
    "closeout.save_checklist": {"checklist_status": {"work_performed": True}},
    "billing.edit_invoice": {"lines": [{"kind": "LABOR", "description": "Adjust closer", "unit_cents": 12500}]},
    "billing.revise_invoice": {"reason": "Wrong part billed"},
}


def payload_for(name: str, **overrides) -> dict:
    tool = TOOLS_BY_NAME[name]
    base = payload_example(tool.schema) if tool.method == "POST" else {}
    return {**base, **REALISTIC.get(name, {}), **overrides}


def call(client, name: str, *, role: str, ticket_id=None, actor_id: str | None = None, payload: dict | None = None):
    tool = TOOLS_BY_NAME[name]
    path = "/api/v1" + tool.route.replace("{ticketId}", str(ticket_id or uuid.uuid4()))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {jwt_for(actor_id or f'{role}-caller', role)}"}
    if tool.method == "GET":
        return client.get(path, **headers)
    return client.post(
        path,
        data=payload if payload is not None else payload_for(name),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )


@pytest.fixture
def technician():
    return TechnicianFactory()


@pytest.mark.parametrize("name", [tool.name for tool in TOOLS])
def test_every_role_is_let_through_or_refused_exactly_as_the_contract_says(client, technician, name):
    tool = TOOLS_BY_NAME[name]
    for role in Role:
        actor_id = technician.user.username if role == Role.TECHNICIAN else None
        events, records = AuditEvent.objects.count(), IdempotencyRecord.objects.count()
        response = call(client, name, role=role.value, actor_id=actor_id)
        body = response.json()
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        if role.value in tool.contract_entry["allowed_roles"]:
            assert response.status_code < 500, (role, response.content)
            assert response.status_code != 401, (role, body)
            assert code != "TOOL_ROLE_FORBIDDEN", (role, body)
        else:
            assert response.status_code == 403, (role, body)
            assert code == "TOOL_ROLE_FORBIDDEN"
            assert body["error"]["policy_error"] == {"code": "TOOL_ROLE_FORBIDDEN", "dimension": "role"}
            assert (AuditEvent.objects.count(), IdempotencyRecord.objects.count()) == (events, records)


def test_role_aliases_get_their_role(client):
    for alias in ("assistant", "bot", "dispatcher_admin"):
        assert call(client, "dispatcher.cockpit", role=alias).status_code == 200
    response = call(client, "dispatcher.cockpit", role="tech", actor_id=TechnicianFactory().user.username)
    assert response.json()["error"]["code"] == "TOOL_ROLE_FORBIDDEN"


def test_the_system_role_gets_no_bypass_through_the_api(client):
    response = call(client, "ticket.cancel", role="system")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "TOOL_ROLE_FORBIDDEN"


# --- from-states ----------------------------------------------------------------------------------

STATEFUL = [tool.name for tool in TOOLS if tool.contract_entry["allowed_from_states"] is not None]


def wrong_state(name: str) -> str:
    allowed = set(TOOLS_BY_NAME[name].contract_entry["allowed_from_states"])
    return next(state for state in ("NEW", "READY_TO_SCHEDULE", "CANCELLED", "CLOSED") if state not in allowed)


def caller_for(name: str) -> str:
    roles = TOOLS_BY_NAME[name].contract_entry["allowed_roles"]
    return "dispatcher" if "dispatcher" in roles else roles[0]


@pytest.mark.parametrize("name", STATEFUL)
def test_every_ticket_tool_refuses_a_state_it_does_not_start_from_and_writes_nothing(client, technician, name):
    state = wrong_state(name)
    ticket = ticket_at(state, technician=technician)
    role = caller_for(name)
    actor_id = technician.user.username if role == "technician" else None
    payload = payload_for(name)
    if name == "assignment.dispatch":
        payload["tech_id"] = str(technician.id)
    events, records = AuditEvent.objects.count(), IdempotencyRecord.objects.count()
    response = call(client, name, role=role, ticket_id=ticket.id, actor_id=actor_id, payload=payload)
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "INVALID_STATE_TRANSITION"
    assert error["policy_error"] == {"code": "INVALID_STATE_TRANSITION", "dimension": "state"}
    assert error["from_state"] == state
    assert (AuditEvent.objects.count(), IdempotencyRecord.objects.count()) == (events, records)
    version = ticket.version
    ticket.refresh_from_db()
    assert (ticket.state, ticket.version) == (state, version)


def test_every_tool_with_from_states_is_covered():
    assert len([name for name in STATEFUL if TOOLS_BY_NAME[name].in_contract]) == 23
