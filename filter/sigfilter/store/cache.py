"""The in-process cache in front of a record store: fast, and it outlives outages.

Fresh answers (TTL, default 20 minutes) are served without asking the backend, "no such
record" answers included. When the backend is unavailable an expired answer is still
served — a signature from a few minutes ago is better than none — and only a key never
seen raises StoreUnavailable. After a failure the backend is left alone for a moment
(``retry_after``), so an unreachable Redis costs one timeout per second, not one per
lookup. A newly announced version drops everything at once (``invalidate``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..defaults import CACHE_MAX_ENTRIES, CACHE_RETRY_AFTER, CACHE_TTL
from .base import RecordStore, StoreUnavailable

# Every lookup counts exactly one of the first four; backend_errors counts failed requests.
_COUNTERS = ("hits", "misses", "stale_served", "unavailable", "invalidations", "backend_errors")


class CachedStore:
    """A RecordStore in front of another; safe to share between threads."""

    def __init__(
        self,
        backend: RecordStore,
        ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
        retry_after: float = CACHE_RETRY_AFTER,
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max(1, max_entries)
        self.retry_after = retry_after
        # key -> (expires at, record or None); oldest use first, for the size bound
        self._entries: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._announced: int | None = None  # the last version invalidate() was told of
        self._entries_version: int | None = None  # the backend version the entries are of
        # Bumped (twice) by invalidate(): an answer fetched across a switch is not kept,
        # so a record of the old version cannot outlive the switch in the cache.
        self._generation = 0
        self._switching = False
        self._down_until = float("-inf")
        self._down_reason = ""

    def version(self) -> int | None:
        return self.backend.version()

    def get(self, key: str) -> bytes | None:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry[0]:
                self._counts["hits"] += 1
                self._entries.move_to_end(key)
                return entry[1]
            generation = None if self._switching else self._generation
            resting = now < self._down_until
            reason = self._down_reason
        if resting:
            return self._fallback(
                key,
                entry,
                StoreUnavailable(f"{reason} (not asked again for {self.retry_after:g} s)"),
            )
        try:
            # The backend's version around the answer tells which version it belongs to
            # (a RedisStore answers this from memory).
            before = self.backend.version()
            value = self.backend.get(key)
            after = self.backend.version()
        except StoreUnavailable as exc:
            with self._lock:
                self._down_until = now + self.retry_after
                self._down_reason = str(exc)
                self._counts["backend_errors"] += 1
            return self._fallback(key, entry, exc)
        with self._lock:
            self._counts["misses"] += 1
            # Only answers fetched wholly within one generation and one backend version
            # are kept: one fetched across a switch may be of the old version.
            if generation == self._generation and self._admit(after) and before == after:
                self._entries[key] = (now + self.ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    def _admit(self, version: int | None) -> bool:
        """May an answer of backend ``version`` be cached? Call with the lock held.

        A backend can move on without an announcement (one was missed, or the version
        it held was dropped): entries of the older version go, so no older record is
        served once a newer one was.
        """
        if version == self._entries_version:
            return True
        if self._entries_version is None or (
            version is not None and version > self._entries_version
        ):
            if self._entries:
                self._entries.clear()
                self._counts["invalidations"] += 1
            self._entries_version = version
            return True
        return False  # answered by an older version than the entries: serve, don't keep

    def _fallback(
        self, key: str, entry: tuple[float, bytes | None] | None, exc: StoreUnavailable
    ) -> bytes | None:
        """The backend failed: any cached answer, however old, else re-raise."""
        with self._lock:
            stale = self._entries.get(key) or entry
            if stale is not None:
                self._counts["stale_served"] += 1
                return stale[1]
            self._counts["unavailable"] += 1
        raise exc

    def invalidate(self, version: int | None = None) -> None:
        """Drop every cached answer: ``version`` (None: unknown) was announced.

        A repeated announcement of the same version keeps the cache: the listener
        repeats the current version after each reconnect, and dropping the cache then
        would throw away exactly what carries us through the next outage.
        """
        with self._lock:
            if version is not None and version == self._announced:
                return
            self._entries.clear()
            self._entries_version = None  # an announcement may also go back (a restore)
            self._generation += 1
            self._switching = True
            self._down_until = float("-inf")  # an announcement means the backend is back
            self._counts["invalidations"] += 1
        try:
            # Move the backend to the new version; lookups meanwhile bypass the cache.
            refresh = getattr(self.backend, "refresh", None)
            if callable(refresh):
                refresh()
        except StoreUnavailable:
            pass  # a RedisStore that could not refresh re-reads the version on its next get
        finally:
            with self._lock:
                self._generation += 1
                self._switching = False
                self._announced = version

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "entries": len(self._entries)}
