"""Setup health: every gap that leaves the slot engine with nobody to offer is listed, with its fix,
in a fixed number of queries; a company set up completely (the demo's too) has none."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dispatch.closeout.models import IncidentTemplate
from dispatch.technicians.models import TechnicianSkill
from dispatch.technicians.setup_health import (
    JOB_TYPE_UNSKILLED,
    REGION_UNCOVERED,
    REGION_UNKNOWN,
    TECHNICIAN_NO_REGIONS,
    TECHNICIAN_NO_SHIFTS,
    TECHNICIAN_NO_SKILLS,
    job_setup_gap,
    setup_problems,
)
from tests.factories import RegionFactory, SiteFactory, TechnicianFactory, shifts_every_day

pytestmark = pytest.mark.django_db


def every_job_type() -> list[str]:
    return list(IncidentTemplate.objects.values_list("incident_type", flat=True))


def complete_technician(name="Dana Reyes", *, regions=("EAST_BAY",), **fields):
    """A technician the slot engine can book for anything in `regions`: every skill, shifts every day."""
    technician = TechnicianFactory(display_name=name, skills=every_job_type(), region_codes=list(regions), **fields)
    shifts_every_day(technician)
    return technician


def found(problems) -> set[tuple[str, str]]:
    return {(p.kind, p.key) for p in problems}


def test_setup_health_is_calm_when_setup_is_complete():
    complete_technician()
    SiteFactory(service_region="EAST_BAY")
    assert setup_problems() == []


def test_setup_health_lists_a_region_no_one_covers():
    complete_technician()
    RegionFactory(code="PENINSULA", name="Peninsula")
    SiteFactory(service_region="PENINSULA")
    SiteFactory(service_region="peninsula")  # typed in lower case: the same region to the slot engine

    (problem,) = setup_problems()

    assert (problem.kind, problem.key, problem.subject) == (REGION_UNCOVERED, "PENINSULA", "Peninsula")
    assert problem.sentence == "No active technician covers Peninsula. Jobs at its 2 sites get no window."
    assert problem.fix_url == reverse("admin:technicians_technician_changelist")


def test_setup_health_lists_a_region_covered_only_by_an_inactive_technician():
    complete_technician()
    complete_technician("Former Tech", regions=("SOUTH_BAY",), is_active=False)
    assert found(setup_problems()) == {(REGION_UNCOVERED, "SOUTH_BAY")}


def test_setup_health_lists_a_region_sites_name_that_does_not_exist():
    complete_technician()
    SiteFactory(service_region="MARIN")
    (problem,) = setup_problems()
    assert (problem.kind, problem.key) == (REGION_UNKNOWN, "MARIN")
    assert problem.text == "Sites name the region MARIN, which does not exist, so no technician covers it."
    assert problem.fix_url == reverse("admin:technicians_region_add") + "?code=MARIN"


def test_setup_health_lists_a_job_type_no_one_is_skilled_for():
    dana = complete_technician()
    TechnicianSkill.objects.filter(technician=dana, incident_type="DOOR_WONT_LATCH").delete()
    # An inactive technician's skill books nothing.
    TechnicianFactory(display_name="Former Tech", skills=["DOOR_WONT_LATCH"], is_active=False)

    (problem,) = setup_problems()

    assert (problem.kind, problem.key, problem.subject) == (JOB_TYPE_UNSKILLED, "DOOR_WONT_LATCH", "Door won't latch")
    assert problem.text == "No active technician is skilled for Door won't latch."
    assert problem.fix_url == reverse("admin:technicians_technicianskill_add") + "?incident_type=DOOR_WONT_LATCH"


def test_a_skill_typed_in_lower_case_counts_as_the_slot_engine_counts_it():
    dana = complete_technician()
    TechnicianSkill.objects.filter(technician=dana, incident_type="DOOR_WONT_LATCH").update(
        incident_type="door_wont_latch"
    )
    assert setup_problems() == []


def test_setup_health_lists_technicians_without_shifts_regions_or_skills():
    complete_technician()
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])  # no shifts
    new = TechnicianFactory(display_name="Ana New", skills=[], region_codes=[])
    new.regions.clear()
    new.skills.all().delete()
    shifts_every_day(new)
    TechnicianFactory(display_name="On Leave For Good", is_active=False)  # not working: nothing to fix

    problems = setup_problems()

    assert [(p.kind, p.subject) for p in problems] == [
        (TECHNICIAN_NO_REGIONS, "Ana New"),
        (TECHNICIAN_NO_SKILLS, "Ana New"),
        (TECHNICIAN_NO_SHIFTS, "Luis Ortega"),
    ]
    no_shifts = problems[2]
    assert no_shifts.sentence == "Luis Ortega has no shifts. The slot engine never offers them for a job."
    assert no_shifts.fix_url == reverse("admin:scheduling_shift_add") + f"?technician={luis.pk}"
    assert problems[0].fix_url == reverse("admin:technicians_technician_change", args=[new.pk])


def test_setup_health_lists_job_types_and_regions_before_technicians():
    TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    RegionFactory(code="SF", name="San Francisco")
    kinds = [p.kind for p in setup_problems()]
    assert kinds == [JOB_TYPE_UNSKILLED] * 5 + [REGION_UNCOVERED, TECHNICIAN_NO_SHIFTS]


def _queries(technicians: int) -> int:
    for n in range(technicians):
        TechnicianFactory(display_name=f"Tech {technicians}-{n}", region_codes=[f"R{n % 4}"])
        SiteFactory(service_region=f"S{n % 3}")
    with CaptureQueriesContext(connection) as queries:
        problems = setup_problems()
    assert problems
    return len(queries.captured_queries)


def test_setup_health_reads_in_a_fixed_number_of_queries():
    assert _queries(3) == _queries(30) <= 6


def test_job_setup_gap_names_what_keeps_everyone_from_a_job():
    complete_technician()
    TechnicianSkill.objects.filter(incident_type="FRAME_OR_GLASS_DAMAGE").delete()
    assert job_setup_gap(incident_type="frame_or_glass_damage").key == "FRAME_OR_GLASS_DAMAGE"
    assert job_setup_gap(incident_type="DOOR_WONT_LATCH") is None
    assert job_setup_gap(region_code="EAST_BAY") is None
    assert job_setup_gap(region_code="MARIN").kind == REGION_UNKNOWN
    assert job_setup_gap() is None


def test_demo_setup_is_healthy():
    call_command("load_demo", stdout=StringIO())
    assert [p.sentence for p in setup_problems()] == []
