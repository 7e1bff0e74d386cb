"""The deployment the scale-out run drives, and Django in this process pointed at its database.

The run is one story told in order (the module docstring of test_deployment.py says which test
leaves what for the next), against one deployment started once for the session.
"""

from __future__ import annotations

import itertools
import os
import signal
from dataclasses import dataclass

import pytest

from scaleout.deployment import Deployment, deployment_running

TECH_PASSWORD = "scale-out technician passphrase 42"


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    # A SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so the servers are torn down.
    signal.signal(signal.SIGTERM, _interrupted)
    with deployment_running() as running:
        # This process reads and checks the same database and bucket with the same settings.
        os.environ.update(running.env)
        import django

        django.setup()
        yield running


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Company:
    account_id: str
    site_id: str
    tokens: dict
    technician_id: str
    technician_token: str
    technician_username: str


@pytest.fixture(scope="session")
def company(deployment) -> Company:
    """An account, a site, API tokens for the back office's roles and one technician who can
    sign in to /tech/ and who holds an API token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from bench.toolset import storefront_create
    from dispatch.api.services import api_token_create
    from dispatch.technicians.models import Region, Technician, TechnicianSkill

    account, site = storefront_create("Scale-out Properties")
    tokens = {role: api_token_create(name=f"scaleout-{role}", role=role)[1] for role in ("dispatcher", "qa", "finance")}
    region, _ = Region.objects.get_or_create(code="EAST_BAY", defaults={"name": "East Bay"})
    user = get_user_model().objects.create_user(username="scaleout-tech", password=TECH_PASSWORD)
    Group.objects.get_or_create(name="technician")[0].user_set.add(user)
    technician = Technician.objects.create(
        user=user, display_name="Sam Scale", home_lat="37.8044", home_lng="-122.2711"
    )
    technician.regions.add(region)
    TechnicianSkill.objects.create(technician=technician, incident_type="CANNOT_SECURE_ENTRY", level=4)
    _, tech_token = api_token_create(name="scaleout-tech", role="technician", user=user)
    return Company(
        account_id=str(account.id),
        site_id=str(site.id),
        tokens=tokens,
        technician_id=str(technician.id),
        technician_token=tech_token,
        technician_username=user.username,
    )


class Alternating:
    """Hands out the two web processes' base URLs in turn: every next call goes to the other one."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self._cycle = itertools.cycle(urls)

    def next(self) -> str:
        return next(self._cycle)


@pytest.fixture(scope="session")
def webs(deployment) -> Alternating:
    return Alternating(deployment.web_urls)
