"""Closeout fixtures: a technician with a job in progress."""

from __future__ import annotations

import pytest

from dispatch.common.roles import Role
from tests.factories import TechnicianFactory, actor_for, ticket_at


@pytest.fixture
def technician():
    return TechnicianFactory()


@pytest.fixture
def tech_actor(technician):
    return actor_for(Role.TECHNICIAN, technician=technician)


@pytest.fixture
def job(technician):
    """A DOOR_WONT_LATCH ticket in progress, assigned to `technician`."""
    return ticket_at("IN_PROGRESS", technician=technician)
