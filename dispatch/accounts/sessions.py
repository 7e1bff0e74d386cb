"""What a session owes after the password: a second factor, and for staff a short idle limit."""

from __future__ import annotations

import time

from django.conf import settings

from dispatch.common.roles import BACK_OFFICE_ROLES, role_of_user

from .two_factor import SESSION_KEY, two_factor_owed

# Session keys: the idle limit in seconds (staff only), and when the session was last saved.
IDLE_KEY = "dispatch_idle_seconds"
SEEN_KEY = "dispatch_seen"
# A staff session's expiry moves forward on activity, but it is saved at most this often.
TOUCH_EVERY_SECONDS = 300


def session_settle_at_sign_in(request, user) -> None:
    request.session[SESSION_KEY] = two_factor_owed(user)
    if role_of_user(user) in BACK_OFFICE_ROLES or user.is_staff:
        idle = int(getattr(settings, "DISPATCH_STAFF_IDLE_HOURS", 12)) * 3600
        request.session[IDLE_KEY] = idle
        request.session[SEEN_KEY] = int(time.time())
        # An int expiry counts from the session's last save, which is what makes it "idle" time.
        request.session.set_expiry(idle)


def session_touch(request) -> None:
    """Keep an active staff session alive: re-save it once its last save is a few minutes old."""
    session = request.session
    idle = session.get(IDLE_KEY)
    if not idle:
        return
    now = int(time.time())
    if now - int(session.get(SEEN_KEY, 0)) >= TOUCH_EVERY_SECONDS:
        session[SEEN_KEY] = now
        session.set_expiry(idle)
