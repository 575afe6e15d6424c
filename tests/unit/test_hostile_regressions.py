"""Reproducers of crashes and misplacements the fuzzers found (tests/fuzz/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sigfilter.engine import rewrite, rewritten_message
from sigfilter.placement.html import HtmlSource, html_spots
from sigfilter.placement.spot import Kind
from support import SIGNATURE, decoded_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from checks import check_engine, check_html, check_html_index, check_scan

REPLY = (
    '<html><body><p>Hi<br>{c}there</p><div class="gmail_quote">On Mon, Bob wrote:'
    "<blockquote>old</blockquote></div></body></html>"
)


# atheris, crash-244e5abe…: a control character after a <br> made lxml refuse the
# private tree's tail text (ValueError); html_spots fell back to no tree, lost the
# quote and put the signature below the quoted thread.
@pytest.mark.parametrize("char", ["\x01", "\x0b", "\x0c", "\x1b", "\ufffe"])
def test_control_character_in_text_keeps_the_quote(char: str) -> None:
    source = REPLY.format(c=char)
    HtmlSource(source)  # raised ValueError before the fix
    spots = html_spots(source, "{EMAILSIGNATURE}")
    quote = spots.get(Kind.QUOTE)
    assert quote is not None and quote.detail == "gmail_quote"
    assert quote.start == source.index('<div class="gmail_quote">')


def test_form_feed_reply_is_signed_above_the_quote() -> None:
    raw = (
        "From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + REPLY.format(c="\x0c")
    ).encode()
    result = rewrite(raw, SIGNATURE)
    assert result.signed and result.placement == "quote"
    html = decoded_leaves(rewritten_message(raw, result))["html"]
    assert html.index("sigfilter-signature") < html.index("gmail_quote")


# hypothesis (tests/fuzz, long profile): the line break before a closing delimiter
# belongs to the delimiter, so these text parts have no empty line after their
# header block. The engine wrote the signed body straight after the header lines,
# where it read as header continuation lines: the signature landed in the header.
@pytest.mark.parametrize(
    "part",
    [b"Content-Type: text/plain; charset=utf-8\r\n", b"", b"Content-Type: text/html\r\n"],
    ids=["headers-only", "empty", "html-headers-only"],
)
def test_text_part_without_end_of_headers_passes_unchanged(part: bytes) -> None:
    raw = (
        b"From: a@example.com\r\nSubject: fuzz\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B0"\r\n\r\n--B0\r\n' + part + b"\r\n--B0--\r\n"
    )
    result = rewrite(raw, SIGNATURE)
    assert (result.action, result.reason) == ("skipped", "malformed")
    assert "header block has no end" in result.detail
    assert rewritten_message(raw, result) == raw


CRASHES = sorted((Path(__file__).resolve().parents[1] / "fuzz" / "crashes").glob("crash-*"))


@pytest.mark.parametrize("path", CRASHES, ids=lambda p: p.name[:14])
def test_atheris_crash_files_pass_their_checks(path: Path) -> None:
    """Replays every saved atheris crash through the harness's own dispatch."""
    data = path.read_bytes()
    targets = (check_scan, check_engine, check_html, check_html_index)
    target = targets[data[0] % len(targets)]
    payload = data[1:]
    if target in (check_html, check_html_index):
        target(payload.decode("utf-8", "replace"))  # type: ignore[operator]
    else:
        target(payload)  # type: ignore[operator]


# hypothesis (long profile): a stray line in a text part's header block ("C" before the
# blank line). The engine added Content-Transfer-Encoding in front of it, the stray
# line became that field's continuation ("quoted-printable c") and the part no longer
# decoded. Such parts now pass unchanged, like a top-level block with defects.
def test_text_part_with_a_stray_header_line_passes_unchanged() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: fuzz\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B0"\r\n\r\n'
        b"--B0\r\nC\n\nontent-Type: text/plain; charset=utf-8\r\n\r\n--B0--\r\n"
    )
    result = rewrite(raw, SIGNATURE)
    assert (result.action, result.reason) == ("skipped", "malformed")
    assert "line-is-not-a-field" in result.detail
    assert rewritten_message(raw, result) == raw


# atheris, crash-426849cc…: an encoded word whose charset name holds an 8-bit byte
# ("=?ISO-2\xd622-JP?B?…?=" in the Subject) made the stdlib's make_header raise
# CharsetError, which the Subject reader did not expect: the engine raised.
def test_subject_with_a_charset_name_the_stdlib_refuses() -> None:
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\n"
        b"Subject: Re: TEST\r\n \r\n\t=?ISO-2\xd622-JP?B?GyRCJUYlOSVIGyhC?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    )
    result = rewrite(raw, SIGNATURE)
    assert result.signed, (result.reason, result.detail)
