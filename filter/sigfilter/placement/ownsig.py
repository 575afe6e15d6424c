"""The signature a sender typed without any marker (Outlook for Windows, classic).

Outlook classic puts no reliable marker on the wire (``_MailAutoSig`` is an editor
bookmark) and it is the most common client of Microsoft 365 users. We know each
sender's directory fields (:class:`SenderCard`), so: a block at the END of the new text
whose first line is the sender's display name (or their first name right below a
sign-off line such as "Best regards,") and which carries at least one of their other
fields (title, phone, company, address …) within the next few lines is their signature.

Safe by construction: only the new text (before the quote) is read; the name must be a
line of its own (optionally followed by " | Title" or " - Title"), so a name inside a
sentence never starts a block; every line of the block is short; and nothing but the
block may follow it in the new text.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from lxml import etree

from .clientsig import ClientSig, starts_inside
from .eltext import has_text
from .lines import SKIPPABLE, line_spans_reversed

if TYPE_CHECKING:
    from ..signature import SenderCard
    from .html import HtmlSource

TYPED = "typed-signature"  # the name of a directory-matched signature in decisions

__all__ = ["SIGNOFFS", "TYPED", "find_html_block", "find_text_block", "is_signature_block"]

_MAX_LINES = 10  # non-blank lines of a typed signature
_DETAIL_WINDOW = 6  # a detail must show within this many lines after the name
_MAX_LINE = 100  # longer lines are prose, not signature lines
_MIN_DETAIL = 3
_MIN_DIGITS = 6
_SEPARATORS = "|,–—-·•/"  # what may follow the name on its line ("Avery Quill | Head of …")


def _load_signoffs() -> frozenset[str]:
    out = set()
    text = files("sigfilter.placement").joinpath("signoffs.tsv").read_text(encoding="utf-8")
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        cols = raw.split("\t")
        if len(cols) != 2 or not cols[1].strip():
            raise ValueError(f"signoffs.tsv:{n}: want lang<TAB>text")
        out.add(_norm(cols[1]))
    return frozenset(out)


def _norm(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split()).casefold()


SIGNOFFS = _load_signoffs()


def is_signoff(line: str) -> bool:
    return _norm(line).rstrip(",.!-:; ") in SIGNOFFS


@functools.lru_cache(maxsize=256)
def _names(name: str) -> tuple[str, str]:
    """A sender's whole name and first name as _norm has them (read for every line
    a block could start with; the same senders over and over)."""
    return _norm(name), _norm(name.split(maxsplit=1)[0]) if name.split() else ""


def name_line(line: str, card: SenderCard, after_signoff: bool = False) -> bool:
    """Whether ``line`` is the sender's name on a line of its own."""
    text = _norm(line)
    whole, first = _names(card.name)
    names = [whole]
    if after_signoff and card.name.split():
        names.append(first)
    for name in names:
        if not name or not text.startswith(name):
            continue
        rest = text[len(name) :].strip()
        if not rest or (rest[0] in _SEPARATORS and len(text) <= _MAX_LINE):
            return True
    return False


def carries_detail(lines: list[str], card: SenderCard) -> bool:
    """Whether one of the sender's fields other than the name shows in ``lines``."""
    joined = _norm(" ".join(lines))
    digits = re.sub(r"\D", "", joined)
    for value in card.details:
        v = _norm(value)
        d = re.sub(r"\D", "", v)
        if len(d) >= _MIN_DIGITS and d in digits:
            return True  # a phone number, however it is spaced
        if len(v) >= _MIN_DETAIL and v in joined:
            return True
    return False


def is_signature_block(lines: list[str], card: SenderCard, after_signoff: bool = False) -> bool:
    """``lines`` (non-blank, in order) are a typed signature: name first, a detail soon."""
    if not lines or len(lines) > _MAX_LINES or not name_line(lines[0], card, after_signoff):
        return False
    if any(len(x.strip()) > _MAX_LINE for x in lines):
        return False
    first = lines[0][len(card.name) :] if name_line(lines[0], card) else ""
    window = [first, *lines[1:_DETAIL_WINDOW]]
    hits = [i for i, line in enumerate(window) if carries_detail([line], card)]
    if not hits:
        return False
    # Below the last directory field only contact-like lines (a web site, an address with
    # a number) may follow: "P.S. see you Monday" is new text, so this is no signature.
    return all(_CONTACT.search(x) for x in lines[hits[-1] + 1 :])


_CONTACT = re.compile(r"\d|@|www\.|https?://", re.I)


def _tail_lines(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) of the last non-blank lines of ``text[:limit]`` (image tokens are
    blank), at most _MAX_LINES, read from the end: up to the first one too long for a
    signature, which no block holding it can be (is_signature_block)."""
    out: list[tuple[int, int]] = []
    for start, end in line_spans_reversed(text, 0, limit):
        line = text[start:end]
        if SKIPPABLE.sub("", line).strip():
            out.append((start, end))
            if len(line.strip()) > _MAX_LINE or len(out) == _MAX_LINES:
                break
    out.reverse()
    return out


def find_text_block(text: str, limit: int, card: SenderCard | None) -> tuple[int, int] | None:
    """The sender's typed signature at the end of ``text[:limit]``, as whole lines.

    Only the last lines are read, from the end, and a block stops at the first line too
    long for a signature: the whole new text's lines, and each block's sign-off test,
    cost ~60 µs on a 20 KB reply whose new text ends in prose (~5 µs so, measured).
    """
    if card is None or not card.name.strip():
        return None
    tail = _tail_lines(text, limit)
    stop = 1 if tail and len(_line(text, tail[0]).strip()) > _MAX_LINE else 0
    for i in range(len(tail) - 1, stop - 1, -1):
        block = [_line(text, span) for span in tail[i:]]
        if not name_line(block[0], card, after_signoff=True):
            continue  # not the name even right below a sign-off: no block starts here
        signoff = not name_line(block[0], card) and i > 0 and is_signoff(_line(text, tail[i - 1]))
        if is_signature_block(block, card, signoff):
            end = _image_lines_end(text, tail[-1][1], limit)
            return tail[i][0], end
    return None


def _line(text: str, span: tuple[int, int]) -> str:
    return text[span[0] : span[1]]


def _image_lines_end(text: str, end: int, limit: int) -> int:
    """Extend over lines holding only image tokens ("[cid:image001.png@…]")."""
    pos = end
    while pos < limit:
        nl = text.find("\n", pos + 1, limit)
        line_end = limit if nl < 0 else nl
        line = text[pos:line_end].strip()
        if line and SKIPPABLE.sub("", line).strip():
            break
        if line:
            end = line_end - 1 if text[line_end - 1] == "\r" else line_end
        pos = line_end
        if nl < 0:
            break
    return end


# -- HTML -------------------------------------------------------------------------------

_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|tr|li|h[1-6]|table)\s*>", re.I)
_TAG = re.compile(r"<[^>]*>")
_NAME_TAGS = ("p", "div", "td", "span", "b", "strong", "font")


def html_lines(fragment: str) -> list[str]:
    """The non-blank text lines an HTML fragment shows (blocks and <br> end lines)."""
    text = _TAG.sub("", _BLOCK_END.sub("\n", fragment))
    text = htmllib.unescape(text).replace("\xa0", " ")
    return [line for line in text.split("\n") if SKIPPABLE.sub("", line).strip()]


def find_html_block(
    doc: HtmlSource, limit: int, quoted: list[tuple[int, int]], card: SenderCard | None
) -> ClientSig | None:
    """The sender's typed signature closing the new text of an HTML part."""
    if card is None or not card.name.strip():
        return None
    first = _norm(card.name).split()[0]
    # Most messages do not show the sender's name in their new text: one search of the
    # source answers them before any element is read (20 KB reply: ~0.2 ms saved).
    body = doc.body() if shows_name(doc.source[:limit], first) else None
    if body is None:
        return None
    last: etree._Element | None = None
    # Text nodes holding the name, found in C: reading every element's text instead
    # made a deeply nested message quadratic.
    for node in cast("list[Any]", _HAS_TEXT(body, name=card.name.split()[0])):
        el = _holder(node)
        if el is None:
            continue
        span = doc.span(el)
        if span is None or span[1] > limit or starts_inside(span[0], quoted):
            continue
        if last is None or span[0] >= (doc.offset(last) or 0):
            last = el
    return None if last is None else _block_from(doc, last, limit, card)


# The characters outside ASCII whose case folding holds ASCII letters ("ß" -> "ss", the
# Kelvin sign -> "k", "ﬁ" -> "fi" ...):
# tests/unit/test_html_text.py checks this list against every code point.
FOLDS_TO_ASCII = (
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a"
    "\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)


def shows_name(text: str, first: str) -> bool:
    """``first in text.casefold()``, without case-folding a text that is not ASCII.

    Folding a 20 KB reply with a few umlauts took ~40 us (every character goes through
    the Unicode tables). For an ASCII ``first``, a match in the folded text is made of
    ASCII characters of ``text``, lower-cased, unless a character that folds to ASCII
    letters of ``first`` takes part: in UTF-8 the other characters are bytes above 127,
    which split a match as they do in the folded text.
    """
    if text.isascii() or not first.isascii():
        return first in text.casefold()
    if first.encode() in text.encode("utf-8", "surrogatepass").lower():
        return True
    if not any(ch in text for ch in _folding_into(first)):
        return False
    return first in text.casefold()


@functools.lru_cache(maxsize=256)
def _folding_into(first: str) -> tuple[str, ...]:
    """The characters of FOLDS_TO_ASCII whose folding shares a character with ``first``."""
    return tuple(ch for ch in FOLDS_TO_ASCII if set(ch.casefold()) & set(first))


_HAS_TEXT = etree.XPath("//text()[contains(., $name)]")


def _holder(node: object) -> etree._Element | None:
    """The nearest element of ``_NAME_TAGS`` (or a block) holding an XPath text node."""
    parent = getattr(node, "getparent", lambda: None)()
    if parent is None:
        return None
    el: etree._Element | None = parent.getparent() if getattr(node, "is_tail", False) else parent
    for _ in range(6):
        if el is None or el.tag in _NAME_TAGS or el.tag == "body":
            break
        el = el.getparent()
    return el if el is not None and el.tag in _NAME_TAGS else None


def _block_from(
    doc: HtmlSource, el: etree._Element, limit: int, card: SenderCard
) -> ClientSig | None:
    el = _outermost(el)
    span = doc.span(el)
    if span is None:
        return None
    els = [el]
    end = span[1]
    for sib in el.itersiblings():
        sspan = doc.span(sib) if isinstance(sib.tag, str) else None
        if sspan is None or sspan[0] >= limit:
            break
        els.append(sib)
        if html_lines(doc.source[sspan[0] : sspan[1]]) or next(sib.iter("img"), None) is not None:
            end = sspan[1]
    if html_lines(doc.source[end:limit]):
        return None  # more new text follows: not the closing block
    lines = html_lines(doc.source[span[0] : end])
    before = html_lines(doc.source[max(span[0] - 400, 0) : span[0]])
    signoff = bool(before) and is_signoff(before[-1])
    if not is_signature_block(lines, card, signoff):
        return None
    used = [e for e in els if (s := doc.span(e)) and s[1] <= end]
    cids = tuple(
        src[4:]
        for e in used
        for img in e.iter("img")
        if (src := (img.get("src") or "").strip())[:4].lower() == "cid:"
    )
    return ClientSig(TYPED, span[0], end, " ".join(lines), cids)


def _outermost(el: etree._Element) -> etree._Element:
    """Climb while the parent shows nothing but this element's text."""
    parent = el.getparent()
    while parent is not None and parent.tag in _NAME_TAGS and parent.tag != "td":
        if not _shows_only(parent, el):
            break
        el, parent = parent, parent.getparent()
    return el


def _shows_only(parent: etree._Element, el: etree._Element) -> bool:
    """Whether ``parent``'s text, normalised, is ``el``'s: all else in it is blank.

    The same answer as comparing the two normalised texts (whitespace collapses, and
    case folding never turns a character into nothing or a space), without reading
    either text whole: reading the parent's text at every step cost ~80 us of a 20 KB
    reply whose sign-off sits in a big block. Comments are not text (lxml's text
    method leaves them out too), their tails are.
    """
    if (parent.text or "").strip():
        return False
    for child in parent:
        if (child.tail or "").strip():
            return False
        if child is not el and isinstance(child.tag, str) and has_text(child):
            return False
    return True
