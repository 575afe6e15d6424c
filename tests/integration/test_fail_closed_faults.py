"""Fail closed under faults (issue 12), through the production profile in the fleet mode.

Real Postfix (the shipped templates, the role's milter_default_action = tempfail, TLS
with the connector's client certificate), the real milter serving from a real Redis, a
TLS sink per tenant. A stream of mail from two tenants, forged stamps mixed in, is sent
by client threads that behave like Exchange Online (a 4xx is retried, a 5xx is final)
while the milter is killed, Redis is stopped, and the milter comes back with a cold
cache and Redis still down; then Redis returns and the catalog is published again.

Counted by comparing what went in with what came out: 0 foreign messages relayed, 0
lost (every legitimate message delivered, every forged one refused with a 5xx), every
legitimate message delivered exactly once, to its own tenant, signed.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from harness.redis_server import RedisServer
from harness.securestack import AVERY, OPS, TENANT_A_ID, TENANT_B_ID, SecureStack, message

RETRY_EVERY = 0.5  # seconds between an Exchange-like client's attempts
GIVE_UP = 120.0  # a message still refused with 4xx after this counts as lost

# (sender, stamp, legitimate, tenant it belongs to)
KINDS = [
    (AVERY, TENANT_A_ID, True, "example.com"),
    (OPS, TENANT_B_ID, True, "example.org"),
    (AVERY, TENANT_B_ID, False, "example.com"),  # tenant B sends as A
    (OPS, TENANT_A_ID, False, "example.org"),  # tenant A sends as B
    ("avery.quill@example.com.", TENANT_B_ID, False, "example.com"),  # trailing dot
    ("AVERY.QUILL@EXAMPLE.COM", None, False, "example.com"),  # no stamp
]


@dataclass
class Sent:
    marker: str
    sender: str
    legitimate: bool
    tenant: str
    outcome: str = "pending"  # accepted | refused | lost
    attempts: int = 0
    tempfails: int = 0


def deliver(stack: SecureStack, item: Sent, stamp: str | None) -> None:
    raw = message(f"fault stream {item.marker}", tenant_id=stamp)
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        item.attempts += 1
        try:
            stack.send(raw, cert=stack.exo_cert, sender=item.sender)
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                item.tempfails += 1
                time.sleep(RETRY_EVERY)
                continue
            item.outcome = "refused"
            return
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= c < 500 for c in codes):
                item.tempfails += 1
                time.sleep(RETRY_EVERY)
                continue
            item.outcome = "refused"
            return
        except (smtplib.SMTPServerDisconnected, OSError):
            item.tempfails += 1  # the connection went away: Exchange retries
            time.sleep(RETRY_EVERY)
            continue
        item.outcome = "accepted"
        return
    item.outcome = "lost"


@pytest.fixture
def stack() -> Iterator[SecureStack]:
    redis = RedisServer()
    try:
        with SecureStack(redis=redis) as running:
            yield running
    finally:
        redis.close()


def faults(stack: SecureStack) -> list[str]:
    """Kill the milter, stop Redis, restart the milter cold, bring Redis back."""
    log = []
    time.sleep(1.0)
    stack.milter.stop(kill=True)  # SIGKILL mid-stream
    log.append("milter killed")
    time.sleep(1.5)
    stack.redis.stop()  # type: ignore[union-attr]
    log.append("redis stopped")
    time.sleep(0.5)
    stack.milter.start()  # a cold milter: nothing held, Redis unreachable
    log.append("milter started cold, redis down")
    time.sleep(3.0)
    stack.redis.start()  # type: ignore[union-attr]  # empty: nothing published
    time.sleep(1.0)
    stack.publish()  # the operator (or Ansible) publishes again
    log.append("redis back, catalog published")
    return log


def test_stream_through_milter_kill_and_cold_redis_outage(stack: SecureStack) -> None:
    items: list[tuple[Sent, str | None]] = []
    for n in range(60):
        sender, stamp, legitimate, tenant = KINDS[n % len(KINDS)]
        items.append((Sent(uuid.uuid4().hex, sender, legitimate, tenant), stamp))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for item, stamp in items:
            futures.append(pool.submit(deliver, stack, item, stamp))
            time.sleep(0.1)  # a stream, not a burst: it spans the faults below
            if len(futures) == 5:
                timeline = pool.submit(faults, stack)
        for future in futures:
            future.result()
        steps = timeline.result()
    assert steps[-1] == "redis back, catalog published"

    stack.postfix.flush()
    deadline = time.monotonic() + 60
    while stack.postfix.queue_size() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.postfix.queue_size() == 0, stack.postfix.log_text()[-3000:]
    time.sleep(1.0)  # the last deliveries reach the sinks

    arrived: dict[str, list[tuple[str, bytes]]] = {}
    for domain, sink in stack.sinks.items():
        for m in sink.messages:
            for item, _ in items:
                if item.marker.encode() in m.data:
                    arrived.setdefault(item.marker, []).append((domain, m.data))
    legit = [i for i, _ in items if i.legitimate]
    forged = [i for i, _ in items if not i.legitimate]
    foreign_relayed = [i for i in forged if i.marker in arrived]
    lost = [i for i, _ in items if i.outcome in ("lost", "pending")]
    not_once = [i for i in legit if len(arrived.get(i.marker, [])) != 1]
    wrong_tenant = [i for i in legit if any(d != i.tenant for d, _ in arrived.get(i.marker, []))]
    unsigned = [
        i for i in legit
        if not any(b"X-Sigfilter-Processed: 1" in data for _, data in arrived.get(i.marker, []))
    ]  # fmt: skip
    print(
        f"\n{len(items)} messages ({len(legit)} legitimate, {len(forged)} forged); "
        f"{sum(i.tempfails for i, _ in items)} temporary refusals retried; "
        f"faults: {', '.join(steps)}"
    )
    assert foreign_relayed == []
    assert lost == []
    assert all(i.outcome == "refused" for i in forged)
    assert all(i.outcome == "accepted" for i in legit)
    assert not_once == [] and wrong_tenant == []
    assert unsigned == []  # tempfail (the production default): nothing left unsigned
    # The faults did bite: some attempts were refused temporarily and retried.
    assert sum(i.tempfails for i, _ in items) > 0
    log = stack.milter.wait_log("reason=identity-unavailable")
    assert "reason=identity-unavailable" in log  # the cold milter refused with 451


@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_milter_down_with_each_default_action(action: str) -> None:
    """tempfail (shipped): a forged message waits at Exchange (4xx). accept (an explicit
    choice, doctor warns): it is relayed unchecked and unsigned — the documented fail-open."""
    with SecureStack(default_action=action) as stack:
        stack.milter.stop(kill=True)
        forged = message("forged while the milter is down", tenant_id=TENANT_B_ID)
        if action == "tempfail":
            with pytest.raises(smtplib.SMTPResponseException) as err:
                stack.send(forged, cert=stack.exo_cert)
            assert 400 <= err.value.smtp_code < 500
            stack.postfix.flush()
            assert stack.postfix.queue_size() == 0
            assert all(not s.messages for s in stack.sinks.values())
        else:
            stack.send(forged, cert=stack.exo_cert)
            (got,) = stack.sinks["example.com"].wait_for(1, timeout=30)
            assert b"X-Sigfilter-Processed" not in got.data
