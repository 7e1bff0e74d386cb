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
from .sessions import session_settle_at_sign_in


@receiver(user_logged_in, dispatch_uid="accounts.signed_in")
def _signed_in(sender, request, user, **kwargs):
    if request is None:
        return
    session_settle_at_sign_in(request, user)
    signin_record(SignInKind.SIGNED_IN, request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts.signed_out")
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        signin_record(SignInKind.SIGNED_OUT, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="accounts.failed")
def _failed(sender, credentials, request=None, **kwargs):
    # A failure that locked the pair, or an attempt refused because it was locked, was written
    # by the lockout receiver below (axes sends that signal first).
    if request is not None and getattr(request, "axes_locked_out", False):
        return
    signin_record(SignInKind.FAILED, request=request, username=str(credentials.get("username") or ""))


@receiver(user_locked_out, dispatch_uid="accounts.locked_out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    # axes counted this failure only when the pair was not locked yet: then it is the failure
    # that locks it; otherwise a locked pair tried again and was refused unheard.
    if getattr(request, "axes_failures_since_start", None) is not None:
        signin_record(SignInKind.FAILED, request=request, username=username or "")
        signin_record(SignInKind.LOCKED, request=request, username=username or "")
    else:
        signin_record(SignInKind.REFUSED_LOCKED, request=request, username=username or "")
