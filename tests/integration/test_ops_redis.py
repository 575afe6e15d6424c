"""Cache and Redis metrics through the real stack: Redis serving, then Redis down.

smtplib → private Postfix → the milter (serving from a real redis-server, metrics on,
JSON log lines) → Postfix → sink. The cache's hits and misses, Redis errors, the
store-unavailable error and its log line are read back from /metrics and the milter's log.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import smtplib
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance
from harness.redis_server import RedisServer
from harness.sink import Sink, free_port
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.store.redis_store import RedisPublisher
from support import MESSAGES, decoded_leaves, to_crlf

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
AVERY = "avery.quill@example.com"
OTHER = "someone@not-in-catalog.example"
NOREPLY = "noreply@example.com"  # a user of the tenant that AVERY's messages never ask for
RAW = to_crlf((MESSAGES / "c24_generic_html-base64.eml").read_bytes())


@dataclass
class Stack:
    redis: RedisServer
    milter: MilterProcess
    postfix: PostfixInstance
    sink: Sink

    def send(self, sender: str) -> bytes:
        before = len(self.sink.messages)
        with smtplib.SMTP("127.0.0.1", self.postfix.smtpd_port, timeout=30) as client:
            client.sendmail(sender, ["jane@customer.example"], RAW)
        assert self.sink.wait_for(before + 1, timeout=30), self.postfix.log_text()[-3000:]
        return self.sink.messages[before][2]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(self.milter.metrics_url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def lookups(self) -> dict[str, float]:
        got = self.metrics()
        return {
            result: got.get(("sigfilter_cache_lookups_total", (("result", result),)), 0.0)
            for result in ("hit", "miss", "stale", "unavailable")
        }


@contextlib.contextmanager
def redis_stack(hold_users: bool) -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="sigfilter-ops-redis-"))
    work.chmod(0o755)
    redis = RedisServer()
    sink = Sink()
    milter = MilterProcess(
        work / "milter",
        redis_url=redis.url,
        metrics_port=free_port(),
        extra_args=["--log-format", "json"],
        config={"hold_users": hold_users},
    )
    try:
        redis.start()
        records = compile_catalog(load_catalog(CATALOG))
        RedisPublisher(redis.client()).publish(records, {"catalog": str(CATALOG)})
        sink.start()
        milter.start()
        postfix = PostfixInstance(
            work / "postfix", free_port(), sink.port, milter.postfix_spec,
            tenant_domains={"example.com": f"127.0.0.1:{sink.port}",
                            "not-in-catalog.example": f"127.0.0.1:{sink.port}"},
        )  # fmt: skip
        try:
            postfix.start()
            yield Stack(redis, milter, postfix, sink)
        finally:
            postfix.stop()
    finally:
        milter.stop(kill=True)
        sink.stop()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Users through the TTL cache (hold_users = false): the cache's own counts."""
    with redis_stack(hold_users=False) as running:
        yield running


def json_lines(log: str) -> list[dict[str, str]]:
    return [json.loads(x) for x in log.splitlines() if x.startswith("{")]


def test_cache_counts_then_a_redis_outage(stack: Stack) -> None:
    # Tenants and domains are held in memory (identity.py, loaded at start and on each
    # publish): only the user record goes through the cache. First message: 1 miss.
    assert "Avery Quill" in decoded_leaves(stack.send(AVERY))["plain"]
    assert stack.lookups() == {"hit": 0.0, "miss": 1.0, "stale": 0.0, "unavailable": 0.0}
    stack.send(AVERY)  # cached now: 1 hit
    assert stack.lookups() == {"hit": 1.0, "miss": 1.0, "stale": 0.0, "unavailable": 0.0}

    stack.redis.stop()
    # A domain no tenant has is refused although Redis is down: identity never waits
    # on Redis (issue 12).
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        stack.send(OTHER)
    assert err.value.smtp_code == 550
    # A tenant's user never looked up: the cache must ask Redis, which is down. Signing
    # fails open: the message passes unchanged, counted as an error of kind
    # store-unavailable.
    got = stack.send(NOREPLY)
    assert got.endswith(RAW.split(b"\r\n\r\n", 1)[1])
    metrics = stack.metrics()
    assert metrics[("sigfilter_redis_errors_total", ())] == 1  # then left alone for 1 s
    assert metrics[("sigfilter_errors_total", (("kind", "store-unavailable"),))] == 1
    skipped = (("action", "skipped"), ("reason", "store-unavailable"), ("tenant", "example.com"))
    assert metrics[("sigfilter_messages_total", skipped)] == 1
    assert stack.lookups()["unavailable"] == 1  # the user record, at the end
    # A known sender still gets signed from the cache while Redis is down.
    assert "Avery Quill" in decoded_leaves(stack.send(AVERY))["plain"]
    assert stack.lookups()["hit"] == 2

    # --log-format json: each message's line is one JSON object, alone on its line.
    deadline = time.monotonic() + 30
    while len(lines := json_lines(stack.milter.log_text())) < 5:
        assert time.monotonic() < deadline, stack.milter.log_text()
        time.sleep(0.05)
    assert [(x["action"], x["reason"]) for x in lines] == [
        ("signed", "ok"),
        ("signed", "ok"),
        ("rejected", "unknown-sender"),
        ("skipped", "store-unavailable"),
        ("signed", "ok"),
    ]
    line = lines[3]
    assert line["action"] == "skipped" and line["sender_domain"] == "example.com"
    port = stack.redis.port
    # the first request that failed (the one that then rests the backend for 1 s)
    assert line["detail"] == f"Redis: Error 111 connecting to 127.0.0.1:{port}. Connection refused."


def test_held_users_are_signed_through_a_redis_outage() -> None:
    """The default (hold_users): every user record of the version is held, so a sender
    never seen before is still decided from memory while Redis is down."""
    with redis_stack(hold_users=True) as stack:
        stack.redis.stop()
        assert "Avery Quill" in decoded_leaves(stack.send(AVERY))["plain"]
        got = stack.send(NOREPLY)  # its rule says never sign: decided without Redis
        assert got.endswith(RAW.split(b"\r\n\r\n", 1)[1])
        with pytest.raises(smtplib.SMTPSenderRefused):
            stack.send(OTHER)
        assert stack.lookups() == {"hit": 0.0, "miss": 0.0, "stale": 0.0, "unavailable": 0.0}
        deadline = time.monotonic() + 30
        while len(lines := json_lines(stack.milter.log_text())) < 3:
            assert time.monotonic() < deadline, stack.milter.log_text()
            time.sleep(0.05)
        assert [(x["action"], x["reason"]) for x in lines] == [
            ("signed", "ok"),
            ("skipped", "rule-skip"),
            ("rejected", "unknown-sender"),
        ]
