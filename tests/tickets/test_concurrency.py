"""Two changes of one ticket at the same moment: one wins, the other is refused, nothing is lost.

These need real row locks, so they run in the PostgreSQL pass of `make test`.
"""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.audit import audit_chain_verify
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import ticket_cancel, ticket_request_info, ticket_triage
from tests.factories import actor_for, ticket_new

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(*calls):
    """Start every call at the same instant in its own thread (own connection); collect outcomes."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except DispatchError as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_different_transitions_racing_one_wins_and_the_other_gets_a_conflict():
    assert connection.vendor == "postgresql"
    ticket = ticket_new()
    seen_version = ticket.version
    results = run_together(
        lambda: ticket_triage(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, priority="URGENT",
                              incident_type="DOOR_WONT_LATCH", expected_version=seen_version),
        lambda: ticket_request_info(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id,
                                    question="What is the address?", expected_version=seen_version),
    )
    errors = [r for r in results if isinstance(r, DispatchError)]
    wins = [r for r in results if not isinstance(r, DispatchError)]
    assert len(wins) == 1 and len(errors) == 1, results
    assert (errors[0].code, errors[0].status) == ("CONCURRENT_MODIFICATION", 409)
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert fresh.version == seen_version + 1
    assert fresh.state == wins[0].ticket.state
    assert AuditEvent.objects.filter(ticket=ticket).count() == 2
    assert StateTransition.objects.filter(ticket=ticket).count() == 2


def test_the_same_transition_twice_at_once_happens_once():
    ticket = ticket_new()
    results = run_together(
        *[lambda: ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Customer cancelled")] * 2
    )
    errors = [r for r in results if isinstance(r, DispatchError)]
    assert len(errors) == 1, results
    # The loser waited on the row lock, then saw CANCELLED: it is told the move is no longer legal.
    assert (errors[0].code, errors[0].status) == ("INVALID_STATE_TRANSITION", 409)
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert (fresh.state, fresh.version) == ("CANCELLED", 2)
    assert StateTransition.objects.filter(ticket=ticket, to_state="CANCELLED").count() == 1


def test_concurrent_changes_of_many_tickets_keep_one_unbroken_audit_chain():
    tickets = [ticket_new() for _ in range(8)]
    run_together(*[
        (lambda t=t: ticket_triage(actor=actor_for(Role.DISPATCHER), ticket_id=t.id, priority="ROUTINE",
                                   incident_type="HARDWARE_REPLACEMENT"))
        for t in tickets
    ])
    assert Ticket.objects.filter(state="TRIAGED").count() == 8
    report = audit_chain_verify()
    assert report.ok, report.problem
    assert report.checked == 16
    seqs = sorted(AuditEvent.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, 17))
