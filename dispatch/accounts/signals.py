"""Every sign-in, sign-out, failure and lockout lands in the sign-in record.

Django's auth signals cover the admin's and the technician's sign-in forms alike; django-axes
adds `user_locked_out`, sent both when a failure locks a pair and when a locked pair tries again.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import SignInKind
from .record import signin_record
from .sessions import session_idle_limit_set
from .two_factor import SESSION_KEY, two_factor_owed


@receiver(user_logged_in, dispatch_uid="accounts.signed_in")
def _signed_in(sender, request, user, **kwargs):
    if request is None:
        return
    request.session[SESSION_KEY] = two_factor_owed(user)
    session_idle_limit_set(request, user)
    signin_record(SignInKind.SIGNED_IN, request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts.signed_out")
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        signin_record(SignInKind.SIGNED_OUT, request=request, user=user)


# Per attempt, in whichever order Django calls the receivers (axes' or these first): one FAILED
# for every failure axes counted, then LOCKED when that failure locked the pair; one
# REFUSED_LOCKED, and no FAILED, for a try while the pair was already locked.
RECORDED_ATTR = "dispatch_failure_recorded"


@receiver(user_login_failed, dispatch_uid="accounts.failed")
def _failed(sender, credentials, request=None, **kwargs):
    if request is not None and (getattr(request, RECORDED_ATTR, False) or _refused_while_locked(request)):
        return
    signin_record(SignInKind.FAILED, request=request, username=str(credentials.get("username") or ""))
    if request is not None:
        setattr(request, RECORDED_ATTR, True)


@receiver(user_locked_out, dispatch_uid="accounts.locked_out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    if _refused_while_locked(request):
        signin_record(SignInKind.REFUSED_LOCKED, request=request, username=username or "")
        return
    if not getattr(request, RECORDED_ATTR, False):
        signin_record(SignInKind.FAILED, request=request, username=username or "")
        setattr(request, RECORDED_ATTR, True)
    signin_record(SignInKind.LOCKED, request=request, username=username or "")


def _refused_while_locked(request) -> bool:
    # axes counts a failure (axes_failures_since_start) only when the pair was not locked yet; a
    # locked pair's try is refused by its backend before any password is checked.
    return getattr(request, "axes_locked_out", False) and getattr(request, "axes_failures_since_start", None) is None
