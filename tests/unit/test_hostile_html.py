"""HTML placement stays linear on hostile markup (each case was quadratic once).

Each source is measured (CPU time, tests/growth.py) at full size and at one eighth:
linear work grows about 8x, the old quadratic paths grew 64x (and took 7-20 s at the
full sizes here).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from growth import assert_linear
from hostile_text import HTML_SOURCE_SIZE, HTML_SOURCES
from sigfilter.placement.html import html_spots
from sigfilter.placement.spot import Kind
from sigfilter.signature import SenderCard

MARKER = "{EMAILSIGNATURE}"


def spots(source: str) -> None:
    html_spots(source, MARKER)


@pytest.mark.parametrize("make", HTML_SOURCES.values(), ids=HTML_SOURCES.keys())
def test_placement_is_linear(make: Callable[[int], str]) -> None:
    # factor 3.5: 28x for 8x the input (quadratic is 64x). With the cheaper engine the
    # small input's fixed cost shrank, and CI measured br-text-nodes at 20.9x against
    # the old 20x bound (lxml's tree of 320,000 nodes outgrows the CPU caches).
    assert_linear(spots, make, HTML_SOURCE_SIZE, k=8, factor=3.5)


def test_quote_is_still_found_among_thousands_of_blockquotes() -> None:
    source = "<p>new text</p>" + '<blockquote type="cite">old</blockquote>\n' * 8000
    quote = html_spots(source, MARKER).get(Kind.QUOTE)
    assert quote is not None and quote.start == source.index("<blockquote")


def test_last_footer_found_after_thousands_of_text_nodes() -> None:
    source = "<body>" + "line<br>" * 50_000 + "Sent from my iPhone</body>"
    footer = html_spots(source, MARKER).get(Kind.FOOTER)
    assert footer is not None
    assert source[footer.start : footer.end] == "Sent from my iPhone"


# -- issue 13: the client-signature searches stay linear too -----------------------------

CARD = SenderCard("Avery Quill", ("Head of Mail Flow", "+1 555 0100"))
CLIENT_SOURCES: dict[str, Callable[[int], str]] = {
    "signature-ids": lambda n: '<div id="Signature">x</div>\n' * n,
    "quoted-signature-ids": lambda n: '<blockquote><div id="Signature">x</div></blockquote>\n' * n,
    "repeated-mobile-ids": lambda n: '<div id="ms-outlook-mobile-signature">x</div>' * n,
    "dash-paragraphs": lambda n: "<div><p>-- sig</p></div>\n" * n,
    "nested-dashes": lambda n: "<div>-- x" * min(n, 200) + "</div>" * min(n, 200) + "<p>y</p>" * n,
    "name-paragraphs": lambda n: "<p>Avery Quill</p>\n<p>Head of Mail Flow</p>\n" * n,
    "nested-names": lambda n: (
        "<div><span>Avery" * min(n, 200) + "</span></div>" * min(n, 200) + "<p>Avery</p>" * n
    ),
}


def client_spots(source: str) -> None:
    html_spots(source, MARKER, True, CARD)


@pytest.mark.parametrize("make", CLIENT_SOURCES.values(), ids=CLIENT_SOURCES.keys())
def test_client_signature_search_is_linear(make: Callable[[int], str]) -> None:
    assert_linear(client_spots, make, HTML_SOURCE_SIZE // 2, k=8)
