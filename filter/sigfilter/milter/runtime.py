"""What the running milter works with, as one frozen value, and the holder that swaps it.

A :class:`Runtime` owns the catalog service, the settings, the metrics, the DKIM key
cache, the DNS cache, the rewrite pool, the memory budget and the log-line writer.
Every connection gets the :class:`RuntimeHolder`; every message takes ONE snapshot of
it at MAIL FROM and uses that snapshot to its end. A reload builds a new runtime
(``Runtime.reloaded``: new service and settings, the same pool, budget, keys, DNS,
writer and metrics) and swaps it in with one reference assignment, so no message can
see one catalog with the other's settings (aiosmtpd's plain state objects are the model).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..config import MilterConfig
from ..defaults import (
    CONNECTOR_CERT_NAME,
    DEFAULT_MAX_SIZE,
    DEFAULT_MEMORY_BUDGET,
    LOG_BATCH_SECONDS,
    LOG_FORMAT,
    LOG_SENDER,
    MESSAGE_TIME_LIMIT,
    OVER_BUDGET,
    REWRITE_WORKERS,
    SINGLE_CPU,
    TENANT_ID_MISMATCH,
    TENANT_ID_MISSING,
)
from ..dkim.keys import KeyCache, cached_dns
from ..dkim.sign import DnsFunc
from ..ops.metrics import Metrics
from ..service import SignatureService
from .budget import MemoryBudget


@dataclass(frozen=True, slots=True)
class MilterSettings:
    max_size: int = DEFAULT_MAX_SIZE
    time_limit: float = MESSAGE_TIME_LIMIT  # seconds for one message's rewrite
    workers: int = REWRITE_WORKERS  # read when the pool is made; a reload keeps the pool
    log_format: str = LOG_FORMAT  # kv | json
    log_sender: str = LOG_SENDER  # domain | address (the full sender in each line)
    # Security policy (SECURITY.md; config.py documents the values).
    connector_cert_name: str = CONNECTOR_CERT_NAME  # "" = no client certificate check
    tenant_id_mismatch: str = TENANT_ID_MISMATCH
    tenant_id_missing: str = TENANT_ID_MISSING
    # Memory (budget.py): bytes all messages in flight may reserve (0: no bound), and
    # what happens to a message that does not fit: pass (unchanged) or tempfail (4xx).
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    over_budget: str = OVER_BUDGET
    single_cpu: bool = SINGLE_CPU  # cpu.py: read at start; a reload keeps the CPU

    @classmethod
    def from_config(cls, conf: MilterConfig) -> MilterSettings:
        """The config's settings of the same name: one source, nothing mapped by hand
        (time_limit and workers are fixed in defaults.py, not configurable)."""
        names = {f.name for f in fields(cls)} & {f.name for f in fields(conf)}
        return cls(**{name: getattr(conf, name) for name in names})


class LineWriter:
    """Writes the per-message log lines from a thread of its own, in batches.

    Making the log record, formatting it and writing it cost ~0.1 ms per message on
    the milter's critical path (measured with per-callback timers); queueing the
    fields costs ~1 µs. The thread wakes for the first line, then waits ``batch``
    seconds before writing what has come: with a wake-up per message (and the GIL it
    takes) the log thread used 0.16 ms of CPU per message at 20 concurrent sessions,
    batched 0.07 ms (tests/bench/bench_stack.py's stack, per-thread CPU from /proc). A
    line is written at most ``batch`` seconds late. Until start() (unit tests drive
    callbacks directly) lines are logged at once.
    """

    def __init__(self, batch: float = LOG_BATCH_SECONDS) -> None:
        self._queue: queue.SimpleQueue[tuple[logging.Logger, str, tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self.batch = batch

    def write(self, logger: logging.Logger, fmt: str, *args: Any) -> None:
        if self._thread is None:
            logger.info(fmt, *args)
        else:
            self._queue.put((logger, fmt, args))

    def start(self) -> None:
        """Call after block_signals(), like every thread of ours."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="sigfilter-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)
            self._thread = None

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]  # sleeps until there is a line (or the stop)
            if batch[0] is not None:
                time.sleep(self.batch)  # let the lines of other messages join this wake-up
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            for item in batch:
                if item is None:
                    return  # stop() queues None last: everything before it is written
                logger, fmt, args = item
                logger.info(fmt, *args)


def _pool(workers: int) -> ThreadPoolExecutor:
    # The rewrite runs on threads Python created: libmilter's own threads crashed lxml
    # under load (segfaults at 20 concurrent sessions), and a future gives the time
    # limit. The executor starts its threads on first submit, so making it early is free
    # and the threads still inherit the signal mask block_signals() set.
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sigfilter-rewrite")


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything one message needs besides its own bytes."""

    service: SignatureService
    settings: MilterSettings = field(default_factory=MilterSettings)
    metrics: Metrics = field(default_factory=Metrics)
    keys: KeyCache = field(default_factory=KeyCache)  # DKIM/ARC keys, re-read on change
    dns: DnsFunc = field(default_factory=cached_dns)  # TXT lookups for ARC results
    pool: ThreadPoolExecutor | None = None  # None: made from settings.workers
    lines: LineWriter = field(default_factory=LineWriter)
    # Shared by every connection; None: made from settings.memory_budget.
    budget: MemoryBudget | None = None

    def __post_init__(self) -> None:
        if self.pool is None:
            object.__setattr__(self, "pool", _pool(self.settings.workers))
        if self.budget is None:
            object.__setattr__(self, "budget", MemoryBudget(self.settings.memory_budget))
            self.metrics.watch_budget(self.memory)

    @property
    def executor(self) -> ThreadPoolExecutor:
        assert self.pool is not None  # made in __post_init__
        return self.pool

    @property
    def memory(self) -> MemoryBudget:
        assert self.budget is not None  # made in __post_init__
        return self.budget

    def reloaded(self, service: SignatureService, settings: MilterSettings) -> Runtime:
        """A new catalog and settings; the same pool, budget (with the new limit), keys,
        DNS, writer and metrics: what messages in flight hold stays counted."""
        self.memory.resize(settings.memory_budget)
        return replace(self, service=service, settings=settings)


class RuntimeHolder:
    """The current runtime. Swapping is one reference assignment (atomic in CPython);
    a message reads ``current`` once, at MAIL FROM."""

    __slots__ = ("_current",)

    def __init__(self, runtime: Runtime) -> None:
        self._current = runtime

    @property
    def current(self) -> Runtime:
        return self._current

    def swap(self, runtime: Runtime) -> None:
        self._current = runtime
