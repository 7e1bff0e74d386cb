"""The back office's "Propose windows" form starts from the slot engine's best windows."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse
from django.utils import timezone

from dispatch.scheduling.engine import slots_suggest
from tests.factories import SiteFactory, TechnicianFactory, shifts_every_day, ticket_ready_to_schedule

pytestmark = pytest.mark.django_db


def test_the_propose_form_is_prefilled_with_the_engines_windows_and_reasons(dispatcher_client):
    technician = TechnicianFactory(skills=["DOOR_WONT_LATCH"], region_codes=["EAST_BAY"])
    shifts_every_day(technician)
    ticket = ticket_ready_to_schedule(site=SiteFactory(service_region="EAST_BAY"))
    best = slots_suggest(ticket=ticket, limit=3).windows
    assert best, "the engine should place this ticket"

    page = html.unescape(
        dispatcher_client.get(
            reverse("admin:tickets_ticket_transition", args=[ticket.pk, "schedule-propose"])
        ).content.decode()
    )

    assert "Suggested by the slot engine" in page
    assert best[0].reason in page
    assert timezone.localtime(best[0].start).strftime("%Y-%m-%dT%H:%M") in page


def test_without_any_window_the_form_says_why(dispatcher_client):
    ticket = ticket_ready_to_schedule(incident_type="FRAME_OR_GLASS_DAMAGE")  # nobody has the skill or a shift

    page = html.unescape(
        dispatcher_client.get(
            reverse("admin:tickets_ticket_transition", args=[ticket.pk, "schedule-propose"])
        ).content.decode()
    )

    assert "The slot engine found no window" in page
