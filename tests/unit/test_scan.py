"""The scanner: offsets that agree with the stdlib parser, and refusals where unsure."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from pathlib import Path

import pytest

from sigfilter.mime.codec import transfer_decode
from sigfilter.mime.scan import MAX_DEPTH, MimeStructureError, Part, scan
from support import CORPUS, line_forms

CORPUS_FILES = sorted(CORPUS.glob("*.eml"))

REFUSED = {
    "d011_mikel_outlook2002-related-bad-structure.eml": "closing delimiter",
    "d015_enmime_bad-final-boundary.eml": "closing delimiter",
    "d016_enmime_dsn-multipart-no-boundary.eml": "without a boundary",
    "d022_cpython_oe-mac-html.eml": "",  # the nested part reuses the outer boundary
    "d029_spamscope_zimbra-iphone-duplicate-boundary.eml": "",
}


def _std_leaves(msg: Message) -> list[Message]:
    """Leaves in document order, not descending into message/* parts."""
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        assert isinstance(payload, list)
        return [leaf for sub in payload for leaf in _std_leaves(sub)]
    return [msg]


def _our_leaves(part: Part) -> list[Part]:
    return [p for p in part.walk() if not p.is_multipart]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name[:24])
@pytest.mark.parametrize("form", ["crlf", "lf"])
def test_leaves_agree_with_stdlib(path: Path, form: str) -> None:
    raw = line_forms(path.read_bytes())[form]
    if path.name in REFUSED:
        with pytest.raises(MimeStructureError):
            scan(raw)
        return
    root = scan(raw)
    ours = _our_leaves(root)
    theirs = _std_leaves(email.message_from_bytes(raw, policy=email.policy.compat32))
    assert [p.ctype.type for p in ours] == [m.get_content_type() for m in theirs]
    for part, std in zip(ours, theirs, strict=True):
        if part.ctype.maintype == "message" or part.cte not in ("base64", "quoted-printable"):
            continue
        mine = transfer_decode(raw[part.body_start : part.body_end], part.cte)
        expected = std.get_payload(decode=True)
        assert isinstance(expected, bytes)
        assert mine.rstrip(b"\r\n") == expected.rstrip(b"\r\n")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals(name: str) -> None:
    with pytest.raises(MimeStructureError, match=REFUSED[name] or None):
        scan((CORPUS / name).read_bytes())


def _multipart(boundary: bytes, parts: list[bytes], eol: bytes = b"\r\n") -> bytes:
    body = b"".join(b"--" + boundary + eol + p + eol for p in parts)
    return body + b"--" + boundary + b"--" + eol


def test_offsets_exclude_the_delimiter_line_break() -> None:
    leaf = b"Content-Type: text/plain\r\n\r\nhello\r\nworld"
    raw = (
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n'
        + _multipart(b"b1", [leaf, leaf])
        + b"epilogue\r\n"
    )
    root = scan(raw)
    assert len(root.children) == 2
    for child in root.children:
        assert raw[child.body_start : child.body_end] == b"hello\r\nworld"


def test_transport_padding_and_lookalike_lines() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=xyz\n\n"
        b"--xyz  \n\nfirst\n--xyzNOT a delimiter? no: text after it\n"
    )
    with pytest.raises(MimeStructureError, match="text after"):
        scan(raw + b"--xyz--\n")
    ok = b"Content-Type: multipart/mixed; boundary=xyz\n\n--xyz \t\n\nfirst\n -- xyz\n--xyz--\n"
    root = scan(ok)
    assert ok[root.children[0].body_start : root.children[0].body_end] == b"first\n -- xyz"


def test_nested_reused_boundary_is_refused() -> None:
    inner = b'Content-Type: multipart/alternative; boundary="same"\r\n\r\n' + _multipart(
        b"same", [b"\r\nx"]
    )
    raw = b'Content-Type: multipart/mixed; boundary="same"\r\n\r\n' + _multipart(b"same", [inner])
    with pytest.raises(MimeStructureError):
        scan(raw)


def test_depth_limit_is_bounded() -> None:
    depth = MAX_DEPTH + 5
    body = b"\r\nleaf"
    for n in range(depth):
        b = b"b%d" % n
        body = (
            b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n' + _multipart(b, [body])
        )
    with pytest.raises(MimeStructureError, match="deeper"):
        scan(body)


def test_too_many_parts_is_bounded() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + _multipart(
        b"b", [b"\r\nx"] * 2500
    )
    with pytest.raises(MimeStructureError, match="parts"):
        scan(raw)


def test_two_content_types_refused() -> None:
    raw = b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx"
    with pytest.raises(MimeStructureError, match="two Content-Type"):
        scan(raw)


def test_message_rfc822_is_not_descended() -> None:
    inner = b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + _multipart(b"b", [inner])
    root = scan(raw)  # the broken inner message is opaque, not our business
    assert [p.ctype.type for p in root.walk()] == ["multipart/mixed", "message/rfc822"]


def test_mbox_from_line_is_tolerated() -> None:
    raw = b"From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n"
    root = scan(raw)
    assert root.headers.get("subject") is not None
    assert root.headers.defects == ()
