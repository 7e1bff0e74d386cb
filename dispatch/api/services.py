"""Writes of the API app itself: issuing and revoking bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_normalize

from .models import ApiToken

TOKEN_PREFIX = "rd_"
# Characters of the token kept in clear, so an operator can tell tokens apart in the admin.
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8


def token_digest(plaintext: str) -> str:
    """The stored form of a token: its sha256, so a database dump leaks no usable credential."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def scope_ids_clean(values: Iterable, *, field: str) -> list[str]:
    """Normalise account/site scope entries to canonical UUID strings; refuse anything else."""
    cleaned: list[str] = []
    for value in values or []:
        text = str(value).strip()
        if not text:
            continue
        try:
            cleaned.append(str(uuid.UUID(text)))
        except ValueError:
            raise DispatchError(
                "INVALID_REQUEST",
                f"{field} entries must be UUIDs; {text!r} is not.",
                status=400,
                details={"field": field},
            ) from None
    return sorted(set(cleaned))


def _role_checked(role, user) -> Role:
    canonical = role_normalize(str(role)) if role else None
    if canonical is None:
        raise DispatchError("INVALID_REQUEST", f"Unknown role {role!r}.", status=400, details={"field": "role"})
    if canonical == Role.TECHNICIAN and (user is None or not hasattr(user, "technician")):
        raise DispatchError(
            "INVALID_REQUEST",
            "A technician token must belong to a user with a technician profile.",
            status=400,
            details={"field": "user"},
        )
    return canonical


def api_token_issue(*, token: ApiToken) -> str:
    """Give an unsaved ApiToken its secret and save it; returns the plaintext (shown once, never stored)."""
    token.role = _role_checked(token.role, token.user).value
    token.account_ids = scope_ids_clean(token.account_ids, field="account_ids")
    token.site_ids = scope_ids_clean(token.site_ids, field="site_ids")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token.prefix = plaintext[:SHOWN_PREFIX_LENGTH]
    token.token_hash = token_digest(plaintext)
    with transaction.atomic():
        token.save(force_insert=True)
    return plaintext


def api_token_create(
    *, name: str, role: str, account_ids: Iterable = (), site_ids: Iterable = (), user=None
) -> tuple[ApiToken, str]:
    """Create a token for a role and scope; returns the token row and its plaintext."""
    name = (name or "").strip()
    if not name:
        raise DispatchError("INVALID_REQUEST", "A token needs a name.", status=400, details={"field": "name"})
    if ApiToken.objects.filter(name=name).exists():
        raise DispatchError(
            "INVALID_REQUEST", f"A token named {name!r} already exists.", status=400, details={"field": "name"}
        )
    token = ApiToken(name=name, role=role, account_ids=list(account_ids), site_ids=list(site_ids), user=user)
    return token, api_token_issue(token=token)


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token: every later request bearing it is refused with INVALID_AUTH_TOKEN."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
