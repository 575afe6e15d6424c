"""Benchmark: publish time for 10,000 users, and lookups/s from the cache vs Redis.

    .venv/bin/python tests/bench/bench_serving.py [--users 10000] [--lookups 20000]

Starts its own redis-server on 127.0.0.1 (stopped at the end). Prints the time to
load + render the catalog and to write it to Redis, then signature lookups per second
(SignatureService.lookup: domain, tenant and user records, rules resolved) served from
the warm in-process cache and straight from Redis, measured in the same run, and how
long after a publish returns a reader with a warm cache serves the new version (the
announcement path; the tests check that it switches, this prints how fast).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.redis_server import RedisServer
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.service import SignatureService
from sigfilter.store.cache import CachedStore
from sigfilter.store.redis_store import RedisPublisher, RedisStore, VersionListener, connect

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def make_catalog(root: Path, users: int) -> list[str]:
    shutil.copytree(EXAMPLE, root)
    rows = ["email,display_name,job_title,department,phone,mobile,groups"]
    emails = []
    for i in range(users):
        email = f"user{i}@example.com"
        emails.append(email)
        dept = "IT" if i % 3 == 0 else "Sales"
        mobile = f"+1 555 9{i:04d}" if i % 2 else ""
        rows.append(f"{email},User {i},Engineer {i % 50},{dept},+1 555 {i:04d},{mobile},Staff")
    (root / "tenants" / "example.com" / "users.csv").write_text("\n".join(rows) + "\n")
    return emails


def rate(service: SignatureService, emails: list[str], n: int) -> float:
    rng = random.Random(1)
    picks = [rng.choice(emails) for _ in range(n)]
    started = time.perf_counter()
    for email in picks:
        found = service.lookup(email, ["client@customer.example"])
        assert found.signature is not None, found
    return n / (time.perf_counter() - started)


def propagation(url: str, rounds: int = 20) -> list[float]:
    """Seconds from calling publish() to a warm cached reader serving the new version."""
    cache = CachedStore(RedisStore(connect(url)))
    listener = VersionListener(connect(url), cache.invalidate)
    listener.start()
    assert listener.connected.wait(30)
    publisher = RedisPublisher(connect(url))
    seen = []
    try:
        for n in range(rounds):
            cache.get("user:probe@example.com")  # warm: cached until an announcement
            started = time.perf_counter()
            publisher.publish({"user:probe@example.com": b"%d" % n}, {})
            deadline = started + 30
            while cache.get("user:probe@example.com") != b"%d" % n:
                assert time.perf_counter() < deadline, "no announcement within 30 s"
                time.sleep(0.0005)
            seen.append(time.perf_counter() - started)
    finally:
        listener.stop()
    return sorted(seen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sigfilter-bench-"))
    server = RedisServer()
    server.start()
    try:
        emails = make_catalog(work / "catalog", args.users)
        t0 = time.perf_counter()
        records = compile_catalog(load_catalog(work / "catalog"))
        t1 = time.perf_counter()
        RedisPublisher(connect(server.url)).publish(records, {})
        t2 = time.perf_counter()
        size = sum(map(len, records.values()))
        print(f"publish {args.users} users: load+render {t1 - t0:.2f} s, write to Redis {t2 - t1:.2f} s, "
              f"total {t2 - t0:.2f} s ({len(records)} records, {size / 1e6:.1f} MB)")  # fmt: skip
        direct = SignatureService(RedisStore(connect(server.url)))
        cached = SignatureService(CachedStore(RedisStore(connect(server.url))))
        rate(cached, emails, args.lookups)  # warm the cache
        redis_rate = rate(direct, emails, args.lookups)
        cache_rate = rate(cached, emails, args.lookups)
        print(f"lookups/s from Redis (no cache):   {redis_rate:10.0f}")
        print(
            f"lookups/s from in-process cache:   {cache_rate:10.0f}   ({cache_rate / redis_rate:.1f}x)"
        )
        seen = propagation(server.url)
        print(f"publish a change -> a warm reader serves it: p50 {seen[len(seen) // 2] * 1e3:.1f} ms, "
              f"max {seen[-1] * 1e3:.1f} ms over {len(seen)} publishes")  # fmt: skip
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
