"""Admin texts in HTML: the element search against the plain reading it replaced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigfilter.placement import admintext
from sigfilter.placement.admintext import literal_source, longest_match
from sigfilter.placement.clientsig import ClientSig, starts_inside
from sigfilter.placement.html import HtmlSource
from support import serialised_text


@pytest.mark.parametrize(
    ("sources", "longest"),
    [
        ((literal_source("Sent from Mail for Windows"),), 26),
        ((literal_source("  Sent \n from\xa0Mail "),), 14),
        ((literal_source("a.b (c) \\d [x]* ü €"),), 19),  # escaped, spelled as written
        ((literal_source("Sent"), literal_source("Gesendet von Mail für Windows")), 29),
        ((r"Sent from my \w+",), 4000),  # a pattern: any length up to the limit
        (("Sent from my phone",), 4000),  # unescaped spaces: not what literal_source makes
        ((literal_source("x"), r"^foo"), 4000),
        (("(?i)x",), 4000),
        (("a\\",), 4000),
        ((literal_source("x" * 5000),), 4000),
    ],
)
def test_longest_match(sources: tuple[str, ...], longest: int) -> None:
    assert longest_match(sources) == longest


def _reference(doc: HtmlSource, limit: int, sources: tuple[str, ...]) -> ClientSig | None:
    """The old reading: every element's text, in document order (a deliberate oracle)."""
    rx = admintext.compiled(sources)
    body = doc.body()
    if rx is None or body is None:
        return None
    found = None
    for el in body.iter("div", "p", "span", "font", "td", "table"):
        raw = serialised_text(el)
        text = " ".join(raw.replace("\xa0", " ").split())
        if not text or len(text) > 4000 or not rx.fullmatch(text):
            continue
        span = doc.span(el)
        if span is None or span[1] > limit or starts_inside(span[0], []):
            continue
        if found is None or span[0] >= found.end:
            found = ClientSig(admintext.ADMIN, span[0], span[1], text)
    return found


_WORDS = ["Sent", "from", "Mail", "for", "Windows", "sent", "ſent", "x" * 30]
_GAPS = ["", " ", "\xa0", "\n", " <br> ", "<!--c-->"]
_TAGS = ["p", "div", "span", "td", "b", "font", "table"]


@st.composite
def _html(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        parts.append(draw(st.sampled_from(_GAPS)) + draw(st.sampled_from(_WORDS)))
        if depth < 3 and draw(st.booleans()):
            tag = draw(st.sampled_from(_TAGS))
            parts.append(f"<{tag}>{draw(_html(depth + 1))}</{tag}>")
    return "".join(parts)


_SOURCES = [
    (literal_source("Sent from Mail for Windows"),),
    (literal_source("Sent from"), literal_source("Windows")),
    (literal_source("x" * 30 + " Sent"),),
    (r"Sent\b.*",),
    (r"(?:sent|mail)(?: \w+)*",),
]


@settings(max_examples=1500, derandomize=True)
@given(_html(), st.sampled_from(_SOURCES), st.floats(0.3, 1.0))
def test_found_as_the_plain_reading_finds(
    fragment: str, sources: tuple[str, ...], cut: float
) -> None:
    source = f"<html><body><div>{fragment}</div></body></html>"
    doc = HtmlSource(source)
    limit = int(len(source) * cut)
    assert admintext.find_html(doc, limit, [], sources) == _reference(doc, limit, sources)
