"""Hostile MIME against the pure engine: every case is signed or passes unchanged, in
bounded time and memory.

Time is measured without tracemalloc (it slows allocation-heavy code several times),
memory in a second run with it. Bounds are generous for a loaded 2-core machine and,
where a case must stop early, relative to a small message of the same shape measured
in the same run: 100,000 parts must cost about what 2,001 parts cost.
"""

from __future__ import annotations

import base64
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hostile_mail import HEAD, many_parts, nested
from sigfilter.defaults import (
    DEFAULT_MAX_SIZE,
    MAX_TEXT_LEAF,
    MIME_MAX_DEPTH,
    MIME_MAX_HEADER_LINES,
    MIME_MAX_PARTS,
)
from sigfilter.engine import Result, rewrite, rewritten_message
from sigfilter.mime.codec import transfer_decode
from sigfilter.mime.headers import parse_header_block
from sigfilter.mime.scan import scan
from support import SIG_TOKEN, SIGNATURE, SKIP_REASONS, decoded_leaves

MB = 1024 * 1024
# CPU seconds (this thread's: a busy machine does not add to it) that only a hang or a
# runaway loop reaches; each case below measures far under it. Growth is checked as a
# ratio within one run; the absolute times are in tests/bench/bench_hostile.py.
GIVE_UP = 3.0


@dataclass(frozen=True)
class Run:
    result: Result
    seconds: float  # CPU time of this thread
    peak: int  # bytes allocated at the peak of a second, traced run


def run(raw: bytes) -> Run:
    start = time.thread_time()
    result = rewrite(raw, SIGNATURE)
    seconds = time.thread_time() - start
    tracemalloc.start()
    try:
        traced = rewrite(raw, SIGNATURE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert traced == result  # pure: the same input gives the same answer
    return Run(result, seconds, peak)


def assert_unchanged(r: Run, raw: bytes, reason: str) -> None:
    assert r.result.action == "skipped", r.result
    assert r.result.reason == reason, r.result
    assert rewritten_message(raw, r.result) == raw


def assert_signed(r: Run, raw: bytes) -> bytes:
    assert r.result.action == "signed", r.result
    out = rewritten_message(raw, r.result)
    texts = decoded_leaves(out)  # our own scanner reads the output back
    assert all(SIG_TOKEN in t for t in texts.values()), texts.keys()
    return out


# -- builders ---------------------------------------------------------------------------


def mixed(text_part: bytes, attachment: bytes = b"", boundary: bytes = b"B") -> bytes:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
    raw += b"--" + boundary + b"\r\n" + text_part + b"\r\n"
    if attachment:
        raw += b"--" + boundary + b"\r\n" + attachment + b"\r\n"
    return raw + b"--" + boundary + b"--\r\n"


def b64_attachment(size: int) -> bytes:
    data = base64.encodebytes(bytes(range(256)) * (size // 256)).replace(b"\n", b"\r\n")
    return (
        b"Content-Type: application/octet-stream; name=blob.bin\r\n"
        b"Content-Disposition: attachment; filename=blob.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data.rstrip(b"\r\n")
    )


def plain(body: bytes, headers: bytes = b"Content-Type: text/plain\r\n") -> bytes:
    return HEAD + headers + b"\r\n" + body


# -- nesting and part count -----------------------------------------------------------


def test_nesting_10000_levels_stops_at_the_depth_limit() -> None:
    raw = nested(10_000)
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert "deeper than" in r.result.detail
    small = run(nested(MIME_MAX_DEPTH + 1))
    assert_unchanged(small, nested(MIME_MAX_DEPTH + 1), "malformed")
    # Stops at level 41: the rest of the 0.7 MB is never split.
    assert r.seconds < 0.5 + 5 * small.seconds
    assert r.peak < 2 * MB


def test_nesting_within_the_limit_is_signed() -> None:
    raw = nested(MIME_MAX_DEPTH - 1)
    assert_signed(run(raw), raw)


def test_100000_parts_stop_at_the_part_limit() -> None:
    raw = many_parts(100_000)
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert f"more than {MIME_MAX_PARTS} parts" in r.result.detail
    limit = many_parts(MIME_MAX_PARTS + 1)
    at_limit = run(limit)
    assert_unchanged(at_limit, limit, "malformed")
    # The scanner stops at part 2,001 instead of splitting 100,000 parts first.
    assert r.seconds < 0.5 + 3 * at_limit.seconds
    assert r.peak < 0.5 * len(raw)


# -- size -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_attachment_message() -> bytes:
    raw = mixed(b"Content-Type: text/plain\r\n\r\nhello", b64_attachment(36 * MB))
    assert 45 * MB < len(raw) < DEFAULT_MAX_SIZE
    return raw


def test_50mb_message_with_attachment_is_signed_and_attachment_kept(
    big_attachment_message: bytes,
) -> None:
    raw = big_attachment_message
    r = run(raw)
    out = assert_signed(r, raw)
    tail = raw[raw.index(b"--B\r\nContent-Type: application/octet-stream") :]
    assert out.endswith(tail)
    assert r.seconds < GIVE_UP
    assert r.peak < 1.5 * len(raw)  # the new body, plus little


def test_message_over_the_size_limit_passes_without_being_read() -> None:
    raw = plain(b"x" * (DEFAULT_MAX_SIZE + 1))
    r = run(raw)
    assert_unchanged(r, raw, "too-large")
    assert r.seconds < 0.1 and r.peak < 64 * 1024


def test_text_part_over_the_text_limit_passes_unchanged() -> None:
    raw = plain((b"x" * 76 + b"\r\n") * (MAX_TEXT_LEAF // 78 + 1000))
    r = run(raw)
    assert_unchanged(r, raw, "too-large")
    assert "text/plain part" in r.result.detail
    assert r.seconds < 0.1 and r.peak < 64 * 1024


def test_text_part_just_under_the_text_limit_is_signed_in_linear_time() -> None:
    line = b"Hello, this is an ordinary line of a long message.\r\n"
    small_raw = plain(line * (MAX_TEXT_LEAF // len(line) // 16))
    big_raw = plain(line * (MAX_TEXT_LEAF // len(line) - 100))
    small, big = run(small_raw), run(big_raw)
    assert_signed(big, big_raw)
    assert big.seconds < 0.2 + 40 * small.seconds  # 16x the text: linear, with slack
    assert big.peak < 20 * len(big_raw)  # ~14x measured: the placement's line lists


# -- headers and lines ------------------------------------------------------------------


def test_one_header_field_of_1mb_is_linear() -> None:
    def message(size: int) -> bytes:
        return HEAD + b"X-Long: " + b"a" * size + b"\r\nContent-Type: text/plain\r\n\r\nhi\r\n"

    small, big = run(message(MB // 16)), run(message(MB))
    assert_signed(big, message(MB))
    assert big.seconds < 0.2 + 40 * small.seconds
    assert big.peak < 8 * MB


def test_header_block_of_260000_folded_lines_stops_at_the_line_limit() -> None:
    raw = (
        HEAD + b"X-Long: a\r\n" + b" a\r\n" * (MB // 4) + b"Content-Type: text/plain\r\n\r\nhi\r\n"
    )
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert "too-many-lines" in r.result.detail
    assert r.seconds < 1.0 and r.peak < 4 * MB
    block = parse_header_block(raw)
    assert not block.closed and block.end < 20 * MIME_MAX_HEADER_LINES


def test_part_header_over_the_line_limit_is_refused() -> None:
    part = b"Content-Type: text/plain\r\n" + b"X-A: a\r\n" * (MIME_MAX_HEADER_LINES + 1)
    raw = mixed(part + b"\r\nhello")
    assert_unchanged(run(raw), raw, "malformed")


@pytest.mark.parametrize("kind", ["plain", "html"])
def test_1mb_line_without_newline_is_signed(kind: str) -> None:
    opening = b"<p>" if kind == "html" else b""
    raw = plain(opening + b"y" * MB, b"Content-Type: text/" + kind.encode() + b"\r\n")
    r = run(raw)
    out = assert_signed(r, raw)
    assert r.seconds < GIVE_UP and r.peak < 16 * MB
    # A line over 998 octets cannot go out as 7bit: the part becomes quoted-printable.
    assert b"quoted-printable" in out[: parse_header_block(out).end].lower()


def test_header_line_of_1mb_without_any_newline_at_all() -> None:
    raw = HEAD + b"X-Long: " + b"z" * MB
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert "no empty line" in r.result.detail


# -- bytes and charsets ------------------------------------------------------------------


def test_nul_bytes_survive_in_the_signed_text() -> None:
    raw = plain(b"he\0llo\0\r\nbye\r\n", b"Content-Type: text/plain; charset=utf-8\r\n")
    out = assert_signed(run(raw), raw)
    assert "he\0llo\0" in decoded_leaves(out)["plain"]


def test_nul_bytes_in_a_header_do_not_stop_the_engine() -> None:
    raw = HEAD + b"X-Nul: a\0b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    out = assert_signed(run(raw), raw)
    assert b"X-Nul: a\0b\r\n" in out


def test_unknown_charset_passes_unchanged_when_the_signature_does_not_fit() -> None:
    raw = plain(b"h\xe9llo\r\n", b"Content-Type: text/plain; charset=x-nonsense\r\n")
    assert_unchanged(run(raw), raw, "charset")


def test_lying_utf8_charset_keeps_the_original_bytes() -> None:
    raw = plain(b"h\xe9llo \xff\xfe\r\n", b"Content-Type: text/plain; charset=utf-8\r\n")
    out = assert_signed(run(raw), raw)
    root = scan(out)
    data = transfer_decode(out[root.body_start : root.body_end], root.cte)
    assert data.startswith(b"h\xe9llo \xff\xfe\r\n")  # undecodable bytes kept as they were


def test_charset_that_does_not_round_trip_passes_unchanged() -> None:
    # ISO-2022-JP escape sequences that no encoder would write: decoding loses them.
    raw = plain(
        b"\x1b$B\x1b(B\x1b$B\x1b(Bhi\r\n", b"Content-Type: text/plain; charset=iso-2022-jp\r\n"
    )
    assert_unchanged(run(raw), raw, "charset")


def test_base64_with_garbage_between_the_characters_is_read_as_decoders_do() -> None:
    body = b"aGVs*&^%bG8g$$d29y\r\nbGQ=\r\n"
    raw = plain(body, b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n")
    out = assert_signed(run(raw), raw)
    assert decoded_leaves(out)["plain"].startswith("hello world")


def test_base64_with_bad_padding_passes_unchanged() -> None:
    raw = plain(
        b"aGVsbG8\r\n", b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
    )
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert "base64" in r.result.detail


# -- boundaries -----------------------------------------------------------------------------


def test_unterminated_boundary_passes_unchanged() -> None:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
    raw += b"Content-Type: text/plain\r\n\r\nhello\r\n" + b64_attachment(MB)
    r = run(raw)
    assert_unchanged(r, raw, "malformed")
    assert "no closing delimiter" in r.result.detail


def test_boundary_string_inside_base64_lines_is_not_a_delimiter() -> None:
    # The boundary is a prefix of the attachment's base64 lines; only "--B" at a line
    # start delimits, which base64 cannot produce.
    attachment = b64_attachment(64 * 1024)
    boundary = attachment.split(b"\r\n\r\n", 1)[1][:12]
    raw = mixed(b"Content-Type: text/plain\r\n\r\nhello", attachment, boundary)
    assert raw.count(boundary) > 10
    out = assert_signed(run(raw), raw)
    root = scan(out)
    assert len(root.children) == 2
    assert out[root.children[1].start : root.children[1].body_end] == attachment


def test_delimiter_line_injected_into_base64_splits_there_and_keeps_the_bytes() -> None:
    attachment = b64_attachment(4096)
    head, data = attachment.split(b"\r\n\r\n", 1)
    lines = data.split(b"\r\n")
    hostile = head + b"\r\n\r\n" + b"\r\n".join([*lines[:5], b"--B", *lines[5:]])
    raw = mixed(b"Content-Type: text/plain\r\n\r\nhello", hostile)
    out = assert_signed(run(raw), raw)
    assert out.endswith(raw[raw.index(b"--B\r\nContent-Type: application") :])


def test_duplicate_content_type_in_a_part_passes_unchanged() -> None:
    part = b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nhello"
    raw = mixed(part)
    assert_unchanged(run(raw), raw, "malformed")


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"",
        lambda: b"\r\n",
        lambda: HEAD,
        lambda: HEAD + b"\r\n",
        lambda: b"\0" * 4096,
        lambda: b"\r" * 4096,
        lambda: HEAD.replace(b"\r\n", b"\r") + b"\rhello\r",
        lambda: HEAD + b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n',
        lambda: mixed(b"\r\n" * 10, boundary=b"B" * 200),
        lambda: HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + b"--B\r\n" * 50_000,
    ],
    ids=["empty", "crlf", "no-body", "empty-body", "nuls", "cr-only", "cr-lines",
         "empty-boundary", "long-boundary", "50000-delimiters"],
)  # fmt: skip
def test_degenerate_messages_never_raise(make: Callable[[], bytes]) -> None:
    raw = make()
    r = run(raw)
    assert r.result.action in ("signed", "skipped")
    assert r.result.signed or r.result.reason in SKIP_REASONS, r.result.detail  # a bug raises
    if r.result.action == "skipped":
        assert rewritten_message(raw, r.result) == raw
    assert r.seconds < GIVE_UP
