"""Sign-in tests: real sign-in forms, real addresses, the clock moved by time-machine."""

from __future__ import annotations

import pytest
from django.test import Client

from dispatch.common.roles import role_groups_sync
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"
ATTACKER = "203.0.113.7"
OFFICE = "198.51.100.20"


@pytest.fixture(autouse=True)
def _role_groups(db):
    role_groups_sync()


def sign_in(client: Client, username: str, password: str = PASSWORD, *, address: str = OFFICE, path="/admin/login/"):
    """POST the sign-in form as a browser at `address` would."""
    return client.post(path, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def user_with(role: str, username: str | None = None):
    return UserFactory(role=role, **({"username": username} if username else {}))


@pytest.fixture
def dispatcher_user():
    return user_with("dispatcher", "riley")
