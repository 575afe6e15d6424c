"""The record stores: Redis (a real redis-server per test), the cache, the memory store.

Records are opaque bytes here; the Redis tests tag each record with its version
(b"v<N>:<key>") so a reader can check that what it got belongs to the version it says
it serves.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.connects import ATTEMPTS_PER_LOOKUP, Connects
from harness.redis_server import RedisServer
from sigfilter.store import (
    CachedStore,
    MemoryStore,
    PublishConflict,
    RecordStore,
    RedisPublisher,
    RedisStore,
    StoreUnavailable,
    VersionListener,
    connect,
)

PREFIX = "sigfilter"
# Tests seed {prefix}:next above the clock floor (ms), so numbers are known in advance.
FIRST = 10**15


def keys(n: int) -> list[str]:
    return [f"user:u{i}@example.com" for i in range(n)]


def tagged(version: int, names: list[str], pad: int = 0) -> dict[str, bytes]:
    return {k: b"v%d:%s%s" % (version, k.encode(), b"x" * pad) for k in names}


def tag(value: bytes | None) -> int:
    assert value is not None
    return int(value.split(b":", 1)[0][1:])


class Publisher:
    """Publishes tagged versions; knows the next number because it seeded the counter."""

    def __init__(self, url: str, keep: int = 2) -> None:
        self.client = connect(url, timeout=2.0)
        self.client.set(f"{PREFIX}:next", FIRST - 1, nx=True)
        self.publisher = RedisPublisher(self.client, keep=keep)

    def next_version(self) -> int:
        return int(self.client.get(f"{PREFIX}:next") or FIRST - 1) + 1

    def publish(self, names: list[str], pad: int = 0) -> int:
        expected = self.next_version()
        version = self.publisher.publish(tagged(expected, names, pad), {"by": "test"})
        assert version == expected
        return version

    def versions_present(self) -> set[int]:
        found = set()
        for key in self.client.scan_iter(match=f"{PREFIX}:v*"):
            found.add(int(key.decode().split(":")[1][1:]))
        return found


class Stack:
    """One milter's view: RedisStore behind CachedStore, dropped by a VersionListener."""

    def __init__(
        self,
        url: str,
        ttl: float = 1200.0,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = 1.0,
        backoff: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        self.store = RedisStore(connect(url))
        self.cache = CachedStore(self.store, ttl=ttl, clock=clock, retry_after=retry_after)
        self.announced: list[int] = []
        self.listener = VersionListener(
            connect(url), self.on_version, backoff_min=backoff[0], backoff_max=backoff[1]
        )
        self.listener.start()
        assert self.listener.connected.wait(30), "the listener did not subscribe"

    def on_version(self, version: int) -> None:
        self.cache.invalidate(version)
        self.announced.append(version)  # after: waiting for it means the cache switched

    def wait_announced(self, version: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while version not in self.announced and time.monotonic() < deadline:
            time.sleep(0.005)
        assert version in self.announced, (version, self.announced)

    def close(self) -> None:
        assert self.listener.stop(2.0), "the listener did not stop"
        self.store.client.close()
        self.listener.client.close()


@pytest.fixture
def stacks(redis_server: RedisServer) -> Iterator[list[Stack]]:
    made: list[Stack] = []
    yield made
    for stack in made:
        stack.close()


# -- Redis: publish and read -----------------------------------------------------------


def test_publish_then_read_back_every_record(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url)
    names = keys(2500)  # more than one pipeline batch
    version = pub.publish(names, pad=100)
    store = RedisStore(connect(redis_server.url))
    assert store.version() == version
    for key, value in tagged(version, names, pad=100).items():
        assert store.get(key) == value
    assert store.get("user:nobody@example.com") is None
    meta = pub.client.hgetall(f"{PREFIX}:v{version}:meta")
    assert meta[b"records"] == b"2500" and meta[b"by"] == b"test" and b"published_at" in meta
    status = pub.publisher.status()
    assert status["current_version"] == str(version) and status["records"] == "2500"
    assert status["versions"] == str(version) and status["keys"] == str(2500 + 3)


def test_nothing_published_is_unavailable_not_absent(redis_server: RedisServer) -> None:
    store = RedisStore(connect(redis_server.url))
    assert store.version() is None
    with pytest.raises(StoreUnavailable, match="nothing published"):
        store.get("user:a@example.com")
    assert RedisPublisher(connect(redis_server.url)).status()["current_version"] == "none"


def test_a_current_version_without_meta_is_unavailable_not_absent(
    redis_server: RedisServer,
) -> None:
    pub = Publisher(redis_server.url)
    names = keys(3)
    version = pub.publish(names)
    store = RedisStore(connect(redis_server.url))
    pub.client.unlink(f"{PREFIX}:v{version}:meta")  # as in the middle of a flush
    assert tag(store.get(names[0])) == version
    with pytest.raises(StoreUnavailable, match="no meta"):
        store.get("user:nobody@example.com")


def test_reserved_record_name(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="reserved"):
        RedisPublisher(connect(redis_server.url)).publish({"meta": b"x"}, {})


# -- Redis: versions -------------------------------------------------------------------


def test_reader_switches_on_refresh_and_never_goes_back(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url, keep=2)
    names = keys(20)
    v1 = pub.publish(names)
    store = RedisStore(connect(redis_server.url))
    assert store.version() == v1 and tag(store.get(names[0])) == v1
    v2 = pub.publish(names)
    # Not told yet: it keeps serving v1, which is still there (keep=2), consistently.
    assert store.version() == v1 and {tag(store.get(k)) for k in names} == {v1}
    assert store.refresh() == v2
    assert store.version() == v2 and {tag(store.get(k)) for k in names} == {v2}


def test_interleaved_publish_refresh_and_reads(redis_server: RedisServer) -> None:
    """Random interleavings of publish / announce / refresh / read, one reader: every read
    belongs to the version the reader reports, and neither ever goes backwards."""
    rng = random.Random(7)
    pub = Publisher(redis_server.url, keep=2)
    names = keys(30)
    pub.publish(names)
    store = RedisStore(connect(redis_server.url))
    cache = CachedStore(RedisStore(connect(redis_server.url)))
    latest_store = latest_cache = 0
    for _ in range(600):
        step = rng.random()
        if step < 0.04:
            published = pub.publish(names)
            if rng.random() < 0.5:  # the announcement arrives (or is missed)
                cache.invalidate(published)
        elif step < 0.08:
            store.refresh()
        else:
            key = rng.choice(names)
            got = tag(store.get(key))
            assert got == store.version() and got >= latest_store
            latest_store = got
            cached = tag(cache.get(key))
            assert cached >= latest_cache
            latest_cache = cached
            if cache.stats()["invalidations"]:
                # after an announcement the cache serves the announced version or newer
                assert cached == cache.version()
    assert latest_store > FIRST + 5 and latest_cache > FIRST + 5


def test_no_mixed_versions_under_concurrent_publishes(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url, keep=2)
    names = keys(2000)
    first = pub.publish(names)
    store = RedisStore(connect(redis_server.url))
    stack = Stack(redis_server.url)
    bad: list[str] = []
    reads = [0, 0]
    stop = threading.Event()

    def direct() -> None:
        rng = random.Random(1)
        while not stop.is_set() or reads[0] < 3000:
            if rng.random() < 0.05:
                store.refresh()
            key = rng.choice(names)
            value = store.get(key)
            reported = store.version()
            if value is None or tag(value) != reported:
                bad.append(f"direct: {key} -> {value!r} while reporting v{reported}")
            reads[0] += 1

    def cached() -> None:
        rng = random.Random(2)
        latest = first
        while not stop.is_set() or reads[1] < 3000:
            value = stack.cache.get(rng.choice(names))
            if value is None or tag(value) < latest:
                bad.append(f"cached: {value!r} after v{latest}")
            else:
                latest = tag(value)
            reads[1] += 1

    threads = [threading.Thread(target=direct), threading.Thread(target=cached)]
    try:
        for t in threads:
            t.start()
        published = [pub.publish(names) for _ in range(5)]
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        stack.close()
    assert not any(t.is_alive() for t in threads)
    assert bad == [], bad[:5]
    assert min(reads) >= 3000
    assert store.refresh() == published[-1] and pub.versions_present() == set(published[-2:])


def test_two_readers_see_a_new_version_by_announcement(
    redis_server: RedisServer, stacks: list[Stack]
) -> None:
    pub = Publisher(redis_server.url)
    names = keys(1000)
    v1 = pub.publish(names)
    stacks.extend([Stack(redis_server.url), Stack(redis_server.url)])
    for stack in stacks:
        assert {tag(stack.cache.get(k)) for k in names} == {v1}  # warm: all cached
    v2_expected = pub.next_version()
    pub.publisher.publish(tagged(v2_expected, names), {})
    published = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < 2 and time.monotonic() - published < 30:
        for n, stack in enumerate(stacks):
            if n not in seen and tag(stack.cache.get(names[0])) == v2_expected:
                seen[n] = time.monotonic() - published
        time.sleep(0.001)
    # Switched long before the 20-minute TTL: by the announcement (bench_serving.py
    # prints how fast; a busy machine must not fail this test).
    assert len(seen) == 2, "a reader kept serving the old version"
    for stack in stacks:
        assert {tag(stack.cache.get(k)) for k in names} == {v2_expected}


def test_old_versions_are_dropped(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url, keep=2)
    names = keys(1500)
    published = [pub.publish(names) for _ in range(4)]
    assert pub.versions_present() == set(published[-2:])
    for version in published[-2:]:
        count = sum(1 for _ in pub.client.scan_iter(match=f"{PREFIX}:v{version}:*", count=1000))
        assert count == len(names) + 1  # records and meta
    # A publish that died half-way left keys but no meta: the next publish removes them.
    broken = int(pub.client.incr(f"{PREFIX}:next"))
    pub.client.set(f"{PREFIX}:v{broken}:{names[0]}", b"partial")
    latest = pub.publish(names)
    assert pub.versions_present() == {published[-1], latest}
    keep3 = Publisher(redis_server.url, keep=3)
    more = [keep3.publish(names) for _ in range(3)]
    assert keep3.versions_present() == set(more)


def test_a_reader_behind_by_two_versions_moves_on_by_itself(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url, keep=2)
    names = keys(10)
    v1 = pub.publish(names)
    store = RedisStore(connect(redis_server.url))
    cache = CachedStore(store)
    assert tag(cache.get(names[0])) == v1
    pub.publish(names)
    v3 = pub.publish(names)  # v1 is gone now; no announcement reached this reader
    assert tag(cache.get(names[1])) == v3 and store.version() == v3
    assert tag(cache.get(names[0])) == v3  # the v1 answer was dropped with its version


def test_a_slow_publisher_cannot_switch_readers_back(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url)
    names = keys(5)
    current = pub.publish(names)
    pub.client.set(f"{PREFIX}:current", current + 1000)  # a newer version went live
    with pytest.raises(PublishConflict):
        pub.publisher.publish(tagged(0, names), {})
    assert int(pub.client.get(f"{PREFIX}:current") or 0) == current + 1000
    assert pub.versions_present() == {current}  # the refused version was removed


def test_status_counts_listeners(redis_server: RedisServer, stacks: list[Stack]) -> None:
    pub = Publisher(redis_server.url)
    pub.publish(keys(3))
    stacks.extend([Stack(redis_server.url), Stack(redis_server.url)])
    assert pub.publisher.status()["listeners"] == "2"


def test_flush_removes_every_key(redis_server: RedisServer) -> None:
    pub = Publisher(redis_server.url)
    pub.publish(keys(1200))
    pub.publish(keys(1200))
    pub.client.set("unrelated", b"stays")
    before = sum(1 for _ in pub.client.scan_iter(match=f"{PREFIX}:*"))
    assert pub.publisher.flush() == before == 2 * 1201 + 2  # two versions, next, current
    assert list(pub.client.scan_iter(match=f"{PREFIX}:*")) == []
    assert pub.client.get("unrelated") == b"stays"
    assert pub.publisher.status()["current_version"] == "none"
    assert pub.publisher.flush() == 0


# -- Redis: outages ----------------------------------------------------------------------


def test_outage_cache_serves_then_redis_and_listener_come_back(
    redis_server: RedisServer, stacks: list[Stack], connects: Connects
) -> None:
    now = [1000.0]
    pub = Publisher(redis_server.url)
    names = keys(20)
    v1 = pub.publish(names)
    # retry_after=0: every lookup really asks Redis, so each failure is counted below.
    stack = Stack(redis_server.url, ttl=60, clock=lambda: now[0], retry_after=0, backoff=(1, 1))
    stacks.append(stack)
    stack.wait_announced(v1)
    warm, cold = names[:10], names[10:]
    for key in warm:
        assert tag(stack.cache.get(key)) == v1

    redis_server.stop()
    for key in warm:  # fresh from the cache
        assert tag(stack.cache.get(key)) == v1
    now[0] += 600  # all expired: stale is better than unsigned
    for key in warm:
        assert tag(stack.cache.get(key)) == v1
    for key in cold:  # never cached: unavailable, at once (no retry loop, no backoff)
        before = connects.here()
        with pytest.raises(StoreUnavailable):
            stack.cache.get(key)
        assert connects.here() - before == ATTEMPTS_PER_LOOKUP
    stats = stack.cache.stats()
    assert stats["stale_served"] == len(warm) and stats["unavailable"] == len(cold)
    deadline = time.monotonic() + 30
    while stack.listener.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stack.listener.connected.is_set()

    # Back, but empty (tests persist nothing): still an outage of the serving layer.
    redis_server.start()
    assert tag(stack.cache.get(warm[0])) == v1
    with pytest.raises(StoreUnavailable, match="nothing published"):
        stack.cache.get(cold[0])
    # Published while the listener is away (its backoff is 1 s): it must still notice.
    pub.client.set(f"{PREFIX}:next", v1 + 10)  # the restart lost our seed (not the clock's)
    v2 = pub.publish(names)
    assert v2 > v1 and not stack.listener.connected.is_set()
    stack.wait_announced(v2)
    assert stack.listener.reconnects >= 1
    assert {tag(stack.cache.get(k)) for k in names} == {v2}


def test_listener_survives_a_dropped_connection_and_keeps_the_cache(
    redis_server: RedisServer, stacks: list[Stack]
) -> None:
    pub = Publisher(redis_server.url)
    names = keys(5)
    v1 = pub.publish(names)
    stack = Stack(redis_server.url)
    stacks.append(stack)
    stack.wait_announced(v1)
    assert tag(stack.cache.get(names[0])) == v1
    assert pub.client.client_kill_filter(_type="pubsub") == 1
    deadline = time.monotonic() + 30
    while stack.announced.count(v1) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stack.announced.count(v1) == 2  # re-subscribed, and re-read the current version
    stats = stack.cache.stats()
    assert stats["invalidations"] == 1 and stats["entries"] == 1  # same version: cache kept
    v2 = pub.publish(names)
    stack.wait_announced(v2)
    assert tag(stack.cache.get(names[0])) == v2


def test_store_unavailable_is_quick_when_redis_is_down(
    redis_server: RedisServer, connects: Connects
) -> None:
    pub = Publisher(redis_server.url)
    pub.publish(keys(3))
    store = RedisStore(connect(redis_server.url, timeout=0.2))
    assert store.get(keys(1)[0]) is not None
    redis_server.stop()
    for call in (lambda: store.get("user:x@example.com"), store.refresh):
        before = connects.here()
        with pytest.raises(StoreUnavailable):
            call()
        assert connects.here() - before == ATTEMPTS_PER_LOOKUP
    # refresh failed: the store asks again on its next lookup instead of keeping a guess
    redis_server.start()
    with pytest.raises(StoreUnavailable, match="nothing published"):
        store.get("user:x@example.com")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a hung Redis."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_a_hung_redis_costs_one_timeout(silent_server: int, connects: Connects) -> None:
    store = RedisStore(connect(f"redis://127.0.0.1:{silent_server}/0", timeout=0.2))
    cache = CachedStore(store, retry_after=60.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Timeout"):
        cache.get("user:a@example.com")
    assert time.monotonic() - started >= 0.15  # it did wait for the timeout...
    assert connects.here() == 1  # ...once: no retry on a timeout, no second connection
    for n in range(50):  # the cache leaves the hung backend alone for retry_after
        with pytest.raises(StoreUnavailable, match="not asked again"):
            cache.get(f"user:{n}@example.com")
    assert connects.here() == 1
    stats = cache.stats()
    assert stats["backend_errors"] == 1 and stats["unavailable"] == 51


def test_listener_stops_promptly_even_while_redis_is_down(redis_server: RedisServer) -> None:
    got: list[int] = []
    # A 60 s backoff: stop() must interrupt it, not wait it out.
    listener = VersionListener(connect(redis_server.url), got.append, backoff_min=60.0)
    listener.start()
    assert listener.connected.wait(30)
    version = RedisPublisher(connect(redis_server.url)).publish({"x": b"1"}, {})
    deadline = time.monotonic() + 30
    while version not in got and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got == [version]
    redis_server.stop()
    deadline = time.monotonic() + 20
    while listener.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not listener.connected.is_set()  # lost Redis: now in its 60 s backoff
    assert listener.stop(20.0)


def test_the_test_server_restarts_on_the_same_port() -> None:
    with RedisServer() as server:
        port = server.port
        client = server.client()
        client.set("a", b"1")
        server.stop()
        assert not server.running()
        server.start()
        assert server.running() and server.port == port
        assert client.ping() and client.get("a") is None  # nothing persisted
        client.close()
    assert not server.running() and not server.dir.exists()


# -- MemoryStore and CachedStore, with fakes --------------------------------------------


class FakeBackend:
    """A record store whose answers, version and availability the test controls."""

    def __init__(self, records: dict[str, bytes] | None = None, version: int = 1) -> None:
        self.records = records if records is not None else {"a": b"1", "b": b"2"}
        self._version = version
        self.down = False
        self.calls = 0
        self.refreshes = 0
        self.lock = threading.Lock()

    def version(self) -> int | None:
        return self._version

    def get(self, key: str) -> bytes | None:
        with self.lock:
            self.calls += 1
        if self.down:
            raise StoreUnavailable("down")
        return self.records.get(key)

    def refresh(self) -> int | None:
        self.refreshes += 1
        return self._version


def fake_cache(
    backend: FakeBackend | None = None, ttl: float = 10, retry_after: float = 0
) -> tuple[CachedStore, FakeBackend, list[float]]:
    now = [0.0]
    backend = backend or FakeBackend()
    return (
        CachedStore(backend, ttl=ttl, clock=lambda: now[0], retry_after=retry_after),
        backend,
        now,
    )


def test_memory_store() -> None:
    store: RecordStore = MemoryStore()
    assert store.version() is None and store.get("a") is None
    assert isinstance(store, MemoryStore)
    records = {"a": b"1"}
    assert store.replace(records) == 1
    records["a"] = b"changed"  # the store took a copy
    assert store.get("a") == b"1"
    assert store.replace({"b": b"2"}) == 2
    assert store.version() == 2 and store.get("a") is None and store.get("b") == b"2"


def test_cache_ttl_with_a_fake_clock() -> None:
    cache, backend, now = fake_cache(ttl=10)
    assert cache.get("a") == b"1" and cache.get("a") == b"1" and backend.calls == 1
    now[0] = 9.99
    assert cache.get("a") == b"1" and backend.calls == 1
    backend.records["a"] = b"new"
    now[0] = 10.0  # expired
    assert cache.get("a") == b"new" and backend.calls == 2
    assert cache.stats() == {
        "hits": 2,
        "misses": 2,
        "stale_served": 0,
        "unavailable": 0,
        "invalidations": 0,
        "backend_errors": 0,
        "entries": 1,
    }


def test_cache_remembers_absent_records_for_the_ttl_too() -> None:
    cache, backend, now = fake_cache(ttl=10)
    assert cache.get("nope") is None and cache.get("nope") is None and backend.calls == 1
    backend.records["nope"] = b"now there"
    now[0] = 10.5
    assert cache.get("nope") == b"now there" and backend.calls == 2


def test_cache_outage_serves_stale_and_raises_only_when_cold() -> None:
    cache, backend, now = fake_cache(ttl=10)
    assert cache.get("a") == b"1" and cache.get("nope") is None
    backend.down = True
    now[0] = 1000  # long expired
    assert cache.get("a") == b"1" and cache.get("nope") is None
    with pytest.raises(StoreUnavailable):
        cache.get("b")
    backend.down = False
    assert cache.get("b") == b"2"
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["stale_served"], stats["unavailable"]) == (
        0,
        3,
        2,
        1,
    )


def test_cache_rests_a_failing_backend() -> None:
    cache, backend, now = fake_cache(retry_after=1.0)
    backend.down = True
    with pytest.raises(StoreUnavailable, match="down"):
        cache.get("a")
    with pytest.raises(StoreUnavailable, match="not asked again"):
        cache.get("b")
    assert backend.calls == 1
    backend.down = False
    now[0] = 1.0
    assert cache.get("b") == b"2" and backend.calls == 2
    backend.down = True
    now[0] = 2.0
    with pytest.raises(StoreUnavailable):
        cache.get("a")
    cache.invalidate(2)  # an announcement: the backend is back, ask it again
    backend.down = False
    assert cache.get("a") == b"1"


def test_cache_invalidation() -> None:
    cache, backend, _ = fake_cache()
    cache.get("a")
    cache.get("b")
    cache.invalidate(5)
    assert cache.stats()["entries"] == 0 and backend.refreshes == 1
    cache.get("a")
    cache.invalidate(5)  # repeated (the listener reconnected): keep what we have
    assert cache.stats()["entries"] == 1 and cache.stats()["invalidations"] == 1
    cache.invalidate(None)  # unknown version: always drop
    cache.invalidate(None)
    assert cache.stats()["entries"] == 0 and cache.stats()["invalidations"] == 3
    cache.get("a")
    cache.invalidate(6)
    assert cache.stats()["entries"] == 0 and backend.calls == 4


def test_cache_drops_entries_when_the_backend_moves_without_announcement() -> None:
    cache, backend, _ = fake_cache()
    cache.get("a")
    backend._version = 2
    backend.records = {"a": b"1'", "b": b"2'"}
    assert cache.get("a") == b"1"  # still fresh, still "version 1" as far as we know
    assert cache.get("b") == b"2'"  # answered by version 2: version 1 answers are dropped
    assert cache.get("a") == b"1'" and cache.stats()["invalidations"] == 1


def test_cache_does_not_keep_an_answer_fetched_across_a_switch() -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(FakeBackend):
        def get(self, key: str) -> bytes | None:
            value = super().get(key)
            started.set()
            assert release.wait(30)
            return value

    backend = Slow({"a": b"old"})
    cache = CachedStore(backend)
    got: list[bytes | None] = []
    reader = threading.Thread(target=lambda: got.append(cache.get("a")))
    reader.start()
    assert started.wait(30)
    backend.records = {"a": b"new"}
    cache.invalidate(2)  # announced while the reader's answer is in flight
    release.set()
    reader.join(5)
    assert got == [b"old"]  # the read began before the switch…
    assert cache.stats()["entries"] == 0  # …but its answer is not kept
    release.clear()
    release.set()
    assert cache.get("a") == b"new"


def test_cache_size_is_bounded_least_recently_used_first() -> None:
    backend = FakeBackend({str(n): b"x" for n in range(100)})
    cache = CachedStore(backend, max_entries=10)
    for n in range(100):
        cache.get(str(n))
    assert cache.stats()["entries"] == 10
    cache.get("90")  # used: kept
    cache.get("0")  # evicts the least recently used, "91"
    calls = backend.calls
    cache.get("90")
    assert backend.calls == calls
    cache.get("91")
    assert backend.calls == calls + 1


def test_cache_thread_safety_smoke() -> None:
    backend = MemoryStore()
    names = [f"k{n}" for n in range(200)]
    backend.replace({k: b"1:" + k.encode() for k in names})
    cache = CachedStore(backend, max_entries=150)
    errors: list[str] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(5000):
            key = rng.choice(names)
            value = cache.get(key)
            if value is None or not value.endswith(b":" + key.encode()):
                errors.append(f"{key}: {value!r}")

    def publisher() -> None:
        n = 1
        while not stop.is_set():
            n += 1
            version = backend.replace({k: b"%d:%s" % (n, k.encode()) for k in names})
            cache.invalidate(version)
            time.sleep(0.001)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(6)]
    writer = threading.Thread(target=publisher)
    writer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    writer.join(5)
    assert errors == []
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 6 * 5000 and stats["entries"] <= 150
