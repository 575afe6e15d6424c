"""The record store interface, and the in-process store used without Redis."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol


class StoreUnavailable(Exception):
    """The backend could not answer (timeout, connection refused, …)."""


class RecordStore(Protocol):
    def version(self) -> int | None:
        """The version being served; None if nothing was ever published."""

    def get(self, key: str) -> bytes | None:
        """The record, or None if the current version has no such key."""


class MemoryStore:
    """Records held in this process (the embedded no-Redis mode, and tests)."""

    def __init__(self) -> None:
        self._records: Mapping[str, bytes] = {}
        self._version: int | None = None
        self._lock = threading.Lock()

    def replace(self, records: Mapping[str, bytes]) -> int:
        with self._lock:  # swap the whole mapping: readers see one version or the other
            self._records = dict(records)
            self._version = (self._version or 0) + 1
            return self._version

    def version(self) -> int | None:
        return self._version

    def get(self, key: str) -> bytes | None:
        return self._records.get(key)
