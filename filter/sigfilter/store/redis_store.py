"""Redis as the fleet's serving layer: versioned records, atomic switch, announcements.

Keys (prefix ``sigfilter``)::

    sigfilter:next              INCR counter that allocates version numbers
    sigfilter:current           the version being served
    sigfilter:v<N>:<key>        one record of version N (tenant:…, domain:…, user:…)
    sigfilter:v<N>:meta         hash: published_at, records, and the publisher's meta
    sigfilter:versions          pub/sub channel: "N" when version N goes live

A version is written completely under new keys before ``current`` moves to it, so a
reader never mixes two versions; the previous version stays for readers in flight.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis
from redis.exceptions import RedisError

from ..defaults import (
    LISTENER_BACKOFF_MAX,
    LISTENER_BACKOFF_MIN,
    PUBLISH_BATCH,
    REDIS_KEEP_VERSIONS,
    REDIS_PREFIX,
    REDIS_TIMEOUT,
)
from .base import StoreUnavailable

log = logging.getLogger("sigfilter.store")


def connect(url: str, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A client with short timeouts: a slow Redis must never hold a message up."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
        decode_responses=False,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPublisher:
    def __init__(
        self, client: redis.Redis, prefix: str = REDIS_PREFIX, keep: int = REDIS_KEEP_VERSIONS
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.keep = max(1, keep)

    def publish(self, records: Mapping[str, bytes], meta: Mapping[str, str]) -> int:
        """Write a new version, switch to it, announce it; return its number."""
        # Seeded from the clock, so numbers keep rising even if Redis lost its data.
        self.client.set(f"{self.prefix}:next", int(time.time() * 1000), nx=True)
        version = int(self.client.incr(f"{self.prefix}:next"))
        base = f"{self.prefix}:v{version}:"
        items = list(records.items())
        for start in range(0, len(items), PUBLISH_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for key, value in items[start : start + PUBLISH_BATCH]:
                pipe.set(base + key, value)
            pipe.execute()
        info: dict[Any, Any] = {  # redis-py's stubs want invariant key and value types
            **meta,
            "records": str(len(items)),
            "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self.client.hset(base + "meta", mapping=info)
        # The switch: one SET, then the announcement.
        self.client.set(f"{self.prefix}:current", version)
        self.client.publish(f"{self.prefix}:versions", str(version))
        self._drop_older_than(version - self.keep + 1)
        return version

    def _drop_older_than(self, oldest_kept: int) -> None:
        for key in self.client.scan_iter(match=f"{self.prefix}:v*", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            number = _int(name[len(self.prefix) + 2 :].split(":", 1)[0])
            if number is not None and number < oldest_kept:
                self.client.unlink(key)

    def status(self) -> dict[str, str]:
        current = _int(self.client.get(f"{self.prefix}:current"))
        out = {"current_version": str(current) if current else "none"}
        if current:
            meta = self.client.hgetall(f"{self.prefix}:v{current}:meta")
            for k, v in meta.items():
                out[_text(k)] = _text(v)
        out["keys"] = str(
            sum(1 for _ in self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        )
        return out

    def flush(self) -> int:
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for start in range(0, len(keys), PUBLISH_BATCH):
            self.client.unlink(*keys[start : start + PUBLISH_BATCH])
        return len(keys)


class RedisStore:
    """Reads records of the version it holds; ``refresh`` moves to the current one."""

    def __init__(self, client: redis.Redis, prefix: str = REDIS_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._version: int | None = None
        self._known = False
        self._lock = threading.Lock()

    def refresh(self) -> int | None:
        try:
            version = _int(self.client.get(f"{self.prefix}:current"))
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        with self._lock:
            self._version, self._known = version, True
        return version

    def version(self) -> int | None:
        return self._version if self._known else self.refresh()

    def get(self, key: str) -> bytes | None:
        version = self.version()
        if version is None:
            return None
        try:
            value = self.client.get(f"{self.prefix}:v{version}:{key}")
            if value is None and not self.client.exists(f"{self.prefix}:v{version}:meta"):
                # Our version was dropped (we missed announcements): move to current.
                version = self.refresh()
                value = self.client.get(f"{self.prefix}:v{version}:{key}") if version else None
        except RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()


class VersionListener:
    """Calls ``on_version(n)`` for every announced version; reconnects after outages."""

    def __init__(
        self, client: redis.Redis, on_version: Callable[[int], None], prefix: str = REDIS_PREFIX
    ) -> None:
        self.client = client
        self.on_version = on_version
        self.prefix = prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigfilter-versions", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = LISTENER_BACKOFF_MIN
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = LISTENER_BACKOFF_MIN
            except (RedisError, OSError, ValueError) as exc:
                self.connected.clear()
                log.warning("version listener: %s; retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, LISTENER_BACKOFF_MAX)

    def _listen(self) -> None:
        pubsub = cast(Any, self.client).pubsub(
            ignore_subscribe_messages=True
        )  # untyped in redis-py
        try:
            pubsub.subscribe(f"{self.prefix}:versions")
            # Whatever was published while we were away counts as an announcement.
            current = _int(self.client.get(f"{self.prefix}:current"))
            self.connected.set()
            if current is not None:
                self.on_version(current)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message and message.get("type") == "message":
                    version = _int(message.get("data"))
                    if version is not None:
                        self.on_version(version)
        finally:
            pubsub.close()
