"""Two-factor sign-in with django-otp: an authenticator app (TOTP) and one-time recovery codes.

A person enrols by scanning a QR code and typing the code their app shows; from then on every
sign-in asks for a code, whether their role requires it or not. Back-office roles must enrol
when DISPATCH_TWO_FACTOR_REQUIRED is on (production). Recovery codes stand in for a lost phone,
each once; an admin can reset a person's second factor, which also signs them out everywhere.

The key being set up belongs to the session that asked for it: another session of the same
person (someone else holding the password) neither sees it nor can confirm it, and starting a
setup anew makes any earlier pending key worthless.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from reportlab.graphics import renderSVG
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing

from dispatch.common.roles import BACK_OFFICE_ROLES, role_of_user
from dispatch.common.throttle import FixedWindow

from .models import SignInKind
from .record import signin_record
from .sessions import sessions_end

RECOVERY_CODE_COUNT = 10
# Longer than any code (6 digits, or a recovery code's 8 characters): the rest is not read.
MAX_CODE_LENGTH = 16
TOTP_DIGITS = 6
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
# Session keys: what this session owed at sign-in ("verify", "enrol", or "" for nothing; a
# verified session passes whatever it says, it matters again if its device is removed), and
# the authenticator this session is setting up.
SESSION_KEY = "dispatch_two_factor"
PENDING_KEY = "dispatch_two_factor_pending"
VERIFY = "verify"
ENROL = "enrol"
# django-otp doubles the pause after each wrong code (1, 2, 4… seconds) without a useful
# ceiling, so someone holding the password could shut the owner out for days by failing on
# purpose. The pause stops growing here (2**9 s, about 8.5 minutes).
MAX_THROTTLE_STEPS = 10
# ...and wrong codes per person per day are capped, so that pause cannot become a guessing
# rate: at most this many tries a day at a one-in-a-million code (three codes are valid at once).
DAILY_WRONG_CODES = 10
WRONG_CODES_DAY = FixedWindow("two-factor-wrong-codes", 24 * 3600)


def two_factor_required(user) -> bool:
    """Whether this person's role must use a second factor (back-office roles, when switched on)."""
    return bool(getattr(settings, "DISPATCH_TWO_FACTOR_REQUIRED", False)) and role_of_user(user) in BACK_OFFICE_ROLES


def authenticator_of(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def two_factor_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_owed(user) -> str:
    """What a freshly signed-in session of this user owes: VERIFY, ENROL or nothing ("")."""
    if two_factor_enrolled(user):
        return VERIFY
    if two_factor_required(user):
        return ENROL
    return ""


def may_set_up(request) -> bool:
    """Setting up (or moving to a new phone) needs the current second factor, when there is one."""
    return request.user.is_verified() or not two_factor_enrolled(request.user)


# --- enrolment ----------------------------------------------------------------------------


def authenticator_pending(request) -> TOTPDevice | None:
    """The authenticator this session is setting up, if it still is."""
    device_id = request.session.get(PENDING_KEY)
    if not device_id:
        return None
    return TOTPDevice.objects.filter(pk=device_id, user=request.user, confirmed=False).first()


def authenticator_start(request) -> TOTPDevice:
    """This session's pending authenticator, made now if it has none. Reloading the setup page
    shows the same QR code; a new setup (here or in another session) replaces every other
    pending key of the person, so a key someone glimpsed earlier never becomes theirs."""
    pending = authenticator_pending(request)
    if pending is None:
        with transaction.atomic():
            TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
            pending = TOTPDevice.objects.create(user=request.user, name=AUTHENTICATOR_NAME, confirmed=False)
        request.session[PENDING_KEY] = pending.pk
    return pending


def secret_for_typing(device: TOTPDevice) -> str:
    """The key as an authenticator app takes it by hand: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def authenticator_qr_svg(device: TOTPDevice, *, size: int = 232) -> str:
    """The otpauth:// URL as a QR code in SVG, drawn by reportlab (no external service sees the key)."""
    widget = QrCodeWidget(device.config_url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return renderSVG.drawToString(drawing)


@dataclass(frozen=True)
class Enrolment:
    ok: bool
    recovery_codes: list[str]


def authenticator_confirm(request, device: TOTPDevice, token: str) -> Enrolment:
    """Confirm the pending authenticator with the code it shows. On success the session counts as
    verified, earlier authenticators give way to this one, and fresh recovery codes are issued."""
    user = request.user
    if not device.verify_token(_cleaned(token)):
        signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user, detail="enrolment code refused")
        return Enrolment(ok=False, recovery_codes=[])
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(user)
    request.session.pop(PENDING_KEY, None)
    _session_verified(request, device)
    # Sessions signed in before this (a shared tablet, whoever else knew the password) would
    # never be asked for the code: they end, and sign in again with it.
    ended = sessions_end([user.pk], keep=request.session.session_key)[user.pk]
    signin_record(SignInKind.TWO_FACTOR_ENROLLED, request=request, user=user, detail=f"other sessions ended: {ended}")
    return Enrolment(ok=True, recovery_codes=codes)


def recovery_codes_issue(request) -> list[str]:
    """New recovery codes for the signed-in (and verified) person; the old ones stop working."""
    with transaction.atomic():
        codes = _recovery_codes_replace(request.user)
    signin_record(SignInKind.RECOVERY_CODES_ISSUED, request=request, user=request.user)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__name=RECOVERY_NAME).count()


def _recovery_codes_replace(user) -> list[str]:
    # The same device keeps its id, so a session verified with a recovery code stays verified.
    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    raw = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in raw)
    return [f"{code[:4]}-{code[4:]}" for code in raw]


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    # After wrong codes the device refuses every code for a while (django-otp's throttling,
    # capped above); the page says how long rather than "wrong code". When the day's wrong codes
    # are spent, every code is refused until the count starts over (wait_seconds) or an admin
    # resets the person's second factor.
    wait_seconds: int = 0
    day_spent: bool = False
    used_recovery_code: bool = False


def two_factor_verify(request, token: str) -> Verification:
    """Check a code from the authenticator app (digits), or a recovery code (used up by this)."""
    user = request.user
    cleaned = _cleaned(token)
    today = WRONG_CODES_DAY.count(str(user.pk))
    if today.count >= DAILY_WRONG_CODES:
        signin_record(
            SignInKind.TWO_FACTOR_FAILED, request=request, user=user, detail="refused: wrong codes for today spent"
        )
        return Verification(ok=False, wait_seconds=today.retry_after, day_spent=True)
    # A 6-digit code is the app's; anything else a recovery code (8 characters, sometimes all digits).
    model = TOTPDevice if cleaned.isdigit() and len(cleaned) <= TOTP_DIGITS else StaticDevice
    with transaction.atomic():
        # One check at a time per device: the same code posted twice at once is accepted once.
        device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("id").first()
        if device is None:
            signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user)
            return Verification(ok=False)
        _throttle_cap(device)
        allowed, why = device.verify_is_allowed()
        if not allowed:
            wait = math.ceil(((why or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds())
            signin_record(
                SignInKind.TWO_FACTOR_FAILED, request=request, user=user, detail="refused: too many wrong codes"
            )
            return Verification(ok=False, wait_seconds=max(1, wait))
        ok = device.verify_token(cleaned)
    if not ok:
        WRONG_CODES_DAY.hit(str(user.pk))
        signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user)
        return Verification(ok=False)
    _session_verified(request, device)
    used_recovery_code = isinstance(device, StaticDevice)
    detail = f"recovery code ({recovery_codes_left(user)} left)" if used_recovery_code else ""
    signin_record(SignInKind.TWO_FACTOR_PASSED, request=request, user=user, detail=detail)
    return Verification(ok=True, used_recovery_code=used_recovery_code)


def _throttle_cap(device) -> None:
    if device.throttling_failure_count > MAX_THROTTLE_STEPS:
        device.throttling_failure_count = MAX_THROTTLE_STEPS
        device.save(update_fields=["throttling_failure_count"])


def _session_verified(request, device) -> None:
    otp_login(request, device)
    # A new session key once the second factor is in: a cookie copied before this step (from a
    # shared computer, say) does not become a verified session.
    request.session.cycle_key()


def _cleaned(token: str) -> str:
    return re.sub(r"[\s-]", "", token or "")[:MAX_CODE_LENGTH].lower()


# --- removal ------------------------------------------------------------------------------


def two_factor_reset(users, *, by, request=None) -> list:
    """Remove every second factor of these people (a lost phone) and end all their sessions, the
    lost phone's among them: they sign in again with the password and set up a new authenticator.
    Returns the people who had something to remove."""
    reset = [user for user in users if _devices_remove(user)]
    ended = sessions_end([user.pk for user in reset], keep=request.session.session_key if request else None)
    for user in reset:
        signin_record(
            SignInKind.TWO_FACTOR_RESET, request=request, user=user, by=by, detail=f"sessions ended: {ended[user.pk]}"
        )
    return reset


def _devices_remove(user) -> bool:
    WRONG_CODES_DAY.forget(str(user.pk))
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
    return bool(removed)
