"""The address a request came from, the one every per-address limit and sign-in record uses."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or — behind DISPATCH_TRUSTED_PROXY_COUNT proxies that append to
    X-Forwarded-For — the address the outermost trusted proxy saw. Anything further left in the
    header was written by the client and is never believed."""
    proxies = int(getattr(settings, "DISPATCH_TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")
