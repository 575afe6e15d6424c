"""The record store interface, and the in-process store used without Redis.

Records are opaque bytes under string keys; a store serves one published version at a
time. Callers tell "no such record" (``None``) apart from "could not ask"
(:class:`StoreUnavailable`): only the second may be answered from a stale cache.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol


class StoreUnavailable(Exception):
    """The backend could not answer (timeout, connection refused, nothing published, …)."""


class RecordStore(Protocol):
    def version(self) -> int | None:
        """The version being served; None if nothing was ever published.

        May raise StoreUnavailable when the backend has to be asked.
        """
        ...

    def get(self, key: str) -> bytes | None:
        """The record in the current version, or None if it has no such key.

        Raises StoreUnavailable when the backend cannot answer.
        """
        ...


class MemoryStore:
    """Records held in this process (the embedded no-Redis mode, and tests)."""

    def __init__(self) -> None:
        # One tuple, swapped whole: a reader sees one version or the other, never a mix.
        self._state: tuple[int | None, Mapping[str, bytes]] = (None, {})
        self._lock = threading.Lock()  # two replaces must not get the same number

    def replace(self, records: Mapping[str, bytes]) -> int:
        """Serve ``records`` as the next version; return its number (1, 2, …)."""
        snapshot = dict(records)
        with self._lock:
            version = (self._state[0] or 0) + 1
            self._state = (version, snapshot)
        return version

    def version(self) -> int | None:
        return self._state[0]

    def snapshot(self) -> tuple[int | None, Mapping[str, bytes]]:
        """The version and all its records (read-only)."""
        return self._state

    def get(self, key: str) -> bytes | None:
        return self._state[1].get(key)
