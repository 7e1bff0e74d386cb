"""Session lifetimes: the idle limit of staff sessions, and ending a person's sessions."""

from __future__ import annotations

import time
from collections import Counter

from django.conf import settings
from django.contrib.auth import SESSION_KEY as USER_ID_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone

from dispatch.common.roles import BACK_OFFICE_ROLES, role_of_user

# Session keys: the idle limit in seconds (staff only), and when it was last moved forward.
IDLE_KEY = "dispatch_idle_seconds"
SEEN_KEY = "dispatch_seen"
# A staff session's expiry moves forward on activity, but it is saved at most this often.
TOUCH_EVERY_SECONDS = 300


def session_idle_limit_set(request, user) -> None:
    """At sign-in: back-office sessions end after DISPATCH_STAFF_IDLE_HOURS without a request."""
    if role_of_user(user) in BACK_OFFICE_ROLES or user.is_staff:
        idle = int(getattr(settings, "DISPATCH_STAFF_IDLE_HOURS", 12)) * 3600
        request.session[IDLE_KEY] = idle
        request.session[SEEN_KEY] = int(time.time())
        # An int expiry counts from the session's last save, which is what makes it "idle" time.
        request.session.set_expiry(idle)


def session_touch(request) -> None:
    """Keep an active staff session alive: re-save it once its limit last moved a few minutes ago."""
    session = request.session
    idle = session.get(IDLE_KEY)
    if not idle:
        return
    now = int(time.time())
    if now - int(session.get(SEEN_KEY, 0)) >= TOUCH_EVERY_SECONDS:
        session[SEEN_KEY] = now
        session.set_expiry(idle)


def sessions_end(user_ids, *, keep: str | None = None) -> Counter:
    """Delete every live session of these users (but `keep`, the caller's own) and count them per
    user id. Sessions are not indexed by user, so this reads each live one once: fine for an
    admin's occasional reset or a person's enrolment, not for a hot path."""
    wanted = {str(user_id) for user_id in user_ids}
    ended: dict[str, str] = {}
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        owner = session.get_decoded().get(USER_ID_KEY)
        if owner in wanted and session.session_key != keep:
            ended[session.session_key] = owner
    Session.objects.filter(session_key__in=list(ended)).delete()
    return Counter(int(owner) for owner in ended.values())
