"""Sign-in in a real browser: set up two-factor from the QR code page, then the lockout page."""

from __future__ import annotations

import os
import subprocess

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from dispatch.common.roles import role_groups_sync
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("DISPATCH_SCREENSHOTS")  # a folder: the walk-through saves its pages there


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def watch_console(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def current_code(user) -> str:
    device = TOTPDevice.objects.get(user=user)
    return str(totp(device.bin_key, device.step, device.t0, device.digits, device.drift)).zfill(device.digits)


def test_a_finance_user_sets_up_two_factor_from_the_qr_code(live_server, page, settings, tmp_path):
    settings.DISPATCH_TWO_FACTOR_REQUIRED = True
    role_groups_sync()
    user = UserFactory(username="frances", role="finance", first_name="Frances")
    console = watch_console(page)

    page.goto(live_server.url + "/admin/")
    page.fill("#id_username", "frances")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_selector("[data-testid=qr]")
    # The QR code is drawn (an SVG the page loads from its own origin) and the key can be typed.
    assert page.eval_on_selector("[data-testid=qr]", "img => img.decode().then(() => img.naturalWidth)") > 0
    assert len(page.inner_text("[data-testid=secret]").replace(" ", "")) == 32
    # What a phone's camera sees decodes to the authenticator's otpauth:// address.
    picture = tmp_path / "qr.png"
    page.locator("[data-testid=qr]").screenshot(path=str(picture))
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(picture)], capture_output=True, text=True, check=True)
    assert decoded.stdout.strip() == TOTPDevice.objects.get(user=user).config_url
    shot(page, "two-factor-setup")

    page.fill("#id_code", current_code(user))
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=recovery-codes]")
    assert page.locator("[data-testid=recovery-codes] li").count() == 10
    shot(page, "two-factor-recovery-codes")
    page.click("text=I have saved them")
    page.wait_for_selector(".rd-board, #content")
    assert page.url.endswith("/admin/")
    assert not [text for text in console if "Content Security Policy" in text or "Refused to" in text], console


def test_the_lockout_page_says_when_to_try_again(live_server, page):
    UserFactory(username="riley", role="dispatcher")
    page.set_viewport_size({"width": 390, "height": 844})
    for _ in range(5):
        page.goto(live_server.url + "/tech/login/")
        page.fill("#id_username", "riley")
        page.fill("#id_password", "guess")
        page.click("button[type=submit]")

    page.wait_for_selector("[data-testid=locked-out]")
    text = page.inner_text("[data-testid=locked-out]")
    assert "Sign-in paused for this account" in text and "riley" in text
    assert page.inner_text("[data-testid=until]")
    shot(page, "locked-out")
