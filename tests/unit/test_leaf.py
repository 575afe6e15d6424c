"""Editing one text leaf: charset and transfer-encoding rules, minimal re-encoding."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigfilter.engine import rewrite, rewritten_message
from sigfilter.mime.codec import b64_line_length, qp_encode, transfer_decode
from sigfilter.mime.leaf import (
    PIECEWISE,
    LeafError,
    _changed_range,
    _edited_data,
    edit_leaf,
    open_leaf,
)
from sigfilter.mime.scan import scan
from support import SIGNATURE


def _leaf(headers: str, body: bytes, eol: bytes = b"\r\n"):  # type: ignore[no-untyped-def]
    raw = headers.replace("\n", eol.decode()).encode() + eol + body
    root = scan(raw)
    return raw, open_leaf(raw, root)


def test_qp_only_touched_lines_are_reencoded() -> None:
    lines = [f"line {n} " + "x" * 90 for n in range(10)]
    text = "\r\n".join(lines) + "\r\n"
    body = qp_encode(text.encode(), b"\r\n")
    raw, leaf = _leaf(
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n",
        body,
    )
    pos = leaf.text.index("line 5")
    edit = edit_leaf(leaf, pos, pos, "SIGNATURE\n")
    assert edit.cte is None and edit.charset is None
    # decoded result is exactly the intended text
    assert (
        transfer_decode(edit.body, "quoted-printable").decode()
        == text[:pos] + "SIGNATURE\r\n" + text[pos:]
    )
    # every raw byte before line 5 and from line 5 on is the original
    start = body.index(b"line 5")
    assert edit.body.startswith(body[:start])
    assert edit.body.endswith(body[start:])
    assert edit.body[start : len(edit.body) - len(body) + start] == b"SIGNATURE\r\n"


def test_qp_mid_line_edit_stays_local() -> None:
    html = (
        "<div>"
        + "a" * 200
        + '</div><div class="gmail_quote">'
        + "b" * 200
        + "</div>\r\n<p>tail</p>\r\n"
    )
    body = qp_encode(html.encode(), b"\r\n")
    raw, leaf = _leaf(
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n",
        body,
    )
    pos = leaf.text.index('<div class="gmail_quote">')
    edit = edit_leaf(leaf, pos, pos, "<p>SIG</p>")
    assert (
        transfer_decode(edit.body, "quoted-printable").decode()
        == html[:pos] + "<p>SIG</p>" + html[pos:]
    )
    assert edit.body.endswith(b"<p>tail</p>\r\n")  # the untouched last line keeps its bytes
    assert max(len(x) for x in edit.body.split(b"\r\n")) <= 76


def test_text_charset_fits_keeps_charset() -> None:
    raw, leaf = _leaf(
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
        "Caf\u00e9\r\n".encode("latin-1"),
    )
    edit = edit_leaf(leaf, len(leaf.text), len(leaf.text), "-- \nRen\u00e9\n")
    assert edit.charset is None and edit.cte is None
    assert edit.body == "Caf\u00e9\r\n-- \r\nRen\u00e9\r\n".encode("latin-1")


def test_text_charset_switch_to_utf8_and_7bit_to_qp() -> None:
    raw, leaf = _leaf(
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n",
        b"Hello\r\n",
    )
    edit = edit_leaf(leaf, 7, 7, "Ana \u00b7 \u5c71\u7530\n")
    assert edit.charset == "utf-8"
    assert edit.cte == "quoted-printable"
    assert (
        transfer_decode(edit.body, "quoted-printable").decode("utf-8")
        == "Hello\r\nAna \u00b7 \u5c71\u7530\r\n"
    )


def test_8bit_utf8_switch_keeps_8bit() -> None:
    raw, leaf = _leaf(
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
        "Gr\u00fc\u00dfe\n".encode("latin-1"),
        b"\n",
    )
    edit = edit_leaf(leaf, len(leaf.text), len(leaf.text), "\u5c71\u7530\n")
    assert (edit.charset, edit.cte) == ("utf-8", None)
    assert edit.body == "Gr\u00fc\u00dfe\n\u5c71\u7530\n".encode()


def test_html_uses_character_references_and_keeps_charset() -> None:
    raw, leaf = _leaf(
        "Content-Type: text/html; charset=us-ascii\n", b"<html><body>Hi</body></html>\r\n"
    )
    pos = leaf.text.index("</body>")
    edit = edit_leaf(leaf, pos, pos, "<p>Ana \u00b7 \u5c71</p>")
    assert edit.charset is None and edit.cte is None
    assert edit.body == b"<html><body>Hi<p>Ana &#183; &#23665;</p></body></html>\r\n"


def test_base64_reencoded_with_same_line_length() -> None:
    text = ("word " * 100).encode()
    b64 = binascii.b2a_base64(text, newline=False)
    body = b"\r\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + b"\r\n"
    raw, leaf = _leaf(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n", body
    )
    edit = edit_leaf(leaf, len(leaf.text), len(leaf.text), "\nSIG")
    lines = edit.body.split(b"\r\n")
    assert {len(x) for x in lines[:-2]} == {64}
    # no line break in the decoded text: the canonical CRLF is used
    assert binascii.a2b_base64(edit.body) == text + b"\r\nSIG"


def test_long_inserted_line_makes_8bit_quoted_printable() -> None:
    raw, leaf = _leaf(
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n", b"<p>x</p>\r\n"
    )
    edit = edit_leaf(leaf, 8, 8, "<p>" + "y" * 2000 + "</p>")
    assert edit.cte == "quoted-printable"
    assert max(len(x) for x in edit.body.split(b"\r\n")) <= 76


def test_unknown_charset_accepts_ascii_only() -> None:
    raw, leaf = _leaf("Content-Type: text/plain; charset=x-unknown\n", "caf\u00e9\r\n".encode())
    edit = edit_leaf(leaf, len(leaf.text), len(leaf.text), "SIG\n")
    assert edit.body == "caf\u00e9\r\nSIG\r\n".encode()  # the unknown bytes are untouched
    with pytest.raises(LeafError) as info:
        edit_leaf(leaf, 0, 0, "\u00b7")
    assert info.value.reason == "charset"


def test_bad_base64_is_refused() -> None:
    raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nab=c\r\n"
    with pytest.raises(LeafError) as info:
        open_leaf(raw, scan(raw))
    assert info.value.reason == "malformed"


def test_unknown_cte_is_refused() -> None:
    raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    with pytest.raises(LeafError, match="x-uuencode"):
        open_leaf(raw, scan(raw))


def test_stateful_charset_round_trip() -> None:
    text = "\u3053\u3093\u306b\u3061\u306f\r\n"
    raw, leaf = _leaf("Content-Type: text/plain; charset=iso-2022-jp\n", text.encode("iso-2022-jp"))
    edit = edit_leaf(leaf, len(leaf.text), len(leaf.text), "\u5c71\u7530\n")
    assert edit.charset is None
    assert edit.body.decode("iso-2022-jp") == text + "\u5c71\u7530\r\n"


# -- issue 13, point 6 -------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "windows-1252"])
def test_html_signature_characters_go_in_as_numeric_references(charset: str) -> None:
    html = '<html><head><meta charset="utf-8"></head><body><p>Hi</p></body></html>'
    raw = (
        "From: a@example.com\r\nContent-Type: text/html; charset=" + charset + "\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html
    ).encode(charset)
    result = rewrite(raw, SIGNATURE)
    assert result.signed
    body = rewritten_message(raw, result).split(b"\r\n\r\n", 1)[1]
    assert b"Head of Mail Flow &#183; +1 555 0100" in body
    assert body.isascii()  # the charset/meta mismatch cannot garble it
    assert not result.header_edits  # charset and CTE unchanged


def test_base64_leaf_with_overlong_lines_gets_76_character_lines() -> None:
    text = ("All work and no play. " * 120 + "\n") * 3
    encoded = base64.b64encode(text.encode()).decode()
    lines = [encoded[i : i + 1200] for i in range(0, len(encoded), 1200)]
    raw = (
        "From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + "\r\n".join(lines) + "\r\n"
    ).encode()
    result = rewrite(raw, SIGNATURE)
    assert result.signed
    body = rewritten_message(raw, result).split(b"\r\n\r\n", 1)[1]
    assert max(len(x) for x in body.split(b"\r\n")) == 76
    assert base64.b64decode(body).decode().startswith(text.rstrip("\n"))


def test_base64_leaf_keeps_its_own_safe_line_length() -> None:
    assert b64_line_length(b"QUFB" * 16 + b"\r\nQUFB\r\n") == 64
    assert b64_line_length(b"QUFB" * 300 + b"\r\nQUFB\r\n") == 76
    assert b64_line_length(b"QUFB" * 10 + b"\r\n" + b"QUFB" * 300 + b"\r\n") == 76


# -- the byte splice of PIECEWISE codecs: what encoding the whole edited text gives ------

LABELS = {
    "utf-8": "utf-8",
    "ascii": "us-ascii",
    "iso8859-1": "iso-8859-1",
    "cp1252": "windows-1252",
}
piece_bytes = st.lists(
    st.sampled_from(
        [b"a", b"\r\n", b"\n", b"\xc3\xa9", b"\xe2\x82\xac", b"\xff", b"\x81", b"\xc3"]
    ),
    max_size=12,
).map(b"".join)


def test_piecewise_codecs_are_the_ones_named() -> None:
    assert set(LABELS) | {"latin-1"} == PIECEWISE


@settings(max_examples=500, derandomize=True)
@given(st.sampled_from(sorted(LABELS)), piece_bytes)
def test_piecewise_codecs_give_back_every_byte(name: str, data: bytes) -> None:
    assert data.decode(name, "surrogateescape").encode(name, "surrogateescape") == data


@settings(max_examples=1000, derandomize=True)
@given(
    st.sampled_from(sorted(LABELS)),
    piece_bytes,
    st.integers(0, 40),
    st.integers(0, 40),
    st.sampled_from(["", "-- \r\nAvery", "é €", "\udcff"]),
)
def test_a_spliced_edit_is_the_whole_text_encoded(
    name: str, data: bytes, a: int, b: int, insert: str
) -> None:
    _, leaf = _leaf(f"Content-Type: text/plain; charset={LABELS[name]}\n", data)
    start, end = sorted((min(a, len(leaf.text)), min(b, len(leaf.text))))
    try:
        whole = (leaf.text[:start] + insert + leaf.text[end:]).encode(name, "surrogateescape")
    except UnicodeEncodeError:
        return  # edit_leaf never splices an insert its charset cannot carry
    new_data, change = _edited_data(leaf, start, end, insert)
    assert new_data == whole
    assert change == _changed_range(leaf, start, end, insert)
