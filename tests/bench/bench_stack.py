"""Benchmark: the same load through bare Postfix and through Postfix + our milter.

    .venv/bin/python tests/bench/bench_stack.py [--messages 2000] [--concurrency 20] [--repeats 3]

Starts everything on 127.0.0.1 and stops it. For each repeat it sends the same ~20 KB
HTML+text reply (a Gmail-style thread with an iPhone footer) through (a) a private
Postfix with no milter and (b) the same Postfix with `sigfilter milter` on a unix
socket, and prints messages/second for both, their ratio, and the end-to-end latency
(client DATA sent → sink received) p50/p99 and what the milter adds. Targets (issue 4):
ratio ≥ 0.6, added p50 ≤ 2.5 ms, added p99 ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import random
import smtplib
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import make_reply

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import Sink, free_port

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def messages(n: int) -> list[tuple[str, bytes]]:
    """``n`` different ~20 KB replies: each has its own text, so no per-line cache in
    the milter can remember a whole message (the iPhone footer line recurs, as in life)."""
    out = []
    for i in range(n):
        mid = f"<bench-{i}@test.sigfilter>"
        raw = make_reply(random.Random(i))
        out.append((mid, raw.replace(b"<bench@test.sigfilter>", mid.encode())))
    return out


def run_load(
    port: int, sink: Sink, load: list[tuple[str, bytes]], concurrency: int
) -> tuple[float, list[float]]:
    sink.clear()
    sent_at: dict[str, float] = {}
    lock = threading.Lock()

    def sender(items: list[tuple[str, bytes]]) -> None:
        client = smtplib.SMTP("127.0.0.1", port, timeout=60)
        for n, (mid, raw) in enumerate(items, 1):
            with lock:
                sent_at[mid] = time.monotonic()
            client.sendmail("avery.quill@example.com", ["jane@customer.example"], raw)
            if n % 25 == 0:  # new sessions now and then, as Exchange does
                client.quit()
                client = smtplib.SMTP("127.0.0.1", port, timeout=60)
        client.quit()

    started = time.monotonic()
    threads = [
        threading.Thread(target=sender, args=(load[i::concurrency],)) for i in range(concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    if not sink.wait_for(len(load), timeout=300):
        raise RuntimeError(f"only {len(sink.messages)} of {len(load)} messages arrived")
    got = sink.messages
    elapsed = max(m.arrived for m in got) - started
    latencies = []
    for m in got:
        mid = m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        latencies.append((m.arrived - sent_at[mid]) * 1000)
    return len(load) / elapsed, latencies


def latency(port: int, sink: Sink, load: list[tuple[str, bytes]]) -> list[float]:
    """One message at a time, each waited for: end-to-end latency without queueing."""
    sink.clear()
    out = []
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for n, (_, raw) in enumerate(load, 1):
            started = time.monotonic()
            client.sendmail("avery.quill@example.com", ["jane@customer.example"], raw)
            got = sink.wait_for(n, timeout=30)
            out.append((got[-1].arrived - started) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--latency", type=int, default=300, help="messages sent one at a time for latency"
    )
    args = ap.parse_args()
    load = messages(args.messages)
    print(
        f"{args.messages} messages of ~{len(load[0][1])} bytes, {args.concurrency} concurrent, {args.repeats} repeats"
    )
    work = new_workdir("sigfilter-bench-")
    sink = Sink()
    sink.start()
    milter = MilterProcess(work / "milter", CATALOG)
    milter.start()
    bare = PostfixInstance(work / "bare", free_port(), sink.port, None)
    filtered = PostfixInstance(work / "milter-pf", free_port(), sink.port, milter.postfix_spec)
    try:
        bare.start()
        filtered.start()
        run_load(bare.smtpd_port, sink, load[:200], args.concurrency)  # warm up both
        run_load(filtered.smtpd_port, sink, load[:200], args.concurrency)
        rows = []
        for r in range(args.repeats):
            b_rate, _ = run_load(bare.smtpd_port, sink, load, args.concurrency)
            m_rate, _ = run_load(filtered.smtpd_port, sink, load, args.concurrency)
            signed = sum(b"X-Sigfilter-Processed" in m.data for m in sink.messages)
            b_lat = latency(bare.smtpd_port, sink, load[: args.latency])
            m_lat = latency(filtered.smtpd_port, sink, load[: args.latency])
            row = (
                b_rate,
                m_rate,
                statistics.median(b_lat),
                statistics.median(m_lat),
                pct(b_lat, 0.99),
                pct(m_lat, 0.99),
            )
            rows.append(row)
            print(
                f"run {r + 1}: throughput bare {b_rate:5.0f} msg/s, milter {m_rate:5.0f} msg/s "
                f"({signed}/{len(load)} signed), ratio {m_rate / b_rate:.2f}; latency p50 {row[2]:.1f} -> "
                f"{row[3]:.1f} ms (+{row[3] - row[2]:.1f}), p99 {row[4]:.1f} -> {row[5]:.1f} ms (+{row[5] - row[4]:.1f})"
            )
        ratios = [m / b for b, m, *_ in rows]
        print(
            f"ratio milter/bare: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
        )
        print(f"added latency (one message at a time): p50 median +{statistics.median(r[3] - r[2] for r in rows):.1f} ms, "
              f"p99 median +{statistics.median(r[5] - r[4] for r in rows):.1f} ms")  # fmt: skip
    finally:
        bare.stop()
        filtered.stop()
        milter.stop(kill=True)
        sink.stop()


if __name__ == "__main__":
    main()
