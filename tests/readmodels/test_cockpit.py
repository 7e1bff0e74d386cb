"""The dispatcher's cockpit lists only the tickets the caller may see (the policy's access rule)."""

from __future__ import annotations

import pytest

from dispatch.api.registry import TOOLS
from dispatch.common.roles import Role
from dispatch.readmodels.cockpit import dispatcher_cockpit
from tests.factories import TechnicianFactory, actor_for, ticket_dispatched, ticket_new

pytestmark = pytest.mark.django_db


def queue_ids(actor) -> list[str]:
    return [row["ticket_id"] for row in dispatcher_cockpit(actor=actor, commands=TOOLS)["queue"]]


def test_a_technician_sees_only_the_jobs_assigned_to_them():
    mine = ticket_dispatched(technician=TechnicianFactory(skills=["DOOR_WONT_LATCH"]))
    ticket_dispatched(technician=TechnicianFactory(skills=["DOOR_WONT_LATCH"]))
    ticket_new()

    assert queue_ids(actor_for(Role.TECHNICIAN, technician=mine.assigned_tech)) == [str(mine.id)]
    assert len(queue_ids(actor_for(Role.DISPATCHER))) == 3


def test_a_customer_credential_without_a_scope_sees_no_ticket():
    ticket_new()
    assert queue_ids(actor_for(Role.CUSTOMER)) == []


def test_a_site_scoped_credential_sees_only_its_sites_tickets():
    ticket = ticket_new()
    ticket_new()
    assert queue_ids(actor_for(Role.DISPATCHER, site_ids=frozenset({str(ticket.site_id)}))) == [str(ticket.id)]
