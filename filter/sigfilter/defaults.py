"""Defaults and fixed names, in one place."""

from __future__ import annotations

from typing import Literal

Mode = Literal["marker", "mobile", "full"]
MODES: tuple[Mode, ...] = ("marker", "mobile", "full")

# Our processed header: the Exchange transport rule excepts messages that carry it.
PROCESSED_HEADER = "X-Sigfilter-Processed"
DEFAULT_MARKER = "{EMAILSIGNATURE}"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024  # bytes; larger messages pass unchanged

# The serving layer (Redis) and the in-process cache in front of it.
REDIS_PREFIX = "sigfilter"
REDIS_TIMEOUT = 0.2  # seconds; a lookup waits at most about this long for Redis
REDIS_KEEP_VERSIONS = 2  # the current version and the one before, for readers in flight
PUBLISH_BATCH = 1000  # records per pipeline round trip
CACHE_TTL = 20 * 60.0  # seconds an in-process answer is fresh
CACHE_MAX_ENTRIES = 100_000
LISTENER_BACKOFF_MIN = 0.1  # seconds between reconnects of the version listener …
LISTENER_BACKOFF_MAX = 2.0  # … doubling up to this
REDIS_HEALTH_CHECK_INTERVAL = 30  # seconds idle before a pooled connection is PINGed first
LISTENER_POLL = 0.2  # seconds the version listener waits per poll; bounds how fast stop() is
CACHE_RETRY_AFTER = 1.0  # seconds the cache stops asking a backend that just failed

# The milter.
MILTER_BACKLOG = 1024  # listen backlog: room for every smtpd process connecting at once
MESSAGE_TIME_LIMIT = 5.0  # seconds for one message's rewrite; then it passes unchanged
REWRITE_WORKERS = 8  # threads that run rewrites (the GIL makes more pointless)

# Hostile MIME: bounds on the work one message can cause; beyond them it passes unchanged.
MIME_MAX_DEPTH = 40  # nested multiparts
MIME_MAX_PARTS = 2000  # MIME entities in one message
MIME_MAX_HEADER_LINES = 10_000  # lines in one header block (EXO's are a few hundred)
MAX_TEXT_LEAF = 4 * 1024 * 1024  # bytes of one text part the engine decodes and edits (~1 s)
