"""The tenant admin's own texts to replace: an old disclaimer, "Sent from Mail for Windows".

``replace_texts`` (literal, matched with any whitespace between words, ignoring case) and
``replace_patterns`` (regular expressions) in tenant.toml become regex sources; here they
are compiled once per tenant (cached) and looked up in the sender's own text only.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from lxml import etree

from .clientsig import ClientSig, starts_inside
from .eltext import text_head, text_of

if TYPE_CHECKING:
    from .html import HtmlSource

__all__ = ["ADMIN", "MAX_PATTERN", "compiled", "find_html", "find_text", "literal_source"]

ADMIN = "admin-text"  # the name shown as replaced=admin-text
MAX_PATTERN = 500  # characters of one pattern (each runs on every message's new text)
_MAX_ELEMENT_TEXT = 4000


def literal_source(text: str) -> str:
    """A regex source for a literal text: any run of whitespace matches any other."""
    return r"\s+".join(re.escape(word) for word in text.split())


@functools.lru_cache(maxsize=256)
def compiled(sources: tuple[str, ...]) -> re.Pattern[str] | None:
    if not sources:
        return None
    return re.compile("|".join(f"(?:{s})" for s in sources), re.IGNORECASE)


def find_text(text: str, limit: int, sources: tuple[str, ...]) -> tuple[int, int] | None:
    """The last admin text in ``text[:limit]``: whole lines when it fills them."""
    rx = compiled(sources)
    if rx is None:
        return None
    last = None
    for m in rx.finditer(text, 0, limit):
        if m.end() > m.start():
            last = m
    if last is None:
        return None
    start, end = last.start(), last.end()
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end, limit)
    le = limit if le < 0 else le
    if not text[ls:start].strip() and not text[end:le].strip():
        start, end = ls, le - 1 if le > ls and text[le - 1] == "\r" else le
    return start, end


def find_html(
    doc: HtmlSource, limit: int, quoted: list[tuple[int, int]], sources: tuple[str, ...]
) -> ClientSig | None:
    """The last element of the new text whose whole text is an admin text."""
    rx = compiled(sources)
    body = doc.body()
    if rx is None or body is None:
        return None
    found: ClientSig | None = None
    for el, text in _matching(body, rx, longest_match(sources)):
        span = doc.span(el)
        if span is None or span[1] > limit or starts_inside(span[0], quoted):
            continue
        if found is None or span[0] >= found.end:
            found = ClientSig(ADMIN, span[0], span[1], text)
        # an ancestor with the same text came first in document order: keep the outer one
    return found


_TAGS = ("div", "p", "span", "font", "td", "table")


def _matching(
    body: etree._Element, rx: re.Pattern[str], longest: int
) -> list[tuple[etree._Element, str]]:
    """The elements whose whole text (normalised) ``rx`` matches, in document order.

    Read from the last element back, so each is read after everything inside it: once
    an element's text is longer than ``longest``, so is the text of every element
    around it (it holds that text), and those are not read. The texts of nested blocks
    overlap; reading each was ~160 us of a 20 KB reply, ~100 of it normalising.
    Elements stay alive with their HtmlSource, so their ids are theirs.
    """
    too_long: set[int] = set()
    texts: dict[str, str] = {}  # a wrapper (<td><p>…</p></td>) has its child's text
    found = []
    for el in reversed(list(body.iter(*_TAGS))):
        if id(el) in too_long:
            continue
        text = _normalised(el, longest, texts)
        if len(text) > longest:
            parent = el.getparent()
            while parent is not None and id(parent) not in too_long:
                too_long.add(id(parent))
                parent = parent.getparent()
        elif text and rx.fullmatch(text):
            found.append((el, text))
    found.reverse()
    return found


def _normalised(el: etree._Element, longest: int, texts: dict[str, str]) -> str:
    """The element's text normalised, or a longer-than-``longest`` start of it.

    Normalising a start of a text gives a start of the normalised text (whole words
    joined by single spaces), so a start that is already too long decides.
    """
    raw = text_head(el, longest)
    text = texts.get(raw)
    if text is None:  # str.split() takes no-break spaces as whitespace too
        text = texts[raw] = " ".join(raw.split())
    if len(raw) <= longest or len(text) > longest:
        return text  # the whole text, or too long already
    raw = text_of(el)  # mostly whitespace so far: the rest decides
    return texts.setdefault(raw, " ".join(raw.split()))


@functools.lru_cache(maxsize=256)
def longest_match(sources: tuple[str, ...]) -> int:
    """The longest normalised text the sources can match whole (_MAX_ELEMENT_TEXT at most).

    A literal_source text (words joined by ``\\s+``) matches its own length: case is
    ignored one character for one, and a normalised text has single spaces. Any other
    pattern may match up to the limit.
    """
    longest = 0
    for source in sources:
        words = source.split(r"\s+")
        # a literal word is re.escape() of what it spells: no class, no operator
        spelled = [re.sub(r"\\(.)", r"\1", w) for w in words]
        if any(re.escape(plain) != w for plain, w in zip(spelled, words, strict=True)):
            return _MAX_ELEMENT_TEXT
        longest = max(longest, sum(map(len, spelled)) + len(words) - 1)
    return min(longest, _MAX_ELEMENT_TEXT)
