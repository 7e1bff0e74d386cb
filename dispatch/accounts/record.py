"""Writing the sign-in record: one row per event, with the address and browser it came from."""

from __future__ import annotations

from dispatch.common.client_ip import client_address

from .models import SignInEvent, SignInKind


def text_storable(value: str, limit: int) -> str:
    """Text as a column takes it: PostgreSQL refuses NUL, and a column has a length. A hostile
    username or browser string must not make the record (or the lockout's row) fail."""
    return str(value or "").replace("\x00", "")[:limit]


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
        username=text_storable(username, 150),
        user_id=user.pk if user is not None else None,
        address=(client_address(request) or None) if request is not None else None,
        user_agent=text_storable(meta.get("HTTP_USER_AGENT", ""), 300),
        path=text_storable(getattr(request, "path", ""), 200),
        by_username=text_storable(by.get_username(), 150) if by is not None else "",
        detail=text_storable(detail, 300),
    )
