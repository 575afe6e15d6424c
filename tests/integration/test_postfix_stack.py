"""The test harness itself: a private Postfix relay (no milter) returning mail to a sink.

Proves that postfix/*.tmpl render into a working relay, that mail passes byte-for-byte
(apart from the Received header Postfix prepends), that only tenant sender domains and
connector sources are accepted, and that stop() leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import postfixctl
from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import Sink, free_port

SENDER = "avery.quill@example.com"
RCPT = "jane@customer.example"
MASTER = "/usr/lib/postfix/sbin/master"

pytestmark = pytest.mark.skipif(
    not postfixctl.available(), reason="needs root and Debian's postfix package"
)


@pytest.fixture
def relay() -> Iterator[tuple[PostfixInstance, Sink]]:
    """Sink + bare Postfix relay (milter=None); both stopped even when the test fails."""
    workdir = new_workdir("sigfilter-stack-")
    sink = Sink()
    postfix: PostfixInstance | None = None
    try:
        sink.start()
        postfix = PostfixInstance(workdir, free_port(), sink.port, milter=None)
        postfix.start()
        yield postfix, sink
    finally:
        try:
            if postfix is not None:
                postfix.stop()
                print(postfix.log_text())  # shown by pytest only when the test failed
        finally:
            sink.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def message(n: int) -> bytes:
    # Date and Message-ID present, so Postfix has no reason to add any header but
    # Received. A dot-leading line (dot-stuffing), 8-bit UTF-8, a long line and trailing
    # white space check that the body travels untouched.
    return (
        f"From: Avery Quill <{SENDER}>\r\n"
        f"To: Jane <{RCPT}>\r\n"
        f"Subject: harness message {n}\r\n"
        "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <harness-{n}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"Hello Jane, message {n}.\r\n"
        ".a line that starts with a dot\r\n"
        "..and one with two\r\n"
        "Grüße, naïve café — ✓\r\n"
        f"{'x' * 900}\r\n"
        "trailing space   \r\n"
        "\r\n"
        "-- \r\n"
        "Avery\r\n"
    ).encode()


def send(postfix: PostfixInstance, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as client:
        client.sendmail(sender, [RCPT], raw)


def split(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:500]
    return head + b"\r\n", body


def master_processes(queue_dir: Path) -> list[int]:
    """Postfix master processes working in queue_dir (master chdirs to its queue)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if exe == MASTER and Path(cwd) == queue_dir:
            found.append(int(entry.name))
    return found


def test_relay_passes_mail_unchanged_and_refuses_strangers(
    relay: tuple[PostfixInstance, Sink],
) -> None:
    postfix, sink = relay
    sent = [message(n) for n in range(3)]
    with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as client:
        for raw in sent:
            assert client.sendmail(SENDER, [RCPT], raw) == {}

    got = sink.wait_for(3, timeout=30)
    assert len(got) == 3
    by_subject = {m.data.split(b"Subject: ")[1].split(b"\r\n")[0]: m for m in got}
    for n, raw in enumerate(sent):
        received = by_subject[f"harness message {n}".encode()]
        assert received.mail_from == SENDER
        assert received.rcpt_tos == [RCPT]
        head, body = split(received.data)
        sent_head, sent_body = split(raw)
        assert body == sent_body
        # Postfix prepends its Received header and changes nothing else.
        assert head.startswith(b"Received: from ")
        assert head.endswith(sent_head)
        added = head[: -len(sent_head)]
        assert added.count(b"\r\n") == 3, added  # one folded Received header
        assert received.data == added + raw

    # Unknown sender domains are refused (reported at RCPT: smtpd_delay_reject), and so
    # are subdomains of a tenant domain, which have no return host.
    for stranger in ("mallory@evil.example", "avery.quill@sub.example.com", ""):
        with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)) as err:
            send(postfix, stranger, message(99))
        if isinstance(err.value, smtplib.SMTPRecipientsRefused):
            code, text = err.value.recipients[RCPT]
        else:
            code, text = err.value.smtp_code, err.value.smtp_error
        assert code == 554 and b"Sender address rejected" in text, (stranger, code, text)

    assert postfix.queue_size() == 0
    assert len(sink.messages) == 3

    queue_dir = postfix.queue_dir
    assert master_processes(queue_dir) == [postfix.master_pid()]
    postfix.stop()
    assert master_processes(queue_dir) == []
    assert postfix.instance_pids() == []


def test_only_connector_networks_may_relay(relay: tuple[PostfixInstance, Sink]) -> None:
    postfix, sink = relay
    postfix.overrides["CONNECTOR_NETWORKS"] = "192.0.2.0/24"  # not us (127.0.0.1)
    postfix.reload()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        send(postfix, SENDER, message(1))
    code, text = err.value.recipients[RCPT]
    assert code == 554 and b"Recipient address rejected: Access denied" in text, (code, text)

    postfix.overrides.pop("CONNECTOR_NETWORKS")
    postfix.reload()
    send(postfix, SENDER, message(2))
    assert len(sink.wait_for(1, timeout=30)) == 1
