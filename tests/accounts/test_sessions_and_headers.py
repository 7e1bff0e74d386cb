"""Session lifetime and the headers every page carries."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tests.factories import TechnicianFactory, ticket_dispatched

from .conftest import sign_in, user_with

pytestmark = pytest.mark.django_db


def test_a_staff_session_ends_after_twelve_hours_idle_and_not_while_in_use():
    user_with("dispatcher", "riley")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        sign_in(client, "riley")
        for _ in range(3):  # a long day of use: a page every 11 hours keeps it open
            clock.shift(timedelta(hours=11))
            assert client.get("/admin/").status_code == 200

        clock.shift(timedelta(hours=12, minutes=1))
        answer = client.get("/admin/")

    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")


def test_a_technician_keeps_the_phone_signed_in_for_the_month():
    technician = TechnicianFactory()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        sign_in(client, technician.user.username, path="/tech/login/")
        clock.shift(timedelta(days=20))
        assert client.get("/tech/").status_code == 200


def test_cookies_are_same_site_lax_and_http_only():
    user_with("dispatcher", "riley")
    client = Client()
    client.get("/admin/login/")
    answer = sign_in(client, "riley")

    session = answer.cookies["sessionid"]
    assert session["samesite"] == "Lax" and session["httponly"]
    assert client.cookies["csrftoken"]["samesite"] == "Lax"


@pytest.mark.parametrize("path", ["/admin/login/", "/request/", "/board/", "/tech/login/", "/no-such-page/"])
def test_every_page_keeps_the_camera_and_location_off(client, path):
    answer = client.get(path)

    assert "camera=()" in answer["Permissions-Policy"] and "geolocation=()" in answer["Permissions-Policy"]
    assert answer["Referrer-Policy"] == "same-origin"
    assert answer["X-Content-Type-Options"] == "nosniff"


def test_the_technicians_job_page_may_use_the_camera_and_location():
    technician = TechnicianFactory(skills=["DOOR_WONT_LATCH"])
    ticket = ticket_dispatched(technician=technician)
    client = Client()
    client.force_login(technician.user)

    answer = client.get(f"/tech/jobs/{ticket.id}/")

    assert answer.status_code == 200
    policy = answer["Permissions-Policy"]
    assert "camera=(self)" in policy and "geolocation=(self)" in policy and "microphone=()" in policy
