"""What the milter counts, and the small HTTP server that shows it (loopback by default).

Endpoints on the metrics port:

- ``/metrics``: Prometheus text format (messages by action, reason and tenant; errors by
  kind; rewrite time; cache and Redis counts; catalog version; messages in flight).
- ``/status``: JSON for ``sigfilter health``: catalog version, uptime, in flight.
- ``/stats``: JSON per-minute counts of the last hour for ``sigfilter stats`` (a
  Prometheus counter has no history; this ring of minute buckets is the history).

Per-message cost is kept small: label children are cached in a dict, so a decision is a
dict lookup and a few locked increments (see tests/bench/bench_metrics.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ..defaults import HISTORY_MINUTES, REWRITE_BUCKETS
from ..mime.tnef import class_label
from ..store.base import RecordStore, StoreUnavailable

log = logging.getLogger("sigfilter.metrics")

# Skip reasons that mean something is broken, not that the message needs no signature:
# they are counted as errors too.
ERROR_REASONS = frozenset({"time-limit", "store-unavailable", "identity-unavailable"})

# History keys of TNEF counts: "tnef\t<tenant>\t<class label>\t<action>" (stats.py
# keeps them apart from the "action:reason" keys that every message has).
TNEF_KEY = "tnef\t"

# CachedStore.stats() key -> the result label of sigfilter_cache_lookups_total
_LOOKUP_RESULTS = {
    "hits": "hit",
    "misses": "miss",
    "stale_served": "stale",
    "unavailable": "unavailable",
}


class BudgetLike(Protocol):
    @property
    def limit(self) -> int: ...
    @property
    def used(self) -> int: ...


class MinuteHistory:
    """Counts of ``action:reason`` per wall-clock minute, for the last ``minutes``."""

    def __init__(self, minutes: int = HISTORY_MINUTES, clock: Callable[[], float] = time.time):
        self.minutes = minutes
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: deque[tuple[int, Tally[str]]] = deque(maxlen=minutes)

    def add(self, key: str) -> None:
        minute = int(self.clock() // 60)
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != minute:
                self._buckets.append((minute, Tally()))
            self._buckets[-1][1][key] += 1

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        oldest = int(now // 60) - self.minutes + 1
        with self._lock:
            buckets = [
                {"start": minute * 60, "counts": dict(tally)}
                for minute, tally in self._buckets
                if minute >= oldest
            ]
        return {"now": now, "minutes": self.minutes, "buckets": buckets}


class Metrics:
    """The milter's counters, in a registry of their own (tests make fresh ones)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.started = clock()
        reg = self.registry
        self.seen = Counter(
            "sigfilter_messages_seen", "Messages whose MAIL FROM reached the milter.", registry=reg
        )
        self.decided = Counter(
            "sigfilter_messages",
            "Messages decided, by action (signed, skipped, error), reason and tenant.",
            ["action", "reason", "tenant"],
            registry=reg,
        )
        self.errors = Counter(
            "sigfilter_errors",
            "Messages passed unchanged because something failed, by kind.",
            ["kind"],
            registry=reg,
        )
        self.replaced_signatures = Counter(
            "sigfilter_client_signatures_replaced",
            "Signed messages whose mail-client signature ours replaced, by client and tenant.",
            ["client", "tenant"],
            registry=reg,
        )
        self.rewrite_seconds = Histogram(
            "sigfilter_rewrite_seconds",
            "Time from handing a message to the rewrite pool to its result.",
            buckets=REWRITE_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "sigfilter_messages_in_flight",
            "Messages between MAIL FROM and the milter's decision.",
            registry=reg,
        )
        self.loaded = Gauge(
            "sigfilter_catalog_loaded_timestamp_seconds",
            "When the milter last loaded its service (start or SIGUSR1).",
            registry=reg,
        )
        self.tnef = Counter(
            "sigfilter_tnef_messages",
            "TNEF (Outlook winmail.dat) messages decided, by tenant, MAPI message class "
            "(a fixed set of labels) and action (signed: converted to MIME; skipped: passed).",
            ["tenant", "message_class", "action"],
            registry=reg,
        )
        self.budget_limit = Gauge(
            "sigfilter_memory_budget_bytes",
            "Bytes all messages in flight may reserve together (0: no budget).",
            registry=reg,
        )
        self.budget_used = Gauge(
            "sigfilter_memory_budget_used_bytes",
            "Bytes the messages in flight have reserved of the memory budget.",
            registry=reg,
        )
        self.history = MinuteHistory(clock=clock)
        self._children: dict[tuple[str, str, str], Any] = {}
        self._tnef_children: dict[tuple[str, str, str], Any] = {}
        self._error_children: dict[str, Any] = {}
        self._store: Callable[[], RecordStore | None] = lambda: None
        reg.register(_StoreCollector(self))

    # -- per message (the hot path: keep it to dict lookups and increments) ------------------

    def message(self, action: str, reason: str, tenant: str, tnef_class: str | None = None) -> None:
        key = (action, reason, tenant)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self.decided.labels(*key))
        child.inc()
        if action == "error" or reason in ERROR_REASONS:
            self.error(reason)
        self.history.add(f"{action}:{reason}")
        if tnef_class is not None:
            self._tnef(tenant, class_label(tnef_class), action)

    def _tnef(self, tenant: str, label: str, action: str) -> None:
        key = (tenant, label, action)
        child = self._tnef_children.get(key)
        if child is None:
            child = self._tnef_children.setdefault(key, self.tnef.labels(*key))
        child.inc()
        self.history.add(TNEF_KEY + "\t".join(key))

    def replaced(self, client: str, tenant: str) -> None:
        self.replaced_signatures.labels(client, tenant).inc()

    def error(self, kind: str) -> None:
        child = self._error_children.get(kind)
        if child is None:
            child = self._error_children.setdefault(kind, self.errors.labels(kind))
        child.inc()

    # -- state read at scrape time --------------------------------------------------------------

    def watch_budget(self, budget: BudgetLike) -> None:
        """The memory budget's limit and use, read when scraped."""
        self.budget_limit.set_function(lambda: budget.limit)
        self.budget_used.set_function(lambda: budget.used)

    def watch_store(self, store: Callable[[], RecordStore | None]) -> None:
        """Where the catalog version and cache counts come from (the current service's store)."""
        self._store = store
        self.loaded.set(self.clock())

    def catalog_version(self) -> int | None:
        store = self._store()
        if store is None:
            return None
        try:
            return store.version()
        except StoreUnavailable:
            return None

    def status(self) -> dict[str, Any]:
        return {
            "catalog_version": self.catalog_version(),
            "in_flight": int(self._sample("sigfilter_messages_in_flight")),
            "uptime_seconds": round(self.clock() - self.started, 1),
            "seen": int(self._sample("sigfilter_messages_seen_total")),
        }

    def _sample(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


class _StoreCollector:
    """Catalog version and the in-process cache's counts, read when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # known only at scrape time; no name clashes to check

    def collect(self) -> Iterator[Metric]:
        version = self.metrics.catalog_version()
        yield GaugeMetricFamily(
            "sigfilter_catalog_version",
            "Catalog version being served (-1: none or unknown).",
            value=-1 if version is None else version,
        )
        stats_fn = getattr(self.metrics._store(), "stats", None)
        if not callable(stats_fn):
            return  # the embedded store has no cache
        stats: dict[str, int] = stats_fn()
        lookups = CounterMetricFamily(
            "sigfilter_cache_lookups",
            "Signature cache lookups by result (stale: served old while Redis failed).",
            labels=["result"],
        )
        for key, label in _LOOKUP_RESULTS.items():
            lookups.add_metric([label], stats.get(key, 0))
        yield lookups
        yield CounterMetricFamily(
            "sigfilter_redis_errors",
            "Redis requests that failed (timeout, refused, nothing published).",
            value=stats.get("backend_errors", 0),
        )
        yield CounterMetricFamily(
            "sigfilter_cache_invalidations",
            "Times the cache was emptied for a new catalog version.",
            value=stats.get("invalidations", 0),
        )
        yield GaugeMetricFamily(
            "sigfilter_cache_entries", "Entries in the signature cache.", value=stats["entries"]
        )


# -- the HTTP server ----------------------------------------------------------------------


def parse_listen(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError with the spelling wanted."""
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {spec!r} (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


class MetricsServer:
    """``/metrics``, ``/status`` and ``/stats`` on one port, served by a daemon thread."""

    def __init__(self, metrics: Metrics, listen: str) -> None:
        self.metrics = metrics
        host, port = parse_listen(listen)
        handler = type("Handler", (_Handler,), {"metrics": metrics})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="sigfilter-metrics", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry))
        elif path == "/status":
            self._json(self.metrics.status())
        elif path == "/stats":
            self._json({**self.metrics.history.snapshot(), **self.metrics.status()})
        else:
            self._send(404, "text/plain", b"not found: try /metrics, /status or /stats\n")

    def _json(self, data: dict[str, Any]) -> None:
        self._send(200, "application/json", json.dumps(data).encode() + b"\n")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s %s", self.address_string(), format % args)


def start_server(metrics: Metrics, listen: str) -> MetricsServer | None:
    """Start serving; a port that cannot be bound is logged, never fatal (mail must flow)."""
    if listen in ("", "off"):
        return None
    try:
        server = MetricsServer(metrics, listen)
    except (OSError, ValueError) as exc:
        log.error("action=metrics reason=failed listen=%s detail=%s", listen, exc)  # noqa: TRY400 - no traceback wanted
        return None
    log.info("action=metrics reason=listening listen=%s", server.address)
    return server.start()


# -- `sigfilter users sync`: a run-and-exit job, so its metrics go to a textfile -----------
# (node_exporter's textfile collector reads DIR/*.prom); totals are carried in the
# tenant's sync state between runs.

SYNC_COUNTERS = {  # state counter prefix -> (metric, help, label name)
    "runs": ("sigfilter_sync_runs_total", "Directory sync runs by result.", "result"),
    "users": (
        "sigfilter_sync_users_changed_total",
        "Users added, changed or removed by directory sync.",
        "change",
    ),
    "failures": (
        "sigfilter_sync_failures_total",
        "Failed directory sync runs by reason.",
        "reason",
    ),
}


def sync_metrics_text(tenant: str, counters: dict[str, float], gauges: dict[str, float]) -> bytes:
    """Prometheus text for one tenant's sync: ``counters`` keyed "runs|ok", "users|added",
    "failures|denied"; ``gauges`` keyed by metric name (seconds, counts)."""
    registry = CollectorRegistry()
    families = {
        prefix: CounterMetricFamily(name.removesuffix("_total"), doc, labels=["tenant", label])
        for prefix, (name, doc, label) in SYNC_COUNTERS.items()
    }
    for key, value in sorted(counters.items()):
        prefix, _, label = key.partition("|")
        if prefix in families:
            families[prefix].add_metric([tenant, label], value)
    gauge_families = []
    for name, value in sorted(gauges.items()):
        family = GaugeMetricFamily(name, name.replace("_", " "), labels=["tenant"])
        family.add_metric([tenant], value)
        gauge_families.append(family)

    class _Fixed:
        def collect(self) -> Iterator[Metric]:
            yield from families.values()
            yield from gauge_families

    registry.register(_Fixed())
    return generate_latest(registry)
