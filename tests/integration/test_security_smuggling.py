"""SMTP smuggling (issue 12, finding 5) through real Postfix in the production profile.

A client ends DATA with a bare-LF form of <CRLF>.<CRLF> and follows it with a second
SMTP transaction inside the same DATA. A server that takes the bare form as the end of
data queues a hidden second message. The shipped templates set
smtpd_forbid_bare_newline = normalize with empty exclusions: only <CR><LF>.<CR><LF> ends
DATA, so everything arrives as one message and nothing is smuggled. The control case
puts the default exclusion (the connector network) back and shows the test can fail.
"""

from __future__ import annotations

import smtplib
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from harness.securestack import AVERY, OPS, RCPT, TENANT_A_ID, TENANT_B_ID, SecureStack, message
from harness.tlsca import client_context

# The bare-LF end-of-data forms (what the probes used), each followed by a second
# transaction for the other tenant's domain.
FORMS = {"lf.lf": b"\n.\n", "crlf.lf": b"\r\n.\n", "lf.crlf": b"\n.\r\n", "cr.cr": b"\r.\r"}


@pytest.fixture(scope="module")
def stack() -> Iterator[SecureStack]:
    with SecureStack() as running:
        yield running


def smuggle(stack: SecureStack, end: bytes) -> str:
    """One session whose DATA hides a second message after ``end``; its marker."""
    marker = uuid.uuid4().hex
    hidden = f"MAIL FROM:<{OPS}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode() + message(
        f"smuggled {marker}", tenant_id=TENANT_B_ID
    ).replace(b"avery.quill@example.com", OPS.encode())
    payload = message(f"first {marker}", tenant_id=TENANT_A_ID).rstrip(b"\r\n") + end + hidden
    client = smtplib.SMTP("127.0.0.1", stack.postfix.smtpd_port, timeout=30)
    try:
        client.starttls(context=client_context(stack.connector_ca, stack.exo_cert))
        client.ehlo()
        assert client.mail(AVERY)[0] == 250
        assert client.rcpt(RCPT)[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(payload + b"\r\n.\r\n")
        code, text = client.getreply()
        assert code == 250, (code, text)
        # A server that ended DATA early answers the hidden MAIL, RCPT, DATA and its end
        # too: read those replies (bounded) so that the hidden transaction completes.
        client.sock.settimeout(3)
        for _ in range(4):
            try:
                client.getreply()
            except (smtplib.SMTPServerDisconnected, OSError):
                break
    finally:
        client.close()
    return marker


def delivered(stack: SecureStack, marker: str, settle: float = 3.0) -> list[bytes]:
    """Every message carrying ``marker``, once the queue is empty and a moment passed."""
    stack.postfix.flush()
    deadline = time.monotonic() + 30
    while stack.postfix.queue_size() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(settle)  # a smuggled message would arrive within this
    return [m.data for s in stack.sinks.values() for m in s.messages if marker.encode() in m.data]


@pytest.mark.parametrize("form", list(FORMS))
def test_bare_lf_end_of_data_smuggles_nothing(stack: SecureStack, form: str) -> None:
    marker = smuggle(stack, FORMS[form])
    got = delivered(stack, marker)
    assert len(got) == 1, got  # one message: the hidden one is only text in its body
    body = got[0].partition(b"\r\n\r\n")[2]
    assert f"first {marker}".encode() in body
    assert stack.sinks["example.org"].messages == [] or all(
        marker.encode() not in m.data for m in stack.sinks["example.org"].messages
    )
    # Postfix made one queue file for this session
    assert stack.postfix.log_text().count(f"first {marker}") == 0  # bodies never logged


def test_the_shipped_templates_set_both_settings(stack: SecureStack) -> None:
    out = subprocess.run(
        ["postconf", "-c", str(stack.postfix.conf_dir), "-n",
         "smtpd_forbid_bare_newline", "smtpd_forbid_bare_newline_exclusions"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.splitlines() == [
        "smtpd_forbid_bare_newline = normalize",
        "smtpd_forbid_bare_newline_exclusions =",
    ]


def test_control_with_the_default_exclusion_is_smuggled() -> None:
    """normalize alone is not enough: the default exclusion is the connector network."""
    with SecureStack() as stack:
        conf = str(stack.postfix.conf_dir)
        subprocess.run(
            ["postconf", "-c", conf, "-e", "smtpd_forbid_bare_newline_exclusions=127.0.0.1/32"],
            check=True,
        )
        stack.postfix._postfix("reload")
        time.sleep(1.5)  # smtpd processes pick up the change as they are replaced
        marker = smuggle(stack, FORMS["lf.lf"])
        got = delivered(stack, marker)
        assert len(got) == 2, got  # the hidden message was queued and relayed
        assert any(b"smuggled " + marker.encode() in m for m in got)
