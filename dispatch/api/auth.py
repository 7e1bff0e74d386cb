"""Who is calling the toolset: API tokens, HS256 JWTs, and (only when enabled) development headers.

The split of 401 codes follows the upstream dispatch-api: a token that cannot be read or
verified is INVALID_AUTH_TOKEN; a verified token whose claims are missing, expired or
malformed is INVALID_AUTH_CLAIMS; no credential at all is AUTH_REQUIRED. An address that has
failed too often lately is answered 429 AUTH_RATE_LIMITED before its credential is read.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.db import router
from django.utils import timezone

from dispatch.common.actors import Actor, ActorType
from dispatch.common.client_ip import client_network
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_normalize
from dispatch.common.throttle import FixedWindow

from .errors import auth_rate_limited, auth_required, invalid_auth_claims, invalid_auth_token, request_id_of
from .models import ApiToken
from .services import TOKEN_PREFIX, token_digest

logger = logging.getLogger("dispatch.api")

ACTOR_TYPES = frozenset({ActorType.HUMAN, ActorType.AGENT, ActorType.SERVICE, ActorType.SYSTEM})
BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_ID_LENGTH = 200
# Called with the caller's role as soon as the credential names it, before the identity behind
# it is resolved: a role the tool refuses is a 403 whoever the caller turns out to be.
RoleCheck = Callable[[Role], None]
# last_used_at is informational; writing it on every request would cost a query per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The cache counter of failed authentications per client address.
AUTH_FAILURE_PURPOSE = "api-auth-failures"
# Set in request.META by the stdio MCP server: its one caller is local and never counted.
LOCAL_CALLER_KEY = "dispatch.local_caller"


def trace_id_from(request) -> str:
    """The W3C trace id of `traceparent` when the header is valid, else X-Trace-Id, else ""."""
    header = request.headers.get("traceparent", "").strip().lower()
    match = TRACEPARENT.match(header)
    if match and match.group(1) != "ff" and set(match.group(2)) != {"0"} and set(match.group(3)) != {"0"}:
        return match.group(2)
    return request.headers.get("X-Trace-Id", "").strip()[:100]


def correlation_id_from(request) -> str:
    value = request.headers.get("X-Correlation-Id", "").strip()
    if len(value) > MAX_ID_LENGTH:
        raise DispatchError(
            "INVALID_REQUEST",
            f"X-Correlation-Id must be at most {MAX_ID_LENGTH} characters.",
            status=400,
            details={"header": "X-Correlation-Id"},
        )
    return value or str(uuid.uuid4())


def _default_actor_type(role: Role, *, is_person: bool) -> str:
    if role == Role.AGENT:
        return ActorType.AGENT
    if role == Role.SYSTEM:
        return ActorType.SERVICE
    return ActorType.HUMAN if is_person else ActorType.AGENT


def _actor_type(value, *, source: str, default: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    candidate = str(value).strip().upper()
    if candidate not in ACTOR_TYPES:
        raise invalid_auth_claims(f"{source} must be one of {', '.join(sorted(ACTOR_TYPES))}.")
    return candidate


def _scope_entries(value, *, field: str, error) -> frozenset[str]:
    """Scope ids from a claim or header: a list or comma list of UUIDs; '*' (or nothing) is unscoped."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, (list, tuple)):
        raw = list(value)
    else:
        raise error(f"{field} must be a list of UUIDs or '*'.")
    entries: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, str) or not entry.strip():
            raise error(f"{field}[{index}] must be a non-empty string.")
        text = entry.strip().lower()
        if text == "*":
            return frozenset()
        try:
            entries.add(str(uuid.UUID(text)))
        except ValueError:
            raise error(f"{field}[{index}] must be a UUID or '*'.") from None
    return frozenset(entries)


def _technician_named(name: str):
    """An active technician named by id or by their user's username, or None."""
    from dispatch.technicians.models import Technician

    # Someone who left (technician or user deactivated) no longer acts as a technician.
    query = Technician.objects.select_related("user").filter(is_active=True, user__is_active=True)
    try:
        return query.filter(pk=uuid.UUID(name)).first()
    except ValueError:
        return query.filter(user__username=name).first()


def _actor(request, **fields) -> Actor:
    return Actor(
        request_id=request_id_of(request),
        correlation_id=correlation_id_from(request),
        trace_id=trace_id_from(request),
        **fields,
    )


# --- API tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    """One live (unrevoked) API token as the lookup reads it."""

    name: str
    role: str
    account_ids: list
    site_ids: list
    last_used_at: datetime | None
    user_id: int | None
    user_is_active: bool | None
    # Only an active technician profile of the token's user counts.
    technician_id: uuid.UUID | None


def _token_lookup(digest: str):
    # One statement with two outer joins on unique keys (the token's user, that user's technician
    # profile): cheaper for Django to build than correlated subqueries, and each row is found
    # through a unique index.
    return (
        ApiToken.objects.filter(token_hash=digest, revoked_at__isnull=True)
        .order_by()
        .values_list(
            "name",
            "role",
            "account_ids",
            "site_ids",
            "last_used_at",
            "user_id",
            "user__is_active",
            "user__technician__id",
            "user__technician__is_active",
        )
    )


def token_row_live(digest: str) -> TokenRow | None:
    """The unrevoked token whose sha256 is `digest`, or None."""
    # Revocation is part of the WHERE clause, so a revoked token is refused by the very next
    # request in every process: nothing about a token is cached.
    row = _token_lookup(digest).using(router.db_for_read(ApiToken)).first()
    if row is None:
        return None
    name, role, account_ids, site_ids, last_used_at, user_id, user_active, technician_id, technician_active = row
    return TokenRow(
        name=name,
        role=role,
        account_ids=account_ids or [],
        site_ids=site_ids or [],
        last_used_at=last_used_at,
        user_id=user_id,
        user_is_active=user_active,
        # Only an active technician profile makes the token a technician's.
        technician_id=technician_id if technician_active else None,
    )


def _role_known(role: Role, role_check: RoleCheck | None) -> None:
    if role_check is not None:
        role_check(role)


def _actor_from_api_token(request, plaintext: str, role_check: RoleCheck | None) -> Actor:
    digest = token_digest(plaintext)
    token = token_row_live(digest)
    if token is None:
        raise invalid_auth_token("Unknown or revoked API token.")
    if token.user_id is not None and not token.user_is_active:
        raise invalid_auth_token("The user of this API token is inactive.")
    role = role_normalize(token.role)
    if role is None:
        raise invalid_auth_claims("The API token names no known role.")
    _role_known(role, role_check)
    if role == Role.TECHNICIAN and token.technician_id is None:
        raise invalid_auth_claims("A technician token must belong to an active technician's user.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(token_hash=digest).update(last_used_at=now)
    has_user = token.user_id is not None
    return _actor(
        request,
        actor_type=_default_actor_type(role, is_person=has_user),
        # A user's token acts as that user, with the id the back office and pages use for them.
        actor_id=str(token.user_id) if has_user else f"token:{token.name}",
        role=role,
        user_id=token.user_id,
        technician_id=token.technician_id if role == Role.TECHNICIAN else None,
        account_ids=frozenset(token.account_ids),
        site_ids=frozenset(token.site_ids),
    )


# --- HS256 JWTs --------------------------------------------------------------------------


def _claims_verified(token: str) -> dict:
    # The shape first: a caller's garbage is their error (401), not the server's, whatever the
    # configuration; only a readable HS256 JWT meeting a server without a secret is a 500.
    if token.count(".") != 2:
        raise invalid_auth_token("Bearer token must be an API token (rd_...) or a JWT with three parts.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid_auth_token("JWT header must be valid JSON.") from None
    if header.get("alg") != "HS256":
        raise invalid_auth_token("JWT alg must be HS256.")
    try:
        jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_auth_token("JWT signature is invalid or the token is malformed.") from None
    secret = settings.DISPATCH_AUTH_JWT_SECRET
    if not secret or not secret.strip():
        raise DispatchError(
            "AUTH_CONFIG_ERROR",
            "DISPATCH_AUTH_JWT_SECRET is required for JWT bearer tokens.",
            status=500,
            dimension="auth",
        )
    issuer = (getattr(settings, "DISPATCH_AUTH_JWT_ISSUER", "") or "").strip()
    audience = (getattr(settings, "DISPATCH_AUTH_JWT_AUDIENCE", "") or "").strip()
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=issuer or None,
            audience=audience or None,
            options={"require": ["exp"], "verify_aud": bool(audience), "verify_iss": bool(issuer)},
        )
    except (jwt.InvalidSignatureError, jwt.DecodeError, jwt.InvalidAlgorithmError):
        # DecodeError covers a bad signature encoding and an unreadable payload.
        raise invalid_auth_token("JWT signature is invalid or the token is malformed.") from None
    except jwt.ExpiredSignatureError:
        raise invalid_auth_claims("JWT claim 'exp' is expired.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise invalid_auth_claims(f"JWT claim '{exc.claim}' is required.") from None
    except jwt.ImmatureSignatureError:
        raise invalid_auth_claims("JWT claim 'nbf' is not yet valid.") from None
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError) as exc:
        raise invalid_auth_claims(f"JWT claims are invalid: {exc}.") from None
    except jwt.PyJWTError as exc:
        raise invalid_auth_claims(f"JWT claims are invalid: {exc}.") from None


def _actor_from_jwt(request, token: str, role_check: RoleCheck | None) -> Actor:
    claims = _claims_verified(token)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise invalid_auth_claims("JWT claim 'sub' is required.")
    raw_role = claims.get("role")
    if not isinstance(raw_role, str) or not raw_role.strip():
        raise invalid_auth_claims("JWT claim 'role' is required.")
    role = role_normalize(raw_role)
    if role is None:
        raise invalid_auth_claims(f"JWT claim 'role' names no known role ({raw_role!r}).")
    _role_known(role, role_check)
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, dict):
        raise invalid_auth_claims("JWT claim 'scope' must be an object when provided.")
    scope = scope or {}

    def pick(*names):
        for source, name in names:
            if name in source and source[name] is not None:
                return source[name]
        return None

    account_ids = _scope_entries(
        pick((scope, "account_ids"), (claims, "account_ids"), (claims, "account_id")),
        field="JWT claim 'account_ids'",
        error=invalid_auth_claims,
    )
    site_ids = _scope_entries(
        pick((scope, "site_ids"), (claims, "site_ids"), (claims, "site_id")),
        field="JWT claim 'site_ids'",
        error=invalid_auth_claims,
    )
    technician = None
    if role == Role.TECHNICIAN:
        technician = _technician_named(sub.strip())
        if technician is None:
            raise invalid_auth_claims("JWT claim 'sub' must name a technician (id or username) for role technician.")
    return _actor(
        request,
        actor_type=_actor_type(
            claims.get("actor_type", claims.get("actorType")),
            source="JWT claim 'actor_type'",
            default=_default_actor_type(role, is_person=technician is not None),
        ),
        actor_id=sub.strip()[:MAX_ID_LENGTH],
        role=role,
        user_id=technician.user_id if technician is not None else None,
        technician_id=technician.id if technician is not None else None,
        account_ids=account_ids,
        site_ids=site_ids,
    )


# --- development headers -----------------------------------------------------------------


def _invalid_actor_context(message: str) -> DispatchError:
    return DispatchError("INVALID_ACTOR_CONTEXT", message, status=400, dimension="auth")


def _actor_from_dev_headers(request, role_check: RoleCheck | None) -> Actor:
    actor_id = request.headers.get("X-Actor-Id", "").strip()
    raw_role = request.headers.get("X-Actor-Role", "").strip()
    if not actor_id:
        raise DispatchError("MISSING_ACTOR_CONTEXT", "Header 'X-Actor-Id' is required.", status=400, dimension="auth")
    if not raw_role:
        raise DispatchError("MISSING_ACTOR_CONTEXT", "Header 'X-Actor-Role' is required.", status=400, dimension="auth")
    if len(actor_id) > MAX_ID_LENGTH:
        raise _invalid_actor_context(f"Header 'X-Actor-Id' must be at most {MAX_ID_LENGTH} characters.")
    role = role_normalize(raw_role)
    if role is None:
        raise invalid_auth_claims(f"Header 'X-Actor-Role' names no known role ({raw_role!r}).")
    _role_known(role, role_check)
    technician = None
    if role == Role.TECHNICIAN:
        technician = _technician_named(actor_id)
        if technician is None:
            raise invalid_auth_claims(
                "Header 'X-Actor-Id' must name a technician (id or username) for role technician."
            )
    return _actor(
        request,
        actor_type=_actor_type(
            request.headers.get("X-Actor-Type"), source="Header 'X-Actor-Type'", default=ActorType.HUMAN
        ),
        actor_id=actor_id,
        role=role,
        user_id=technician.user_id if technician is not None else None,
        technician_id=technician.id if technician is not None else None,
        account_ids=_scope_entries(
            request.headers.get("X-Account-Scope") or None, field="X-Account-Scope", error=_invalid_actor_context
        ),
        site_ids=_scope_entries(
            request.headers.get("X-Site-Scope") or None, field="X-Site-Scope", error=_invalid_actor_context
        ),
    )


# --- failed authentications, counted per client address ----------------------------------


def _failure_window() -> FixedWindow:
    return FixedWindow(AUTH_FAILURE_PURPOSE, int(settings.DISPATCH_API_AUTH_FAILURE_WINDOW_SECONDS))


def actor_authenticate(request, *, role_check: RoleCheck | None = None) -> Actor:
    """The Actor behind a request, or a 401/400 DispatchError (or whatever `role_check` raises).

    A Bearer credential always wins; the X-Actor-* headers are read only when
    settings.DISPATCH_DEV_AUTH is on (production settings force it off). `role_check` sees the
    role once the credential is verified and before the identity behind it is looked up.

    Every 401 counts one failure against the client's address; once an address has failed
    DISPATCH_API_AUTH_FAILURE_LIMIT times in the current window, its requests are refused with
    429 AUTH_RATE_LIMITED before any credential is read, valid ones included, until the window
    ends. A request whose address cannot be read counts under one shared "unknown" client, so
    the limit never lapses; only the stdio MCP server's calls (LOCAL_CALLER_KEY: made in-process
    for the one local caller who started it) are not counted, as there is no client to hold back.
    """
    address = client_network(request)
    limit = int(settings.DISPATCH_API_AUTH_FAILURE_LIMIT)
    window = _failure_window() if limit > 0 and not request.META.get(LOCAL_CALLER_KEY) else None
    if window is not None:
        failures = window.count(address)
        if failures.count >= limit:
            raise auth_rate_limited(failures.retry_after)
    try:
        return _credentials_verified(request, role_check)
    except DispatchError as error:
        if window is not None and error.status == 401:
            failures = window.hit(address)
            if failures.count == limit:
                logger.warning(
                    "API authentication refused %s times from %s: held back for %s s",
                    limit,
                    address,
                    failures.retry_after,
                )
        raise


def _credentials_verified(request, role_check: RoleCheck | None) -> Actor:
    authorization = request.headers.get("Authorization", "")
    if authorization.strip():
        match = BEARER.match(authorization.strip())
        if match is None:
            raise invalid_auth_token("Authorization header must use a Bearer token.")
        token = match.group(1)
        if token.startswith(TOKEN_PREFIX):
            return _actor_from_api_token(request, token, role_check)
        return _actor_from_jwt(request, token, role_check)
    if getattr(settings, "DISPATCH_DEV_AUTH", False):
        return _actor_from_dev_headers(request, role_check)
    raise auth_required()
