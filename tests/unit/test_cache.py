"""The in-process cache in front of a record store, with a fake backend and clock."""

from __future__ import annotations

import threading

import pytest

from sigfilter.store.base import MemoryStore, StoreUnavailable
from sigfilter.store.cache import CachedStore


class FlakyBackend:
    def __init__(self) -> None:
        self.records = {"a": b"1", "b": b"2"}
        self.down = False
        self.calls = 0

    def version(self) -> int | None:
        return 1

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("down")
        return self.records.get(key)


@pytest.fixture
def setup() -> tuple[CachedStore, FlakyBackend, list[float]]:
    now = [0.0]
    backend = FlakyBackend()
    return CachedStore(backend, ttl=10, clock=lambda: now[0]), backend, now


def test_fresh_hits_do_not_ask_the_backend(setup) -> None:  # type: ignore[no-untyped-def]
    cache, backend, now = setup
    assert cache.get("a") == b"1" and cache.get("a") == b"1"
    assert backend.calls == 1
    now[0] = 9.9
    assert cache.get("a") == b"1" and backend.calls == 1
    now[0] = 10.1  # expired: asks again
    backend.records["a"] = b"new"
    assert cache.get("a") == b"new" and backend.calls == 2
    assert cache.stats()["hits"] == 2 and cache.stats()["misses"] == 2


def test_negative_answers_are_cached(setup) -> None:  # type: ignore[no-untyped-def]
    cache, backend, _ = setup
    assert cache.get("nope") is None and cache.get("nope") is None
    assert backend.calls == 1


def test_outage_serves_stale_and_raises_only_when_cold(setup) -> None:  # type: ignore[no-untyped-def]
    cache, backend, now = setup
    cache.get("a")
    backend.down = True
    now[0] = 1000  # long expired
    assert cache.get("a") == b"1"
    with pytest.raises(StoreUnavailable):
        cache.get("b")
    stats = cache.stats()
    assert stats["stale_served"] == 1 and stats["unavailable"] == 1


def test_invalidate_drops_everything_once_per_version(setup) -> None:  # type: ignore[no-untyped-def]
    cache, backend, _ = setup
    cache.get("a")
    cache.invalidate(5)
    assert cache.stats()["entries"] == 0
    cache.get("a")
    cache.invalidate(5)  # a repeated announcement keeps the cache
    assert cache.stats()["entries"] == 1 and cache.stats()["invalidations"] == 1
    cache.invalidate(6)
    assert cache.stats()["entries"] == 0 and backend.calls == 2


def test_bounded_size() -> None:
    backend = MemoryStore()
    backend.replace({str(n): b"x" for n in range(100)})
    cache = CachedStore(backend, max_entries=10)
    for n in range(100):
        cache.get(str(n))
    assert cache.stats()["entries"] == 10


def test_memory_store_versions() -> None:
    store = MemoryStore()
    assert store.version() is None and store.get("a") is None
    assert store.replace({"a": b"1"}) == 1
    assert store.replace({"b": b"2"}) == 2
    assert store.get("a") is None and store.get("b") == b"2"


def test_threads_share_the_cache() -> None:
    backend = MemoryStore()
    backend.replace({f"k{n}": b"v%d" % n for n in range(50)})
    cache = CachedStore(backend)
    errors: list[str] = []

    def work() -> None:
        for _ in range(200):
            for n in range(50):
                if cache.get(f"k{n}") != b"v%d" % n:
                    errors.append(f"k{n}")
            cache.invalidate(None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
