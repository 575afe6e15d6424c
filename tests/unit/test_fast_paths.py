"""The fast paths taken for speed read input exactly as the slow, general code does.

Each is checked against an independent oracle: the stdlib's Content-Type parser, and
a line-by-line reading of quoted-printable soft breaks.
"""

from __future__ import annotations

import re
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigfilter.engine import Options, rewrite
from sigfilter.mime.codec import eol_of, qp_hard_line_offsets
from sigfilter.mime.headers import (
    _line_by_line,
    _simple_content_type,
    _well_formed,
    parse_content_type,
    parse_header_block,
)
from sigfilter.placement import textsig
from sigfilter.placement.lines import line_spans, line_spans_reversed
from sigfilter.placement.text import _ours, _squash
from support import CORPUS, MESSAGES, SIGNATURE

TOKEN_CHARS = "aZ09-._+!#$%&'^`|~"
token = st.text(TOKEN_CHARS, min_size=1, max_size=8)
space = st.sampled_from(["", " ", "  ", "\t", " \t "])
quoted = st.text("ab ;=/?:@()<>,[]é\t'", max_size=10).map(lambda s: f'"{s}"')
param = st.tuples(space, st.one_of(token, st.sampled_from(["charset", "Boundary"])), space,
                  space, st.one_of(token, quoted), space)  # fmt: skip
simple_value = st.builds(
    lambda lead, a, b, trail, params: lead + a + "/" + b + trail
    + "".join(f";{s1}{k}{s2}={s3}{v}{s4}" for s1, k, s2, s3, v, s4 in params),
    space, token, token, space, st.lists(param, max_size=4),
)  # fmt: skip
any_value = st.lists(st.sampled_from([*"ab/;= \t\"\\*'()é", "text", "charset"]), max_size=30).map(
    "".join
)


def stdlib_reading(value: str) -> tuple[str, str, dict[str, str]]:
    msg = Message()
    msg["Content-Type"] = value
    ctype = msg.get_content_type()
    if "/" not in value.split(";", 1)[0]:
        ctype = "text/plain"
    maintype, _, subtype = ctype.partition("/")
    params = {}
    for key, val in msg.get_params(failobj=[])[1:]:
        params[key.lower()] = val if isinstance(val, str) else str(val[2])
    return maintype, subtype, params


def reading(value: str) -> tuple[str, str, dict[str, str]]:
    ct = parse_content_type(value)
    return ct.maintype, ct.subtype, ct.params


@settings(max_examples=1000, derandomize=True)
@given(simple_value)
def test_simple_values_take_the_fast_path_and_read_as_the_stdlib_does(value: str) -> None:
    assert _simple_content_type(value) is not None
    assert reading(value) == stdlib_reading(value)


@settings(max_examples=1000, derandomize=True)
@given(any_value)
def test_any_value_reads_as_the_stdlib_does(value: str) -> None:
    assert reading(value) == stdlib_reading(value)


def test_rfc2231_and_comments_fall_back_to_the_stdlib() -> None:
    for value in [
        "text/plain; name*=utf-8''na%C3%AFve.txt",
        "text/plain (a comment); charset=utf-8",
        'text/plain; charset="a\\"b"',
        "multipart/mixed; boundary=----=_Part_1",
    ]:
        assert _simple_content_type(value) is None
        assert reading(value) == stdlib_reading(value)


def test_every_content_type_in_the_corpus_reads_as_the_stdlib_does() -> None:
    field = re.compile(rb"(?im)^content-type:(.*(?:\r?\n[ \t].*)*)")
    values = {
        m.group(1).decode("latin-1").replace("\r", "").replace("\n", "").strip()
        for path in CORPUS.glob("*.eml")
        for m in field.finditer(path.read_bytes())
    }
    assert len(values) > 50
    assert sum(_simple_content_type(v) is not None for v in values) > len(values) // 2
    for value in values:
        assert reading(value) == stdlib_reading(value), value


def hard_lines_by_reading(body: bytes, wanted: int) -> list[int]:
    """Line by line: a line whose last non-blank byte is "=" continues the next."""
    starts, pos = [0], 0
    for line in body.split(b"\n"):
        pos += len(line) + 1
        if len(starts) > wanted:
            break
        if not line.rstrip(b"\r \t").endswith(b"="):
            starts.append(pos)
    starts = [min(s, len(body)) for s in starts]
    return starts + [len(body)] * (wanted + 1 - len(starts))


qp_pieces = st.sampled_from(
    [b"a", b"=", b"\n", b"\r\n", b" ", b"\t", b"=\r\n", b"=\n", b"3D", b"= \n"]
)


@settings(max_examples=1000, derandomize=True)
@given(st.lists(qp_pieces, max_size=30).map(b"".join), st.integers(0, 12))
def test_qp_hard_line_offsets_agree_with_a_line_by_line_reading(body: bytes, wanted: int) -> None:
    assert qp_hard_line_offsets(body, wanted) == hard_lines_by_reading(body, wanted)


def test_a_header_block_parsed_by_the_caller_gives_the_same_result() -> None:
    """The milter hands the engine the header block it parsed at end of headers."""
    opts = Options(mode="full")
    messages = sorted(CORPUS.glob("*.eml")) + sorted(MESSAGES.glob("*.eml"))
    assert len(messages) > 60
    for path in messages:
        raw = path.read_bytes()
        given = rewrite(raw, SIGNATURE, opts, parse_header_block(raw))
        assert given == rewrite(raw, SIGNATURE, opts), path.name


sig_words = st.sampled_from(["--", "-- ", "Avery", "Quill", "Avery Quill", "|", "\n", " ", "\t"])
text_words = st.sampled_from(["--", "Avery", "Quill", "AveryQuill", "x", "|", "\n", " ", "\r\n"])


@settings(max_examples=1000, derandomize=True)
@given(
    st.lists(text_words, max_size=14).map("".join),
    st.lists(st.lists(sig_words, max_size=6).map("".join), max_size=3).map(tuple),
    st.integers(0, 60),
)
def test_our_signature_is_found_as_by_squashing_the_whole_new_text(
    text: str, signatures: tuple[str, ...], cut: int
) -> None:
    limit = min(cut, len(text))
    squashed = _squash(text[:limit])
    want = any(_squash(sig) in squashed for sig in signatures if sig.strip())
    assert _ours(text, limit, signatures) == want


header_pieces = st.sampled_from(
    [b"Subject", b"X-A", b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b"v", b"=?utf-8?q?a?=",
     b"\xe9", b"From ", b"(", b"\r\n ", b"\n\t", b"\r\n\r\n", b"\n\n", b"\x85", b"\xa0"]
)  # fmt: skip


@settings(max_examples=3000, derandomize=True)
@given(
    st.lists(header_pieces, max_size=24).map(b"".join),
    st.integers(0, 3),
    st.integers(0, 80),
    st.sampled_from([2, 3, 4, 10_000]),
)
def test_well_formed_header_blocks_read_as_line_by_line(
    data: bytes, start: int, cut: int, max_lines: int
) -> None:
    start, end = min(start, len(data)), min(max(cut, start), len(data))
    slow = _line_by_line(data, start, end, max_lines)
    fast = _well_formed(data, start, end, max_lines)
    assert fast is None or fast == slow
    assert parse_header_block(data, start, end, max_lines) == slow


def test_the_corpus_header_blocks_take_the_well_formed_reading() -> None:
    blocks = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    fast = [raw for raw in blocks if _well_formed(raw, 0, len(raw), 10_000) is not None]
    assert len(fast) > len(blocks) // 2
    for raw in fast:
        assert _well_formed(raw, 0, len(raw), 10_000) == _line_by_line(raw, 0, len(raw), 10_000)


@pytest.mark.parametrize("max_lines", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("data", [b"X-A: v\r\nX-B: w\r\n x\r\n\r\nbody", b"From a\nA:1\nB:2\n\n"])
def test_the_line_limit_counts_as_line_by_line(data: bytes, max_lines: int) -> None:
    """The empty line counts: a block of exactly ``max_lines`` field lines is cut."""
    slow = _line_by_line(data, 0, len(data), max_lines)
    assert parse_header_block(data, max_lines=max_lines) == slow
    assert _well_formed(data, 0, len(data), max_lines) in (None, slow)


line_texts = st.lists(st.sampled_from(["a", "\n", "\r\n", "\r", " ", "--", "-- "]), max_size=14)


@settings(max_examples=2000, derandomize=True)
@given(line_texts.map("".join), st.integers(0, 30), st.integers(0, 30))
def test_lines_read_from_the_end_are_the_lines_reversed(text: str, a: int, b: int) -> None:
    start, stop = sorted((min(a, len(text)), min(b, len(text))))
    assert list(line_spans_reversed(text, start, stop)) == line_spans(text, start, stop)[::-1]


def tail_dashdash_reading_all_lines(text: str, quote_start: int) -> tuple[int, int] | None:
    """textsig.find_tail_dashdash as first written: every line of the quote split off."""
    lines = line_spans(text, quote_start, len(text))
    first = max(len(lines) - 12, 0)
    for i in range(len(lines) - 1, first - 1, -1):
        s, e = lines[i]
        if text[s:e] not in ("-- ", "--"):
            continue
        if any(text[a:b].strip().startswith(">") for a, b in lines[i + 1 :]):
            return None
        j = i - 1
        while j >= 0 and not text[lines[j][0] : lines[j][1]].strip():
            j -= 1
        above = text[lines[j][0] : lines[j][1]] if j >= 0 else ""
        if above.lstrip().startswith(">") or textsig._SEPARATOR.match(above):
            end = textsig._last_content_end(text, lines[i:])
            return None if end is None else (s, end)
        return None
    return None


quote_lines = st.lists(
    st.sampled_from(["> a", ">", "", " ", "-- ", "--", "Avery", "-" * 24, "x", "  > b"]),
    max_size=20,
)


@settings(max_examples=2000, derandomize=True)
@given(quote_lines, st.sampled_from(["\n", "\r\n"]), st.integers(0, 200))
def test_tail_dashdash_reads_as_splitting_every_line(lines: list[str], eol: str, cut: int) -> None:
    text = eol.join(lines)
    quote_start = min(cut, len(text))
    want = tail_dashdash_reading_all_lines(text, quote_start)
    assert textsig.find_tail_dashdash(text, quote_start) == want


@pytest.mark.parametrize(
    "data",
    [
        b"X-Long: " + b"a" * 5000 + b"\r\nSubject: s\r\n\r\nbody",
        b"X-Folded: a\r\n" + b" b\r\n" * 150 + b"Subject: s\r\n\r\nbody",
        b"X-Folded: a\r\n" + b" " + b"c" * 5000 + b"\r\n\r\nbody",
    ],
    ids=["long-line", "150-continuations", "long-continuation"],
)
def test_fields_past_the_fast_reading_limits_read_as_line_by_line(data: bytes) -> None:
    assert _well_formed(data, 0, len(data), 10_000) is None
    assert parse_header_block(data) == _line_by_line(data, 0, len(data), 10_000)
    assert parse_header_block(data).closed and not parse_header_block(data).defects


@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n"]), max_size=8).map(b"".join),
       st.integers(0, 10), st.integers(0, 10))  # fmt: skip
def test_the_line_ending_of_a_range_is_that_of_its_copy(data: bytes, a: int, b: int) -> None:
    start, end = sorted((a, b))
    assert eol_of(data, b"?", start, end) == eol_of(data[start:end], b"?")
