"""Fixtures shared by all tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from harness.connects import Connects
from harness.redis_server import RedisServer

# Hypothesis's defaults are speed claims too: a 200 ms deadline per example and a health
# check on slow data generation fail a test when the machine is busy, not when the code
# is wrong. Here a deadline only catches a hang; tests with their own settings keep them.
settings.register_profile("suite", deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


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


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Connects:
    """Counts connection attempts while the test runs.

    "Redis down costs one quick failure per lookup" is asserted by counting attempts,
    not seconds (issue 18: wall-clock limits failed on a busy machine).
    """
    seen = Connects()
    seen.install(monkeypatch)
    return seen
