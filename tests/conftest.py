"""Fixtures shared by all tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free 127.0.0.1 port; always stopped at teardown.

    The test may ``stop()`` and ``start()`` it again (same port) to play an outage.
    Fails (not skips) if redis-server is missing: ``make test`` installs it.
    """
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
