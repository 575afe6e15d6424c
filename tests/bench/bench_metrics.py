"""Benchmark the per-message cost of metrics and the log line, in ns per message.

    .venv/bin/python tests/bench/bench_metrics.py [--messages 200000] [--repeats 5]

What one message costs the milter beyond its work (the whole budget the milter adds
end to end is about 2.5 ms = 2,500,000 ns p50):

- baseline: what the milter did before (a collections.Counter under a lock, the old
  COUNTS.add), measured in the same run;
- metrics: the updates one message makes (seen, in flight up and down, the decision
  counter with its cached label child, the minute history, the rewrite histogram);
- line kv / line json: formatting the one log line (logline.format_line);
- old whole _log path: the replaced _log (Counts.add and its %-formatted line);
- whole _log path: SigfilterMilter._log with the logger at INFO writing to a null
  handler (metrics + line + logging's own record handling).

Prints the best of ``--repeats`` for each, and ratios against the baseline.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from sigfilter.milter.callbacks import MilterSettings, SigfilterMilter
from sigfilter.milter.logline import format_line
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.ops.metrics import Metrics
from sigfilter.service import SignatureService
from sigfilter.store.base import MemoryStore

BUDGET_NS = 2_500_000  # the milter's whole added p50 latency today


class OldCounts:
    """The accounting the milter did before this change (milter.Counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_reason: Counter[str] = Counter()

    def add(self, action: str, reason: str) -> None:
        with self._lock:
            self.by_reason[f"{action}:{reason}"] += 1


def best_ns(fn: Callable[[], None], messages: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(messages):
            fn()
        times.append((time.perf_counter_ns() - started) / messages)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    old = OldCounts()
    metrics = Metrics()
    fields = {"queue_id": "4XyZ1B2C3D", "tenant": "example.com", "sender_domain": "example.com",
              "action": "signed", "reason": "ok", "placement": "footer", "rule": "(default)",
              "bytes_in": 21504, "bytes_out": 23817, "ms": 1.7}  # fmt: skip

    def baseline() -> None:
        old.add("signed", "ok")

    def updates() -> None:
        metrics.seen.inc()
        metrics.in_flight.inc()
        metrics.rewrite_seconds.observe(0.0012)
        metrics.in_flight.dec()
        metrics.message("signed", "ok", "example.com")

    def line_kv() -> None:
        format_line(fields, "kv")

    def line_json() -> None:
        format_line(fields, "json")

    logger = logging.getLogger("sigfilter.message")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    runtime = Runtime(SignatureService(MemoryStore()), MilterSettings(), metrics=metrics)
    m = SigfilterMilter(RuntimeHolder(runtime))
    m.getsymval = lambda sym: "4XyZ1B2C3D"  # no MTA here
    m.sender, m.tenant, m.size = "avery.quill@example.com", "example.com", 21000

    old_log = logging.getLogger("sigfilter.bench-old")
    old_log.addHandler(logging.NullHandler())
    old_log.propagate = False
    old_log.setLevel(logging.INFO)

    def old_whole_log() -> None:
        """The _log this change replaced: Counts.add and a %-formatted line."""
        old.add("signed", "ok")
        extra_fields = {"placement": "footer", "rule": "(default)", "bytes_in": 21504,
                        "bytes_out": 23817}  # fmt: skip
        domain = m.sender.rpartition("@")[2] or "-"
        extra = " ".join(f"{k}={v}" for k, v in extra_fields.items() if v not in (None, ""))
        ms = (time.monotonic() - m.started) * 1000
        old_log.info("queue_id=%s action=%s reason=%s sender_domain=%s ms=%.1f %s",
                     m._queue_id(), "signed", "ok", domain, ms, extra)  # fmt: skip

    def whole_log() -> None:
        m.open = True  # as after envfrom
        m._log("signed", "ok", placement="footer", rule="(default)", bytes_out=23817)

    results = {}
    for name, fn in (("baseline (old Counts.add)", baseline), ("metrics updates", updates),
                     ("line kv", line_kv), ("line json", line_json),
                     ("old whole _log path", old_whole_log),
                     ("whole _log path (kv)", whole_log)):  # fmt: skip
        results[name] = best_ns(fn, args.messages, args.repeats)
    base = results["baseline (old Counts.add)"]
    print(f"{args.messages} messages x {args.repeats} repeats, best run, ns per message:")
    for name, ns in results.items():
        print(
            f"  {name:28} {ns:9.0f} ns  {ns / base:6.1f}x baseline  "
            f"{100 * ns / BUDGET_NS:6.3f}% of 2.5 ms"
        )


if __name__ == "__main__":
    main()
