"""An element's text, read while holding the GIL, whole or only as far as needed.

The text of an element is what lxml's ``etree.tostring(el, method="text",
with_tail=False)`` gives: the text of every text node inside it, comments and
processing instructions left out (their tails kept). tostring lets go of the GIL
around libxml2 for every call, and the placement searches make ~90 such calls on a
20 KB reply; in the milter each release hands the GIL to a waiting callback thread
and back (the rewrite worker's voluntary context switches went from 7.2 to 3.8 per
message when these reads held the GIL; README, "CPU per message"). Iterating the
text nodes holds the GIL, and can stop once enough has been read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from lxml import etree


def _pieces(el: etree._Element) -> Iterator[str]:
    # The stubs allow bytes; an HTML tree parsed from text gives str.
    return cast("Iterator[str]", el.itertext())


def text_of(el: etree._Element) -> str:
    """The element's whole text (no tail)."""
    if not len(el):  # no children: its own text is all (no iterator to make, ~1 us)
        return el.text or ""
    return "".join(_pieces(el))


def text_head(el: etree._Element, size: int) -> str:
    """The element's text, cut after the first text node that takes it past ``size``
    characters: ``text_head(el, n)[:n] == text_of(el)[:n]``, and when the result is
    at most ``n`` long it is the whole text."""
    first = el.text or ""
    if len(first) > size or not len(el):  # the first text node decides, or is all
        return first
    pieces: list[str] = []
    length = 0
    for piece in _pieces(el):
        pieces.append(piece)
        length += len(piece)
        if length > size:
            break
    return "".join(pieces)


def text_start(el: etree._Element, size: int) -> str:
    """The first ``size`` characters of the element's text (``text_of(el)[:size]``)."""
    return text_head(el, size)[:size]


def has_text(el: etree._Element) -> bool:
    """Whether the element's text is more than whitespace (``text_of(el).strip()``),
    read only up to the first text node that is."""
    if (el.text or "").strip():
        return True
    return bool(len(el)) and any(piece.strip() for piece in _pieces(el))
