"""Hypothesis fuzzing of the scanner, the HTML placement and the whole engine.

Inputs are built from MIME and HTML pieces an attacker would reach for (delimiter
lines in odd places, deep nesting, folded and broken headers, quote containers,
unclosed tags, comments, markers inside attributes) and then mutated. derandomize=True
keeps CI deterministic; run longer with ``make fuzz`` (atheris) or
``HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz``.
"""

from __future__ import annotations

import os

from checks import check_engine, check_html, check_html_index, check_scan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=10_000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=10_000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# -- MIME pieces -------------------------------------------------------------------------

BOUNDARIES = [b"B", b"BB", b"b1", b"=_x", b"aGVsbG8", b"", b"B" * 70]
HEADER_LINES = [
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Type: text/html; charset=iso-8859-1",
    b"Content-Type: text/plain; charset=x-lies",
    b"Content-Type: multipart/mixed",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: x-uuencode",
    b"Content-Disposition: attachment; filename=a.txt",
    b" folded continuation",
    b"not a header line",
    b"X-Nul: a\0b",
    b":",
]
BODY_LINES = [
    b"hello",
    b"",
    b"aGVsbG8gd29ybGQ=",
    b"aGVs*&^bG8",
    b"=E9t=C3=A9=",
    b"Sent from my iPhone",
    b"On Mon, 1 Jan 2024, Bob <b@example.com> wrote:",
    b"> quoted",
    b"{EMAILSIGNATURE}",
    b"<p>html</p>",
    b"\xff\xfe\0",
    b"x" * 1200,
]


@st.composite
def mime_messages(draw: st.DrawFn) -> bytes:
    """Multiparts with chosen boundaries whose delimiter lines land anywhere."""
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    depth = draw(st.integers(0, 6))
    boundaries = [draw(st.sampled_from(BOUNDARIES)) + b"%d" % i for i in range(depth)]
    lines = [b"From: a@example.com", b"Subject: fuzz", b"MIME-Version: 1.0"]
    for b in boundaries:
        lines.append(b'Content-Type: multipart/mixed; boundary="' + b + b'"')
        lines += draw(st.lists(st.sampled_from(HEADER_LINES), max_size=2))
        lines += [b"", b"--" + b]
    lines += draw(st.lists(st.sampled_from(HEADER_LINES), max_size=3))
    lines.append(b"")
    lines += draw(st.lists(st.sampled_from(BODY_LINES), max_size=8))
    # Delimiters of any level, closing or not, in any order: a shuffled structure.
    delims = [b"--" + b + end for b in boundaries for end in (b"", b"--")]
    if delims:
        lines += draw(st.lists(st.sampled_from(delims), max_size=2 * depth + 2))
    return eol.join(lines) + draw(st.sampled_from([eol, b""]))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    raw = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(raw)))
        cut = draw(st.integers(0, 8))
        junk = draw(st.sampled_from([b"", b"\r\n", b"--", b"\0", b"=", b"\n\n", b"\xff"]))
        raw = raw[:pos] + junk + raw[pos + cut :]
    return raw


# -- HTML pieces ---------------------------------------------------------------------------

HTML_PIECES = [
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<span>",
    "</span>",
    "<br>",
    "<hr>",
    "<div/>",
    '<blockquote type="cite">',
    "</blockquote>",
    '<div class="gmail_quote">',
    '<div id="divRplyFwdMsg">',
    '<div id="appendonsend"></div>',
    '<div style="border-top:solid 1px">From: Bob Sent: Monday',
    '<div class="moz-cite-prefix">',
    "<table><tr><td>",
    "</td></tr></table>",
    "<body>",
    "</body>",
    "<html>",
    "</html>",
    "<!--",
    "-->",
    "<script>",
    "</script>",
    "<style>",
    "</style>",
    '<div title="<div>">',
    '<a href="x">',
    "</a>",
    "{EMAILSIGNATURE}",
    '<p title="{EMAILSIGNATURE}">',
    "Sent from my iPhone",
    "Get Outlook for Android",
    "On Mon, 1 Jan 2024, Bob wrote:",
    "hello world",
    "\n",
    "<",
    ">",
    "&amp;",
    "\0",
    "<DIV>",
    "</DIV >",
]
html_sources = st.lists(st.sampled_from(HTML_PIECES), max_size=40).map("".join)


# -- the tests ---------------------------------------------------------------------------


@FUZZ
@given(raw=mutated(mime_messages()))
def test_scanner_offsets_stay_consistent(raw: bytes) -> None:
    check_scan(raw)


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_scanner_on_raw_bytes(raw: bytes) -> None:
    check_scan(raw)


@FUZZ
@given(source=html_sources)
def test_html_spots_stay_inside_the_source(source: str) -> None:
    check_html(source)


@FUZZ
@given(source=html_sources)
def test_html_tag_index_agrees_with_a_direct_scan(source: str) -> None:
    check_html_index(source)


@FUZZ
@given(raw=mutated(mime_messages()))
def test_engine_signs_or_passes_unchanged(raw: bytes) -> None:
    check_engine(raw)


@FUZZ
@given(
    source=html_sources,
    cte=st.sampled_from([b"8bit", b"quoted-printable"]),
)
def test_engine_on_html_soup(source: str, cte: bytes) -> None:
    body = source.encode("utf-8")
    if cte == b"quoted-printable":
        body = body.replace(b"=", b"=3D")
    raw = (
        b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body
    )
    check_engine(raw)
