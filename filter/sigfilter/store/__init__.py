"""Record stores: in-process, Redis, and the in-process cache in front of Redis.

``RecordStore`` is the interface (``version()``, ``get(key)``; records are opaque bytes);
``MemoryStore`` serves the embedded no-Redis mode, ``RedisStore`` reads what
``RedisPublisher`` wrote, ``CachedStore`` sits in front of either and outlives outages,
and ``VersionListener`` tells the cache when a new version goes live.
"""

from .base import MemoryStore, RecordStore, StoreUnavailable
from .cache import CachedStore
from .redis_store import PublishConflict, RedisPublisher, RedisStore, VersionListener, connect

__all__ = [
    "CachedStore",
    "MemoryStore",
    "PublishConflict",
    "RecordStore",
    "RedisPublisher",
    "RedisStore",
    "StoreUnavailable",
    "VersionListener",
    "connect",
]
