"""Repeated wrong passwords lock one username from one address, for a while, and only that."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from dispatch.accounts.models import SignInEvent, SignInKind
from tests.factories import UserFactory

from .conftest import ATTACKER, OFFICE, sign_in, user_with

pytestmark = pytest.mark.django_db


def fail(client: Client, username: str, times: int, *, address: str = ATTACKER, path: str = "/admin/login/"):
    for _ in range(times):
        answer = sign_in(client, username, "wrong-password", address=address, path=path)
        assert answer.status_code in (200, 429)
    return answer


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def kinds(username: str) -> list[str]:
    return list(SignInEvent.objects.filter(username=username).order_by("id").values_list("kind", flat=True))


def test_the_sixth_try_is_refused_even_with_the_right_password(dispatcher_user):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False):
        fifth = fail(client, "riley", 5)
        assert fifth.status_code == 429  # the fifth failure locks the pair and says so

        answer = sign_in(client, "riley", address=ATTACKER)
        until = timezone.localtime(timezone.now() + timedelta(minutes=15)).strftime("%-I:%M")

    assert answer.status_code == 429
    assert not signed_in(client)
    page = answer.content.decode()
    assert "Sign-in paused for this account" in page and "riley" in page
    assert until in page  # the time at which to try again
    assert int(answer["Retry-After"]) == 15 * 60
    assert kinds("riley") == ["FAILED"] * 5 + ["LOCKED", "REFUSED_LOCKED"]


def test_four_failures_do_not_lock_and_a_success_clears_them(dispatcher_user):
    client = Client()
    fail(client, "riley", 4)
    assert sign_in(client, "riley", address=ATTACKER).status_code == 302
    client.logout()
    fail(client, "riley", 4)

    assert sign_in(client, "riley", address=ATTACKER).status_code == 302
    assert signed_in(client)


def test_the_lock_lifts_after_the_window_without_anyone_acting(dispatcher_user):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        fail(client, "riley", 5)
        clock.shift(timedelta(minutes=14))
        assert sign_in(client, "riley", address=ATTACKER).status_code == 429

        clock.shift(timedelta(minutes=2))
        answer = sign_in(client, "riley", address=ATTACKER)

    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert signed_in(client)


def test_a_locked_pair_locks_neither_other_users_nor_other_addresses(dispatcher_user):
    user_with("finance", "frances")
    fail(Client(), "riley", 6)

    from_office = Client()
    assert sign_in(from_office, "riley", address=OFFICE).status_code == 302
    assert signed_in(from_office)
    colleague = Client()
    assert sign_in(colleague, "frances", address=ATTACKER).status_code == 302
    assert signed_in(colleague)


def test_the_technician_sign_in_locks_the_same_way():
    technician = UserFactory(role="technician", username="tech.luis")
    client = Client()
    fail(client, technician.username, 5, path="/tech/login/")

    answer = sign_in(client, technician.username, address=ATTACKER, path="/tech/login/")

    assert answer.status_code == 429
    assert "Sign-in paused" in answer.content.decode()
    assert not signed_in(client)


def test_a_dispatcher_unlocks_a_colleague_from_the_back_office(dispatcher_user):
    finance = user_with("finance", "frances")
    fail(Client(), finance.username, 5)
    desk = Client()
    desk.force_login(dispatcher_user)
    attempts = list(AccessAttempt.objects.filter(username="frances").values_list("pk", flat=True))
    listing = desk.get("/admin/axes/accessattempt/").content.decode()
    assert "frances" in listing and "not locked" not in listing  # shows until when, not "not locked"

    answer = desk.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": attempts}, REMOTE_ADDR=OFFICE
    )

    assert answer.status_code == 302
    assert not AccessAttempt.objects.filter(username="frances").exists()
    client = Client()
    assert sign_in(client, "frances", address=ATTACKER).status_code == 302
    unlocked = SignInEvent.objects.get(kind=SignInKind.UNLOCKED)
    assert (unlocked.username, unlocked.by_username, unlocked.detail) == ("frances", "riley", f"for {ATTACKER}")


def test_the_lockout_list_shows_a_pair_locked_across_browsers(dispatcher_user):
    for agent in ("Firefox", "Safari", "Chrome", "Edge", "Opera"):
        Client(HTTP_USER_AGENT=agent).post(
            "/admin/login/", {"username": "frances", "password": "x"}, REMOTE_ADDR=ATTACKER
        )
    desk = Client()
    desk.force_login(dispatcher_user)

    rows = desk.get("/admin/axes/accessattempt/").context["cl"].result_list

    assert len(rows) == 5 and {row.pair_failures for row in rows} == {5}
    listing = desk.get("/admin/axes/accessattempt/").content.decode()
    assert "not locked" not in listing


def test_who_may_not_unlock_cannot(dispatcher_user):
    fail(Client(), "riley", 5)
    qa = Client()
    qa.force_login(user_with("qa"))
    assert qa.get("/admin/axes/accessattempt/").status_code == 403
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    assert qa.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": attempts}).status_code == 403
    assert AccessAttempt.objects.filter(username="riley").exists()
