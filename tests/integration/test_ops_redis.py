"""Cache and Redis metrics through the real stack: Redis serving, then Redis down.

smtplib → private Postfix → the milter (serving from a real redis-server, metrics on,
JSON log lines) → Postfix → sink. The cache's hits and misses, Redis errors, the
store-unavailable error and its log line are read back from /metrics and the milter's log.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import time
from collections.abc import Iterator

import pytest

from harness.redis_server import RedisServer
from harness.sink import free_port
from harness.stack import Stack, running_stack
from support import MESSAGES, decoded_leaves, to_crlf

AVERY = "avery.quill@example.com"
OTHER = "someone@not-in-catalog.example"
NOREPLY = "noreply@example.com"  # a user of the tenant that AVERY's messages never ask for
RAW = to_crlf((MESSAGES / "c24_generic_html-base64.eml").read_bytes())


def send(stack: Stack, sender: str) -> bytes:
    return stack.send(RAW, sender)


def lookups(stack: Stack) -> dict[str, float]:
    got = stack.metrics()
    return {
        result: got.get(("sigfilter_cache_lookups_total", (("result", result),)), 0.0)
        for result in ("hit", "miss", "stale", "unavailable")
    }


def redis_stack(hold_users: bool) -> contextlib.AbstractContextManager[Stack]:
    """The milter serving the published example catalog from a real redis-server."""
    milter = {
        "metrics_port": free_port(),
        "extra_args": ["--log-format", "json"],
        "config": {"hold_users": hold_users},
    }
    return running_stack("sigfilter-ops-redis-", milter, redis=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Users through the TTL cache (hold_users = false): the cache's own counts."""
    with redis_stack(hold_users=False) as running:
        yield running


def redis(stack: Stack) -> RedisServer:
    assert stack.redis is not None  # running_stack(..., redis=True)
    return stack.redis


def json_lines(log: str) -> list[dict[str, str]]:
    return [json.loads(x) for x in log.splitlines() if x.startswith("{")]


def test_cache_counts_then_a_redis_outage(stack: Stack) -> None:
    # Tenants and domains are held in memory (identity.py, loaded at start and on each
    # publish): only the user record goes through the cache. First message: 1 miss.
    assert "Avery Quill" in decoded_leaves(send(stack, AVERY))["plain"]
    assert lookups(stack) == {"hit": 0.0, "miss": 1.0, "stale": 0.0, "unavailable": 0.0}
    send(stack, AVERY)  # cached now: 1 hit
    assert lookups(stack) == {"hit": 1.0, "miss": 1.0, "stale": 0.0, "unavailable": 0.0}

    redis(stack).stop()
    # A domain no tenant has is refused although Redis is down: identity never waits
    # on Redis (issue 12).
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        send(stack, OTHER)
    assert err.value.smtp_code == 550
    # A tenant's user never looked up: the cache must ask Redis, which is down. Signing
    # fails open: the message passes unchanged, counted as an error of kind
    # store-unavailable.
    got = send(stack, NOREPLY)
    assert got.endswith(RAW.split(b"\r\n\r\n", 1)[1])
    metrics = stack.metrics()
    assert metrics[("sigfilter_redis_errors_total", ())] == 1  # then left alone for 1 s
    assert metrics[("sigfilter_errors_total", (("kind", "store-unavailable"),))] == 1
    skipped = (("action", "skipped"), ("reason", "store-unavailable"), ("tenant", "example.com"))
    assert metrics[("sigfilter_messages_total", skipped)] == 1
    assert lookups(stack)["unavailable"] == 1  # the user record, at the end
    # A known sender still gets signed from the cache while Redis is down.
    assert "Avery Quill" in decoded_leaves(send(stack, AVERY))["plain"]
    assert lookups(stack)["hit"] == 2

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
    port = redis(stack).port
    # the first request that failed (the one that then rests the backend for 1 s)
    assert line["detail"] == f"Redis: Error 111 connecting to 127.0.0.1:{port}. Connection refused."


def test_held_users_are_signed_through_a_redis_outage() -> None:
    """The default (hold_users): every user record of the version is held, so a sender
    never seen before is still decided from memory while Redis is down."""
    with redis_stack(hold_users=True) as stack:
        redis(stack).stop()
        assert "Avery Quill" in decoded_leaves(send(stack, AVERY))["plain"]
        got = send(stack, NOREPLY)  # its rule says never sign: decided without Redis
        assert got.endswith(RAW.split(b"\r\n\r\n", 1)[1])
        with pytest.raises(smtplib.SMTPSenderRefused):
            send(stack, OTHER)
        assert lookups(stack) == {"hit": 0.0, "miss": 0.0, "stale": 0.0, "unavailable": 0.0}
        deadline = time.monotonic() + 30
        while len(lines := json_lines(stack.milter.log_text())) < 3:
            assert time.monotonic() < deadline, stack.milter.log_text()
            time.sleep(0.05)
        assert [(x["action"], x["reason"]) for x in lines] == [
            ("signed", "ok"),
            ("skipped", "rule-skip"),
            ("rejected", "unknown-sender"),
        ]
