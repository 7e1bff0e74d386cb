"""One fixed-window counter per purpose and client, kept in Django's cache.

The cache is the one every web process shares (the database cache in production, LocMemCache in
tests), so every process counts into the same number. Windows are aligned on multiples of their
length since the epoch: the window's index is part of the key, so a new window is a new key and
the seconds left in the current one (a 429's Retry-After) follow from the clock alone.

A count is `cache.add` (create at 0 if absent) then `cache.incr`. incr is atomic on LocMemCache,
Redis and memcached; on the database cache it is a read then a write, so requests counted at the
very same moment may be counted once between them: at worst a client firing requests side by side
gets the limit times the number of requests the servers handle at once, still a bound.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import caches

KEY_PREFIX = "throttle"
# The cache alias the counters live in (settings.CACHES["limits"], a table of their own).
CACHE_ALIAS = "limits"


@dataclass(frozen=True)
class WindowCount:
    """How many times a client was counted in the current window, and the whole seconds (at least
    one) until that window ends."""

    count: int
    retry_after: int


@dataclass(frozen=True)
class FixedWindow:
    """Counts per client (usually its address) in aligned windows of `seconds` for one purpose."""

    purpose: str
    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError("a window lasts at least one second")

    def _at(self, client: str) -> tuple[str, int]:
        now = time.time()
        index = int(now // self.seconds)
        retry_after = max(1, math.ceil((index + 1) * self.seconds - now))
        # The client's text is hashed: any address (IPv6, or what a proxy wrote) makes a short,
        # safe key for every cache backend.
        digest = hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{KEY_PREFIX}:{self.purpose}:{self.seconds}:{index}:{digest}", retry_after

    def count(self, client: str) -> WindowCount:
        """The client's count in the current window, without counting anything."""
        key, retry_after = self._at(client)
        return WindowCount(count=int(caches[CACHE_ALIAS].get(key, 0)), retry_after=retry_after)

    def forget(self, client: str) -> None:
        """Start the client's current window over (someone with the authority to said so)."""
        key, _ = self._at(client)
        caches[CACHE_ALIAS].delete(key)

    def hit(self, client: str) -> WindowCount:
        """Count one for the client in the current window; the count includes this one."""
        key, retry_after = self._at(client)
        # The key outlives its window by a little; after that the next window's key is used anyway.
        timeout = retry_after + 1
        cache = caches[CACHE_ALIAS]
        cache.add(key, 0, timeout=timeout)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: this is the first count of the window
            cache.add(key, 1, timeout=timeout)
            count = 1
        return WindowCount(count=count, retry_after=retry_after)
