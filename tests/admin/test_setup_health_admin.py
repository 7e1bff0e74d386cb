"""Setup guardrails in the back office: a job type without a duration is refused; a save that leaves
a technician unbookable, a region uncovered or a job type without anyone skilled is kept and
flagged; the dashboard and the Setup health page list every gap with its fix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from dispatch.closeout.models import DURATION_REFUSED, IncidentTemplate
from dispatch.technicians.models import Region, Technician
from tests.admin.conftest import logged_in
from tests.factories import RegionFactory, SiteFactory, TechnicianFactory, UserFactory, shifts_every_day

pytestmark = pytest.mark.django_db

SETUP_HEALTH = reverse("admin:technicians_setup_health")


def messages_of(response) -> list[str]:
    return [str(message.message) for message in response.context["messages"]]


def every_job_type() -> list[str]:
    return list(IncidentTemplate.objects.values_list("incident_type", flat=True))


def complete_technician(name="Dana Reyes", *, regions=("EAST_BAY",)):
    technician = TechnicianFactory(display_name=name, skills=every_job_type(), region_codes=list(regions))
    shifts_every_day(technician)
    return technician


def template_data(template: IncidentTemplate, **changes) -> dict:
    return {
        "incident_type": template.incident_type,
        "name": template.name,
        "version": template.version,
        "default_duration_minutes": template.default_duration_minutes,
        "crew_size": template.crew_size,
        "days": template.days,
        "required_evidence_keys": "\n".join(template.required_evidence_keys),
        "required_checklist_keys": "\n".join(template.required_checklist_keys),
        "keywords": "\n".join(template.keywords),
        **changes,
    }


def technician_data(technician: Technician | None = None, *, user=None, regions=(), skills=(), **changes) -> dict:
    """The technician page's form as posted: `skills` replace the ones the technician has."""
    existing = list(technician.skills.all()) if technician else []
    data = {
        "display_name": technician.display_name if technician else "Luis Ortega",
        "user": (user or technician.user).pk,
        "phone": "",
        "is_active": "on",
        "regions": [region.pk for region in regions],
        "home_lat": "",
        "home_lng": "",
        "skills-TOTAL_FORMS": str(len(existing) + len(skills)),
        "skills-INITIAL_FORMS": str(len(existing)),
        "skills-MIN_NUM_FORMS": "0",
        "skills-MAX_NUM_FORMS": "1000",
    }
    for n, skill in enumerate(existing):
        data |= {
            f"skills-{n}-id": skill.pk,
            f"skills-{n}-technician": technician.pk,
            f"skills-{n}-incident_type": skill.incident_type,
            f"skills-{n}-level": skill.level,
            f"skills-{n}-DELETE": "on",
        }
    for n, incident_type in enumerate(skills, start=len(existing)):
        data |= {f"skills-{n}-incident_type": incident_type, f"skills-{n}-level": "3"}
    if technician:
        data["skills-TOTAL_FORMS"] = str(len(existing) + len(skills))
    return data | changes


# --- refused: a job type without a duration ------------------------------------------------------


@pytest.mark.parametrize("minutes", ["0", "-30"])
def test_zero_minute_incident_template_is_refused(dispatcher_client, minutes):
    template = IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH")
    url = reverse("admin:closeout_incidenttemplate_change", args=[template.pk])

    response = dispatcher_client.post(url, template_data(template, default_duration_minutes=minutes))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["default_duration_minutes"] == [DURATION_REFUSED]
    assert DURATION_REFUSED.replace("'", "&#x27;") in response.content.decode()
    template.refresh_from_db()
    assert template.default_duration_minutes == 60


@pytest.mark.parametrize("minutes", ["", "abc", "1.5", "43201", "99999999999"])
def test_a_duration_that_is_not_a_number_of_minutes_is_refused(dispatcher_client, minutes):
    template = IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH")
    url = reverse("admin:closeout_incidenttemplate_change", args=[template.pk])
    response = dispatcher_client.post(url, template_data(template, default_duration_minutes=minutes))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["default_duration_minutes"]
    template.refresh_from_db()
    assert template.default_duration_minutes == 60


def test_zero_minute_incident_template_is_refused_outside_the_admin_too():
    template = IncidentTemplate(incident_type="WINDOW_FILM", name="Window film", default_duration_minutes=0)
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert refused.value.message_dict["default_duration_minutes"] == [DURATION_REFUSED]
    with pytest.raises(IntegrityError), transaction.atomic():
        template.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        IncidentTemplate.objects.filter(incident_type="DOOR_WONT_LATCH").update(default_duration_minutes=0)
    assert IncidentTemplate.objects.get(incident_type="DOOR_WONT_LATCH").default_duration_minutes == 60


# --- flagged when saved ----------------------------------------------------------------------------


def test_technician_without_shifts_is_flagged_when_saved(admin_client_):
    complete_technician()
    east_bay = Region.objects.get(code="EAST_BAY")
    data = technician_data(user=UserFactory(role="technician"), regions=[east_bay], skills=["DOOR_WONT_LATCH"])

    response = admin_client_.post(reverse("admin:technicians_technician_add"), data, follow=True)

    luis = Technician.objects.get(display_name="Luis Ortega")  # saved all the same
    shown = messages_of(response)
    assert any("was added successfully" in m for m in shown)
    shift_url = reverse("admin:scheduling_shift_add") + f"?technician={luis.pk}"
    assert (
        f'Luis Ortega has no shifts. The slot engine never offers them for a job. <a href="{shift_url}">Add a shift</a>'
        in shown
    )
    assert [m.level_tag for m in response.context["messages"]] == ["success", "warning"]


def test_technician_without_regions_or_skills_is_flagged_when_saved(admin_client_):
    complete_technician()
    luis = TechnicianFactory(display_name="Luis Ortega")
    shifts_every_day(luis)
    url = reverse("admin:technicians_technician_change", args=[luis.pk])

    response = admin_client_.post(url, technician_data(luis, regions=[], skills=[]), follow=True)

    assert response.status_code == 200
    assert not luis.skills.exists() and not luis.regions.exists()
    shown = " ".join(messages_of(response))
    assert "Luis Ortega covers no region. They are offered only for sites that name no region." in shown
    assert "Luis Ortega has no skills. The slot engine offers them for no job type." in shown
    assert f'href="{url}"' in shown


def test_a_technician_set_up_completely_is_not_flagged_when_saved(admin_client_):
    dana = complete_technician()
    url = reverse("admin:technicians_technician_change", args=[dana.pk])
    data = technician_data(dana, regions=list(dana.regions.all()), skills=every_job_type())
    response = admin_client_.post(url, data, follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["success"]


def test_taking_away_the_last_technician_of_a_region_is_flagged_when_saved(admin_client_):
    complete_technician()
    luis = complete_technician("Luis Ortega", regions=("EAST_BAY", "SF"))
    RegionFactory(code="SOUTH_BAY", name="South Bay")  # a gap already known: counted, not repeated
    url = reverse("admin:technicians_technician_change", args=[luis.pk])

    data = technician_data(luis, regions=[Region.objects.get(code="EAST_BAY")], skills=every_job_type())
    response = admin_client_.post(url, data, follow=True)

    shown = messages_of(response)
    assert any(m.startswith("No active technician covers Sf.") for m in shown)
    assert not any("South Bay" in m for m in shown)
    assert f'Setup health lists 1 other problem: <a href="{SETUP_HEALTH}">see them</a>.' in shown


def test_a_new_region_no_one_covers_is_flagged_when_saved(admin_client_):
    complete_technician()
    response = admin_client_.post(
        reverse("admin:technicians_region_add"), {"code": "PENINSULA", "name": "Peninsula"}, follow=True
    )
    assert Region.objects.filter(code="PENINSULA").exists()
    shown = " ".join(messages_of(response))
    assert "No active technician covers Peninsula. No site is in it yet; jobs there would get no window." in shown
    assert "Give a technician this region" in shown


def test_a_job_type_no_one_is_skilled_for_is_flagged_when_saved(admin_client_):
    complete_technician()
    template = IncidentTemplate(
        incident_type="WINDOW_FILM",
        name="Window film",
        required_evidence_keys=["photo_after"],
        required_checklist_keys=["work_performed"],
    )
    response = admin_client_.post(
        reverse("admin:closeout_incidenttemplate_add"),
        template_data(template, default_duration_minutes="45"),
        follow=True,
    )
    assert IncidentTemplate.objects.get(incident_type="WINDOW_FILM").default_duration_minutes == 45
    shown = " ".join(messages_of(response))
    assert "No active technician is skilled for Window film. The slot engine finds no window for these jobs." in shown
    skill_url = reverse("admin:technicians_technicianskill_add") + "?incident_type=WINDOW_FILM"
    assert f'<a href="{skill_url}">Add the skill to a technician</a>' in shown


# --- the dashboard panel and the Setup health page ---------------------------------------------------


def test_dashboard_shows_setup_problems_with_links_to_fix_them(admin_client_):
    luis = TechnicianFactory(display_name="Luis Ortega")

    response = admin_client_.get(reverse("admin:index"))

    panel = response.context["setup_health"]
    assert panel["count"] == 6  # five job types nobody does, and Luis has no shifts
    assert [row["text"] for row in panel["rows"]][:1] == [
        "No active technician is skilled for Automatic operator fault."
    ]
    assert panel["more"] == 1
    html = response.content.decode()
    assert "Setup health" in html and "6 problems" in html and "and 1 more" in html
    assert f'href="{SETUP_HEALTH}"' in html
    assert luis.display_name not in html  # sixth: on the page, not the dashboard


def test_dashboard_says_setup_is_complete_when_it_is(dispatcher_client):
    complete_technician()
    SiteFactory()
    html = dispatcher_client.get(reverse("admin:index")).content.decode()
    assert "Setup is complete" in html
    assert "rd-setup--problems" not in html


def test_setup_health_lists_a_region_no_one_covers(admin_client_):
    complete_technician()
    RegionFactory(code="PENINSULA", name="Peninsula")
    SiteFactory(service_region="PENINSULA")

    response = admin_client_.get(SETUP_HEALTH)

    assert response.status_code == 200
    assert [g["title"] for g in response.context["groups"]] == ["Regions"]
    html = response.content.decode()
    assert "No active technician covers Peninsula." in html
    assert "Jobs at its 1 site get no window." in html
    assert f'href="{reverse("admin:technicians_technician_changelist")}">Give a technician this region</a>' in html


def test_setup_health_page_groups_every_problem(admin_client_):
    TechnicianFactory(display_name="Luis Ortega")
    RegionFactory(code="SF", name="San Francisco")
    SiteFactory(service_region="MARIN")
    response = admin_client_.get(SETUP_HEALTH)
    groups = {g["title"]: [row["text"] for row in g["rows"]] for g in response.context["groups"]}
    assert list(groups) == ["Job types", "Regions", "Technicians"]
    assert len(groups["Job types"]) == 5
    assert groups["Regions"] == [
        "No active technician covers San Francisco.",
        "Sites name the region MARIN, which does not exist, so no technician covers it.",
    ]
    assert groups["Technicians"] == ["Luis Ortega has no shifts."]
    assert "8 problems" in response.content.decode()


def test_setup_health_page_is_calm_when_setup_is_complete(dispatcher_client):
    complete_technician()
    response = dispatcher_client.get(SETUP_HEALTH)
    assert response.status_code == 200
    assert response.context["count"] == 0
    assert "Setup is complete" in response.content.decode()


def test_setup_health_links_only_the_fixes_the_reader_may_make(dispatcher_client):
    dana = complete_technician()
    dana.skills.filter(incident_type="DOOR_WONT_LATCH").delete()
    TechnicianFactory(display_name="Luis Ortega", skills=["HARDWARE_REPLACEMENT"])

    html = dispatcher_client.get(SETUP_HEALTH).content.decode()

    # Dispatchers add shifts; skills are an admin's to give.
    assert "Add a shift</a>" in html
    assert "Add the skill to a technician</a>" not in html
    assert "an admin can fix this" in html


def test_setup_health_is_closed_to_roles_that_do_not_see_technicians():
    finance = logged_in(Client(), "finance")
    assert finance.get(SETUP_HEALTH).status_code == 403
    assert "setup_health" not in finance.get(reverse("admin:index")).context
    anonymous = Client().get(SETUP_HEALTH)
    assert anonymous.status_code == 302 and reverse("admin:login") in anonymous["Location"]


def test_deleting_a_technicians_last_shift_is_flagged(dispatcher_client):
    dana = complete_technician()
    shifts = list(dana.shifts.order_by("weekday"))
    for shift in shifts[:-1]:
        response = dispatcher_client.post(
            reverse("admin:scheduling_shift_delete", args=[shift.pk]), {"post": "yes"}, follow=True
        )
        assert not any("has no shifts" in m for m in messages_of(response))

    last = reverse("admin:scheduling_shift_delete", args=[shifts[-1].pk])
    response = dispatcher_client.post(last, {"post": "yes"}, follow=True)

    assert not dana.shifts.exists()
    assert any(m.startswith("Dana Reyes has no shifts.") for m in messages_of(response))
