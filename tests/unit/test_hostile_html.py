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

MARKER = "{EMAILSIGNATURE}"


def spots(source: str) -> None:
    html_spots(source, MARKER)


@pytest.mark.parametrize("make", HTML_SOURCES.values(), ids=HTML_SOURCES.keys())
def test_placement_is_linear(make: Callable[[int], str]) -> None:
    assert_linear(spots, make, HTML_SOURCE_SIZE, k=8)


def test_quote_is_still_found_among_thousands_of_blockquotes() -> None:
    source = "<p>new text</p>" + '<blockquote type="cite">old</blockquote>\n' * 8000
    quote = html_spots(source, MARKER).get(Kind.QUOTE)
    assert quote is not None and quote.start == source.index("<blockquote")


def test_last_footer_found_after_thousands_of_text_nodes() -> None:
    source = "<body>" + "line<br>" * 50_000 + "Sent from my iPhone</body>"
    footer = html_spots(source, MARKER).get(Kind.FOOTER)
    assert footer is not None
    assert source[footer.start : footer.end] == "Sent from my iPhone"
