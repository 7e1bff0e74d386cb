"""Checklist answers saved while the work goes on: kept, merged, shown in the job packet, and what
tech.complete completes on when its caller sends no checklist of its own."""

from __future__ import annotations

import uuid

import pytest

from dispatch.api.registry import TOOLS
from dispatch.closeout.models import ChecklistResult
from dispatch.closeout.selectors import completion_latest
from dispatch.closeout.services import checklist_save, tech_complete
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.readmodels.job_packet import tech_job_packet
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import DOOR_CHECKLIST, TechnicianFactory, actor_for, door_evidence_add, jwt_for, ticket_at

pytestmark = pytest.mark.django_db


def refusal(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def test_answers_are_saved_merged_over_the_previous_ones_without_a_state_change(job, tech_actor):
    version = job.version
    first = checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": True})
    second = checklist_save(
        actor=tech_actor,
        ticket_id=job.id,
        checklist_status={"resolution_status": True, "work_performed": False},
        no_signature_reason="Tenant not home",
    )
    saved = completion_latest(job.id)
    assert saved.id == second.result.id
    assert saved.tool == "closeout.save_checklist"
    assert saved.checklist_status == {"work_performed": False, "resolution_status": True}
    assert saved.no_signature_reason == "Tenant not home"
    assert "work_performed" in saved.gate["missing_checklist_keys"]
    ticket = Ticket.objects.get(pk=job.pk)
    assert (ticket.state, ticket.version) == ("IN_PROGRESS", version + 2)
    assert first.event.tool_name == second.event.tool_name == "closeout.save_checklist"
    assert second.event.payload["checklist_status"] == {"resolution_status": True, "work_performed": False}
    assert second.event.payload["saved_checklist_status"] == saved.checklist_status


def test_the_no_signature_reason_is_kept_unless_given_and_cleared_with_an_empty_one(job, tech_actor):
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={}, no_signature_reason="Tenant not home")
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": True})
    assert completion_latest(job.id).no_signature_reason == "Tenant not home"
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={}, no_signature_reason="")
    assert completion_latest(job.id).no_signature_reason == ""


def test_a_key_the_template_does_not_have_is_refused_by_name_and_nothing_is_saved(job, tech_actor):
    events = AuditEvent.objects.count()
    error = refusal(
        lambda: checklist_save(
            actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": True, "painted_door": True}
        )
    )
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
    assert "painted_door" in error.message
    assert error.details["unknown_checklist_keys"] == ["painted_door"]
    assert error.details["field"] == "checklist_status.painted_door"
    assert (ChecklistResult.objects.count(), AuditEvent.objects.count()) == (0, events)


@pytest.mark.parametrize("value", ["yes", 1, None, {"done": True}])
def test_answers_must_be_true_or_false(job, tech_actor, value):
    error = refusal(
        lambda: checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": value})
    )
    assert (error.code, error.details["field"]) == ("INVALID_REQUEST", "checklist_status.work_performed")
    assert not ChecklistResult.objects.exists()


def test_answers_are_saved_on_site_and_on_hold_but_not_once_completed(technician, tech_actor):
    for state in ("ON_SITE", "ON_HOLD"):
        ticket = ticket_at(state, technician=technician)
        checklist_save(actor=tech_actor, ticket_id=ticket.id, checklist_status={"work_performed": True})
    done = ticket_at("COMPLETED_PENDING_VERIFICATION", technician=technician)
    error = refusal(lambda: checklist_save(actor=tech_actor, ticket_id=done.id, checklist_status={}))
    assert error.code == "INVALID_STATE_TRANSITION"


def test_only_the_technician_on_the_job_or_dispatch_saves_answers(job, dispatcher):
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    assert refusal(lambda: checklist_save(actor=stranger, ticket_id=job.id, checklist_status={})).code == (
        "FORBIDDEN_SCOPE"
    )
    agent = actor_for(Role.AGENT)
    assert refusal(lambda: checklist_save(actor=agent, ticket_id=job.id, checklist_status={})).code == (
        "TOOL_ROLE_FORBIDDEN"
    )
    checklist_save(actor=dispatcher, ticket_id=job.id, checklist_status={"work_performed": True})


def test_the_job_packet_shows_the_saved_answers(job, tech_actor):
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": True})
    packet = tech_job_packet(actor=tech_actor, ticket=job, commands=TOOLS)["packet"]
    items = {item["key"]: item["checked"] for item in packet["checklist"]["required_items"]}
    assert items["work_performed"] is True and items["resolution_status"] is False
    assert packet["checklist"]["source"] == "saved_answers"
    assert "work_performed" not in packet["closeout_gate"]["missing_checklist_keys"]
    actions = {action["tool_name"]: action for action in packet["actions"]}
    assert actions["closeout.save_checklist"]["enabled"] is True


def test_complete_without_a_checklist_completes_on_the_saved_answers(job, tech_actor):
    door_evidence_add(job, signature=False)
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST, no_signature_reason="Away")
    outcome = tech_complete(actor=tech_actor, ticket_id=job.id)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    completion = completion_latest(job.id)
    assert (completion.tool, completion.checklist_status, completion.no_signature_reason) == (
        "tech.complete",
        DOOR_CHECKLIST,
        "Away",
    )
    saved = ChecklistResult.objects.get(ticket=job, tool="closeout.save_checklist")
    assert outcome.event.payload["checklist_source"] == {"saved_checklist_result_id": str(saved.id)}
    assert outcome.event.payload["checklist_status"] == DOOR_CHECKLIST


def test_complete_without_a_checklist_is_refused_for_what_the_saved_answers_miss(job, tech_actor):
    door_evidence_add(job)
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status={"work_performed": True})
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id))
    assert error.code == "CLOSEOUT_REQUIREMENTS_INCOMPLETE"
    assert error.details["missing_checklist_keys"] == sorted(set(DOOR_CHECKLIST) - {"work_performed"})
    assert Ticket.objects.get(pk=job.pk).state == "IN_PROGRESS"


def test_a_checklist_sent_with_complete_is_the_one_used_as_the_contract_says(job, tech_actor):
    door_evidence_add(job)
    checklist_save(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    error = refusal(lambda: tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status={}))
    assert error.details["missing_checklist_keys"] == sorted(DOOR_CHECKLIST)


def test_the_toolset_saves_answers_and_refuses_unknown_keys(client, job, technician):
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {jwt_for(technician.user.username, 'technician')}",
        "content_type": "application/json",
    }
    path = f"/api/v1/tickets/{job.id}/closeout/checklist"
    saved = client.post(
        path, data={"checklist_status": {"work_performed": True}}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert saved.status_code == 200, saved.content
    assert saved.json()["checklist"]["checklist_status"] == {"work_performed": True}
    assert "work_performed" not in saved.json()["checklist"]["closeout_gate"]["missing_checklist_keys"]
    unknown = client.post(
        path, data={"checklist_status": {"painted": True}}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["field"] == "checklist_status.painted"
    not_boolean = client.post(
        path, data={"checklist_status": {"work_performed": "yes"}}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert not_boolean.status_code == 400
    assert ChecklistResult.objects.count() == 1
