"""Hostile MIME through the real stack: smtplib → Postfix → the real milter → sink.

Each message arrives (signed, or with its body byte-identical), and afterwards the
same milter process is still running and signs an ordinary message. The reference for
"signed" is the pure engine with the same catalog signature (as in test_e2e.py).
Postfix's own limits shape two cases: a 1 MB header is cut at header_size_limit
(102400 bytes) and a line over 998 octets is folded by Postfix's smtp client.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postfixctl import available
from harness.stack import Stack, running_stack
from hostile_mail import HEAD, many_parts, nested
from sigfilter.engine import rewrite, tenant_options
from sigfilter.mime.headers import parse_header_block
from sigfilter.service import SignatureService, embedded_store
from support import MESSAGES, decoded_leaves, to_crlf

pytestmark = pytest.mark.skipif(not available(), reason="needs root and Postfix")

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
AVERY = "avery.quill@example.com"
RCPT = "jane@customer.example"
MB = 1024 * 1024
SIZE_LIMIT = 60 * MB  # room for the 48 MB message; the engine's own limit is 50 MiB


def assert_still_serving(stack: Stack) -> None:
    """Same process alive, and it signs the next ordinary message."""
    assert stack.milter.proc is not None and stack.milter.proc.poll() is None
    got = stack.send(to_crlf((MESSAGES / "c12_iphone_new-plain-footer.eml").read_bytes()))
    assert "Avery Quill" in decoded_leaves(got)["plain"]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack("sigfilter-hostile-", size_limit=SIZE_LIMIT) as running:
        yield running


def body_of(raw: bytes) -> bytes:
    return raw[parse_header_block(raw).end :]


def expected(raw: bytes) -> bytes | None:
    """The body the engine makes of ``raw`` (None: it passes unchanged)."""
    found = SignatureService(embedded_store(CATALOG)).lookup(AVERY, [RCPT])
    assert found.signature is not None and found.tenant is not None
    result = rewrite(raw, found.signature, tenant_options(found.tenant))
    return result.body if result.signed else None


def assert_as_engine(got: bytes, raw: bytes) -> None:
    want = expected(raw)
    if want is None:
        assert body_of(got) == body_of(raw)
        assert b"X-Sigfilter-Processed" not in got[: parse_header_block(got).end]
    else:
        assert body_of(got) == want
        assert b"X-Sigfilter-Processed" in got[: parse_header_block(got).end]


# -- messages -----------------------------------------------------------------------------


def with_attachment(size: int) -> bytes:
    data = base64.encodebytes(bytes(range(256)) * (size // 256)).replace(b"\n", b"\r\n")
    return (
        HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nPlease see the attached file.\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=blob.bin\r\n"
        b"Content-Disposition: attachment; filename=blob.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"--B--\r\n"
    )


SMALL_CASES = {
    "nested-10000": lambda: nested(10_000),
    "parts-100000": lambda: many_parts(100_000),
    "nul-bytes": lambda: HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\nhe\0llo\r\n",
    "lying-charset": lambda: (
        HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\nh\xe9llo \xff\xfe\r\n"
    ),
    "unknown-charset": lambda: (
        HEAD + b"Content-Type: text/plain; charset=x-nonsense\r\n\r\nh\xe9llo\r\n"
    ),
    "base64-garbage": lambda: (
        HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVs*&^%bG8g$$d29y\r\nbGQ=\r\n"
    ),
    "base64-bad-padding": lambda: (
        HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8\r\n"
    ),
    "unterminated-boundary": lambda: (
        HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n"
    ),
    "boundary-inside-base64": lambda: (
        with_attachment(64 * 1024).replace(b'"B"', b'"AAECAwQF"').replace(b"--B", b"--AAECAwQF")
    ),
}


@pytest.mark.parametrize("name", list(SMALL_CASES))
def test_hostile_message_arrives_as_the_engine_decides(stack: Stack, name: str) -> None:
    raw = SMALL_CASES[name]()
    got = stack.send(raw, timeout=60)
    assert_as_engine(got, raw)
    assert stack.milter.proc is not None and stack.milter.proc.poll() is None


def test_milter_signs_after_the_hostile_messages(stack: Stack) -> None:
    for name in ("nested-10000", "parts-100000"):
        stack.send(SMALL_CASES[name](), timeout=60)
    assert_still_serving(stack)
    log = stack.milter.wait_log("action=skipped reason=malformed")
    assert "action=skipped reason=malformed" in log  # the refusals were logged


@pytest.mark.slow
def test_48mb_message_is_signed_and_its_attachment_kept(stack: Stack) -> None:
    raw = with_attachment(35 * MB)
    assert 45 * MB < len(raw) < 50 * MB
    started = time.monotonic()
    got = stack.send(raw, timeout=120)
    elapsed = time.monotonic() - started
    assert_as_engine(got, raw)
    attachment = raw[raw.index(b"--B\r\nContent-Type: application/octet-stream") :]
    assert got.endswith(attachment)
    assert elapsed < 90, elapsed
    assert_still_serving(stack)


def test_1mb_header_field_is_cut_by_postfix_and_the_message_still_flows(stack: Stack) -> None:
    raw = HEAD + b"X-Long: " + b"a" * MB + b"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    got = stack.send(raw, timeout=60)
    head = got[: parse_header_block(got).end]
    assert len(head) < 200 * 1024  # header_size_limit: Postfix kept ~100 KB of it
    assert "Avery Quill" in decoded_leaves(got)["plain"]
    assert_still_serving(stack)


def test_1mb_line_without_newline_is_signed(stack: Stack) -> None:
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + b"y" * MB
    got = stack.send(raw, timeout=60)
    text = decoded_leaves(got)["plain"]
    assert "Avery Quill" in text
    # Postfix's smtp client folds lines over 998 octets on the way out (CRLF + space;
    # smtp_line_length_limit): unfolded, every byte of the long line is there.
    assert max(len(line) for line in body_of(got).split(b"\r\n")) <= 998
    unfolded = text.replace("\r\n ", "")
    assert unfolded.startswith("y" * MB) and unfolded[MB] != "y"
    assert_still_serving(stack)
