"""django-axes' side of a sign-in: whom an attempt is for, and until when a pair is locked."""

from __future__ import annotations

from datetime import datetime

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from dispatch.common.client_ip import client_network

from .record import text_storable

USERNAME_MAX = get_user_model()._meta.get_field("username").max_length


def lockout_username(request, credentials: dict | None = None) -> str:
    """The username as typed, cut to what a username can be: a 10,000-character "username" is
    nobody's, and its attempt row must still fit its column (PostgreSQL refuses longer text)."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = request.POST.get("username", "")
    return text_storable(value, USERNAME_MAX)


def lock_ends(request, username: str) -> datetime:
    """When the lock on this username from this request's address lifts: the pair's latest
    counted failure plus the lock's length (tries while locked are not counted)."""
    latest = AccessAttempt.objects.filter(username=username, ip_address=client_network(request)).aggregate(
        latest=Max("attempt_time")
    )["latest"]
    return (latest or timezone.now()) + get_cool_off(request)
