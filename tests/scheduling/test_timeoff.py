"""Time off: recorded through the service (audited), listing the booked jobs it falls on without
changing them; the engine then keeps the technician free of new work in it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import Appointment, TimeOff
from dispatch.scheduling.services import time_off_add
from dispatch.tickets.models import AuditEvent
from tests.factories import (
    TechnicianFactory,
    UserFactory,
    actor_for,
    ticket_scheduled,
    window_at,
)

pytestmark = pytest.mark.django_db


def test_time_off_over_booked_jobs_lists_them_and_changes_nothing_else(dispatcher):
    dana = TechnicianFactory(display_name="Dana Reyes")
    inside_start, inside_end = window_at(days=2, hour=9)
    inside = ticket_scheduled(technician=dana, start=inside_start, end=inside_end)
    outside_start, outside_end = window_at(days=5, hour=9)
    ticket_scheduled(technician=dana, start=outside_start, end=outside_end)
    before = {a.pk: (a.status, a.start) for a in Appointment.objects.all()}

    result = time_off_add(
        actor=dispatcher,
        technician_id=dana.id,
        start=inside_start - timedelta(days=1),
        end=inside_end + timedelta(days=1),
        reason="Family leave",
    )

    time_off = TimeOff.objects.get(pk=result["time_off_id"])
    assert (time_off.technician_id, time_off.reason, time_off.created_by) == (
        dana.id,
        "Family leave",
        dispatcher.actor_id,
    )
    assert [a["ticket_id"] for a in result["affected"]] == [str(inside.id)]
    assert result["affected"][0]["ticket_ref"] == inside.short_ref
    assert result["affected"][0]["ticket_state"] == "SCHEDULED"
    # The dispatcher decides what to do with them: the bookings are untouched.
    assert {a.pk: (a.status, a.start) for a in Appointment.objects.all()} == before
    event = AuditEvent.objects.filter(tool_name="technician.time_off_add").get()
    assert event.payload["affected_appointment_ids"] == [result["affected"][0]["appointment_id"]]


def test_time_off_is_refused_for_other_roles_and_bad_input(dispatcher):
    dana = TechnicianFactory()
    start, end = window_at(days=1)
    with pytest.raises(DispatchError) as refused:
        time_off_add(actor=actor_for("agent"), technician_id=dana.id, start=start, end=end, reason="")
    assert refused.value.code == "TOOL_ROLE_FORBIDDEN"
    with pytest.raises(DispatchError) as refused:
        time_off_add(actor=dispatcher, technician_id=dana.id, start=end, end=start, reason="")
    assert refused.value.details["field"] == "end"
    with pytest.raises(DispatchError) as refused:
        time_off_add(actor=dispatcher, technician_id="not-a-uuid", start=start, end=end, reason="")
    assert refused.value.details["field"] == "technician_id"
    assert not TimeOff.objects.exists()


def test_the_admin_adds_time_off_through_the_service_and_shows_the_affected_jobs(client):
    dana = TechnicianFactory(display_name="Dana Reyes")
    start, end = window_at(days=2, hour=17)
    booked = ticket_scheduled(technician=dana, start=start, end=end)
    client.force_login(UserFactory(role="dispatcher"))
    local_start, local_end = (
        timezone.localtime(start - timedelta(hours=6)),
        timezone.localtime(end + timedelta(hours=6)),
    )
    response = client.post(
        reverse("admin:scheduling_timeoff_add"),
        {
            "technician": str(dana.id),
            "start_0": f"{local_start:%Y-%m-%d}",
            "start_1": f"{local_start:%H:%M:%S}",
            "end_0": f"{local_end:%Y-%m-%d}",
            "end_1": f"{local_end:%H:%M:%S}",
            "reason": "Doctor",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert TimeOff.objects.filter(technician=dana, reason="Doctor").count() == 1
    page = response.content.decode()
    assert "1 booked job(s) fall in this time off" in page
    assert booked.short_ref in page
    assert AuditEvent.objects.filter(tool_name="technician.time_off_add").count() == 1


def test_shifts_are_edited_in_the_admin_and_an_unknown_timezone_is_refused(client):
    from dispatch.scheduling.models import Shift

    dana = TechnicianFactory(display_name="Dana Reyes")
    client.force_login(UserFactory(role="dispatcher"))
    form = {"technician": str(dana.id), "weekday": "5", "start_time": "08:00", "end_time": "12:00"}
    refused = client.post(reverse("admin:scheduling_shift_add"), {**form, "timezone": "Mars/Olympus"})
    assert refused.status_code == 200 and "Unknown timezone" in refused.content.decode()
    saved = client.post(reverse("admin:scheduling_shift_add"), {**form, "timezone": "America/Los_Angeles"})
    assert saved.status_code == 302
    shift = Shift.objects.get(technician=dana)
    assert (shift.weekday, f"{shift.start_time:%H:%M}", f"{shift.end_time:%H:%M}") == (5, "08:00", "12:00")
    assert client.get(reverse("admin:scheduling_shift_changelist")).status_code == 200
