"""HTML placement stays linear on hostile markup (each case was quadratic once).

Each source is measured (CPU time, tests/growth.py) at full size and at one eighth:
linear work grows about 8x, the old quadratic paths grew 64x (and took 7-20 s at the
full sizes here).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from growth import assert_linear
from sigfilter.placement.html import html_spots
from sigfilter.placement.spot import Kind

MARKER = "{EMAILSIGNATURE}"


def spots(source: str) -> None:
    html_spots(source, MARKER)


CASES: dict[str, Callable[[int], str]] = {
    # 14 s: every quote candidate searched the source for its k-th start tag.
    "cite-blockquotes": lambda n: '<blockquote type="cite">x</blockquote>\n' * n,
    "gmail-quotes": lambda n: '<div class="gmail_quote">x</div>\n' * n,
    # 7 s: each "<script " without ">" rescanned the rest of the source.
    "unclosed-scripts": lambda n: "<script " * (n * 5),
    # 20 s: our-signature search backtracked through every "class=".
    "class-attributes": lambda n: "class=" * (n * 2),
    # 10 s: every text node after a <br> matched against the footer table.
    "br-text-nodes": lambda n: "<br>x" * (n * 20),
    # many footer elements, each needing a span
    "footer-paragraphs": lambda n: "<p>Sent from my iPhone</p>\n" * n,
}


@pytest.mark.parametrize("name", list(CASES))
def test_placement_is_linear(name: str) -> None:
    assert_linear(spots, CASES[name], 8000, k=8)


def test_quote_is_still_found_among_thousands_of_blockquotes() -> None:
    source = "<p>new text</p>" + '<blockquote type="cite">old</blockquote>\n' * 8000
    quote = html_spots(source, MARKER).get(Kind.QUOTE)
    assert quote is not None and quote.start == source.index("<blockquote")


def test_last_footer_found_after_thousands_of_text_nodes() -> None:
    source = "<body>" + "line<br>" * 50_000 + "Sent from my iPhone</body>"
    footer = html_spots(source, MARKER).get(Kind.FOOTER)
    assert footer is not None
    assert source[footer.start : footer.end] == "Sent from my iPhone"
