"""What the board's tests share: tomorrow in the company's time zone, a technician with shifts,
and a dispatcher signed in at the desk (import the fixtures into a test module to use them)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dispatch.common.roles import role_groups_sync
from tests.factories import TechnicianFactory, UserFactory, shifts_every_day

LA = ZoneInfo("America/Los_Angeles")


def tomorrow() -> date:
    return timezone.now().astimezone(LA).date() + timedelta(days=1)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(tomorrow(), time(hour, minute), tzinfo=LA)


def technician(name: str):
    tech = TechnicianFactory(display_name=name, skills=["DOOR_WONT_LATCH"], region_codes=["EAST_BAY"])
    shifts_every_day(tech, start="07:00", end="17:00")
    return tech


# Named apart from their fixture names, so a test taking `desk` does not shadow the import.
@pytest.fixture(autouse=True, name="role_groups")
def role_groups_fixture(db):
    role_groups_sync()


@pytest.fixture(name="desk")
def desk_fixture(client):
    client.force_login(UserFactory(username="riley", role="dispatcher"))
    return client
