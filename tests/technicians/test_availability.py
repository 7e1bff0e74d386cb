"""Technician reads (load, skills) and the booking lock scheduling relies on."""

from __future__ import annotations

import pytest
from django.db import transaction

from dispatch.common.errors import DispatchError
from dispatch.technicians.models import TechnicianSkill
from dispatch.technicians.selectors import (
    technician_get,
    technician_open_job_counts,
    technician_skill_level,
    technicians_active,
)
from dispatch.technicians.services import technician_lock_for_booking
from tests.factories import TechnicianFactory, ticket_dispatched, ticket_in_progress, window_at

pytestmark = pytest.mark.django_db


def test_open_job_counts_count_only_jobs_that_still_need_the_technician(dispatcher):
    busy, idle = TechnicianFactory(), TechnicianFactory()
    ticket_dispatched(technician=busy, start=window_at(hour=8)[0], end=window_at(hour=9)[0])
    done = ticket_in_progress(technician=busy)
    from dispatch.tickets.models import Ticket

    # Work finished and waiting for QA no longer loads the technician.
    Ticket.objects.filter(pk=done.pk).update(state="COMPLETED_PENDING_VERIFICATION")

    counts = technician_open_job_counts(technician_ids=[busy.id, idle.id])

    assert counts == {busy.id: 1}


def test_skill_level_picks_the_best_matching_skill():
    tech = TechnicianFactory(skills=["DOOR_WONT_LATCH", "AUTO_OPERATOR_FAULT"])
    TechnicianSkill.objects.filter(technician=tech, incident_type="AUTO_OPERATOR_FAULT").update(level=5)
    tech = technicians_active().get(pk=tech.pk)
    assert technician_skill_level(tech, ["DOOR_WONT_LATCH", "AUTO_OPERATOR_FAULT"]) == ("AUTO_OPERATOR_FAULT", 5)
    assert technician_skill_level(tech, ["FRAME_OR_GLASS_DAMAGE"]) is None


def test_inactive_technicians_are_not_offered_but_can_still_be_looked_up():
    gone = TechnicianFactory(is_active=False)
    assert gone not in technicians_active()
    assert technician_get(technician_id=str(gone.id)) == gone
    assert technician_get(technician_id="not-a-uuid") is None


def test_the_booking_lock_refuses_unknown_and_inactive_technicians():
    inactive = TechnicianFactory(is_active=False)
    with transaction.atomic():
        with pytest.raises(DispatchError) as refused:
            technician_lock_for_booking(technician_id=inactive.id)
        assert refused.value.code == "TECH_UNAVAILABLE"
        with pytest.raises(DispatchError) as refused:
            technician_lock_for_booking(technician_id="00000000-0000-4000-8000-0000000000aa")
        assert refused.value.code == "ASSIGNMENT_NOT_FOUND"
        active = TechnicianFactory()
        assert technician_lock_for_booking(technician_id=str(active.id)) == active


@pytest.mark.django_db(transaction=True)
def test_the_booking_lock_must_run_inside_the_booking_transaction():
    tech = TechnicianFactory()
    with pytest.raises(RuntimeError):
        technician_lock_for_booking(technician_id=tech.id)


def test_the_booking_lock_reads_skill_level_and_region_cover_in_the_same_query(django_assert_num_queries):
    from django.db import transaction

    from dispatch.technicians.selectors import technician_fit_annotations

    tech = TechnicianFactory(skills=["AUTO_OPERATOR_FAULT"], region_codes=["EAST_BAY", "PENINSULA"])
    TechnicianSkill.objects.filter(technician=tech).update(level=4)
    with transaction.atomic():
        with django_assert_num_queries(1):
            locked = technician_lock_for_booking(
                technician_id=tech.id,
                annotations=technician_fit_annotations(incident_type="auto_operator_fault", region_code="PENINSULA"),
            )
        assert (locked.skill_level, locked.covers) == (4, True)
        other = technician_lock_for_booking(
            technician_id=tech.id,
            annotations=technician_fit_annotations(incident_type="DOOR_WONT_LATCH", region_code="NORTH_BAY"),
        )
        assert (other.skill_level, bool(other.covers)) == (None, False)
