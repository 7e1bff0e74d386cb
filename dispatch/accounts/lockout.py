"""How django-axes names the account a sign-in attempt is for."""

from __future__ import annotations

from django.contrib.auth import get_user_model

USERNAME_MAX = get_user_model()._meta.get_field("username").max_length


def lockout_username(request, credentials: dict | None = None) -> str:
    """The username as typed, cut to what a username can be: a 10,000-character "username" is
    nobody's, and its attempt row must still fit its column (PostgreSQL refuses longer text)."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = request.POST.get("username", "")
    return str(value or "").replace("\x00", "")[:USERNAME_MAX]
