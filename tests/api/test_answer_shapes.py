"""Every tool's success answer has the shape the contract's clients read: the serialized ticket at
the top level where the upstream dispatch-api answers the ticket, `{"ticket": ...}` where it
answers more. Extra keys are fine; a key moved (under another key, or up a level) is not."""

from __future__ import annotations

import uuid

import pytest

from dispatch.api.registry import TOOLS, TOOLS_BY_NAME
from dispatch.messaging.models import OutboundMessage
from dispatch.messaging.services import outbox_enqueue
from tests.api.test_roles import call, caller_for, payload_for
from tests.factories import (
    DOOR_CHECKLIST,
    SiteFactory,
    TechnicianFactory,
    door_evidence_add,
    ticket_at,
    ticket_in_progress,
    ticket_proposed,
    ticket_scheduled,
    window_at,
)

pytestmark = pytest.mark.django_db

# The upstream's serializeTicket, less what this schema has no column for (assigned_provider_id).
TICKET = dict.fromkeys(
    [
        "id",
        "account_id",
        "site_id",
        "asset_id",
        "state",
        "priority",
        "incident_type",
        "summary",
        "description",
        "nte_cents",
        "scheduled_start",
        "scheduled_end",
        "assigned_tech_id",
        "version",
        "created_at",
        "updated_at",
    ]
)
EVIDENCE = dict.fromkeys(["id", "ticket_id", "kind", "evidence_key", "metadata", "created_at"])
AUTONOMY_CHANGE = dict.fromkeys(["action", "scope", "previous_is_paused", "current_is_paused", "history_id"])
AUTONOMY_STATE = dict.fromkeys(["controls", "decision", "history", "chain"])

ANSWERS: dict[str, dict] = {
    "ticket.create": TICKET,
    "ticket.blind_intake": TICKET,
    "ticket.triage": TICKET,
    "ticket.get": TICKET,
    "ticket.cancel": TICKET,
    "schedule.confirm": TICKET,
    "assignment.dispatch": TICKET,
    "tech.check_in": TICKET,
    "approval.decide": TICKET,
    "tech.complete": TICKET,
    "closeout.candidate": TICKET,
    "qa.verify": TICKET,
    "billing.generate_invoice": {**TICKET, "invoice": None},
    "dispatch.force_hold": TICKET,
    "dispatch.force_unassign": TICKET,
    "dispatch.manual_bypass": TICKET,
    "reopen_after_verification": TICKET,
    "schedule.propose": {"ticket": TICKET, "proposal_id": None, "options": None},
    "schedule.hold": {"ticket": TICKET, "hold_id": None, "snapshot_id": None},
    "schedule.release": {
        "ticket": TICKET,
        "hold_id": None,
        "snapshot_id": None,
        "restored_state": None,
        "restored_window": None,
    },
    "schedule.rollback": {"ticket": TICKET, "hold_id": None, "restored_state": None, "restored_window": None},
    "assignment.recommend": {"ticket": TICKET, "recommendations": None, "recommendation_snapshot_id": None},
    "tech.request_change": {"ticket": TICKET, "approval": None},
    "ticket.close": {"ticket": TICKET, "closeout_packet": None},
    "ticket.force_close": {"ticket": TICKET, "closeout_packet": None},
    "closeout.evidence_exception": {"ticket": TICKET, "evidence_exception": None},
    "closeout.add_evidence": EVIDENCE,
    "closeout.list_evidence": {"ticket_id": None, "evidence": None},
    "ticket.timeline": {"ticket_id": None, "events": None},
    "dispatcher.cockpit": dict.fromkeys(["queue", "counts", "selected_ticket"]),
    "tech.job_packet": dict.fromkeys(["packet"]),
    "ops.autonomy.pause": AUTONOMY_CHANGE,
    "ops.autonomy.rollback": AUTONOMY_CHANGE,
    "ops.autonomy.state": AUTONOMY_STATE,
    "ops.autonomy.replay": {**AUTONOMY_STATE, "ticket_id": None},
    "outbox.replay": dict.fromkeys(["id", "status"]),
}


def test_every_contract_tool_has_its_answer_shape_written_down():
    assert sorted(ANSWERS) == sorted(tool.name for tool in TOOLS if tool.in_contract)


def shape_misses(body, shape: dict, where: str = "") -> list[str]:
    """The keys of `shape` that `body` lacks at their place (nested shapes checked inside)."""
    if not isinstance(body, dict):
        return [where or "(top level)"]
    missing = []
    for key, inner in shape.items():
        if key not in body:
            missing.append(where + key)
        elif inner is not None:
            missing += shape_misses(body[key], inner, f"{where}{key}.")
    return missing


class Setup:
    """Puts a ticket where the tool can succeed, and names the caller and the payload."""

    def __init__(self, client, name: str):
        self.client, self.name = client, name
        self.technician = TechnicianFactory()
        self.role = caller_for(name)
        self.payload = payload_for(name)
        states = TOOLS_BY_NAME[name].contract_entry["allowed_from_states"]
        self.ticket = (
            None if name in SPECIAL else ticket_at(states[0] if states else "IN_PROGRESS", technician=self.technician)
        )

    def api(self, name: str, payload: dict, role: str | None = None) -> dict:
        role = role or caller_for(name)
        response = call(
            self.client, name, role=role, ticket_id=self.ticket.id, actor_id=self.actor_id(role), payload=payload
        )
        assert response.status_code < 300, (name, response.content)
        return response.json()

    def actor_id(self, role: str) -> str | None:
        return self.technician.user.username if role == "technician" else None


def _create(setup: Setup):
    site = SiteFactory()
    setup.ticket = ticket_at("NEW")
    setup.payload = {"account_id": str(site.account_id), "site_id": str(site.id), "summary": "Back door won't latch"}


def _blind_intake(setup: Setup):
    _create(setup)
    setup.payload.update(
        incident_type="DOOR_WONT_LATCH",
        customer_name="Jordan Sample",
        priority="URGENT",
        identity_confidence=97,
        classification_confidence=96,
        contact_phone="+15105550123",
    )


def _confirm(setup: Setup):
    start, end = window_at()
    setup.ticket = ticket_proposed()
    setup.payload = {"start": start.isoformat(), "end": end.isoformat()}


def _dispatch(setup: Setup):
    setup.ticket = ticket_scheduled(technician=setup.technician)
    setup.payload = {"tech_id": str(setup.technician.id)}


def _held(setup: Setup) -> str:
    setup.ticket = ticket_scheduled(technician=setup.technician)
    return setup.api("schedule.hold", payload_for("schedule.hold"))["hold_id"]


def _release(setup: Setup):
    setup.payload = {"customer_confirmation_id": _held(setup)}


def _rollback(setup: Setup):
    setup.payload = {"confirmation_id": _held(setup), "reason": "Customer could not be reached"}


def _decide(setup: Setup):
    setup.ticket = ticket_at("IN_PROGRESS", technician=setup.technician)
    approval = setup.api("tech.request_change", payload_for("tech.request_change"), role="technician")["approval"]
    setup.payload = {"approval_id": approval["id"], "decision": "APPROVED"}


def _evidenced(setup: Setup):
    setup.ticket = ticket_in_progress(technician=setup.technician)
    door_evidence_add(setup.ticket)
    setup.payload = {"checklist_status": DOOR_CHECKLIST}


def _verify(setup: Setup):
    _evidenced(setup)
    setup.api("tech.complete", {"checklist_status": DOOR_CHECKLIST}, role="technician")
    setup.payload = payload_for("qa.verify")


def _unassign(setup: Setup):
    setup.ticket = ticket_at("DISPATCHED", technician=setup.technician)


def _replay(setup: Setup):
    setup.ticket = ticket_at("NEW")
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Your technician is on the way.")
    OutboundMessage.objects.filter(pk=message.pk).update(status=OutboundMessage.Status.DEAD_LETTER)
    setup.payload = {"outbox_id": str(message.pk)}


SPECIAL = {
    "ticket.create": _create,
    "ticket.blind_intake": _blind_intake,
    "schedule.confirm": _confirm,
    "assignment.dispatch": _dispatch,
    "schedule.release": _release,
    "schedule.rollback": _rollback,
    "approval.decide": _decide,
    "closeout.candidate": _evidenced,
    "tech.complete": _evidenced,
    "qa.verify": _verify,
    "dispatch.force_unassign": _unassign,
    "outbox.replay": _replay,
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_a_tool_answers_in_the_contract_shape(client, name):
    setup = Setup(client, name)
    if name in SPECIAL:
        SPECIAL[name](setup)
    if name == "tech.complete":
        setup.role = "technician"
    ticket_id = setup.ticket.id if setup.ticket is not None else uuid.uuid4()
    response = call(
        client, name, role=setup.role, ticket_id=ticket_id, actor_id=setup.actor_id(setup.role), payload=setup.payload
    )
    assert response.status_code < 300, response.content
    assert shape_misses(response.json(), ANSWERS[name]) == []
