"""Two changes of one ticket at the same moment: one wins, the other is refused, nothing is lost.

These need real row locks, so they run in the PostgreSQL pass of `make test`.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.audit import audit_chain_verify
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import TICKET_CREATE, ticket_cancel, ticket_request_info, ticket_triage
from tests.factories import SiteFactory, actor_for, ticket_new, ticket_start

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
        lambda: ticket_triage(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ticket.id,
            priority="URGENT",
            incident_type="DOOR_WONT_LATCH",
            expected_version=seen_version,
        ),
        lambda: ticket_request_info(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ticket.id,
            question="What is the address?",
            expected_version=seen_version,
        ),
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


def test_concurrent_changes_of_many_tickets_keep_unbroken_audit_chains():
    tickets = [ticket_new() for _ in range(8)]
    run_together(
        *[
            (
                lambda t=t: ticket_triage(
                    actor=actor_for(Role.DISPATCHER),
                    ticket_id=t.id,
                    priority="ROUTINE",
                    incident_type="HARDWARE_REPLACEMENT",
                )
            )
            for t in tickets
        ]
    )
    assert Ticket.objects.filter(state="TRIAGED").count() == 8
    report = audit_chain_verify()
    assert report.ok, report.problem
    assert report.checked == 16
    for ticket in tickets:
        assert list(AuditEvent.objects.filter(ticket=ticket).order_by("seq").values_list("seq", flat=True)) == [1, 2]


def test_tickets_opened_at_once_in_the_same_lane_keep_the_lane_gapless():
    """Openings are lane links: several at once, all landing in one lane, queue on its head."""
    from dispatch.tickets.audit import lane_of
    from dispatch.tickets.models import Ticket as TicketModel

    lane = 7
    ids = []
    while len(ids) < 6:
        candidate = uuid.uuid4()
        if lane_of(candidate) == lane:
            ids.append(candidate)
    site = SiteFactory()

    def open_one(ticket_id):
        def run():
            ticket = TicketModel(id=ticket_id, account_id=site.account_id, site=site, summary="Door stuck", state="NEW")
            return ticket_start(actor=actor_for(Role.DISPATCHER), command=TICKET_CREATE, ticket=ticket)

        return run

    results = run_together(*[open_one(ticket_id) for ticket_id in ids])
    assert all(getattr(result, "event", None) is not None for result in results), results
    lane_seqs = sorted(AuditEvent.objects.filter(lane=lane).values_list("lane_seq", flat=True))
    assert lane_seqs == list(range(1, 7))
    assert audit_chain_verify().ok
