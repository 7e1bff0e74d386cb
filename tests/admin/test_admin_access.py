"""Only back-office roles get into the admin; technicians never do, even when flagged staff by mistake."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.conftest import logged_in
from tests.factories import TechnicianFactory, ticket_new

pytestmark = pytest.mark.django_db

PAGES = ("admin:index", "admin:tickets_ticket_changelist")


def assert_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("page", PAGES)
def test_a_technician_cannot_open_the_admin(client, page):
    technician = TechnicianFactory()
    assert technician.user.is_staff is False
    client.force_login(technician.user)
    assert_sent_to_login(client, reverse(page))


@pytest.mark.parametrize("page", PAGES)
def test_a_technician_flagged_staff_by_mistake_is_still_refused(client, page):
    technician = TechnicianFactory()
    technician.user.is_staff = True
    technician.user.save()
    client.force_login(technician.user)
    assert_sent_to_login(client, reverse(page))


def test_a_technician_cannot_press_a_ticket_button(client):
    ticket = ticket_new()
    technician = TechnicianFactory()
    technician.user.is_staff = True
    technician.user.save()
    client.force_login(technician.user)
    response = client.post(
        reverse("admin:tickets_ticket_transition", args=[ticket.pk, "cancel"]),
        {"expected_version": ticket.version, "reason": "not mine"},
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    ticket.refresh_from_db()
    assert ticket.state == "NEW"


def test_a_logged_in_technician_is_told_they_lack_access(client):
    technician = TechnicianFactory()
    technician.user.is_staff = True
    technician.user.save()
    client.force_login(technician.user)
    response = client.get(reverse("admin:index"), follow=True)
    assert "not authorized to access this page" in response.content.decode()


def test_staff_without_a_role_are_refused(client):
    logged_in(client, is_staff=True)
    assert_sent_to_login(client, reverse("admin:index"))


@pytest.mark.parametrize("role", ["dispatcher", "approver", "qa", "finance", "admin", "audit"])
def test_back_office_roles_open_the_admin(client, role):
    logged_in(client, role)
    for page in PAGES:
        assert client.get(reverse(page)).status_code == 200


def test_anonymous_visitors_are_sent_to_login(client):
    assert_sent_to_login(client, reverse("admin:index"))
