"""ops.autonomy.*: a pause stops agents' closeout actions at its scope until it is rolled back; history stays."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dispatch.closeout.models import AutonomyPause
from dispatch.closeout.selectors import autonomy_pause_effective, autonomy_replay, autonomy_state
from dispatch.closeout.services import autonomy_pause, autonomy_rollback, closeout_candidate, evidence_add
from dispatch.common.actors import ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent
from tests.factories import DOOR_CHECKLIST, actor_for, door_evidence_add, ticket_at

pytestmark = pytest.mark.django_db


def scope_args(scope: str, ticket) -> dict:
    return {
        "GLOBAL": {"scope_type": "GLOBAL"},
        "INCIDENT": {"scope_type": "INCIDENT", "incident_type": "door_wont_latch"},
        "TICKET": {"scope_type": "TICKET", "ticket_id": str(ticket.id)},
    }[scope]


def agent_add(ticket, agent=None):
    return evidence_add(actor=agent or actor_for(Role.AGENT), ticket_id=ticket.id, kind="PHOTO", uri="s3://b/agent.jpg")


@pytest.mark.parametrize("scope", ["GLOBAL", "INCIDENT", "TICKET"])
def test_a_pause_blocks_agent_closeout_actions_until_rolled_back(job, dispatcher, scope):
    door_evidence_add(job)
    change = autonomy_pause(actor=dispatcher, reason="Bad photos from the agent", **scope_args(scope, job))
    assert (change.previous_is_paused, change.current_is_paused) == (False, True)

    for call in (
        lambda: agent_add(job),
        lambda: closeout_candidate(actor=actor_for(Role.AGENT), ticket_id=job.id, checklist_status=DOOR_CHECKLIST),
    ):
        with pytest.raises(DispatchError) as caught:
            call()
        error = caught.value
        assert (error.code, error.status, error.dimension) == ("AUTONOMY_DISABLED", 409, "policy")
        assert (error.details["scope_type"], error.details["reason"]) == (scope, "Bad photos from the agent")

    # People keep working.
    evidence_add(actor=dispatcher, ticket_id=job.id, kind="NOTE", uri="s3://b/human.txt")

    rolled = autonomy_rollback(actor=dispatcher, reason="Agent fixed", **scope_args(scope, job))
    assert (rolled.previous_is_paused, rolled.current_is_paused) == (True, False)
    agent_add(job)
    outcome = closeout_candidate(actor=actor_for(Role.AGENT), ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"


def test_pauses_of_other_scopes_do_not_apply(job, dispatcher):
    other = ticket_at("IN_PROGRESS")
    autonomy_pause(actor=dispatcher, scope_type="INCIDENT", incident_type="FRAME_OR_GLASS_DAMAGE")
    autonomy_pause(actor=dispatcher, scope_type="TICKET", ticket_id=str(other.id))
    agent_add(job)
    with pytest.raises(DispatchError):
        agent_add(other)


def test_an_ai_caller_with_a_dispatcher_alias_is_still_an_agent(job, dispatcher):
    autonomy_pause(actor=dispatcher)
    assistant = actor_for(Role.DISPATCHER, actor_type=ActorType.AGENT)
    with pytest.raises(DispatchError) as caught:
        agent_add(job, agent=assistant)
    assert caught.value.code == "AUTONOMY_DISABLED"


def test_the_narrowest_pause_explains_the_refusal(job, dispatcher):
    autonomy_pause(actor=dispatcher, scope_type="GLOBAL", reason="all")
    autonomy_pause(actor=dispatcher, scope_type="TICKET", ticket_id=str(job.id), reason="this one")
    with pytest.raises(DispatchError) as caught:
        agent_add(job)
    assert (caught.value.details["scope_type"], caught.value.details["scope_id"]) == ("TICKET", str(job.id))


def test_history_is_kept_and_each_call_writes_one_audit_event(job, dispatcher):
    events = AuditEvent.objects.count()
    first = autonomy_pause(actor=dispatcher, scope_type="GLOBAL", reason="Incident review")
    again = autonomy_pause(actor=dispatcher, scope_type="GLOBAL", reason="still")
    assert again.pause.id == first.pause.id and again.previous_is_paused is True
    autonomy_rollback(actor=dispatcher, scope_type="GLOBAL", reason="Review done")
    autonomy_pause(actor=dispatcher, scope_type="GLOBAL", reason="Second incident")
    autonomy_rollback(actor=dispatcher)
    assert AuditEvent.objects.count() == events + 5
    tools = list(AuditEvent.objects.order_by("-created_at", "-id").values_list("tool_name", flat=True)[:5])
    assert tools == [
        "ops.autonomy.rollback",
        "ops.autonomy.pause",
        "ops.autonomy.rollback",
        "ops.autonomy.pause",
        "ops.autonomy.pause",
    ]

    rows = list(AutonomyPause.objects.order_by("created_at"))
    assert len(rows) == 2 and all(r.rolled_back_at and r.rolled_back_by == dispatcher.actor_id for r in rows)
    assert rows[0].rollback_reason == "Review done"

    state = autonomy_state()
    assert state["controls"] == []
    assert [h["action"] for h in state["history"]] == ["rollback", "pause", "rollback", "pause"]
    assert state["history"][-1]["reason"] == "Incident review"


def test_state_and_replay_show_the_decision_for_a_ticket(job, dispatcher):
    autonomy_pause(actor=dispatcher, scope_type="INCIDENT", incident_type="DOOR_WONT_LATCH", reason="latch jobs")
    autonomy_pause(actor=dispatcher, scope_type="INCIDENT", incident_type="AUTO_OPERATOR_FAULT")
    state = autonomy_state(ticket_id=job.id)
    assert state["decision"] == {
        "scope_type": "INCIDENT",
        "incident_type": "DOOR_WONT_LATCH",
        "ticket_id": None,
        "is_paused": True,
        "reason": "latch jobs",
    }
    assert len(state["controls"]) == 2

    replay = autonomy_replay(job.id, actor=dispatcher)
    assert replay["ticket_id"] == str(job.id) and replay["incident_type"] == "DOOR_WONT_LATCH"
    assert replay["decision"]["scope_type"] == "INCIDENT"
    assert [h["incident_type"] for h in replay["history"]] == ["DOOR_WONT_LATCH"]
    autonomy_rollback(actor=dispatcher, scope_type="INCIDENT", incident_type="DOOR_WONT_LATCH")
    replay = autonomy_replay(job.id)
    assert replay["decision"] is None
    assert [h["action"] for h in replay["history"]] == ["rollback", "pause"]


def test_the_change_answers_like_the_toolset(job, dispatcher):
    body = autonomy_pause(actor=dispatcher, scope_type="TICKET", ticket_id=str(job.id), reason="check").as_dict()
    assert body["action"] == "pause" and body["current_is_paused"] is True
    assert (body["scope"]["scope_type"], body["scope"]["ticket_id"], body["scope"]["is_paused"]) == (
        "TICKET",
        str(job.id),
        True,
    )
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert event.ticket_id == job.id and event.payload["pause_id"] == body["history_id"]


@pytest.mark.parametrize(
    "kwargs,code,status",
    [
        ({"scope_type": "INCIDENT"}, "INVALID_REQUEST", 400),
        ({"scope_type": "GLOBAL", "incident_type": "DOOR_WONT_LATCH"}, "INVALID_REQUEST", 400),
        ({"scope_type": "INCIDENT", "incident_type": "X", "ticket_id": "1"}, "INVALID_REQUEST", 400),
        ({"scope_type": "TICKET"}, "INVALID_REQUEST", 400),
        ({"scope_type": "TICKET", "ticket_id": "not-a-uuid"}, "INVALID_REQUEST", 400),
        ({"scope_type": "TICKET", "ticket_id": "00000000-0000-4000-8000-000000000000"}, "TICKET_NOT_FOUND", 404),
        ({"scope_type": "REGION"}, "INVALID_REQUEST", 400),
    ],
)
def test_bad_scopes_are_refused_and_write_nothing(dispatcher, kwargs, code, status):
    events = AuditEvent.objects.count()
    with pytest.raises(DispatchError) as caught:
        autonomy_pause(actor=dispatcher, **kwargs)
    assert (caught.value.code, caught.value.status) == (code, status)
    assert AutonomyPause.objects.count() == 0 and AuditEvent.objects.count() == events


def test_only_dispatchers_pause_or_roll_back():
    for role in (Role.AGENT, Role.TECHNICIAN, Role.QA):
        for call in (autonomy_pause, autonomy_rollback):
            with pytest.raises(DispatchError) as caught:
                call(actor=actor_for(role))
            assert caught.value.code == "TOOL_ROLE_FORBIDDEN"
    assert AutonomyPause.objects.count() == 0


def test_rolling_back_an_unpaused_scope_changes_nothing_but_is_recorded(dispatcher):
    change = autonomy_rollback(actor=dispatcher, scope_type="GLOBAL")
    assert (change.previous_is_paused, change.current_is_paused, change.pause) == (False, False, None)
    assert change.as_dict()["scope"]["scope_type"] == "GLOBAL"
    assert AuditEvent.objects.order_by("-created_at", "-id").first().tool_name == "ops.autonomy.rollback"


@pytest.fixture(params=["locmem", "database"])
def shared_cache(request, settings):
    """The cache tests run with, and the database cache every production process shares."""
    if request.param == "database":
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "autonomy_test_cache"}
        }
        call_command("createcachetable", verbosity=0)
    return request.param


def pause_table_reads(captured) -> list[str]:
    return [query["sql"] for query in captured if "closeout_autonomypause" in query["sql"]]


def test_a_pause_made_after_the_cache_was_warmed_is_obeyed_at_once(
    job, dispatcher, shared_cache, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        agent_add(job)
    # Warm: the next lookup does not read the pauses table.
    with CaptureQueriesContext(connection) as warm:
        assert autonomy_pause_effective(job) is None
    assert pause_table_reads(warm.captured_queries) == []

    autonomy_pause(actor=dispatcher, scope_type="INCIDENT", incident_type="DOOR_WONT_LATCH", reason="latch jobs")

    with pytest.raises(DispatchError) as caught:
        agent_add(job)
    assert (caught.value.code, caught.value.details["reason"]) == ("AUTONOMY_DISABLED", "latch jobs")


def test_a_rollback_made_after_the_cache_was_warmed_is_obeyed_at_once(
    job, dispatcher, shared_cache, django_capture_on_commit_callbacks
):
    autonomy_pause(actor=dispatcher, scope_type="TICKET", ticket_id=str(job.id))
    with django_capture_on_commit_callbacks(execute=True):
        autonomy_pause_effective(job)
    with CaptureQueriesContext(connection) as warm:
        assert autonomy_pause_effective(job) is not None
    assert pause_table_reads(warm.captured_queries) == []

    autonomy_rollback(actor=dispatcher, scope_type="TICKET", ticket_id=str(job.id))

    assert agent_add(job).result.kind == "PHOTO"


def test_while_a_pause_stands_refused_agents_are_answered_from_the_cache(
    job, dispatcher, shared_cache, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        autonomy_pause(actor=dispatcher, reason="Bad photos from the agent")
    for _ in range(2):
        with CaptureQueriesContext(connection) as refused, pytest.raises(DispatchError) as caught:
            agent_add(job)
        assert caught.value.code == "AUTONOMY_DISABLED"
        assert pause_table_reads(refused.captured_queries) == []
