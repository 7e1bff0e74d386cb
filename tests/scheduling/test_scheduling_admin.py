"""The back office shows scheduling history read-only: bookings change only through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dispatch.scheduling.models import Appointment, CheckIn, RecommendationSnapshot, ScheduleHold, ScheduleProposal
from dispatch.scheduling.services import assignment_recommend, schedule_hold, tech_check_in
from tests.factories import UserFactory, ticket_dispatched, ticket_scheduled, window_at, window_soon

pytestmark = pytest.mark.django_db

MODELS = (Appointment, ScheduleProposal, ScheduleHold, RecommendationSnapshot, CheckIn)


@pytest.fixture
def history(dispatcher):
    from django.utils import timezone

    scheduled = ticket_scheduled(start=window_at(days=2)[0], end=window_at(days=2)[1])
    assignment_recommend(actor=dispatcher, ticket_id=scheduled.id, service_type="DOOR_WONT_LATCH")
    start, end = window_at(days=3)
    schedule_hold(
        actor=dispatcher,
        ticket_id=scheduled.id,
        hold_reason="CUSTOMER_PENDING",
        confirmation_window={"start": start.isoformat(), "end": end.isoformat()},
    )
    dispatched = ticket_dispatched(**window_soon())
    tech_check_in(actor=dispatcher, ticket_id=dispatched.id, timestamp=timezone.now(), location={"lat": 37.8})


@pytest.fixture
def back_office(client):
    user = UserFactory(role="dispatcher")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_history_list_and_record_opens_read_only(back_office, history, model):
    opts = model._meta
    listing = back_office.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert listing.status_code == 200
    record = model.objects.first()
    page = back_office.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert back_office.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    assert (
        back_office.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[record.pk])).status_code
        == 403
    )
    assert model.objects.filter(pk=record.pk).exists()


def test_appointments_are_never_deleted():
    ticket = ticket_scheduled()
    booking = Appointment.objects.get(ticket=ticket)
    with pytest.raises(PermissionError):
        booking.delete()
    with pytest.raises(PermissionError):
        Appointment.objects.filter(ticket=ticket).delete()
    assert Appointment.objects.filter(ticket=ticket).exists()


def test_technicians_cannot_open_the_scheduling_back_office(client):
    client.force_login(UserFactory(role="technician"))
    response = client.get(reverse("admin:scheduling_appointment_changelist"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
