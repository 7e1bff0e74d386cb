"""What an attacker tried against the sign-in doors, and what each attempt now meets."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from dispatch.accounts.models import SignInEvent, SignInKind
from dispatch.accounts.two_factor import DAILY_WRONG_CODES, MAX_THROTTLE_STEPS
from tests.factories import TechnicianFactory, UserFactory

from .conftest import PASSWORD, sign_in, user_with
from .test_two_factor import code_for, enrol, enrolled_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def required(settings):
    settings.DISPATCH_TWO_FACTOR_REQUIRED = True


def password_only(username: str) -> Client:
    client = Client()
    assert sign_in(client, username).status_code == 302
    return client


def test_a_script_prefix_does_not_walk_around_the_second_factor(required, settings):
    enrolled_client(user_with("finance", "frances"))
    client = password_only("frances")

    assert client.get("/admin/", SCRIPT_NAME="/app").status_code == 302
    assert client.get("/board/", SCRIPT_NAME="/x").status_code == 302
    settings.FORCE_SCRIPT_NAME = "/dispatch"
    assert client.get("/admin/").status_code == 302


def test_a_key_someone_glimpsed_before_the_owner_set_up_never_works():
    # The owner has not enrolled yet; someone with the password opens setup and copies the key.
    finance = user_with("finance", "frances")
    intruder = password_only("frances")
    intruder.get("/account/two-factor/setup/")
    glimpsed = TOTPDevice.objects.get(user=finance)

    owner = password_only("frances")
    owner.get("/account/two-factor/setup/")
    owners = TOTPDevice.objects.get(user=finance, confirmed=False)

    assert owners.pk != glimpsed.pk and owners.key != glimpsed.key
    assert intruder.get("/account/two-factor/setup/qr.svg").status_code == 404
    refused = intruder.post("/account/two-factor/setup/", {"code": code_for(glimpsed)})
    assert refused.status_code == 400  # its own fresh key, not the glimpsed one
    assert not TOTPDevice.objects.filter(user=finance, confirmed=True).exists()


def test_a_pending_key_of_the_owner_is_not_shown_to_a_password_only_session(required):
    finance = user_with("finance", "frances")
    owner = enrolled_client(finance)
    owner.get("/account/two-factor/setup/")  # "move to a new phone", then walks away

    thief = password_only("frances")

    assert thief.get("/account/two-factor/setup/qr.svg").status_code == 404
    assert thief.get("/account/two-factor/setup/").status_code == 302


def test_wrong_codes_on_purpose_shut_the_owner_out_for_minutes_not_days(required):
    finance = user_with("finance", "frances")
    enrolled_client(finance)
    device = TOTPDevice.objects.get(user=finance)
    device.throttling_failure_count = 30  # a week of patient failures: 2**29 seconds
    device.throttling_failure_timestamp = timezone.now()
    device.save()

    owner = password_only("frances")
    answer = owner.post("/account/two-factor/verify/", {"code": "123456"})

    assert answer.status_code == 429
    wait = int(answer.content.decode().split("Wait ")[1].split(" second")[0])
    assert wait <= 2 ** (MAX_THROTTLE_STEPS - 1)
    with time_machine.travel(timezone.now() + timedelta(seconds=wait + 31), tick=False):
        assert owner.post("/account/two-factor/verify/", {"code": code_for(device)}).status_code == 302


def test_the_session_key_changes_once_the_code_is_in(required):
    enrolled_client(user_with("finance", "frances"))
    device = TOTPDevice.objects.get()
    client = password_only("frances")
    copied = client.cookies["sessionid"].value

    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        client.post("/account/two-factor/verify/", {"code": code_for(device)})

    assert client.cookies["sessionid"].value != copied
    stolen = Client()
    stolen.cookies["sessionid"] = copied
    assert stolen.get("/admin/").status_code == 302


def test_new_recovery_codes_keep_a_session_that_came_in_with_one(required):
    finance = user_with("finance", "frances")
    first = Client()
    first.force_login(finance)
    codes = enrol(first, finance)
    client = password_only("frances")
    assert client.post("/account/two-factor/verify/", {"code": codes[0]}).status_code == 302

    client.post("/account/two-factor/recovery-codes/")

    assert client.get("/admin/").status_code == 200


def test_the_board_refresh_does_not_keep_a_walked_away_dispatcher_signed_in():
    user_with("dispatcher", "riley")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = password_only("riley")
        for _ in range(26 * 12):  # 26 hours of a board refreshing itself every 5 minutes
            clock.shift(timedelta(minutes=5))
            client.get("/board/live/", HTTP_HX_REQUEST="true", HTTP_X_DISPATCH_POLL="1")
        answer = client.get("/admin/")

    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")


def test_an_open_board_returns_to_the_board_after_the_code_and_a_move_gets_a_json_answer():
    dispatcher = user_with("dispatcher", "riley")
    enrolled_client(dispatcher)
    client = password_only("riley")

    poll = client.get(
        "/board/live/?day=2030-01-02",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/board/?day=2030-01-02",
    )
    move = client.post("/board/move/", {}, HTTP_ACCEPT="application/json")

    assert poll["HX-Redirect"] == "/account/two-factor/verify/?next=%2Fboard%2F%3Fday%3D2030-01-02"
    assert move.status_code == 401 and move.json()["code"] == "TWO_FACTOR_REQUIRED"


def test_addresses_of_one_ipv6_network_share_one_lock():
    technician = TechnicianFactory()
    username = technician.user.username
    for host in range(5):
        sign_in(Client(), username, "guess", address=f"2001:db8:1:2::{host + 1:x}", path="/tech/login/")

    answer = sign_in(Client(), username, address="2001:db8:1:2::99", path="/tech/login/")
    elsewhere = sign_in(Client(), username, address="2001:db8:1:3::1", path="/tech/login/")

    assert answer.status_code == 429
    assert elsewhere.status_code == 302


@pytest.mark.parametrize(
    ("forwarded", "counted_as"),
    [
        ("203.0.113.7:51234", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        # Not an address: the proxy's own (REMOTE_ADDR) stands in, so the limit still holds.
        ("unknown", "127.0.0.1"),
        ("not an address", "127.0.0.1"),
    ],
)
def test_odd_proxy_addresses_neither_break_sign_in_nor_escape_the_lock(settings, forwarded, counted_as):
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 1
    user_with("dispatcher", "riley")
    client = Client()

    right = client.post("/admin/login/", {"username": "riley", "password": PASSWORD}, HTTP_X_FORWARDED_FOR=forwarded)
    for _ in range(5):
        client.post("/admin/login/", {"username": "riley", "password": "x"}, HTTP_X_FORWARDED_FOR=forwarded)
    locked = client.post("/admin/login/", {"username": "riley", "password": PASSWORD}, HTTP_X_FORWARDED_FOR=forwarded)

    assert right.status_code == 302 and locked.status_code == 429
    assert set(SignInEvent.objects.values_list("address", flat=True)) == {counted_as}


def test_ipv4_clients_on_an_ipv6_socket_are_each_their_own_client():
    user_with("dispatcher", "riley")
    for _ in range(5):
        sign_in(Client(), "riley", "guess", address="::ffff:203.0.113.7")

    assert sign_in(Client(), "riley", address="::ffff:203.0.113.7").status_code == 429
    assert sign_in(Client(), "riley", address="::ffff:198.51.100.20").status_code == 302


def test_an_unknown_address_still_counts_toward_the_api_limit(settings):
    from dispatch.api.mcp.calls import caller_authenticate
    from dispatch.common.errors import DispatchError

    settings.DISPATCH_API_AUTH_FAILURE_LIMIT = 3
    codes = []
    for _ in range(4):
        with pytest.raises(DispatchError) as refused:
            caller_authenticate({"Authorization": "Bearer rd_nope"}, client="")  # e.g. a Unix socket peer
        codes.append(refused.value.code)

    assert codes == ["INVALID_AUTH_TOKEN"] * 3 + ["AUTH_RATE_LIMITED"]


def test_setting_up_two_factor_ends_the_sessions_signed_in_before(required):
    finance = user_with("finance", "frances")
    shared_tablet = password_only("frances")
    shared_tablet.get("/account/two-factor/")  # signed in, before two-factor existed for them

    owner = password_only("frances")
    enrol(owner, finance)

    assert shared_tablet.get("/admin/")["Location"].startswith("/admin/login/")
    assert owner.get("/admin/").status_code == 200
    enrolled = SignInEvent.objects.get(kind=SignInKind.TWO_FACTOR_ENROLLED)
    assert enrolled.detail == "other sessions ended: 1"


def test_wrong_codes_are_capped_per_day_and_an_admin_reset_starts_over(required):
    finance = user_with("finance", "frances")
    enrolled_client(finance)
    device = TOTPDevice.objects.get(user=finance)
    start = timezone.now().replace(hour=1, minute=0)
    client = password_only("frances")
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(DAILY_WRONG_CODES):
            clock.shift(timedelta(minutes=10))  # past django-otp's pause each time
            assert client.post("/account/two-factor/verify/", {"code": "000000"}).status_code == 400
        clock.shift(timedelta(minutes=10))
        spent = client.post("/account/two-factor/verify/", {"code": code_for(device)})

        assert spent.status_code == 429 and "Too many wrong codes today" in spent.content.decode()
        assert client.get("/admin/").status_code == 302

        admin = enrolled_client(UserFactory(username="alex", is_staff=True, is_superuser=True))
        admin.post("/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [finance.pk]})
        enrol(password_only("frances"), finance)
        clock.shift(timedelta(seconds=31))
        later = password_only("frances")
        fresh_device = TOTPDevice.objects.get(user=finance)
        answer = later.post("/account/two-factor/verify/", {"code": code_for(fresh_device)})

        assert answer.status_code == 302  # the day's count started over with the reset
        assert later.get("/admin/").status_code == 200


def test_any_page_not_listed_as_public_is_behind_the_code(required):
    enrolled_client(user_with("finance", "frances"))
    client = password_only("frances")

    for path in ("/admin/", "/board/", "/tech/", "/some-page-added-next-year/"):
        assert client.get(path)["Location"].startswith("/account/two-factor/verify/"), path
    for path in ("/request/", "/health", "/account/two-factor/verify/"):
        assert client.get(path).status_code == 200, path


def test_an_enormous_username_is_refused_like_any_wrong_one():
    for _ in range(6):
        answer = Client().post("/admin/login/", {"username": "u" * 10_000, "password": "x"})
        assert answer.status_code in (200, 429)
    assert answer.status_code == 429
    assert SignInEvent.objects.filter(kind=SignInKind.LOCKED, username="u" * 150).count() == 1
