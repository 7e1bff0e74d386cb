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


@pytest.fixture(autouse=True)
def billing(db):
    """Labor bills at the standard rate whenever these tests happen to run: the rate classes
    (after-hours, weekends, emergency) are exercised by test_invoice_rates, which sets its own hours."""
    from datetime import time

    from dispatch.closeout.billing import billing_settings

    profile = billing_settings()
    profile.business_hours_start = time(0, 0)
    profile.business_hours_end = time.max
    profile.weekends_after_hours = False
    profile.save()
    return profile
