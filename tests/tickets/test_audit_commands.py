"""`verify_audit` and `replay_ticket`: what an operator sees when the records are intact, and
when someone edited or deleted rows behind the application's back with SQL."""

from __future__ import annotations

import itertools
import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from dispatch.tickets.management.commands.replay_ticket import Command as ReplayCommand
from dispatch.tickets.management.commands.verify_audit import Command as VerifyCommand
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import ticket_cancel, ticket_triage
from tests.factories import actor_for, ticket_new

pytestmark = pytest.mark.django_db


def _run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _failure(name: str, *args: str) -> str:
    with pytest.raises(CommandError) as refused:
        _run(name, *args)
    return str(refused.value)


def _raw(sql: str, params: list) -> None:
    # Behind the application's back: the model refuses updates and deletes of audit events.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _uuid(value):
    """A UUID as this database stores it (SQLite keeps 32 hex characters, PostgreSQL a uuid)."""
    return Ticket._meta.pk.get_db_prep_value(value, connection)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _event_table() -> str:
    return _table(AuditEvent)


@pytest.fixture
def trail():
    """Three tickets, nine events. On their own chains: first #1-#4 (#3 a re-triage that moved
    no state), second #1-#2, third #1-#3 (#3 a re-triage). Each opening is also a lane link."""
    actor = actor_for("dispatcher")
    first = ticket_new(actor=actor, summary="Lobby door closer slamming")  # first #1
    ticket_triage(actor=actor, ticket_id=first.id, priority="ROUTINE", incident_type="CLOSER_LEAKING_OR_SLAMMING")  # #2
    ticket_triage(actor=actor, ticket_id=first.id, priority="URGENT", incident_type="CLOSER_LEAKING_OR_SLAMMING")  # #3
    second = ticket_new(actor=actor, summary="Back door won't latch")  # second #1
    ticket_triage(
        actor=actor,
        ticket_id=first.id,
        priority="URGENT",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        outcome="READY_TO_SCHEDULE",
    )  # first #4
    ticket_cancel(actor=actor, ticket_id=second.id, reason="Customer fixed it themselves")  # second #2
    third = ticket_new(actor=actor, summary="Sliding door stuck open")  # third #1
    ticket_triage(actor=actor, ticket_id=third.id, priority="URGENT", incident_type="AUTO_OPERATOR_FAULT")  # #2
    ticket_triage(actor=actor, ticket_id=third.id, priority="EMERGENCY", incident_type="AUTO_OPERATOR_FAULT")  # #3
    return {
        "actor": actor,
        "first": Ticket.objects.get(pk=first.id),
        "second": Ticket.objects.get(pk=second.id),
        "third": Ticket.objects.get(pk=third.id),
    }


def _event(ticket, seq):
    return AuditEvent.objects.get(ticket=ticket, seq=seq)


def test_verify_audit_passes_on_an_intact_chain(trail):
    output = _run("verify_audit")

    assert output.strip() == "Audit chain intact: 9 events checked."


def test_verify_audit_passes_on_an_empty_database():
    assert _run("verify_audit").strip() == "Audit chain intact: 0 events checked."


def test_each_ticket_keeps_its_own_gapless_chain_and_head(trail):
    for name, count in (("first", 4), ("second", 2), ("third", 3)):
        ticket = trail[name]
        events = list(AuditEvent.objects.filter(ticket=ticket).order_by("seq"))
        assert [event.seq for event in events] == list(range(1, count + 1))
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
        assert (ticket.audit_seq, ticket.audit_hash) == (count, events[-1].hash)
        # Only the opening is a lane link.
        assert [event.lane is not None for event in events] == [True] + [False] * (count - 1)


def test_verify_audit_names_the_event_whose_payload_was_edited(trail):
    event = _event(trail["first"], 3)
    tampered = json.dumps({"priority": "EMERGENCY"})
    _raw(f"UPDATE {_event_table()} SET payload = %s WHERE id = %s", [tampered, _uuid(event.id)])

    message = _failure("verify_audit")

    assert f"{trail['first'].short_ref} event #3 (id {event.id})" in message
    assert "altered" in message


def test_verify_audit_names_an_event_whose_state_was_rewritten(trail):
    event = _event(trail["second"], 2)
    _raw(f"UPDATE {_event_table()} SET after_state = %s WHERE id = %s", ["CLOSED", _uuid(event.id)])

    message = _failure("verify_audit")

    assert f"{trail['second'].short_ref} event #2 (id {event.id})" in message


def test_verify_audit_names_an_edited_opening_event_through_its_lane(trail):
    event = _event(trail["third"], 1)
    _raw(f"UPDATE {_event_table()} SET actor_id = %s WHERE id = %s", ["someone-else", _uuid(event.id)])

    message = _failure("verify_audit")

    assert f"lane {event.lane} event #{event.lane_seq} (id {event.id})" in message
    assert "altered" in message


def test_verify_audit_names_the_missing_seq_after_a_middle_event_is_deleted(trail):
    # The first ticket's #3 (a re-triage) moved no state, so no transition row points at it.
    gone = _event(trail["first"], 3)
    assert not gone.transitions.exists()
    next_event = _event(trail["first"], 4)
    _raw(f"DELETE FROM {_event_table()} WHERE id = %s", [_uuid(gone.id)])

    message = _failure("verify_audit")

    assert f"{trail['first'].short_ref} event #3" in message
    assert "missing" in message
    assert str(next_event.id) in message


def test_verify_audit_fails_when_a_tickets_last_event_is_deleted(trail):
    last = _event(trail["third"], 3)
    assert not last.transitions.exists()
    _raw(f"DELETE FROM {_event_table()} WHERE id = %s", [_uuid(last.id)])

    message = _failure("verify_audit")

    assert f"{trail['third'].short_ref} event #3" in message
    assert "the ticket's audit head says it ends at #3" in message


def test_verify_audit_fails_when_the_tail_is_deleted_and_the_ticket_head_rewound_to_match(trail):
    """Deleting a ticket's newest event and rewinding its head with SQL still shows: the head is sealed."""
    ticket = trail["third"]
    second = _event(ticket, 2)
    _raw(f"DELETE FROM {_event_table()} WHERE id = %s", [_uuid(_event(ticket, 3).id)])
    _raw(
        f"UPDATE {_table(Ticket)} SET audit_seq = %s, audit_hash = %s WHERE id = %s",
        [2, second.hash, _uuid(ticket.id)],
    )

    message = _failure("verify_audit")

    assert "audit head was altered" in message


def test_verify_audit_fails_when_a_tickets_head_is_zeroed_to_hide_its_events(trail):
    ticket = trail["first"]
    _raw(
        f"UPDATE {_table(Ticket)} SET audit_seq = 0, audit_hash = '', audit_seal = '' WHERE id = %s", [_uuid(ticket.id)]
    )

    message = _failure("verify_audit")

    assert f"{ticket.short_ref} event #1" in message and "beyond the ticket's audit head" in message


def _erase_ticket(ticket) -> None:
    """Everything of one ticket removed with SQL, in the order the foreign keys demand."""
    _raw(f"DELETE FROM {_table(StateTransition)} WHERE ticket_id = %s", [_uuid(ticket.id)])
    _raw(f"DELETE FROM {_event_table()} WHERE ticket_id = %s", [_uuid(ticket.id)])
    _raw(f"DELETE FROM {_table(Ticket)} WHERE id = %s", [_uuid(ticket.id)])


def test_erasing_a_whole_ticket_leaves_a_gap_in_its_lane(trail):
    opening = _event(trail["second"], 1)
    _erase_ticket(trail["second"])

    message = _failure("verify_audit")

    assert f"lane {opening.lane} event #{opening.lane_seq}" in message and "missing" in message


def test_erasing_a_whole_ticket_and_rewinding_its_lane_still_shows(trail):
    from dispatch.tickets.audit import GENESIS_HASH
    from dispatch.tickets.models import AuditChainHead

    opening = _event(trail["second"], 1)
    before = AuditEvent.objects.filter(lane=opening.lane, lane_seq=opening.lane_seq - 1).first()
    _erase_ticket(trail["second"])
    _raw(
        f"UPDATE {_table(AuditChainHead)} SET last_seq = %s, last_hash = %s WHERE id = %s",
        [opening.lane_seq - 1, before.hash if before else GENESIS_HASH, opening.lane],
    )

    message = _failure("verify_audit")

    assert f"lane {opening.lane}" in message and "lane head was altered" in message


def test_verify_audit_fails_when_an_event_id_is_rewritten(trail):
    import uuid

    event = _event(trail["first"], 3)
    _raw(f"UPDATE {_event_table()} SET id = %s WHERE id = %s", [_uuid(uuid.uuid4()), _uuid(event.id)])

    message = _failure("verify_audit")

    assert f"{trail['first'].short_ref} event #3" in message and "altered" in message
    assert str(event.id) not in message


def test_deleting_the_last_state_change_breaks_the_chain_and_the_replay():
    actor = actor_for("dispatcher")
    ticket = ticket_new(actor=actor)
    ticket_triage(actor=actor, ticket_id=ticket.id, priority="ROUTINE", incident_type="DOOR_WONT_LATCH")
    cancel = ticket_cancel(actor=actor, ticket_id=ticket.id, reason="Entered twice").event
    # Someone erases the cancellation: its transition row (the foreign key demands it first), then the event.
    _raw(f"DELETE FROM {_table(StateTransition)} WHERE audit_event_id = %s", [_uuid(cancel.id)])
    _raw(f"DELETE FROM {_event_table()} WHERE id = %s", [_uuid(cancel.id)])

    assert f"event #{cancel.seq}" in _failure("verify_audit")
    replay = _failure("replay_ticket", str(ticket.id))
    assert "rebuilt state TRIAGED does not match the stored state CANCELLED" in replay


def test_verify_audit_fails_when_the_first_event_is_deleted():
    actor = actor_for("dispatcher")
    ticket = ticket_new(actor=actor)
    ticket_triage(actor=actor, ticket_id=ticket.id, priority="ROUTINE", incident_type="DOOR_WONT_LATCH")
    ticket_triage(actor=actor, ticket_id=ticket.id, priority="URGENT", incident_type="DOOR_WONT_LATCH")
    opening = _event(ticket, 1)
    # Event #1 is the creation; its transition row goes first, as the foreign key demands.
    _raw(f"DELETE FROM {_table(StateTransition)} WHERE ticket_id = %s AND seq = 1", [_uuid(ticket.id)])
    _raw(f"DELETE FROM {_event_table()} WHERE id = %s", [_uuid(opening.id)])

    message = _failure("verify_audit")

    # The lane is walked first: the opening is missing there.
    assert f"lane {opening.lane} event #{opening.lane_seq}" in message and "missing" in message


def test_verify_audit_exits_with_status_1_from_the_command_line(trail):
    _raw(
        f"UPDATE {_event_table()} SET actor_id = %s WHERE id = %s",
        ["someone-else", _uuid(_event(trail["first"], 2).id)],
    )
    stderr = StringIO()
    command = VerifyCommand(stderr=stderr)

    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "verify_audit"])

    assert exited.value.code == 1
    assert f"{trail['first'].short_ref} event #2" in stderr.getvalue()


def test_replay_ticket_rebuilds_the_path_and_matches(trail):
    ticket = trail["first"]

    output = _run("replay_ticket", str(ticket.id))

    assert "Path: NEW → TRIAGED → READY_TO_SCHEDULE" in output
    assert "ticket.create" in output and "ticket.triage" in output
    assert "Rebuilt state READY_TO_SCHEDULE matches the stored state." in output


def test_replay_ticket_matches_a_cancelled_ticket(trail):
    output = _run("replay_ticket", str(trail["second"].id))

    assert "Path: NEW → CANCELLED" in output
    assert "matches the stored state" in output


def test_replay_ticket_reports_a_state_edited_with_sql(trail):
    ticket = trail["first"]
    table = connection.ops.quote_name(Ticket._meta.db_table)
    _raw(f"UPDATE {table} SET state = %s WHERE id = %s", ["SCHEDULED", _uuid(ticket.id)])

    message = _failure("replay_ticket", str(ticket.id))

    assert "rebuilt state READY_TO_SCHEDULE does not match the stored state SCHEDULED" in message


def test_replay_ticket_reports_a_deleted_transition_row(trail):
    ticket = trail["first"]
    table = connection.ops.quote_name(StateTransition._meta.db_table)
    _raw(f"DELETE FROM {table} WHERE ticket_id = %s AND seq = 2", [_uuid(ticket.id)])

    message = _failure("replay_ticket", str(ticket.id))

    assert "transition #2 is missing" in message
    assert "starts from TRIAGED but the ticket was in NEW" in message
    assert "no transition row records it" in message


def test_replay_ticket_reports_a_transition_the_graph_does_not_have(trail):
    ticket = trail["second"]
    table = connection.ops.quote_name(StateTransition._meta.db_table)
    _raw(f"UPDATE {table} SET to_state = %s WHERE ticket_id = %s AND seq = 2", ["CLOSED", _uuid(ticket.id)])

    message = _failure("replay_ticket", str(ticket.id))

    assert "transition #2 (NEW → CLOSED) is not an edge of the declared graph" in message


def test_replay_ticket_exits_with_status_1_from_the_command_line(trail):
    ticket = trail["second"]
    table = connection.ops.quote_name(Ticket._meta.db_table)
    _raw(f"UPDATE {table} SET state = %s WHERE id = %s", ["NEW", _uuid(ticket.id)])
    stderr = StringIO()

    with pytest.raises(SystemExit) as exited:
        ReplayCommand(stdout=StringIO(), stderr=stderr).run_from_argv(["manage.py", "replay_ticket", str(ticket.id)])

    assert exited.value.code == 1
    assert "does not match the stored state NEW" in stderr.getvalue()


def test_replay_ticket_refuses_an_unknown_ticket():
    assert "No ticket" in _failure("replay_ticket", "00000000-0000-0000-0000-000000000000")
    assert "No ticket" in _failure("replay_ticket", "not-a-uuid")


# --- an event dressed up as a lane link, a forged lane event, an event with no ticket row ------


def test_an_edited_event_posing_as_a_lane_link_is_caught(trail):
    event = _event(trail["first"], 3)
    _raw(
        f"UPDATE {_event_table()} SET payload = %s, after_state = %s, lane = 1, lane_seq = NULL WHERE id = %s",
        [json.dumps({"forged": True}), "CANCELLED", _uuid(event.id)],
    )

    message = _failure("verify_audit")

    assert str(event.id) in message


def test_a_later_event_claiming_a_lane_position_is_caught(trail):
    event = _event(trail["first"], 2)
    _raw(
        f"UPDATE {_event_table()} SET actor_id = %s, lane = 5, lane_seq = 0 WHERE id = %s",
        ["someone-else", _uuid(event.id)],
    )

    message = _failure("verify_audit")

    assert str(event.id) in message


def test_a_forged_ticketless_event_outside_every_lane_position_is_caught(trail):
    from django.utils import timezone

    forged = uuid.uuid4()
    _raw(
        f"INSERT INTO {_event_table()} (id, ticket_id, seq, lane, lane_seq, actor_type, actor_id, actor_role, tool_name,"
        " request_id, correlation_id, trace_id, before_state, after_state, payload, created_at, prev_hash, hash)"
        " VALUES (%s, NULL, NULL, 3, NULL, 'HUMAN', 'x', 'dispatcher', 'ops.autonomy.pause', '', '', '', '', '', '{}',"
        " %s, %s, %s)",
        [_uuid(forged), connection.ops.adapt_datetimefield_value(timezone.now()), "0" * 64, "f" * 64],
    )

    message = _failure("verify_audit")

    assert str(forged) in message and "belongs to no chain" in message


def test_events_whose_ticket_row_was_deleted_with_foreign_keys_off_are_caught(trail):
    ticket = trail["first"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            cursor.execute("PRAGMA defer_foreign_keys = ON")
        cursor.execute(f"DELETE FROM {_table(Ticket)} WHERE id = %s", [_uuid(ticket.id)])
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")

    message = _failure("verify_audit")

    assert "outside every chain" in message and "ticket row is gone" in message
    # Leave no dangling keys for the end-of-test constraint check.
    _raw(f"DELETE FROM {_table(StateTransition)} WHERE ticket_id = %s", [_uuid(ticket.id)])
    _raw(f"DELETE FROM {_event_table()} WHERE ticket_id = %s", [_uuid(ticket.id)])
