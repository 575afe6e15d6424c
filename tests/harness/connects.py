"""Connection attempts counted per thread: a count does not change when the machine is busy."""

from __future__ import annotations

import socket
import threading

import pytest

# One lookup while Redis is down makes this many connection attempts: the first, and the
# one immediate retry that store.redis_store.connect() configures (no backoff, no sleep).
ATTEMPTS_PER_LOOKUP = 2


class Connects:
    """Every socket ``connect()`` a test makes, with the thread that made it."""

    def __init__(self) -> None:
        self.made: list[tuple[int, object]] = []

    def here(self) -> int:
        """Attempts made so far by the calling thread (not by a listener's thread)."""
        me = threading.get_ident()
        return sum(1 for thread, _ in self.made if thread == me)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count through ``monkeypatch`` (pytest undoes it at teardown)."""
        original = socket.socket.connect

        def counting(sock: socket.socket, address: object) -> None:
            self.made.append((threading.get_ident(), address))
            original(sock, address)  # type: ignore[arg-type]

        monkeypatch.setattr(socket.socket, "connect", counting)
