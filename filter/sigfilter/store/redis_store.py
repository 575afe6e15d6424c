"""Redis as the fleet's serving layer: versioned records, atomic switch, announcements.

Keys (prefix ``sigfilter``)::

    sigfilter:next              INCR counter that allocates version numbers (>= clock ms)
    sigfilter:current           the version being served
    sigfilter:v<N>:<key>        one record of version N (tenant:…, domain:…, user:…)
    sigfilter:v<N>:meta         hash: published_at, records, and the publisher's meta
    sigfilter:versions          pub/sub channel: "N" when version N goes live

A version is written completely under new keys before ``current`` moves to it, so a
reader never mixes two versions; the previous version stays for readers in flight.
Redis must not evict these keys (``maxmemory-policy noeviction``): an evicted record
would read as "no such record".
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from ..defaults import (
    IDENTITY_KEY,
    LISTENER_BACKOFF_MAX,
    LISTENER_BACKOFF_MIN,
    LISTENER_POLL,
    PUBLISH_BATCH,
    REDIS_HEALTH_CHECK_INTERVAL,
    REDIS_KEEP_VERSIONS,
    REDIS_PREFIX,
    REDIS_TIMEOUT,
)
from .base import StoreUnavailable

log = logging.getLogger("sigfilter.store")

# Compare-and-switch plus announcement in one atomic step: `current` only moves forward,
# so a slow publisher that finishes after a newer one cannot switch readers back.
# Returns 0 when switched, else the version already current.
_SWITCH = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current and current >= tonumber(ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 0
"""


_ALLOCATE = """
local n = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if n < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  n = floor
end
return n
"""


class PublishConflict(RuntimeError):
    """A newer version went live while this one was being written; it was dropped."""


def connect(url: str, timeout: float = REDIS_TIMEOUT, password: str | None = None) -> redis.Redis:
    """A client with short timeouts and no retry on them: a slow Redis never holds mail up.

    `password` comes from a checked file (sigfilter.secrets), never from the URL.
    """
    return redis.Redis.from_url(
        url,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL,
        # redis-py >= 6 retries 3 times with backoff by default. One immediate retry on a
        # dropped connection (a pooled one that died with a Redis restart reconnects);
        # none on timeouts, so a lookup waits about ``timeout`` at most.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        decode_responses=False,
    )


def _int(value: object) -> int | None:
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return None
    return value if isinstance(value, int) else None


def redacted(url: str) -> str:
    """The URL without credentials, for messages and logs (never print a password)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    host = netloc.rpartition("@")[2]
    return scheme + sep + ("***@" if "@" in netloc else "") + host + slash + path


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob(text: str) -> str:
    """``text`` with SCAN MATCH's special characters escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisPublisher:
    """Writes versions (``sigfilter publish``); inspects and empties the key space."""

    def __init__(
        self, client: redis.Redis, prefix: str = REDIS_PREFIX, keep: int = REDIS_KEEP_VERSIONS
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.keep = max(1, keep)

    def publish(self, records: Mapping[str, bytes], meta: Mapping[str, str]) -> int:
        """Write a new version, switch to it, announce it, drop old ones; return its number.

        Raises redis.exceptions.RedisError if Redis fails (readers keep the old version;
        the next publish removes the partial one) and PublishConflict if a newer version
        went live meanwhile.
        """
        if "meta" in records:
            raise ValueError('"meta" is reserved for the version\'s metadata')
        version = self._allocate()
        base = f"{self.prefix}:v{version}:"
        info: dict[FieldT, EncodableT] = {k: v for k, v in meta.items()}  # widen the key type
        info["records"] = str(len(records))
        info["published_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        pipe = self.client.pipeline(transaction=False)
        for n, (key, value) in enumerate(records.items(), 1):
            pipe.set(base + key, value)
            if n % PUBLISH_BATCH == 0:
                pipe.execute()  # one round trip per batch; nobody reads version N yet
        # meta last: its presence says the version is complete (RedisStore relies on it)
        pipe.hset(base + "meta", mapping=info)
        pipe.execute()
        newer = _int(
            self.client.eval(
                _SWITCH, 2, f"{self.prefix}:current", f"{self.prefix}:versions", str(version)
            )
        )
        if newer and newer != version:  # equal: a retried EVAL found its own switch done
            self._unlink_versions({version: []}, scan=True)
            raise PublishConflict(f"version {newer} went live while {version} was written")
        self._drop_old(version)
        return version

    def _allocate(self) -> int:
        """The next version number: INCR, but never below the clock in milliseconds.

        Caches recognise a version they have already seen by its number, so numbers must
        keep rising even when Redis lost its data or came back from an older snapshot.
        """
        number = _int(
            self.client.eval(_ALLOCATE, 1, f"{self.prefix}:next", time.time_ns() // 10**6)
        )
        if number is None:
            raise RedisError(f"{self.prefix}:next did not give a version number")
        return number

    def _drop_old(self, version: int) -> None:
        """Drop versions older than the newest ``keep`` complete ones (``version`` included)."""
        found: dict[int, list[bytes | str]] = {}
        complete: set[int] = set()
        start = len(self.prefix) + 2  # "{prefix}:v"
        for key in self.client.scan_iter(match=f"{_glob(self.prefix)}:v*", count=1000):
            number, _, rest = _text(key)[start:].partition(":")
            n = _int(number)
            if n is None or n >= version:
                continue  # ours, or a newer publish in progress
            found.setdefault(n, []).append(key)
            if rest == "meta":
                complete.add(n)
        kept = set(sorted(complete, reverse=True)[: self.keep - 1])
        self._unlink_versions({n: keys for n, keys in found.items() if n not in kept})

    def _unlink_versions(
        self, versions: Mapping[int, list[bytes | str]], scan: bool = False
    ) -> None:
        """UNLINK whole versions, each meta first: once a reader finds the meta gone, it
        knows the version is going and re-reads ``current``, instead of taking a missing
        record for "no such record"."""
        if not versions:
            return
        self.client.unlink(*(f"{self.prefix}:v{n}:meta" for n in versions))
        for n, keys in versions.items():
            found: Iterable[bytes | str] = keys
            if scan:
                found = self.client.scan_iter(match=f"{_glob(self.prefix)}:v{n}:*", count=1000)
            self._unlink(found)

    def _unlink(self, keys: Iterable[bytes | str]) -> int:
        count = 0
        batch: list[bytes | str] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= PUBLISH_BATCH:
                count += self.client.unlink(*batch)
                batch.clear()
        if batch:
            count += self.client.unlink(*batch)
        return count

    def status(self) -> dict[str, str]:
        """The current version and its meta, the versions present, keys and listeners."""
        current = _int(self.client.get(f"{self.prefix}:current"))
        out = {"current_version": str(current) if current is not None else "none"}
        if current is not None:
            meta = self.client.hgetall(f"{self.prefix}:v{current}:meta")
            out.update({_text(k): _text(v) for k, v in meta.items()})
        keys = 0
        versions: set[int] = set()
        start = len(self.prefix) + 2
        for key in self.client.scan_iter(match=f"{_glob(self.prefix)}:*", count=1000):
            keys += 1
            name = _text(key)
            if name.startswith(f"{self.prefix}:v") and name.endswith(":meta"):
                n = _int(name[start : -len(":meta")])
                if n is not None:
                    versions.add(n)
        out["keys"] = str(keys)
        out["versions"] = ",".join(map(str, sorted(versions))) or "none"
        numsub = self.client.pubsub_numsub(f"{self.prefix}:versions")
        out["listeners"] = str(numsub[0][1] if numsub else 0)
        return out

    def flush(self) -> int:
        """Remove every ``{prefix}:*`` key; return how many there were."""
        return self._unlink(self.client.scan_iter(match=f"{_glob(self.prefix)}:*", count=1000))


class RedisStore:
    """Reads records of the version it holds; ``refresh`` moves to the current one.

    Thread-safe: redis-py's client checks a pooled connection out per command.
    """

    def __init__(self, client: redis.Redis, prefix: str = REDIS_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        # None: not known yet, or nothing published — either way ask Redis next time.
        self._version: int | None = None

    def refresh(self) -> int | None:
        """Re-read the current version (raises StoreUnavailable)."""
        self._version = None  # if Redis fails now, the next lookup asks again
        try:
            version = _int(self.client.get(f"{self.prefix}:current"))
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        self._version = version
        return version

    def version(self) -> int | None:
        held = self._version
        return held if held is not None else self.refresh()

    def identity_records(self) -> tuple[int, dict[str, bytes]]:
        """The current version's identity record, or (published by an older sigfilter)
        its tenant and domain records; raises StoreUnavailable."""
        version = self.refresh()
        if version is None:
            raise StoreUnavailable("Redis: nothing published")
        base = f"{self.prefix}:v{version}:"
        try:
            held = self.client.get(base + IDENTITY_KEY)
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        if held is None:  # published by a sigfilter without the identity record
            return self.records(("tenant", "domain"), version)
        self._complete(version)
        return version, {IDENTITY_KEY: _bytes(held)}

    def records(
        self, kinds: tuple[str, ...], version: int | None = None
    ) -> tuple[int, dict[str, bytes]]:
        """Every record of these kinds (``user``, ``tenant``, …) of one version, read
        with SCAN and MGET in batches; raises StoreUnavailable."""
        version = version if version is not None else self.refresh()
        if version is None:
            raise StoreUnavailable("Redis: nothing published")
        base = f"{self.prefix}:v{version}:"
        records: dict[str, bytes] = {}
        try:
            for kind in kinds:
                match = f"{_glob(base)}{kind}:*"
                batch: list[bytes | str] = []
                for key in self.client.scan_iter(match=match, count=PUBLISH_BATCH):
                    batch.append(key)
                    if len(batch) >= PUBLISH_BATCH:
                        self._fetch(batch, len(base), records)
                if batch:
                    self._fetch(batch, len(base), records)
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        self._complete(version)
        return version, records

    def _fetch(self, keys: list[bytes | str], strip: int, into: dict[str, bytes]) -> None:
        for key, value in zip(keys, self.client.mget(keys), strict=True):
            if value is not None:
                into[_text(key)[strip:]] = _bytes(value)
        keys.clear()

    def _complete(self, version: int) -> None:
        """Raise unless the version is still whole (its meta is written last, dropped first)."""
        try:
            complete = self.client.exists(f"{self.prefix}:v{version}:meta")
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        if not complete:
            raise StoreUnavailable(f"Redis: version {version} has no meta")

    def get(self, key: str) -> bytes | None:
        version = self.version()
        if version is None:
            # Redis answers but holds no version (restarted empty, or flushed): that is
            # an outage of the serving layer, not "this sender has no signature".
            raise StoreUnavailable("Redis: nothing published")
        try:
            value = self.client.get(f"{self.prefix}:v{version}:{key}")
            if value is None and not self.client.exists(f"{self.prefix}:v{version}:meta"):
                # Our version is being dropped (we missed announcements): move to current.
                moved = self.refresh()
                if moved is None:
                    raise StoreUnavailable("Redis: nothing published")
                if moved == version:  # current, yet incomplete: being flushed or evicted
                    raise StoreUnavailable(f"Redis: version {version} has no meta")
                value = self.client.get(f"{self.prefix}:v{moved}:{key}")
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        if value is None or isinstance(value, bytes):
            return value
        return value.encode()  # a client made with decode_responses=True


class VersionListener:
    """Calls ``on_version(n)`` for every announced version; reconnects after outages.

    A daemon thread with its own connection (give it its own client). After every
    (re)connect it also passes on the current version, so one published while it was
    away is noticed. ``on_version`` runs on this thread and must not raise.
    """

    def __init__(
        self,
        client: redis.Redis,
        on_version: Callable[[int], None],
        prefix: str = REDIS_PREFIX,
        backoff_min: float = LISTENER_BACKOFF_MIN,
        backoff_max: float = LISTENER_BACKOFF_MAX,
        poll: float = LISTENER_POLL,
    ) -> None:
        self.client = client
        self.on_version = on_version
        self.prefix = prefix
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.poll = poll
        # Set once subscribed and the current version was passed on (tests wait on it).
        self.connected = threading.Event()
        self.reconnects = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigfilter-versions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop and wait up to ``timeout`` seconds; True if the thread has ended."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        backoff = self.backoff_min
        while not self._stop.is_set():
            try:
                self._listen()
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    backoff = self.backoff_min  # we were connected: a fresh outage
                    self.connected.clear()
                # One warning per outage, not one per attempt.
                level = logging.DEBUG if self._failing else logging.WARNING
                log.log(level, "version listener: %s; reconnecting in %.1f s", exc, backoff)
                self._failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                self.reconnects += 1

    def _listen(self) -> None:
        pubsub = cast("Callable[..., PubSub]", self.client.pubsub)()
        try:
            pubsub.subscribe(f"{self.prefix}:versions")
            while not self._stop.is_set():
                # Polling, not listen(): stop() takes effect within one poll.
                message = pubsub.get_message(timeout=self.poll)
                kind = message.get("type") if message else None
                if kind == "subscribe":
                    # Confirmed, also when redis-py reconnected by itself: whatever went
                    # live while we were away counts as announced. Subscribed first, then
                    # read, so nothing published in between is lost.
                    current = _int(self.client.get(f"{self.prefix}:current"))
                    if current is not None:
                        self.on_version(current)
                    if self._failing:
                        log.warning("version listener: connected again")
                        self._failing = False
                    self.connected.set()
                elif kind == "message":
                    version = _int(message.get("data"))
                    if version is not None:
                        self.on_version(version)
        finally:
            pubsub.close()


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
