"""Who may knock on the webhooks: Twilio's and Mailgun's request signatures, checked by hand.

Both checks fail closed: an unset secret refuses every request. The Twilio URL is rebuilt from
the configured public address (DISPATCH_PUBLIC_URL), never from the Host header, so a request
sent to another host name with a signature made for it cannot pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.cache import cache

# Mailgun signs with a timestamp; anything further from our clock than this is refused, and
# every token seen is remembered for as long as its timestamp would still be accepted.
MAILGUN_MAX_AGE_SECONDS = 300
MAILGUN_MAX_SKEW_SECONDS = 60
MAILGUN_TOKEN_CACHE_PREFIX = "intake:mailgun-token:"


def twilio_public_url(*, path_info: str, query_string: str = "") -> str:
    """The URL Twilio was told to call: the configured public base + the path (+ query)."""
    base = str(getattr(settings, "DISPATCH_PUBLIC_URL", "")).rstrip("/")
    url = base + path_info
    return f"{url}?{query_string}" if query_string else url


def twilio_signature(*, auth_token: str, url: str, params: Mapping[str, Iterable[str]]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by every POST
    parameter, sorted by name (and a repeated name's values sorted), as name + value."""
    data = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """The URL without a port and with one (the scheme's default when none is given): Twilio
    documents that it may sign either form, and its own validator accepts both."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    prefix = userinfo + "@" if userinfo else ""
    host = hostport.rsplit(":", 1)[0] if parts.port is not None else hostport
    port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    without = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}"))
    return [without, with_port]


def twilio_request_valid(*, signature: str, path_info: str, query_string: str, params) -> bool:
    """Whether `signature` is Twilio's signature of this request under TWILIO_AUTH_TOKEN.

    `params` is the POST form as (name, values) pairs, as a QueryDict's lists() gives them.
    """
    auth_token = str(getattr(settings, "TWILIO_AUTH_TOKEN", "") or "")
    if not auth_token or not signature:
        return False
    values = {name: list(items) for name, items in params}
    url = twilio_public_url(path_info=path_info, query_string=query_string)
    for candidate in _port_variants(url):
        expected = twilio_signature(auth_token=auth_token, url=candidate, params=values)
        if hmac.compare_digest(expected.encode(), signature.strip().encode()):
            return True
    return False


def mailgun_signature(*, signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token under the signing key."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_request_check(*, timestamp: str, token: str, signature: str, now: float | None = None) -> str | None:
    """None when the Mailgun signature is genuine, fresh and its token unused (the token is then
    remembered); otherwise the reason for refusing, for the log line."""
    signing_key = str(getattr(settings, "MAILGUN_SIGNING_KEY", "") or "")
    if not signing_key:
        return "no MAILGUN_SIGNING_KEY configured"
    if not (timestamp and token and signature) or len(token) > 200 or len(signature) > 200:
        return "signature fields missing"
    try:
        stamp = int(timestamp)
    except ValueError:
        return "timestamp is not a number"
    expected = mailgun_signature(signing_key=signing_key, timestamp=timestamp, token=token)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return "signature does not match"
    now = time.time() if now is None else now
    if stamp < now - MAILGUN_MAX_AGE_SECONDS:
        return "timestamp is stale"
    if stamp > now + MAILGUN_MAX_SKEW_SECONDS:
        return "timestamp is in the future"
    # cache.add is atomic on every backend: of two deliveries of one token, exactly one wins.
    # The entry outlives the window in which the timestamp itself would still pass.
    if not cache.add(MAILGUN_TOKEN_CACHE_PREFIX + token, 1, timeout=MAILGUN_MAX_AGE_SECONDS + MAILGUN_MAX_SKEW_SECONDS):
        return "token already used"
    return None


def mailgun_token_forget(token: str) -> None:
    """Let a token be used again: its request failed on our side, and Mailgun will retry it."""
    cache.delete(MAILGUN_TOKEN_CACHE_PREFIX + token)
