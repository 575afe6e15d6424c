"""The milter on one CPU.

Only one thread runs Python at a time (the GIL), and the milter's threads hand it to
each other many times a message: libmilter's thread per connection for every
callback, the rewrite pool, the log writer. On two CPUs a hand-off wakes the other
thread on the other CPU (an inter-processor interrupt, a VM exit on a cloud VM) and
the work moves between the CPUs' caches. On one CPU the milter used 12-26% less CPU
per message, of it ~30% less kernel time, at the same or higher throughput (the stack
on 2 vCPUs, five interleaved pairs; README, "CPU per message"). What it gives up is
running libmilter's socket I/O beside the Python work, which the GIL mostly serialises
anyway. The CPU is the last one the process may use, so a systemd ``CPUAffinity=``
still decides where it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger("sigfilter.milter.cpu")


def pin_to_one_cpu() -> int | None:
    """Move every thread of this process to the last CPU it may use; threads started
    later inherit it. The CPU, or None where the system offers no affinity or refused."""
    try:
        cpu = max(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # the calling thread; no /proc to name the others
    try:
        for tid in threads:
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                os.sched_setaffinity(tid, {cpu})
    except OSError as exc:
        log.warning("action=cpu reason=refused detail=%s", exc)
        return None
    return cpu
