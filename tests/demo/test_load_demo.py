"""`load_demo`: a believable company whose tickets carry real audit trails, loaded idempotently."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_of_user
from dispatch.demo.services import demo_load
from dispatch.demo.stories import STORIES, Story, step
from dispatch.scheduling.models import Appointment, AppointmentStatus
from dispatch.technicians.models import Technician
from dispatch.tickets.models import AuditEvent, Site, Ticket
from dispatch.tickets.states import TicketState

pytestmark = pytest.mark.django_db

# The states a dispatcher should find on the board after loading the demo.
EXPECTED_STATES = {
    TicketState.NEW,
    TicketState.NEEDS_INFO,
    TicketState.TRIAGED,
    TicketState.READY_TO_SCHEDULE,
    TicketState.SCHEDULE_PROPOSED,
    TicketState.SCHEDULED,
    TicketState.DISPATCHED,
    TicketState.IN_PROGRESS,
    TicketState.ON_HOLD,
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
    TicketState.INVOICED,
    TicketState.CLOSED,
    TicketState.CANCELLED,
    TicketState.APPROVAL_REQUIRED,
    TicketState.PENDING_CUSTOMER_CONFIRMATION,
}


def _load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _row_counts() -> dict[str, int]:
    """Rows in every table of every dispatch app, plus users, groups and who is in which group."""
    configs = [config for config in apps.get_app_configs() if config.name.startswith("dispatch.")]
    models = [model for config in configs for model in config.get_models()]
    User = get_user_model()
    models += [User, Group, User.groups.through]
    return {m._meta.label: m._default_manager.count() for m in models}


def test_loading_the_demo_twice_changes_nothing():
    first_output = _load()
    after_first = _row_counts()
    events_after_first = list(AuditEvent.objects.order_by("id").values_list("id", "hash"))

    second_output = _load()

    assert _row_counts() == after_first
    assert list(AuditEvent.objects.order_by("id").values_list("id", "hash")) == events_after_first
    assert f"{len(STORIES)} ticket(s) created now" in first_output
    assert f"0 ticket(s) created now, {len(STORIES)} already there" in second_output
    assert after_first["tickets.Ticket"] == len(STORIES) >= 25
    assert after_first["technicians.Technician"] >= 6


def test_demo_tickets_span_the_lifecycle_with_trails_that_replay_and_verify():
    _load()

    states = set(Ticket.objects.values_list("state", flat=True))
    assert states >= EXPECTED_STATES, f"missing: {sorted(EXPECTED_STATES - states)}"
    for ticket in Ticket.objects.all():
        replay = StringIO()
        call_command("replay_ticket", str(ticket.id), stdout=replay)
        assert f"Rebuilt state {ticket.state} matches the stored state." in replay.getvalue()
        # Created and moved by services only: the creation event is the ticket's first.
        first = ticket.audit_events.order_by("seq").first()
        assert first.tool_name == "ticket.create" and first.before_state == ""
    verify = StringIO()
    call_command("verify_audit", stdout=verify)
    assert verify.getvalue().startswith("Audit chain intact:")


def test_demo_trails_name_believable_actors():
    _load()
    dispatcher = get_user_model().objects.get(username="dispatcher")
    dana = Technician.objects.get(user__username="tech.dana")

    roles = set(AuditEvent.objects.values_list("actor_role", flat=True))
    assert {Role.DISPATCHER, Role.AGENT, Role.TECHNICIAN, Role.QA, Role.FINANCE} <= roles
    assert AuditEvent.objects.filter(actor_type="AGENT", tool_name="ticket.create").exists()
    assert AuditEvent.objects.filter(actor_id=str(dispatcher.pk), actor_type="HUMAN").exists()
    check_ins = AuditEvent.objects.filter(tool_name="tech.check_in")
    assert check_ins.exists()
    assert all(event.actor_role in (Role.TECHNICIAN, Role.DISPATCHER) for event in check_ins)
    assert check_ins.filter(actor_id=str(dana.user_id)).exists()


def test_demo_logins_work_with_their_roles():
    output = _load()
    expected = {
        "dispatcher": ("dispatcher-demo", Role.DISPATCHER, True),
        "tech.dana": ("technician-demo", Role.TECHNICIAN, False),
        "admin": ("admin-demo", Role.ADMIN, True),
        "qa": ("qa-demo", Role.QA, True),
        "finance": ("finance-demo", Role.FINANCE, True),
        "approver": ("approver-demo", Role.APPROVER, True),
    }
    for username, (password, role, staff) in expected.items():
        user = authenticate(RequestFactory().post("/admin/login/"), username=username, password=password)
        assert user is not None, username
        assert role_of_user(user) == role
        assert user.is_staff is staff
        assert f"{username}" in output and password in output
    assert get_user_model().objects.get(username="admin").is_superuser
    dana = Technician.objects.get(user__username="tech.dana")
    assert dana.display_name.startswith("Dana ")
    assert dana.skills.count() >= 3 and dana.regions.exists()


def test_demo_company_looks_like_a_bay_area_door_service():
    _load()
    sites = list(Site.objects.all())
    assert len({s.account_id for s in sites}) >= 5
    assert {s.service_region for s in sites} >= {"SF", "EAST_BAY", "PENINSULA", "SOUTH_BAY"}
    for site in sites:
        assert site.timezone == "America/Los_Angeles"
        assert 36.9 < float(site.lat) < 38.1 and -122.6 < float(site.lng) < -121.7
        assert site.access_instructions
    contacts = [c for site in sites for c in site.account.contacts.all()]
    assert contacts and all(c.phone.startswith("+1") and len(c.phone) == 12 for c in contacts)
    assert Technician.objects.filter(is_active=True).count() >= 6


# A working Tuesday morning (the moment the stories are told for); other days and hours:
# test_demo_coherent_day.py.
@time_machine.travel(datetime(2026, 12, 8, 10, 30, tzinfo=ZoneInfo("America/Los_Angeles")), tick=True)
def test_demo_board_has_work_booked_today_and_tomorrow_in_working_hours():
    _load()
    zone = ZoneInfo("America/Los_Angeles")
    today = timezone.now().astimezone(zone).date()
    booked = Appointment.objects.filter(status__in=[AppointmentStatus.CONFIRMED, AppointmentStatus.HELD])
    days = {a.start.astimezone(zone).date() for a in booked}
    assert {today, today + timedelta(days=1)} <= days
    scheduled = [a for a in booked if a.ticket.state == TicketState.SCHEDULED]
    assert scheduled
    assert all(7 <= a.start.astimezone(zone).hour < 18 for a in scheduled)


def test_the_demo_leaves_an_existing_user_as_it_was():
    User = get_user_model()
    admin = User.objects.create_user(username="admin", password="the-real-admin-password")

    output = _load()

    admin.refresh_from_db()
    assert admin.check_password("the-real-admin-password")
    assert not admin.is_superuser and not admin.groups.exists()
    assert "User 'admin' existed before the demo with another password; it was left unchanged." in output


def test_a_story_that_fails_midway_leaves_no_trace():
    _load()
    events_before = AuditEvent.objects.count()
    broken = Story(
        key="broken",
        account="bayview",
        site="bayview.lakeside",
        summary="Door that cannot be cancelled",
        description="",
        incident_type="DOOR_WONT_LATCH",
        priority="ROUTINE",
        ends_in=TicketState.CANCELLED,
        steps=(step("create"), step("cancel", reason="")),
    )

    with pytest.raises(DispatchError) as refused:
        demo_load(stories=(broken,))

    assert "demo story 'broken', step 'cancel'" in "".join(refused.value.__notes__)
    assert not Ticket.objects.filter(summary="Door that cannot be cancelled").exists()
    assert AuditEvent.objects.count() == events_before
    call_command("verify_audit", stdout=StringIO())
