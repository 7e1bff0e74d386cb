"""Two-factor sign-in with django-otp: an authenticator app (TOTP) and one-time recovery codes.

A person enrols by scanning a QR code and typing the code their app shows; from then on every
sign-in asks for a code, whether their role requires it or not. Back-office roles must enrol
when DISPATCH_TWO_FACTOR_REQUIRED is on (production). Recovery codes stand in for a lost phone,
each once; an admin can reset a person's second factor, and they enrol again.
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

from .models import SignInKind
from .record import signin_record

RECOVERY_CODE_COUNT = 10
# Longer than any code (6 digits, or a recovery code's 8 characters): the rest is not read.
MAX_CODE_LENGTH = 16
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
# Session key: what this session owed at sign-in ("verify", "enrol", or "" for nothing). A
# verified session passes whatever it says; it matters again if the verifying device is removed.
SESSION_KEY = "dispatch_two_factor"
VERIFY = "verify"
ENROL = "enrol"


def two_factor_required(user) -> bool:
    """Whether this person's role must use a second factor (back-office roles, when switched on)."""
    return bool(getattr(settings, "DISPATCH_TWO_FACTOR_REQUIRED", False)) and role_of_user(user) in BACK_OFFICE_ROLES


def authenticator_of(user, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("id").first()


def two_factor_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_owed(user) -> str:
    """What a freshly signed-in session of this user owes: VERIFY, ENROL or nothing ("")."""
    if two_factor_enrolled(user):
        return VERIFY
    if two_factor_required(user):
        return ENROL
    return ""


# --- enrolment ----------------------------------------------------------------------------


def authenticator_start(user) -> TOTPDevice:
    """The person's unconfirmed authenticator, made now if there is none (one pending at a time,
    so reloading the setup page shows the same QR code until it is confirmed)."""
    pending = authenticator_of(user, confirmed=False)
    if pending is None:
        pending = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
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
    if not device.verify_token(_digits(token)):
        signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user, detail="enrolment code refused")
        return Enrolment(ok=False, recovery_codes=[])
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(user)
    otp_login(request, device)
    signin_record(SignInKind.TWO_FACTOR_ENROLLED, request=request, user=user)
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
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    raw = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in raw)
    return [f"{code[:4]}-{code[4:]}" for code in raw]


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    # After wrong codes the device refuses every code for a while (django-otp's throttling:
    # 1, 2, 4, 8… seconds); the page says how long rather than "wrong code".
    wait_seconds: int = 0
    used_recovery_code: bool = False


def two_factor_verify(request, token: str) -> Verification:
    """Check a code from the authenticator app (digits), or a recovery code (used up by this)."""
    user = request.user
    cleaned = re.sub(r"[\s-]", "", token or "")[:MAX_CODE_LENGTH].lower()
    if cleaned.isdigit():
        device = authenticator_of(user)
    else:
        device = StaticDevice.objects.filter(user=user, name=RECOVERY_NAME).first()
    if device is None:
        signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user)
        return Verification(ok=False)
    allowed, why = device.verify_is_allowed()
    if not allowed:
        wait = math.ceil(((why or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds())
        signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user, detail="refused: too many wrong codes")
        return Verification(ok=False, wait_seconds=max(1, wait))
    if device.verify_token(cleaned):
        return _verified(request, device, used_recovery_code=isinstance(device, StaticDevice))
    signin_record(SignInKind.TWO_FACTOR_FAILED, request=request, user=user)
    return Verification(ok=False)


def _verified(request, device, *, used_recovery_code: bool) -> Verification:
    otp_login(request, device)
    detail = f"recovery code ({recovery_codes_left(request.user)} left)" if used_recovery_code else ""
    signin_record(SignInKind.TWO_FACTOR_PASSED, request=request, user=request.user, detail=detail)
    return Verification(ok=True, used_recovery_code=used_recovery_code)


def _digits(token: str) -> str:
    return re.sub(r"\s", "", token or "")


# --- removal ------------------------------------------------------------------------------


def two_factor_reset(user, *, by, request=None) -> bool:
    """Remove every second factor of `user` (a lost phone): they enrol again at their next
    sign-in if their role requires it. Returns whether there was anything to remove."""
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
    if removed:
        signin_record(SignInKind.TWO_FACTOR_RESET, request=request, user=user, by=by)
    return bool(removed)
