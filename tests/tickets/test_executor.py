"""The executor: every change is one transaction with exactly one audit event, or nothing at all."""

from __future__ import annotations

from collections import deque

import pytest

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.audit import REDACTED, audit_chain_verify
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import TicketChange, ticket_cancel, ticket_triage
from dispatch.tickets.states import CREATION_STATES, TicketState
from dispatch.tickets.transitions import allowed_next_states, declared_edges
from tests.factories import SiteFactory, TechnicianFactory, actor_for, ticket_move, ticket_new, ticket_start

pytestmark = pytest.mark.django_db

# A command that may move a ticket anywhere the graph allows: lets the tests reach every state
# through the executor itself rather than by writing rows behind its back.
ANY_MOVE = command("test.move", ["dispatcher"])


def ticket_in(state: str, actor=None) -> Ticket:
    actor = actor or actor_for(Role.DISPATCHER)
    queue = deque((start, [start]) for start in sorted(CREATION_STATES))
    seen = set(CREATION_STATES)
    route = None
    while queue:
        current, states = queue.popleft()
        if current == state:
            route = states
            break
        for nxt in allowed_next_states(current):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, states + [nxt]))
    assert route, state
    site = SiteFactory()
    ticket = ticket_start(
        actor=actor, command=ANY_MOVE, ticket=Ticket(account=site.account, site=site, summary="Door", state=route[0])
    ).ticket
    for target in route[1:]:
        ticket = ticket_move(
            actor=actor, ticket_id=ticket.id, command=ANY_MOVE, apply=lambda ch, t=target: ch.transition(t)
        ).ticket
    assert ticket.state == state
    return ticket


def snapshot(ticket: Ticket) -> tuple:
    fresh = Ticket.objects.get(pk=ticket.pk)
    return (
        fresh.state,
        fresh.version,
        AuditEvent.objects.count(),
        StateTransition.objects.filter(ticket=ticket).count(),
    )


@pytest.mark.parametrize("source,target", sorted(declared_edges()))
def test_every_legal_transition_writes_one_event_and_one_transition_row(source, target):
    ticket = ticket_in(source)
    events_before = AuditEvent.objects.count()
    outcome = ticket_move(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=ANY_MOVE, apply=lambda ch: ch.transition(target)
    )
    assert AuditEvent.objects.count() == events_before + 1
    event = AuditEvent.objects.order_by("-created_at", "-id").first()
    assert (event.before_state, event.after_state, event.ticket_id) == (source, target, ticket.id)
    last = StateTransition.objects.filter(ticket=ticket).order_by("-seq").first()
    assert (last.from_state, last.to_state, last.audit_event_id) == (source, target, event.id)
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert fresh.state == target and fresh.version == ticket.version + 1 == outcome.ticket.version


ILLEGAL = sorted(
    (source.value, target.value)
    for source in TicketState
    for target in TicketState
    if source != target and (source.value, target.value) not in declared_edges()
)


@pytest.mark.parametrize("source,target", ILLEGAL)
def test_every_illegal_transition_is_refused_and_writes_nothing(source, target):
    ticket = ticket_in(source)
    before = snapshot(ticket)
    with pytest.raises(DispatchError) as refused:
        ticket_move(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ticket.id,
            command=ANY_MOVE,
            apply=lambda ch: ch.transition(target),
        )
    error = refused.value
    assert (error.code, error.status, error.dimension) == ("INVALID_STATE_TRANSITION", 409, "state")
    assert error.details["allowed_next_states"] == allowed_next_states(source)
    assert snapshot(ticket) == before


def test_a_service_refused_from_the_wrong_state_names_the_allowed_next_states():
    ticket = ticket_in("CLOSED")
    with pytest.raises(DispatchError) as refused:
        ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Customer called back")
    assert refused.value.code == "INVALID_STATE_TRANSITION"
    assert refused.value.details["allowed_next_states"] == []
    assert "CLOSED" in refused.value.message


def test_creation_writes_a_transition_row_from_nothing_and_one_event():
    ticket = ticket_new()
    rows = list(StateTransition.objects.filter(ticket=ticket).values_list("seq", "from_state", "to_state"))
    assert rows == [(1, "", "NEW")]
    assert AuditEvent.objects.filter(ticket=ticket).count() == 1
    assert ticket.version == 1


def test_an_opening_prepared_before_the_insert_writes_the_ticket_once(django_assert_num_queries):
    """`prepare` parks a new ticket before its row exists: one INSERT carries the final state
    and audit head, the opening event and both transition rows follow."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    site = SiteFactory()
    ticket = Ticket(account_id=site.account_id, site=site, summary="Back door won't latch", state="NEW")

    def prepare(change: TicketChange) -> str:
        change.transition("NEEDS_INFO")
        change.audit_payload["question"] = "What is the address?"
        return "parked"

    with CaptureQueriesContext(connection) as queries:
        outcome = ticket_start(actor=actor_for(Role.DISPATCHER), command=ANY_MOVE, ticket=ticket, prepare=prepare)
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(s.startswith('INSERT INTO "tickets_ticket"') for s in statements) == 1
    assert not [s for s in statements if s.startswith('UPDATE "tickets_ticket"')]
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.state, stored.transition_seq, stored.audit_seq) == ("NEEDS_INFO", 2, 1)
    assert outcome.result == "parked"
    assert outcome.event.payload["question"] == "What is the address?"
    assert list(
        StateTransition.objects.filter(ticket=ticket).order_by("seq").values_list("from_state", "to_state")
    ) == [
        ("", "NEW"),
        ("NEW", "NEEDS_INFO"),
    ]
    assert audit_chain_verify().ok


def test_a_change_writes_only_the_columns_it_touched():
    """A column the change did not touch keeps what another writer put there meanwhile."""
    ticket = ticket_new()

    # Written behind the executor's back while the change is being prepared.
    def apply(change: TicketChange):
        Ticket.objects.filter(pk=change.ticket.pk).update(description="Noted by the front desk")
        change.ticket.summary = "Back door will not latch"

    ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=ANY_MOVE, apply=apply)
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.summary, stored.description, stored.version) == (
        "Back door will not latch",
        "Noted by the front desk",
        2,
    )


def test_two_transitions_in_one_call_are_ordered_under_one_event():
    ticket = ticket_new()
    outcome = ticket_triage(
        actor=actor_for(Role.DISPATCHER),
        ticket_id=ticket.id,
        priority="URGENT",
        incident_type="door_wont_latch",
        outcome="READY_TO_SCHEDULE",
    )
    rows = list(
        StateTransition.objects.filter(ticket=ticket)
        .order_by("seq")
        .values_list("from_state", "to_state", "audit_event")
    )
    assert [r[:2] for r in rows] == [("", "NEW"), ("NEW", "TRIAGED"), ("TRIAGED", "READY_TO_SCHEDULE")]
    assert rows[1][2] == rows[2][2] == outcome.event.id
    assert outcome.ticket.incident_type == "DOOR_WONT_LATCH"
    assert (outcome.event.before_state, outcome.event.after_state) == ("NEW", "READY_TO_SCHEDULE")


def test_a_failing_change_rolls_back_fields_rows_and_audit():
    ticket = ticket_new()
    before = snapshot(ticket)

    def apply(change: TicketChange):
        change.ticket.summary = "changed"
        change.transition("TRIAGED")
        raise DispatchError("SOMETHING_WRONG", "refused late", status=409, dimension="policy")

    with pytest.raises(DispatchError):
        ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=ANY_MOVE, apply=apply)
    assert snapshot(ticket) == before
    assert Ticket.objects.get(pk=ticket.pk).summary != "changed"


def test_role_outside_the_command_is_refused_before_anything_is_read():
    ticket = ticket_new()
    with pytest.raises(DispatchError) as refused:
        ticket_cancel(actor=actor_for(Role.TECHNICIAN), ticket_id=ticket.id, reason="no")
    assert (refused.value.code, refused.value.status, refused.value.dimension) == ("TOOL_ROLE_FORBIDDEN", 403, "role")


def test_system_actor_may_take_any_command():
    from dispatch.common.actors import system_actor

    ticket = ticket_new()
    outcome = ticket_cancel(actor=system_actor("wakeup"), ticket_id=ticket.id, reason="Duplicate of another job")
    assert outcome.ticket.state == "CANCELLED"
    assert outcome.event.actor_type == "SYSTEM"


def test_a_technician_acts_only_on_their_own_assigned_ticket():
    mover = command("test.tech_move", ["technician"])
    dana, sam = TechnicianFactory(), TechnicianFactory()
    ticket = ticket_in("DISPATCHED")
    Ticket.objects.filter(pk=ticket.pk).update(assigned_tech=dana)  # assignment is not a state change
    with pytest.raises(DispatchError) as refused:
        ticket_move(
            actor=actor_for(Role.TECHNICIAN, technician=sam),
            ticket_id=ticket.id,
            command=mover,
            apply=lambda ch: ch.transition("ON_SITE"),
        )
    assert (refused.value.code, refused.value.status, refused.value.dimension) == ("FORBIDDEN_SCOPE", 403, "assignment")
    outcome = ticket_move(
        actor=actor_for(Role.TECHNICIAN, technician=dana),
        ticket_id=ticket.id,
        command=mover,
        apply=lambda ch: ch.transition("ON_SITE"),
    )
    assert outcome.ticket.state == "ON_SITE"


def test_a_scoped_actor_cannot_touch_another_accounts_ticket():
    ticket = ticket_new()
    other = SiteFactory()
    scoped = actor_for(Role.DISPATCHER, account_ids=frozenset({str(other.account_id)}))
    before = snapshot(ticket)
    with pytest.raises(DispatchError) as refused:
        ticket_cancel(actor=scoped, ticket_id=ticket.id, reason="not mine")
    assert (refused.value.code, refused.value.status) == ("FORBIDDEN_SCOPE", 403)
    assert snapshot(ticket) == before
    in_scope = actor_for(Role.DISPATCHER, site_ids=frozenset({str(ticket.site_id)}))
    assert ticket_cancel(actor=in_scope, ticket_id=ticket.id, reason="mine").ticket.state == "CANCELLED"


def test_a_stale_version_is_refused_with_a_conflict():
    ticket = ticket_new()
    ticket_triage(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, priority="ROUTINE", incident_type="DOOR_WONT_LATCH"
    )
    before = snapshot(ticket)
    with pytest.raises(DispatchError) as refused:
        ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="late click", expected_version=1)
    assert (refused.value.code, refused.value.status) == ("CONCURRENT_MODIFICATION", 409)
    assert refused.value.details == {"expected_version": 1, "current_version": 2}
    assert snapshot(ticket) == before


@pytest.mark.parametrize("ticket_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", None])
def test_an_unknown_ticket_is_not_found(ticket_id):
    with pytest.raises(DispatchError) as refused:
        ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket_id, reason="x")
    assert (refused.value.code, refused.value.status) == ("TICKET_NOT_FOUND", 404)


def test_audit_payload_is_redacted_at_any_depth():
    ticket = ticket_new()
    ticket_move(
        actor=actor_for(Role.DISPATCHER),
        ticket_id=ticket.id,
        command=ANY_MOVE,
        request={
            "note": "call first",
            "customer_phone": "+15105550101",
            "site": {"access_code": "4411#", "contacts": [{"email": "a@b.co", "name": "Ann"}]},
            "api_token": "rd_secret",
            "password": "x",
            "client_secret": "y",
        },
        apply=lambda ch: ch.transition("TRIAGED"),
    )
    payload = AuditEvent.objects.order_by("-created_at", "-id").first().payload
    assert payload["request"] == {
        "note": "call first",
        "customer_phone": REDACTED,
        "site": {"access_code": REDACTED, "contacts": [{"email": REDACTED, "name": "Ann"}]},
        "api_token": REDACTED,
        "password": REDACTED,
        "client_secret": REDACTED,
    }


def test_after_commit_work_runs_only_once_committed(django_capture_on_commit_callbacks):
    ticket = ticket_new()
    ran = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket_move(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ticket.id,
            command=ANY_MOVE,
            apply=lambda ch: ch.after_commit(lambda: ran.append("sent")),
        )
    assert ran == ["sent"] and len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(DispatchError):

        def apply(ch):
            ch.after_commit(lambda: ran.append("never"))
            raise DispatchError("NOPE", "refused", status=409, dimension="policy")

        ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=ANY_MOVE, apply=apply)
    assert ran == ["sent"] and callbacks == []


def test_a_change_without_a_transition_still_writes_exactly_one_event_and_bumps_version():
    ticket = ticket_triage(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket_new().id, priority="ROUTINE", incident_type="DOOR_WONT_LATCH"
    ).ticket
    rows_before = StateTransition.objects.filter(ticket=ticket).count()
    outcome = ticket_triage(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, priority="EMERGENCY", incident_type="CANNOT_SECURE_ENTRY"
    )
    assert outcome.ticket.state == "TRIAGED" and outcome.ticket.priority == "EMERGENCY"
    assert outcome.ticket.version == ticket.version + 1
    assert StateTransition.objects.filter(ticket=ticket).count() == rows_before
    assert (outcome.event.before_state, outcome.event.after_state) == ("TRIAGED", "TRIAGED")


def test_the_chain_verifies_after_many_changes():
    for _ in range(3):
        ticket = ticket_in("IN_PROGRESS")
        ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Customer cancelled")
    report = audit_chain_verify()
    assert report.ok, report.problem
    assert report.checked == AuditEvent.objects.count()


def test_audit_events_cannot_be_changed_or_deleted_through_the_orm():
    ticket = ticket_new()
    event = AuditEvent.objects.get(ticket=ticket)
    event.payload = {"forged": True}
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(tool_name="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert audit_chain_verify().ok


def test_the_state_field_cannot_be_assigned_directly():
    ticket = ticket_new()
    with pytest.raises(AttributeError):
        ticket.state = "CLOSED"


def test_details_edit_records_old_and_new_values_and_refuses_protected_fields():
    from dispatch.tickets.audit import REDACTED
    from dispatch.tickets.services import ticket_update_details

    ticket = ticket_new(summary="Door sticks")
    outcome = ticket_update_details(
        actor=actor_for(Role.DISPATCHER),
        ticket_id=ticket.id,
        changes={"summary": "Rear door sticks in the frame", "customer_phone": "+15105550123"},
    )
    assert outcome.ticket.summary == "Rear door sticks in the frame"
    assert outcome.event.payload["changes"]["summary"] == {"from": "Door sticks", "to": "Rear door sticks in the frame"}
    assert outcome.event.payload["changes"]["customer_phone"] == REDACTED
    before = snapshot(ticket)
    for changes in (
        {"state": "CLOSED"},
        {"nte_cents": 1},
        {"summary": "  "},
        {"summary": "Rear door sticks in the frame"},
    ):
        with pytest.raises(DispatchError) as refused:
            ticket_update_details(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, changes=changes)
        assert refused.value.code == "INVALID_REQUEST"
    assert snapshot(ticket) == before
