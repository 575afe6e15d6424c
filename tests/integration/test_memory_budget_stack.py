"""The memory budget through the real stack: Postfix, the milter process, the sink.

A milter conversation of our own (the MTA side of the protocol, over the milter's
socket) holds most of a small budget with a half-sent body, as a large message would;
messages that do not fit beside it pass unchanged (or get a 4xx and go through when
retried), one that fits is signed; cutting that conversation off mid-body gives its
share back, and then every message is signed. The budget is read from /metrics.
"""

from __future__ import annotations

import binascii
import contextlib
import random
import smtplib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import miltertest
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.postfixctl import available
from harness.sink import free_port
from harness.stack import AVERY, RCPT, Stack, running_stack
from sigfilter.defaults import COPY_FACTOR, PROCESSED_HEADER
from support import SIG_TOKEN

pytestmark = pytest.mark.skipif(not available(), reason="needs root and Postfix")

BUDGET = 4_000_000
HELD = 1_800_000  # body bytes of the conversation that holds the budget: 3.6 MB reserved
WAIT = 60.0  # seconds; generous for a loaded machine


def message(n: int, attachment: int) -> bytes:
    """A text reply with a base64 attachment of ``attachment`` bytes (CRLF)."""
    blob = random.Random(n).randbytes(attachment)
    b64 = binascii.b2a_base64(blob, newline=False)
    lines = b"\r\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    return (
        b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@customer.example\r\n"
        b"Subject: figures %d\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
        b"Message-ID: <budget-%d@test.sigfilter>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"The figures are attached.\r\n\r\nSent from my iPhone\r\n"
        b'--b1\r\nContent-Type: application/pdf; name="f.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" % (n, n) + lines + b"\r\n--b1--\r\n"
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    milter = {"metrics_port": free_port(), "config": {"memory_budget": BUDGET}}
    with running_stack("sigfilter-budget-", milter=milter) as running:
        yield running


@pytest.fixture(scope="module")
def deferring() -> Iterator[Stack]:
    config = {"memory_budget": BUDGET, "over_budget": "tempfail"}
    with running_stack("sigfilter-budget-4xx-", milter={"metrics_port": free_port(),
                                                         "config": config}) as running:  # fmt: skip
        yield running


def metric(stack: Stack, name: str, **labels: str) -> float:
    with urllib.request.urlopen(stack.milter.metrics_url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


def wait_used(stack: Stack, predicate: Callable[[float], bool], what: str) -> float:
    deadline = time.monotonic() + WAIT
    while True:
        used = metric(stack, "sigfilter_memory_budget_used_bytes")
        if predicate(used) or time.monotonic() > deadline:
            assert predicate(used), f"budget use {used}: {what}"
            return used
        time.sleep(0.1)


@contextlib.contextmanager
def holding(stack: Stack, body_bytes: int) -> Iterator[socket.socket]:
    """A message that has sent its header and ``body_bytes`` of body, and then waits
    (its conversation is cut off when the block ends: no end of message, no QUIT)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(WAIT)
    sock.connect(str(stack.milter.socket_path))
    conn = miltertest.MilterConnection(sock)
    no_replies_skipped = miltertest.SMFI_V6_PROT & ~sum(
        getattr(miltertest, name) for name in dir(miltertest) if name.startswith("SMFIP_NR_")
    )
    try:
        conn.optneg_mta(protocol=no_replies_skipped)
        assert conn.send_ar(miltertest.SMFIC_MAIL, args=[f"<{AVERY}>"])[0] == "c"
        assert conn.send_ar(miltertest.SMFIC_RCPT, args=[f"<{RCPT}>"])[0] == "c"
        conn.send_headers([("From", AVERY), ("To", RCPT), ("Subject", "big")])
        assert conn.send_ar(miltertest.SMFIC_EOH)[0] == "c"
        conn.send_body(("A" * 76 + "\r\n") * (body_bytes // 78))
        yield sock
    finally:
        sock.close()


def send_all(stack: Stack, raws: list[bytes]) -> list[str]:
    """Send each message on a session of its own, all at once; the SMTP replies."""
    replies: list[str] = [""] * len(raws)

    def send(i: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", stack.postfix.smtpd_port, timeout=WAIT) as client:
                client.sendmail(AVERY, [RCPT], raws[i])
            replies[i] = "250"
        except smtplib.SMTPDataError as exc:
            replies[i] = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(raws))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    return replies


def arrived(stack: Stack, raws: list[bytes], before: int) -> dict[bytes, bytes]:
    """What the sink got for each of ``raws`` (by Message-ID), once all are there."""
    got = stack.sink.wait_for(before + len(raws), timeout=WAIT)[before:]
    ids = {raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0]: raw for raw in raws}
    return {ids[m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0]]: m.data for m in got}


def unchanged(sent: bytes, got: bytes) -> bool:
    """Byte-identical but for the Received field Postfix puts on top."""
    return got.endswith(sent) and got[: -len(sent)].startswith(b"Received: ")


def signed(got: bytes) -> bool:
    return PROCESSED_HEADER.encode() + b": 1" in got and SIG_TOKEN.encode() in got


def test_beyond_the_budget_messages_pass_unchanged_and_within_it_they_are_signed(
    stack: Stack,
) -> None:
    big = [message(n, 300_000) for n in range(3)]  # ~410 KB: 820 KB reserved, and text
    small = message(9, 500)
    skipped_before = metric(stack, "sigfilter_messages_total", action="skipped",
                            reason="over-budget", tenant="example.com")  # fmt: skip
    with holding(stack, HELD):
        held = wait_used(stack, lambda u: u >= HELD * COPY_FACTOR, "the held body counted")
        assert BUDGET - held < 800_000  # no big message fits beside it
        before = len(stack.sink.messages)
        assert send_all(stack, big) == ["250"] * 3
        got = arrived(stack, big, before)
        assert all(unchanged(raw, got[raw]) for raw in big)
        assert signed(stack.send(small))  # a small one still fits, and is signed
        assert metric(stack, "sigfilter_memory_budget_used_bytes") == held
    # cut off mid-body: the milter gives its share back
    wait_used(stack, lambda u: u == 0, "back to zero after the cut-off conversation")
    skipped = metric(stack, "sigfilter_messages_total", action="skipped",
                     reason="over-budget", tenant="example.com")  # fmt: skip
    assert skipped - skipped_before == 3
    before = len(stack.sink.messages)
    assert send_all(stack, big) == ["250"] * 3
    got = arrived(stack, big, before)
    assert all(signed(got[raw]) for raw in big)  # 3 x ~1 MB fit into 4 MB together
    wait_used(stack, lambda u: u == 0, "back to zero after the signed messages")


def test_tempfail_defers_what_does_not_fit_and_the_retry_is_signed(deferring: Stack) -> None:
    raw = message(20, 300_000)
    with holding(deferring, HELD):
        wait_used(deferring, lambda u: u >= HELD * COPY_FACTOR, "the held body counted")
        (reply,) = send_all(deferring, [raw])
        assert reply.startswith("452 4.3.1"), reply
        assert metric(deferring, "sigfilter_messages_total", action="tempfailed",
                      reason="over-budget", tenant="example.com") == 1  # fmt: skip
    wait_used(deferring, lambda u: u == 0, "back to zero after the cut-off conversation")
    got = deferring.send(raw)  # Exchange retries a 4xx; the retry fits
    assert signed(got)
    wait_used(deferring, lambda u: u == 0, "back to zero after the retry")
