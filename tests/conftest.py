"""Fixtures shared by all tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from harness.connects import Connects
from harness.redis_server import RedisServer

# Hypothesis's defaults are speed claims too: a 200 ms deadline per example and a health
# check on slow data generation fail a test when the machine is busy, not when the code
# is wrong. Here a deadline only catches a hang; tests with their own settings keep them.
settings.register_profile("suite", deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Every work directory the harness makes (Postfix instances, milters, redis-servers:
# tempfile.mkdtemp without a dir) goes under one directory per run, removed when the run
# passes and kept (its path printed) when it fails. Before, each run left ~70 directories
# in /tmp (670 after a few days here). Mode 755: the postfix user must traverse it.
_RUN_DIR = Path(tempfile.mkdtemp(prefix="sigfilter-tests-"))
_RUN_DIR.chmod(0o755)
tempfile.tempdir = str(_RUN_DIR)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == 0 and os.getpid() == _OWNER:
        shutil.rmtree(_RUN_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if exitstatus != 0:
        terminalreporter.write_line(f"work directories (Postfix logs, queues) kept in {_RUN_DIR}")


_OWNER = os.getpid()  # a forked child ending (multiprocessing) must not remove the run


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
