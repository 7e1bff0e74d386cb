"""The pages of a sign-in: the lockout notice, the second-factor code, setting up an authenticator."""

from __future__ import annotations

import math
from urllib.parse import urlencode

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import two_factor as tf
from .lockout import lock_ends, lockout_username

LOCKED_STATUS = 429
# Where an account page sends someone whose session ended: the technician's sign-in takes every
# account (the admin's refuses technicians) and comes back to the page.
SIGN_IN_URL = "field:login"


def locked_out(request, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' lockout answer: which account, from where, and at what time to try again."""
    username = lockout_username(request, credentials)
    until = lock_ends(request, username)
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    response = render(
        request,
        "accounts/locked_out.html",
        {"username": username, "until": timezone.localtime(until), "minutes": minutes, "back": request.path},
        status=LOCKED_STATUS,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


def _next_url(request, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def url_with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _home(request) -> str:
    return reverse("admin:index") if request.user.is_staff else reverse("field:jobs")


@never_cache
@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET", "POST"])
def two_factor_verify(request):
    """The second step of a sign-in: a code from the authenticator app, or a recovery code."""
    next_url = _next_url(request, _home(request))
    if request.user.is_verified():
        return HttpResponseRedirect(next_url)
    if not tf.two_factor_enrolled(request.user):
        # Nothing to verify against (the second factor was reset): set it up if required, else go on.
        if tf.two_factor_required(request.user):
            return redirect(url_with_next("accounts:two_factor_setup", next_url))
        request.session[tf.SESSION_KEY] = ""
        return HttpResponseRedirect(next_url)
    error = ""
    status = 200
    if request.method == "POST":
        result = tf.two_factor_verify(request, request.POST.get("code", ""))
        if result.ok:
            return HttpResponseRedirect(next_url)
        status = 400
        if result.day_spent:
            status = 429
            error = (
                "Too many wrong codes today, so sign-in codes are paused for this account. "
                "Ask an administrator to reset your two-factor sign-in, or try again in "
                f"{math.ceil(result.wait_seconds / 3600)} hour{pluralize(math.ceil(result.wait_seconds / 3600))}."
            )
        elif result.wait_seconds:
            status = 429
            error = f"Too many wrong codes. Wait {result.wait_seconds} second{pluralize(result.wait_seconds)}, then try again."
        else:
            error = "That code did not match. Enter the 6-digit code your app shows now, or a recovery code."
    return render(request, "accounts/two_factor_verify.html", {"next": next_url, "error": error}, status=status)


@never_cache
@login_required(login_url=SIGN_IN_URL)
@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    """Scan, type the code, keep the recovery codes. An enrolled person must pass the code first."""
    next_url = _next_url(request, _home(request))
    if not tf.may_set_up(request):
        return redirect(url_with_next("accounts:two_factor_verify", request.get_full_path()))
    device = tf.authenticator_start(request)
    error = ""
    status = 200
    if request.method == "POST":
        enrolment = tf.authenticator_confirm(request, device, request.POST.get("code", ""))
        if enrolment.ok:
            return render(
                request, "accounts/recovery_codes.html", {"codes": enrolment.recovery_codes, "next": next_url}
            )
        status = 400
        error = "That code did not match. Check the time on your phone, and enter the code your app shows now."
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "next": next_url,
            "error": error,
            "secret": tf.secret_for_typing(device),
            "required": tf.two_factor_required(request.user),
            "replacing": tf.two_factor_enrolled(request.user),
        },
        status=status,
    )


@never_cache
# reportlab draws the code with style attributes. Loaded as an image the SVG runs no script, but a
# browser that applied this response's own CSP to it would drop its fills: the image, and only
# it, may carry inline styles.
@csp_update({"style-src": ["'unsafe-inline'"]})
@login_required(login_url=SIGN_IN_URL)
def two_factor_qr(request):
    """This session's pending authenticator as a QR code, never cached."""
    device = tf.authenticator_pending(request) if tf.may_set_up(request) else None
    if device is None:
        return HttpResponse(status=404)
    return HttpResponse(tf.authenticator_qr_svg(device), content_type="image/svg+xml")


@never_cache
@login_required(login_url=SIGN_IN_URL)
def two_factor_home(request):
    """Where a person sees their second factor and gets new recovery codes."""
    if tf.two_factor_enrolled(request.user) and not request.user.is_verified():
        return redirect(url_with_next("accounts:two_factor_verify", request.path))
    return render(
        request,
        "accounts/two_factor_home.html",
        {
            "enrolled": tf.two_factor_enrolled(request.user),
            "required": tf.two_factor_required(request.user),
            "codes_left": tf.recovery_codes_left(request.user),
            "home": _home(request),
        },
    )


@never_cache
@login_required(login_url=SIGN_IN_URL)
@require_POST
def recovery_codes_new(request):
    if not (tf.two_factor_enrolled(request.user) and request.user.is_verified()):
        return redirect("accounts:two_factor_home")
    return render(
        request, "accounts/recovery_codes.html", {"codes": tf.recovery_codes_issue(request), "next": _home(request)}
    )
