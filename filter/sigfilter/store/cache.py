"""The in-process cache in front of a record store: fast, and it outlives outages.

Fresh answers (TTL, default 20 minutes) are served without asking the backend. When
the backend is unavailable, an expired answer is still served — a signature from a few
minutes ago is better than none — and only a key never seen raises StoreUnavailable.
A new published version drops everything at once (``invalidate``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..defaults import CACHE_MAX_ENTRIES, CACHE_TTL
from .base import RecordStore, StoreUnavailable

_COUNTERS = ("hits", "misses", "stale_served", "unavailable", "invalidations")


class CachedStore:
    def __init__(
        self,
        backend: RecordStore,
        ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._version: int | None = None

    def version(self) -> int | None:
        return self._version

    def get(self, key: str) -> bytes | None:
        now = self.clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and now - cached[0] < self.ttl:
                self._counts["hits"] += 1
                self._entries.move_to_end(key)
                return cached[1]
        try:
            value = self.backend.get(key)
        except StoreUnavailable:
            with self._lock:
                if cached is not None:
                    self._counts["stale_served"] += 1
                    return cached[1]
                self._counts["unavailable"] += 1
            raise
        with self._lock:
            self._counts["misses"] += 1
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, version: int | None = None) -> None:
        """Drop every cached answer (a new version was announced)."""
        with self._lock:
            if version is not None and version == self._version:
                return  # the listener repeats the current version after reconnecting
            self._entries.clear()
            self._version = version
            self._counts["invalidations"] += 1
        refresh = getattr(self.backend, "refresh", None)
        if callable(refresh):
            with contextlib.suppress(StoreUnavailable):  # the next lookup retries
                refresh()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "entries": len(self._entries)}
