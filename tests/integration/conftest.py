"""Fixtures for tests against real services started (and stopped) by the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redisctl import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
