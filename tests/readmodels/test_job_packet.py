"""The technician's job packet says what completion will say, from closeout's own gate and tables."""

from __future__ import annotations

import pytest

from dispatch.api.registry import TOOLS
from dispatch.closeout.services import tech_complete
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.readmodels.job_packet import tech_job_packet
from dispatch.tickets.policy import refusal_as_dict
from tests.factories import DOOR_CHECKLIST, DOOR_EVIDENCE_KEYS, actor_for, door_evidence_add, ticket_in_progress

pytestmark = pytest.mark.django_db


def packet_for(actor, ticket) -> dict:
    return tech_job_packet(actor=actor, ticket=ticket, commands=TOOLS)["packet"]


def action(packet: dict, tool_name: str) -> dict:
    return next(a for a in packet["actions"] if a["tool_name"] == tool_name)


def test_the_packet_refuses_completion_with_the_refusal_the_tool_answers():
    ticket = ticket_in_progress()
    technician = actor_for(Role.TECHNICIAN, technician=ticket.assigned_tech)
    door_evidence_add(ticket, keys=DOOR_EVIDENCE_KEYS[:1])

    shown = action(packet_for(technician, ticket), "tech.complete")["policy_error"]
    with pytest.raises(DispatchError) as refused:
        tech_complete(actor=technician, ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST)

    assert shown == refusal_as_dict(refused.value)
    assert shown["requirement_code"] == "MISSING_EVIDENCE"
    assert shown["missing_evidence_keys"] == sorted(DOOR_EVIDENCE_KEYS[1:])


def test_the_packet_shows_the_checklist_of_the_latest_completion():
    ticket = ticket_in_progress()
    technician = actor_for(Role.TECHNICIAN, technician=ticket.assigned_tech)
    door_evidence_add(ticket)

    before = packet_for(technician, ticket)
    assert before["checklist"]["source"] == "none_recorded"
    assert not any(item["checked"] for item in before["checklist"]["required_items"])
    assert action(before, "tech.complete")["enabled"] is True

    tech_complete(actor=technician, ticket_id=ticket.id, checklist_status=DOOR_CHECKLIST)

    after = packet_for(actor_for(Role.DISPATCHER), ticket)
    assert after["checklist"]["source"] == "latest_completion_attempt"
    assert {item["key"]: item["checked"] for item in after["checklist"]["required_items"]} == DOOR_CHECKLIST
    assert after["closeout_gate"]["ready"] is True


def test_the_packet_lists_evidence_as_the_evidence_tool_does():
    ticket = ticket_in_progress()
    [item] = door_evidence_add(ticket, keys=DOOR_EVIDENCE_KEYS[:1], signature=False)

    [listed] = packet_for(actor_for(Role.DISPATCHER), ticket)["evidence_requirements"]["evidence_items"]

    assert listed["id"] == str(item.id)
    assert listed["ticket_id"] == str(ticket.id)
    assert listed["metadata"]["evidence_key"] == DOOR_EVIDENCE_KEYS[0]
