"""Writing the sign-in record: one row per event, with the address and browser it came from."""

from __future__ import annotations

import ipaddress

from dispatch.common.client_ip import client_address

from .models import SignInEvent, SignInKind


def _address(request) -> str | None:
    value = client_address(request) if request is not None else ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:  # a test client's or a proxy's odd value: the row keeps no address
        return None


def _text(value: str, limit: int) -> str:
    # PostgreSQL refuses NUL in text; a hostile username or browser string must not make the
    # record itself fail.
    return (value or "").replace("\x00", "")[:limit]


def signin_record(
    kind: SignInKind,
    *,
    request=None,
    username: str = "",
    user=None,
    by=None,
    detail: str = "",
) -> SignInEvent:
    """Append one event. `user` is the account it concerns; `by` whoever acted on it for them."""
    if user is not None and not username:
        username = user.get_username()
    meta = getattr(request, "META", {}) if request is not None else {}
    return SignInEvent.objects.create(
        kind=kind,
        username=_text(username, 150),
        user_id=user.pk if user is not None else None,
        address=_address(request),
        user_agent=_text(meta.get("HTTP_USER_AGENT", ""), 300),
        path=_text(getattr(request, "path", ""), 200),
        by_username=_text(by.get_username(), 150) if by is not None else "",
        detail=_text(detail, 300),
    )
