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
    # A wrapper (<td><p>…</p></td>) has its child's text: normalised once. No-break
    # spaces need no replace(): str.split() takes them as whitespace. Normalising was
    # ~100 of ~160 us on a 20 KB reply (the texts of nested blocks overlap).
    texts: dict[str, str] = {}
    for el in body.iter("div", "p", "span", "font", "td", "table"):
        raw = str(etree.tostring(el, method="text", encoding=str, with_tail=False))
        text = texts.get(raw)
        if text is None:
            text = texts[raw] = " ".join(raw.split())
        if not text or len(text) > _MAX_ELEMENT_TEXT or not rx.fullmatch(text):
            continue
        span = doc.span(el)
        if span is None or span[1] > limit or starts_inside(span[0], quoted):
            continue
        if found is None or span[0] >= found.end:
            found = ClientSig(ADMIN, span[0], span[1], text)
        # an ancestor with the same text came first in document order: keep the outer one
    return found
