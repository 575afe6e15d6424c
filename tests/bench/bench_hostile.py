"""Benchmark: hostile MIME against an ordinary message of the same size, same run.

    .venv/bin/python tests/bench/bench_hostile.py

For each case prints the rewrite's median time (3 runs), its tracemalloc peak, the
outcome, and both as ratios to an ordinary plain-text message of the same size (the
baseline; at most 3.5 MB, since a larger text part passes unchanged unread). A case that stops early costs far less than its baseline; a case that is
processed should cost a small multiple of it (linear work).
"""

from __future__ import annotations

import base64
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile_mail import HEAD, many_parts, nested
from sigfilter.engine import Result, rewrite
from support import SIGNATURE

MB = 1024 * 1024
BASE_MAX = 3 * MB + MB // 2


def ordinary(size: int) -> bytes:
    line = b"An ordinary line of a long message, nothing to see here.\r\n"
    return HEAD + b"Content-Type: text/plain\r\n\r\n" + line * max(1, size // len(line))


def attachment(size: int) -> bytes:
    data = base64.encodebytes(bytes(range(256)) * (size // 256)).replace(b"\n", b"\r\n")
    return (
        HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--B\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + data
        + b"--B--\r\n"
    )


def html(body: bytes) -> bytes:
    return HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + body


CASES: dict[str, Callable[[], bytes]] = {
    "nested 10,000 levels": lambda: nested(10_000),
    "100,000 parts": lambda: many_parts(100_000),
    "47 MB, base64 attachment": lambda: attachment(36 * MB),
    "1 MB header field": lambda: (
        HEAD + b"X-Long: " + b"a" * MB + b"\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    ),
    "260,000 folded header lines": lambda: HEAD + b"X-Long: a\r\n" + b" a\r\n" * (MB // 4) + b"\r\nhi\r\n",
    "1 MB line, no newline": lambda: HEAD + b"Content-Type: text/plain\r\n\r\n" + b"y" * MB,
    "4 MB HTML, 100k cite blockquotes": lambda: html(
        b'<blockquote type="cite">x</blockquote>\n' * 100_000
    ),
    "4 MB HTML, 340k divs": lambda: html(b"<div>x</div>" * 340_000),
    "4 MB HTML, 150k footers": lambda: html(b"<p>Sent from my iPhone</p>\n" * 150_000),
}  # fmt: skip


def measure(raw: bytes) -> tuple[float, int, Result]:
    times = []
    result = rewrite(raw, SIGNATURE)
    for _ in range(3):
        start = time.perf_counter()
        rewrite(raw, SIGNATURE)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    rewrite(raw, SIGNATURE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak, result


def main() -> None:
    print(
        f"{'case':36} {'MB':>6} {'ms':>9} {'peak MB':>8} {'x base t':>9} {'x base mem':>10}  outcome"
    )
    for name, make in CASES.items():
        raw = make()
        seconds, peak, result = measure(raw)
        base_s, base_peak, _ = measure(ordinary(min(len(raw), BASE_MAX)))
        outcome = f"{result.action} {result.reason}"
        print(
            f"{name:36} {len(raw) / MB:6.1f} {seconds * 1000:9.1f} {peak / MB:8.1f} "
            f"{seconds / base_s:9.2f} {peak / max(base_peak, 1):10.2f}  {outcome}",
            flush=True,
        )


if __name__ == "__main__":
    main()
