"""DKIM/ARC through the real stack: smtplib → Postfix → milter (resign) → Postfix → sink.

What the sink receives is what Postfix sent, with Postfix's own Received field on top
(and between our inserted fields and the original header block): dkimpy must verify
it with DNS answered from the records `txt_record` publishes. The milter runs in a
subprocess with real key files; it needs no DNS here (DNS is only asked about the
original signatures when ARC is on, and the ARC message carries none).
"""

from __future__ import annotations

import shutil
import smtplib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest

from dkimtest import ARC_SELECTOR, RELAY, TENANT_SELECTOR, FakeDns, make_key, presign
from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance
from harness.sink import Sink, free_port
from sigfilter.mime.headers import parse_header_block
from support import MESSAGES, decoded_leaves, to_crlf

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"
RCPT = "jane@customer.example"


@dataclass
class Stack:
    postfix: PostfixInstance
    sink: Sink
    keys: dict[str, bytes]
    dns: FakeDns

    def send(self, raw: bytes, sender: str) -> bytes:
        before = len(self.sink.messages)
        with smtplib.SMTP("127.0.0.1", self.postfix.smtpd_port, timeout=30) as client:
            client.sendmail(sender, [RCPT], raw)
        self.sink.wait_for(before + 1, timeout=30)
        return self.sink.messages[before][2]


def _catalog(work: Path, keys: dict[str, bytes]) -> Path:
    """example.com resigns and ARC-seals; resign.example only resigns (a second tenant)."""
    root = work / "catalog"
    shutil.copytree(EXAMPLE, root)
    for name, pem in keys.items():
        (work / f"{name}.key").write_bytes(pem)
        (work / f"{name}.key").chmod(0o600)
    tenants = root / "tenants"
    shutil.copytree(tenants / "example.com", tenants / "resign.example")
    users = tenants / "resign.example" / "users.csv"
    users.write_text(users.read_text().replace("@example.com", "@resign.example"))
    for domain, extra in (
        ("example.com", f'[arc]\nenabled = true\nauthserv_id = "{RELAY}"\n'
                        f'selector = "{ARC_SELECTOR}"\ndomain = "{RELAY}"\n'
                        f'key_file = "{work / "relay.key"}"\n'),
        ("resign.example", ""),
    ):  # fmt: skip
        conf = tenants / domain / "tenant.toml"
        text = conf.read_text().replace('domains = ["example.com"]', f'domains = ["{domain}"]')
        conf.write_text(
            text + f'\n[dkim]\npolicy = "resign"\nselector = "{TENANT_SELECTOR}"\n'
            f'key_file = "{work / "tenant.key"}"\n' + extra
        )
    return root


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="sigfilter-dkim-"))
    work.chmod(0o755)
    keys = {name: make_key(work, f"gen-{name}") for name in ("tenant", "relay")}
    dns = FakeDns()
    dns.publish(TENANT_SELECTOR, "example.com", keys["tenant"])
    dns.publish(TENANT_SELECTOR, "resign.example", keys["tenant"])
    dns.publish(ARC_SELECTOR, RELAY, keys["relay"])
    sink = Sink()
    sink.start()
    milter = MilterProcess(work / "milter", _catalog(work, keys))
    postfix = PostfixInstance(
        work / "postfix",
        smtpd_port=free_port(),
        sink_port=sink.port,
        milter=milter.postfix_spec,
        tenant_domains={d: f"127.0.0.1:{sink.port}" for d in ("example.com", "resign.example")},
    )
    try:
        milter.start()
        postfix.start()
        yield Stack(postfix, sink, keys, dns)
    finally:
        postfix.stop()
        milter.stop(kill=True)
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def fields(raw: bytes, name: str) -> list[bytes]:
    return [raw[f.start : f.end] for f in parse_header_block(raw).get_all(name)]


def test_resigned_and_sealed_message_verifies_as_received(stack: Stack) -> None:
    raw = to_crlf((MESSAGES / "c01_outlook_reply-en.eml").read_bytes()).replace(
        b"Subject: RE: Q3 numbers", "Subject: RE: Grüße zu Q3".encode()
    )
    got = stack.send(raw, "avery.quill@example.com")
    assert "Avery Quill" in decoded_leaves(got)["plain"]  # the body really was rewritten
    names = [f.name for f in parse_header_block(got).fields]
    # Our fields sit on top, above the Received field Postfix added when it took the mail.
    assert names[:4] == ["arc-seal", "arc-message-signature", "arc-authentication-results",
                         "dkim-signature"]  # fmt: skip
    assert "received" in names[4:]
    assert names[-1] == "x-sigfilter-processed"
    assert "Grüße".encode() in got
    assert dkim.verify(got, dnsfunc=stack.dns)
    cv, results, reason = dkim.arc_verify(got, dnsfunc=stack.dns)
    assert cv == dkim.CV_Pass, reason
    assert b"dkim=none" in results[0]["aar-value"]
    tampered = got.replace("Grüße".encode(), "Grüsse".encode(), 1)
    assert not dkim.verify(tampered, dnsfunc=stack.dns)


def test_broken_signature_is_replaced_through_postfix(stack: Stack) -> None:
    raw = to_crlf((MESSAGES / "c11_iphone_reply-footer.eml").read_bytes())
    raw = raw.replace(b"@example.com", b"@resign.example")
    signed = presign(raw, stack.keys["tenant"], domain="resign.example")
    assert dkim.verify(signed, dnsfunc=stack.dns)
    got = stack.send(signed, "avery.quill@resign.example")
    sigs = fields(got, "dkim-signature")
    assert len(sigs) == 1 and sigs[0] not in signed  # the old one deleted, ours in its stead
    assert not fields(got, "arc-seal")  # this tenant does not seal
    assert dkim.verify(got, dnsfunc=stack.dns)
