"""What it costs a milter to hold records in memory instead of asking Redis (issue 12).

    .venv/bin/python tests/bench/bench_identity.py [--users 1000,10000,50000] [--size 1400]

Starts its own redis-server on 127.0.0.1 (stopped at the end, also on errors) and
publishes, for each user count, one version with the example catalog's identity record
(every tenant and domain) plus that many user records of ``--size`` bytes (~1.4 KB is
the average the issue measured). Then, in the same run:

- identity: reading the identity record and building the IdentityTable (what every
  milter now does at start and on each publish);
- users: reading every user record of the version (SCAN + MGET in batches of 1,000) and
  holding them, with the time, the bytes tracemalloc sees held, and the process RSS
  growth;
- a cold lookup: one user record through the cache from Redis (today's per-sender cost).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for redis_server

from harness.redis_server import RedisServer
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.identity import IdentityTable
from sigfilter.store import CachedStore, RedisPublisher, RedisStore, connect

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def make_records(users: int, size: int) -> dict[str, bytes]:
    records = {
        k: v for k, v in compile_catalog(load_catalog(CATALOG)).items() if not k.startswith("user:")
    }
    filler = b"x" * max(0, size - 60)
    for i in range(users):
        records[f"user:user{i}@example.com"] = b'{"tenant":"example.com","n":%d,"html":"%s"}' % (
            i,
            filler,
        )
    return records


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, users: int, size: int) -> None:
    publisher = RedisPublisher(connect(url))
    publisher.flush()
    started = time.perf_counter()
    publisher.publish(make_records(users, size), {"bench": "identity"})
    publish_s = time.perf_counter() - started
    store = RedisStore(connect(url))

    started = time.perf_counter()
    version, held = store.identity_records()
    table = IdentityTable.from_records(held, version)
    identity_ms = (time.perf_counter() - started) * 1000
    assert table.tenant("example.com") is not None

    cold = []
    for i in range(20):
        cache = CachedStore(RedisStore(connect(url)))
        t0 = time.perf_counter()
        assert cache.get(f"user:user{i}@example.com") is not None
        cold.append((time.perf_counter() - t0) * 1000)

    gc.collect()
    rss_before = rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    _, records = store.records(("user",))
    load_s = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(records) == users, len(records)
    data = sum(len(v) for v in records.values())
    print(
        f"users={users:>7} record={size} B  publish {publish_s:6.2f} s | identity load "
        f"{identity_ms:6.2f} ms | cold user lookup median {sorted(cold)[len(cold) // 2]:5.2f} ms | "
        f"hold all users: load {load_s:6.2f} s ({users / load_s:,.0f}/s), held "
        f"{current / 2**20:7.1f} MiB ({current / users:,.0f} B/user, data {data / 2**20:.1f} MiB, "
        f"x{current / data:.2f}), peak {peak / 2**20:7.1f} MiB, max RSS +{rss_mb() - rss_before:6.1f} MiB"
    )
    del records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1000,10000,50000")
    parser.add_argument("--size", type=int, default=1400)
    args = parser.parse_args()
    with RedisServer() as redis:
        for users in (int(n) for n in args.users.split(",")):
            measure(redis.url, users, args.size)


if __name__ == "__main__":
    main()
