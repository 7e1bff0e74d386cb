"""The demo company has working hours and time off, and the engine places its queued jobs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dispatch.demo.services import demo_load
from dispatch.scheduling.engine import slots_suggest
from dispatch.scheduling.models import Shift, TimeOff
from dispatch.tickets.models import Ticket

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")


def test_the_demo_queue_gets_windows_inside_the_demo_shifts():
    demo_load()
    shifts = Shift.objects.count()
    assert shifts and TimeOff.objects.count() == 1
    demo_load()
    assert Shift.objects.count() == shifts and TimeOff.objects.count() == 1
    assert Shift.objects.filter(technician__display_name="Jordan Lee", start_time="12:00").count() == 5
    assert Shift.objects.filter(weekday=5).exists()

    queued = Ticket.objects.filter(state="READY_TO_SCHEDULE").select_related("site")
    assert queued
    for ticket in queued:
        suggestion = slots_suggest(ticket=ticket)
        assert suggestion.windows, suggestion.explanation
        for window in suggestion.windows:
            local = window.start.astimezone(LA)
            assert 7 <= local.hour < 21
            assert window.reason.startswith(window.technician_name + ": has " + ticket.incident_type)
