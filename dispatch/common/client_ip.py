"""The address a request came from, the one every per-address limit and sign-in record uses."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# One IPv6 customer is handed a whole /64: counting its addresses one by one would give each
# attacker 2**64 fresh starts, so limits count the /64.
IPV6_LIMIT_PREFIX = 64
# What a limit counts a request under when no address can be read (a proxy that wrote
# "unknown", a server on a Unix socket): one shared counter, so the limit still holds.
UNKNOWN_CLIENT = "0.0.0.0"


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or — behind DISPATCH_TRUSTED_PROXY_COUNT proxies that append to
    X-Forwarded-For — the address the outermost trusted proxy saw. Anything further left in the
    header was written by the client and is never believed. Always a plain IP address: a proxy's
    "203.0.113.7:51234" or "[2001:db8::1]:443" loses its port; when the proxy's entry is not an
    address, the proxy's own address (REMOTE_ADDR) stands in; "" when there is none at all."""
    proxies = int(getattr(settings, "DISPATCH_TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            seen = _plain(hops[-proxies])
            if seen:
                return seen
    return _plain(request.META.get("REMOTE_ADDR", ""))


def client_network(request: HttpRequest) -> str:
    """What a per-client limit counts: the address (an IPv4 client's, also when it reached an
    IPv6 socket as ::ffff:a.b.c.d), an IPv6 client's /64, or UNKNOWN_CLIENT."""
    address = client_address(request)
    if not address:
        return UNKNOWN_CLIENT
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_LIMIT_PREFIX}", strict=False).network_address)
    return address


def _plain(value: str) -> str:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""
