"""Two-factor sign-in: required for back-office roles when switched on, asked of whoever enrolled."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dispatch.accounts.models import SignInEvent, SignInKind
from tests.factories import TechnicianFactory, UserFactory

from .conftest import OFFICE, sign_in, user_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def required(settings):
    settings.DISPATCH_TWO_FACTOR_REQUIRED = True


def code_for(device: TOTPDevice, *, later: int = 0) -> str:
    """What the person's authenticator app shows now (or `later` steps from now)."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + later)
    return str(value).zfill(device.digits)


def enrol(client: Client, user) -> list[str]:
    """Scan-and-type through the setup page; returns the recovery codes it showed."""
    assert client.get("/account/two-factor/setup/").status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    answer = client.post("/account/two-factor/setup/", {"code": code_for(device), "next": "/admin/"})
    assert answer.status_code == 200, answer.content
    return re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", answer.content.decode())


def enrolled_client(user) -> Client:
    """A session of `user` that set up its authenticator (so it is verified)."""
    client = Client()
    client.force_login(user)
    enrol(client, user)
    return client


def test_a_finance_user_must_set_up_two_factor_before_the_back_office_opens(required):
    finance = user_with("finance", "frances")
    client = Client()
    assert sign_in(client, "frances").status_code == 302

    blocked = client.get("/admin/")
    assert blocked.status_code == 302
    assert blocked["Location"].startswith("/account/two-factor/setup/?next=%2Fadmin%2F")
    page = client.get(blocked["Location"])
    assert "Required for your role" in page.content.decode()
    qr = client.get("/account/two-factor/setup/qr.svg")
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    assert "no-store" in qr["Cache-Control"]

    codes = enrol(client, finance)

    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/").status_code == 200
    assert TOTPDevice.objects.filter(user=finance, confirmed=True).count() == 1


def test_a_wrong_code_is_refused_at_setup_and_at_sign_in(required):
    finance = user_with("finance", "frances")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        sign_in(client, "frances")
        client.get("/account/two-factor/setup/")
        refused = client.post("/account/two-factor/setup/", {"code": "000000"})
        assert refused.status_code == 400 and "did not match" in refused.content.decode()
        assert not TOTPDevice.objects.filter(user=finance, confirmed=True).exists()
        clock.shift(timedelta(seconds=3))  # django-otp's pause after a wrong code
        enrol(client, finance)
        device = TOTPDevice.objects.get(user=finance)

        clock.shift(timedelta(minutes=1))
        later = Client()
        sign_in(later, "frances")
        assert later.get("/admin/")["Location"].startswith("/account/two-factor/verify/")
        wrong = later.post("/account/two-factor/verify/", {"code": code_for(device, later=5), "next": "/admin/"})
        assert wrong.status_code == 400
        assert later.get("/admin/").status_code == 302

        too_soon = later.post("/account/two-factor/verify/", {"code": code_for(device), "next": "/admin/"})
        assert too_soon.status_code == 429 and "Wait 1 second" in too_soon.content.decode()

        clock.shift(timedelta(seconds=2))
        right = later.post("/account/two-factor/verify/", {"code": code_for(device), "next": "/admin/"})

    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert later.get("/admin/").status_code == 200
    assert list(SignInEvent.objects.filter(username="frances").order_by("id").values_list("kind", flat=True)) == [
        SignInKind.SIGNED_IN,
        SignInKind.TWO_FACTOR_FAILED,
        SignInKind.TWO_FACTOR_ENROLLED,
        SignInKind.SIGNED_IN,
        SignInKind.TWO_FACTOR_FAILED,
        SignInKind.TWO_FACTOR_FAILED,
        SignInKind.TWO_FACTOR_PASSED,
    ]


def test_a_recovery_code_signs_in_once(required):
    finance = user_with("finance", "frances")
    client = Client()
    sign_in(client, "frances")
    codes = enrol(client, finance)

    first = Client()
    sign_in(first, "frances")
    assert first.post("/account/two-factor/verify/", {"code": codes[3].upper(), "next": "/admin/"}).status_code == 302
    assert first.get("/admin/").status_code == 200
    assert StaticToken.objects.filter(device__user=finance).count() == 9

    again = Client()
    sign_in(again, "frances")
    assert again.post("/account/two-factor/verify/", {"code": codes[3], "next": "/admin/"}).status_code == 400
    assert again.get("/admin/").status_code == 302
    passed = SignInEvent.objects.filter(kind=SignInKind.TWO_FACTOR_PASSED).get()
    assert passed.detail == "recovery code (9 left)"


def test_development_signs_in_with_the_password_alone():
    user_with("dispatcher", "riley")
    client = Client()
    sign_in(client, "riley")
    assert client.get("/admin/").status_code == 200
    assert client.get("/board/").status_code == 200


def test_a_technician_may_enrol_and_is_then_asked_for_the_code(required):
    # Never required of a technician, even with the setting on; asked for once they enrolled.
    technician = TechnicianFactory()
    username = technician.user.username
    client = Client()
    sign_in(client, username, path="/tech/login/")
    assert client.get("/tech/").status_code == 200
    enrol(client, technician.user)

    phone = Client()
    sign_in(phone, username, path="/tech/login/")
    gate = phone.get("/tech/")
    assert gate.status_code == 302 and gate["Location"].startswith("/account/two-factor/verify/?next=%2Ftech%2F")
    queued = phone.post("/tech/jobs/x/acknowledge/", HTTP_X_FIELD_FETCH="1")
    assert queued.status_code == 401 and queued.json()["code"] == "TWO_FACTOR_REQUIRED"


def test_an_open_board_moves_to_the_code_page_rather_than_swap_it_into_a_lane():
    dispatcher = user_with("dispatcher", "riley")
    client = Client()
    sign_in(client, "riley")
    enrol(client, dispatcher)
    fresh = Client()
    sign_in(fresh, "riley")

    refresh = fresh.get("/board/", HTTP_HX_REQUEST="true")

    assert refresh["HX-Redirect"].startswith("/account/two-factor/verify/")


def test_an_admin_resets_a_lost_phone_which_is_signed_out_and_the_person_enrols_again(required):
    finance = user_with("finance", "frances")
    lost_laptop = Client()
    sign_in(lost_laptop, "frances")
    enrol(lost_laptop, finance)
    technician = TechnicianFactory()
    lost_phone = enrolled_client(technician.user)
    admin = enrolled_client(UserFactory(username="alex", is_staff=True, is_superuser=True))

    answer = admin.post(
        "/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [finance.pk, technician.user.pk]}
    )

    assert answer.status_code == 302
    assert not TOTPDevice.objects.filter(user__in=[finance, technician.user]).exists()
    assert not StaticToken.objects.filter(device__user=finance).exists()
    reset = SignInEvent.objects.filter(kind=SignInKind.TWO_FACTOR_RESET).order_by("id")
    assert [(r.username, r.by_username, r.detail) for r in reset] == [
        ("frances", "alex", "sessions ended: 1"),
        (technician.user.username, "alex", "sessions ended: 1"),
    ]
    # Whoever holds the lost devices is signed out, and needs the password again.
    assert lost_laptop.get("/admin/")["Location"].startswith("/admin/login/")
    assert lost_phone.get("/tech/")["Location"].startswith("/tech/login/")
    assert admin.get("/admin/").status_code == 200  # the admin's own session is untouched
    again = Client()
    sign_in(again, "frances")
    assert again.get("/admin/")["Location"].startswith("/account/two-factor/setup/")


def test_a_dispatcher_cannot_reset_anyones_second_factor(required):
    finance = user_with("finance", "frances")
    client = Client()
    sign_in(client, "frances")
    enrol(client, finance)
    desk = enrolled_client(user_with("dispatcher", "riley"))

    answer = desk.post("/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [finance.pk]})

    assert answer.status_code == 403
    assert TOTPDevice.objects.filter(user=finance, confirmed=True).exists()


def test_new_recovery_codes_replace_the_old_ones(required):
    finance = user_with("finance", "frances")
    client = Client()
    sign_in(client, "frances")
    old = enrol(client, finance)

    answer = client.post("/account/two-factor/recovery-codes/")

    new = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", answer.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert StaticToken.objects.filter(device__user=finance).count() == 10
    assert SignInEvent.objects.filter(kind=SignInKind.RECOVERY_CODES_ISSUED, username="frances").count() == 1


def test_the_code_page_sends_nobody_elsewhere(required):
    finance = user_with("finance", "frances")
    enrolled_client(finance)
    device = TOTPDevice.objects.get(user=finance)
    fresh = Client()
    sign_in(fresh, "frances")

    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):  # a code not yet used
        answer = fresh.post(
            "/account/two-factor/verify/",
            {"code": code_for(device), "next": "https://evil.example/phish"},
            REMOTE_ADDR=OFFICE,
        )

    assert answer.status_code == 302 and answer["Location"] == "/admin/"


def test_a_stolen_password_cannot_set_up_a_new_phone_or_read_the_codes(required):
    finance = user_with("finance", "frances")
    enrolled_client(finance)
    thief = Client()
    sign_in(thief, "frances")

    for path in ("/account/two-factor/setup/", "/account/two-factor/"):
        answer = thief.get(path)
        assert answer.status_code == 302 and answer["Location"].startswith("/account/two-factor/verify/")
    assert thief.post("/account/two-factor/recovery-codes/").status_code == 302
    assert thief.get("/account/two-factor/setup/qr.svg").status_code == 404
    assert TOTPDevice.objects.filter(user=finance).count() == 1
    assert StaticToken.objects.filter(device__user=finance).count() == 10


def test_hostile_codes_are_refused_and_recorded(required):
    finance = user_with("finance", "frances")
    enrolled_client(finance)
    client = Client(HTTP_USER_AGENT="evil\x00agent")
    sign_in(client, "frances")

    for code in ("1" * 100_000, "<script>", "'; DROP TABLE x;--", "١٢٣٤٥٦"):
        with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
            answer = client.post("/account/two-factor/verify/", {"code": code})
        assert answer.status_code in (400, 429)
        assert code[:20] not in answer.content.decode()  # never echoed back
    assert client.get("/admin/").status_code == 302
    assert SignInEvent.objects.filter(kind=SignInKind.TWO_FACTOR_FAILED, username="frances").count() == 4
