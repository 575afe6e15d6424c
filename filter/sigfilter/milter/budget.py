"""How much memory message data may take in the milter: one budget for all connections.

Every message reserves what it will hold before it holds it: its bytes as they arrive
(times COPY_FACTOR: the joined message and the new body come later), the engine's
work on its text parts once their size is known (TEXT_FACTOR), and the DKIM/ARC step's
copies when the tenant has one (defaults.py gives the factors and their measurements).
A reservation that does not fit is refused: the message gives back all it held and
passes unchanged (or is deferred with a 4xx, ``over_budget = "tempfail"``). So the
reservations of all messages together never exceed the budget, whatever arrives at
once, and the milter's RSS stays under its idle size plus the budget (README,
"Memory"; tests/bench/bench_memory.py shows it).

A budget of 0 reserves nothing and refuses nothing (no bound): for measurements.
"""

from __future__ import annotations

import threading

from ..defaults import ARC_SPACE_FACTOR, AUTH_FACTORS, COPY_FACTOR, TEXT_FACTOR


class MemoryBudget:
    """Bytes that all messages in flight may reserve together. Thread-safe: libmilter
    calls each connection on a thread of its own, the rewrite pool reserves too."""

    __slots__ = ("_limit", "_lock", "_peak", "_used")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a memory budget cannot be negative ({limit})")
        self._limit = limit
        self._used = 0
        self._peak = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The most ever reserved at once."""
        return self._peak

    def resize(self, limit: int) -> None:
        """A reload's new limit; what messages hold now stays theirs until they end."""
        if limit < 0:
            raise ValueError(f"a memory budget cannot be negative ({limit})")
        self._limit = limit

    def take(self, n: int) -> bool:
        """Reserve ``n`` bytes if they fit (always, with no limit)."""
        if self._limit == 0:
            return True
        with self._lock:
            if self._used + n > self._limit:
                return False
            self._used += n
            self._peak = max(self._peak, self._used)
            return True

    def give(self, n: int) -> None:
        if self._limit == 0 and self._used == 0:
            return
        with self._lock:
            self._used = max(0, self._used - n)


class Hold:
    """What one message holds of the budget. Once a reservation is refused, the message
    holds nothing and takes nothing more: it passes unchanged.

    Its own lock: the rewrite pool reserves for the message (take_text) while the
    message's thread may give everything back (a time limit passed).
    """

    __slots__ = ("_lock", "budget", "held", "refused")

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.held = 0
        self.refused = False
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.refused:
                return False
            if not self.budget.limit:
                return True
            if not self.budget.take(n):
                self.refused = True
                n, self.held = self.held, 0
                self.budget.give(n)
                return False
            self.held += n
            return True

    def release(self) -> int:
        """Give back everything held; how much."""
        with self._lock:
            held, self.held = self.held, 0
        if held:
            self.budget.give(held)
        return held

    def close(self) -> int:
        """The message has ended (each path that ends one calls this): give everything
        back and take nothing more. A rewrite still running after its time limit
        may ask later; it is refused, so nothing stays reserved for a message gone."""
        with self._lock:
            self.refused = True
        return self.release()

    # -- what a message reserves (the factors: defaults.py) -----------------------------

    def take_bytes(self, n: int) -> bool:
        """Header or body bytes arriving: they, the joined message and the new body."""
        return self.take(n * COPY_FACTOR)

    def take_text(self, n: int) -> bool:
        """The engine is about to decode and place into ``n`` bytes of text parts."""
        return self.take(n * TEXT_FACTOR)

    def take_auth(self, size: int, spaces: int, arc: bool, dkim: bool) -> bool:
        """The DKIM/ARC step's copies of a ``size``-byte message with ``spaces`` blanks
        (``dkim``: resign or strip; ``arc``: seal, which verifies the original too)."""
        factor = AUTH_FACTORS["arc" if arc else "resign" if dkim else "keep"]
        return self.take(size * factor + (ARC_SPACE_FACTOR * spaces if arc else 0))
