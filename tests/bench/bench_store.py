"""Benchmark the record stores: publish 10,000 users, then lookups/s cache vs Redis.

    .venv/bin/python tests/bench/bench_store.py [--users 10000] [--size 2048] [--lookups 50000]

Starts its own redis-server on 127.0.0.1 (stopped at the end, also on errors). Records
are opaque bytes of about ``--size`` bytes. Prints the time of each publish (write every
record, switch, announce, drop versions older than the newest two), then single-key
lookups per second straight from Redis (RedisStore) and from the warm in-process cache
(CachedStore in front of it), same keys in the same order, and their ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for redis_server

from harness.redis_server import RedisServer
from sigfilter.store import CachedStore, RecordStore, RedisPublisher, RedisStore, connect


def make_records(users: int, size: int, version: int) -> dict[str, bytes]:
    rng = random.Random(version)
    filler = bytes(rng.randrange(32, 127) for _ in range(size))
    return {
        f"user:user{i}@example.com": b'{"v":%d,"n":%d,"html":"%s"}' % (version, i, filler)
        for i in range(users)
    }


def lookups_per_second(store: RecordStore, keys: list[str]) -> float:
    started = time.perf_counter()
    for key in keys:
        if store.get(key) is None:
            raise SystemExit(f"missing record {key}")
    return len(keys) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=2048, help="bytes per record (about)")
    ap.add_argument("--lookups", type=int, default=50_000)
    ap.add_argument("--publishes", type=int, default=3)
    args = ap.parse_args()

    with RedisServer() as server:
        publisher = RedisPublisher(connect(server.url, timeout=5.0))
        for n in range(1, args.publishes + 1):
            records = make_records(args.users, args.size, n)
            started = time.perf_counter()
            version = publisher.publish(records, {"bench": str(n)})
            took = time.perf_counter() - started
            megabytes = sum(map(len, records.values())) / 1e6
            print(
                f"publish {args.users} records ({megabytes:.1f} MB) as version {version}: "
                f"{took:.2f} s{'' if n > 1 else ' (first; later ones also drop an old version)'}"
            )
        status = publisher.status()
        print(f"Redis now holds versions {status['versions']}, {status['keys']} keys")

        rng = random.Random(1)
        keys = [f"user:user{rng.randrange(args.users)}@example.com" for _ in range(args.lookups)]
        direct = RedisStore(connect(server.url))
        cached = CachedStore(RedisStore(connect(server.url)))
        lookups_per_second(cached, keys)  # warm the cache
        redis_rate = lookups_per_second(direct, keys)
        cache_rate = lookups_per_second(cached, keys)
        stats = cached.stats()
        assert stats["misses"] == len(set(keys)), stats  # the second pass was all hits
        print(f"lookups/s straight from Redis (RedisStore):  {redis_rate:12,.0f}")
        print(f"lookups/s from the warm cache (CachedStore): {cache_rate:12,.0f}")
        print(f"cache / Redis: {cache_rate / redis_rate:.0f}x")


if __name__ == "__main__":
    main()
