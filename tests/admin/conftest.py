"""Fixtures for the back-office tests: logged-in clients per role."""

from __future__ import annotations

import pytest

from dispatch.common.roles import role_groups_sync
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _role_groups(db):
    # The groups and their permissions come from a post_migrate hook; a flush (transactional
    # tests) removes them, and UserFactory would then create empty groups.
    role_groups_sync()


def logged_in(client, role: str | None = None, **fields):
    user = UserFactory(role=role, **fields) if role else UserFactory(**fields)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def dispatcher_client(client):
    return logged_in(client, "dispatcher")


@pytest.fixture
def admin_client_(client):
    """A superuser with no role group: acts as admin (and as a dispatcher on the dispatch desk)."""
    return logged_in(client, is_staff=True, is_superuser=True)
