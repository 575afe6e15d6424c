"""Find where a signature goes in an HTML part.

lxml parses the document to *find* the spot (the quote container, the footer element,
the marker); the result is a character range in the original source, which the engine
splices. The document is never re-rendered: that would drop ``<meta charset>`` and
change markup the sender's client wrote.

Mapping an lxml element back to the source: the element is the k-th element of its tag
in document order; the k-th ``<tag`` start tag in the source (outside comments, scripts
and styles) is taken, and accepted only if it is on the line lxml reports. Anything
that does not check out is not used, and placement falls back to a weaker spot.

The marker is replaced where it sits inside one text node. A marker split across tags
(``<span>{EMAIL</span><span>SIGNATURE}</span>``, as an editor may produce) is not
recognised in HTML; the text part still gets the signature at its marker.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from . import admintext
from .clientsig import (
    MAX_KEPT_VALUE,
    ClientSig,
    find_html_dashdash,
    find_html_signature,
    merge_spans,
    starts_inside,
)
from .eltext import text_head, text_of, text_start
from .footers import is_footer
from .ownsig import find_html_block
from .spot import Kind, Spot, Spots
from .textquote import starts_with_quote_intro

if TYPE_CHECKING:
    from ..signature import SenderCard

OUR_CLASS = "sigfilter-signature"
OUR_COMMENT = "<!--sigfilter-->"

# What is not markup lxml reads as elements: comments and raw-text elements (the
# definition; excluded_regions finds its matches). An unclosed ``<script`` runs to the
# end: with ``[^>]*>`` alone, every one of 40,000 "<script " without a ">" rescanned the
# rest of the source (7 s for 320 KB).
_EXCLUDED = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|title|textarea)\b(?:[^>]*>.*?(?:</\1\s*>|\Z)|[^>]*\Z)",
    re.S | re.I,
)
# _EXCLUDED's regions, found faster with the same answers: the start by a search that
# begins with "<" (re finds such a pattern fast; _EXCLUDED's ignore-case alternation was
# tried at every character), a comment's end with str.find, a raw-text element's end
# among the "</" after its start tag, its name compared as _EXCLUDED's back-reference
# does (ignoring case, character by character). 20 KB Outlook reply: ~35 -> ~15 us.
_EXCLUDED_START = re.compile(r"<(?:!--|(script|style|title|textarea)\b)", re.I)
_SAME_NAME = re.compile(r"([^\0]*)\0\1", re.I | re.S)
_CLOSE = re.compile(r"\s*>")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPACED = ("br", "div", "p", "tr", "td", "li", "hr", "table", "blockquote")
_BLOCKS = ("div", "p", "blockquote", "table", "span", "font", "td")
_FOOTER_TAGS = frozenset({"div", "p", "span", "font", "a", "b", "i", "td", "small"})
_QUOTE_IDS = {
    "divrplyfwdmsg": "divRplyFwdMsg",
    "x_divrplyfwdmsg": "divRplyFwdMsg",
    "mail-editor-reference-message-container": "outlook-mobile",
    "x_mail-editor-reference-message-container": "outlook-mobile",
}
_QUOTE_CLASSES = {
    "gmail_quote": "gmail_quote",
    "gmail_attr": "gmail_quote",
    "moz-cite-prefix": "moz-cite-prefix",
    "moz-forward-container": "moz-forward-container",
    "yahoo_quoted": "yahoo_quoted",
    "ms-outlook-mobile-reference-message": "outlook-mobile",
}
_MAX_INTRO_SCAN = 400  # block elements examined for a text quote intro
_MAX_MARKER_BLOCK_SPACE = 200  # whitespace around a marker alone in its paragraph
_MAX_MARKERS = 100  # marker occurrences examined (inside tags, comments …)
_MAX_FOOTER_SCAN = 2000  # elements before the quote examined for a client footer
_MAX_FOOTER_TRIES = 20  # footer texts looked up in the source
_MAX_FOOTER_CHARS = 240  # longer text is prose, not a client footer


def _norm(text: str) -> str:
    # The same as ``re.sub(r"\s+", " ", text).strip()`` (re's ``\s`` and str.split() agree
    # on every code point: test_html_text checks all of them), ~5x cheaper: the
    # regex cost ~20 us on a 600-character paragraph with non-ASCII letters.
    return " ".join(text.split())


def _text(el: etree._Element, limit: int | None = None) -> str:
    """The element's text content (no tail, no comments), whitespace-normalised."""
    return _norm(text_of(el) if limit is None else text_start(el, limit))


def excluded_regions(source: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every match of _EXCLUDED in ``source``, in order."""
    out: list[tuple[int, int]] = []
    pos = 0
    while (m := _EXCLUDED_START.search(source, pos)) is not None:
        tag = m.group(1)
        if tag is None:
            close = source.find("-->", m.end())
            end = len(source) if close < 0 else close + 3
        else:
            end = _raw_text_end(source, m.end(), tag)
        out.append((m.start(), end))
        pos = end
    return out


def _raw_text_end(source: str, after: int, tag: str) -> int:
    """Where a script/style/title/textarea element that starts as ``<tag`` ends."""
    gt = source.find(">", after)
    if gt < 0:
        return len(source)
    pos, k = gt + 1, len(tag)
    while (lt := source.find("</", pos)) >= 0:
        name = source[lt + 2 : lt + 2 + k]
        if len(name) == k and _SAME_NAME.fullmatch(tag + "\0" + name):
            close = _CLOSE.match(source, lt + 2 + k)
            if close is not None:
                return close.end()
        pos = lt + 1
    return len(source)


def _may_open_quote(raw: str) -> bool:
    """Whether ``raw`` can hold a quote intro at all (a necessary condition, cheap).

    Every form textquote.starts_with_quote_intro accepts has a colon in it ("wrote:",
    "From:", "Begin forwarded message:", "：") or a run of dashes ("-----Original
    Message-----", "---- On … wrote ----"); tests/unit/test_html_text.py checks this on
    textquote's own examples. Whitespace normalisation keeps both, so the raw text can
    be tested. Most paragraphs of new text have neither in their first 600 characters,
    and the intro test cost 2-9 us per element (~50 us per Outlook reply, warm).
    """
    return ":" in raw or "-" in raw or "：" in raw


def _intro_text(raw: str) -> bool:
    """starts_with_quote_intro on an element's raw text, normalised only when it may."""
    return _may_open_quote(raw) and starts_with_quote_intro(_norm(raw))


def _classes(el: etree._Element) -> list[str]:
    return (el.get("class") or "").lower().split()


@functools.lru_cache(maxsize=256)
def _tag_pattern(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<(/?){re.escape(tag)}(?=[\s/>])", re.I)


@dataclass(slots=True)
class _TagIndex:
    starts: list[int]  # source offsets of the start tags, in document order
    lines: list[int]  # the line each starts on
    ends: dict[int, int]  # start offset -> offset just after its end tag


class HtmlSource:
    """One decoded HTML part: the source string, its lxml tree and a source index."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._excluded = excluded_regions(source)
        self._ex_starts = [s for s, _ in self._excluded]
        parser = etree.HTMLParser(encoding="utf-8", remove_comments=False)
        data = source.encode("utf-8", "replace")
        self.root: etree._Element | None = etree.fromstring(data, parser) if data.strip() else None
        self._offsets: dict[int, int | None] = {}
        self._tags: dict[str, _TagIndex] = {}
        self._numbers: dict[str, dict[int, int]] = {}
        self._all_numbers: dict[int, int] | None = None
        self._body: etree._Element | None = None
        # Holding every element keeps lxml's proxies alive, so id(el) stays unique.
        self._elements = list(self.root.iter()) if self.root is not None else []
        if self.root is not None:
            self._space_blocks(self.root)

    @staticmethod
    def _space_blocks(root: etree._Element) -> None:
        """Line breaks and blocks separate words when read as text ("Da: X<br>Inviato:").

        Only this private tree changes; source offsets do not depend on it. libxml2 keeps
        control characters such as a form feed in text that lxml refuses to set back;
        without replacing them a reply with one lost its quote. One search over all the
        tails finds whether any has one (a substitution per tail was ~15 us of a 20 KB
        reply).
        """
        spaced = list(root.iter(*_SPACED))
        tails = [el.tail or "" for el in spaced]
        clean = _NOT_XML.search("".join(tails)) is None
        for el, tail in zip(spaced, tails, strict=True):
            el.tail = " " + (tail if clean else _NOT_XML.sub(" ", tail))

    def elements(self) -> list[etree._Element]:
        """Every node of the tree in document order (comments included), held once."""
        return self._elements

    # -- source index -------------------------------------------------------------
    def in_excluded(self, pos: int) -> bool:
        i = bisect_right(self._ex_starts, pos) - 1
        return i >= 0 and self._excluded[i][0] <= pos < self._excluded[i][1]

    def inside_tag(self, pos: int) -> bool:
        return self.source.rfind("<", 0, pos) > self.source.rfind(">", 0, pos)

    def _tag_index(self, tag: str) -> _TagIndex:
        """Start tags, their lines and their end tags for ``tag``: one pass per tag name.

        Computing these per element instead (scan to the k-th start tag, then to the
        matching end tag) made a quote-heavy message quadratic: 8,000 cite blockquotes
        took 14 s. The end-tag rules are the old scan's: a tag runs to the next ">"
        (even a ``<tag`` inside another tag's attributes is read past), ``<tag/>`` opens
        nothing, end tags close the innermost open start tag; a start tag that lies
        inside another tag gets no end (not confirmed, so not used).
        """
        found = self._tags.get(tag)
        if found is not None:
            return found
        index = _TagIndex([], [], {})
        src = self.source
        stack: list[int] = []
        consumed = 0  # the end-tag scan has read up to here
        line, last = 1, 0
        gt_left = True
        # Excluded regions walked along with the matches: no bisection per match.
        regions, r, r_end = self._excluded, 0, len(self._excluded)
        for m in _tag_pattern(tag).finditer(src):
            pos = m.start()
            while r < r_end and regions[r][1] <= pos:
                r += 1
            excluded = r < r_end and regions[r][0] <= pos
            opening = src[pos + 1] != "/"
            if opening and not excluded:
                line += src.count("\n", last, pos)
                last = pos
                index.starts.append(pos)
                index.lines.append(line)
            if pos < consumed or not gt_left:
                continue
            gt = src.find(">", m.end())
            if gt < 0:
                gt_left = False  # no tag after this one can be complete
                continue
            consumed = gt + 1
            if excluded:
                continue
            if not opening:
                if stack:
                    index.ends[stack.pop()] = consumed
            elif src[gt - 1] != "/":
                stack.append(pos)
        self._tags[tag] = index
        return index

    def _element_number(self, el: etree._Element) -> int | None:
        """``el`` is the k-th element of its tag in document order; None if not ours."""
        tag = el.tag
        if self.root is None or not isinstance(tag, str):
            return None
        # Numbered per tag, by lxml's own tag filter: numbering every element of a
        # 20 KB reply cost ~15 us, and a message asks for two or three tags.
        numbers = self._numbers.get(tag)
        if numbers is None:
            numbers = self._numbers[tag] = self._number_tag(self.root, tag)
        found = numbers.get(id(el))
        return found if found is not None else self._numbered_all().get(id(el))

    @staticmethod
    def _number_tag(root: etree._Element, tag: str) -> dict[int, int]:
        try:
            tagged = root.iter(tag)
        except ValueError:  # lxml's filter refuses a name libxml2 gave ("me\x11ta")
            return {}  # numbered with every element instead
        return {id(e): k for k, e in enumerate(tagged)}

    def _numbered_all(self) -> dict[int, int]:
        """Every element numbered within its tag (for one the tag filter did not find)."""
        if self._all_numbers is None:
            counts: dict[str, int] = {}
            self._all_numbers = numbers = {}
            for e in self._elements:
                if isinstance(e.tag, str):
                    numbers[id(e)] = counts.get(e.tag, 0)
                    counts[e.tag] = numbers[id(e)] + 1
        return self._all_numbers

    def offset(self, el: etree._Element) -> int | None:
        """Source offset of ``el``'s start tag, or None when it cannot be confirmed."""
        key = id(el)
        if key not in self._offsets:
            self._offsets[key] = self._locate(el)
        return self._offsets[key]

    def _locate(self, el: etree._Element) -> int | None:
        if self.root is None or not isinstance(el.tag, str):
            return None
        k = self._element_number(el)
        index = self._tag_index(el.tag)
        if k is None or k >= len(index.starts):
            return None
        reported: int | None = getattr(el, "sourceline", None)  # stubs mistype it
        # libxml2 stops counting at 65535; beyond that the order check must do.
        ok = reported is None or reported == index.lines[k] or reported >= 65535
        return index.starts[k] if ok else None

    def element_end(self, el: etree._Element, start: int) -> int | None:
        """Source offset just after ``el``'s matching end tag."""
        return self._tag_index(str(el.tag)).ends.get(start)

    def span(self, el: etree._Element) -> tuple[int, int] | None:
        start = self.offset(el)
        if start is None:
            return None
        end = self.element_end(el, start)
        return None if end is None else (start, end)

    def body(self) -> etree._Element | None:
        # Found once: five passes ask for it (~2 us each).
        if self._body is None and self.root is not None:
            found = self.root.find(".//body")
            self._body = found if found is not None else self.root
        return self._body


def _quote_candidates(doc: HtmlSource) -> Iterator[tuple[etree._Element, str]]:
    root = doc.root
    if root is None:
        return
    for el in root.iter("div", "blockquote", "hr", "table", "span", "p"):
        tag = el.tag
        eid = el.get("id")
        if eid:
            yield from ((el, style) for style in _kept(_id_styles, _kept_id_styles, eid))
        cls = el.get("class")
        if cls:
            styles = _kept(_class_styles, _kept_class_styles, cls, tag == "span")
            yield from ((el, style) for style in styles)
        if tag == "blockquote" and (el.get("type") or "").lower() == "cite":
            yield el, "blockquote-cite"
        elif (
            tag == "div"
            and "border-top" in (el.get("style") or "").lower()
            and _intro_text(text_start(el, 600))
        ):
            yield el, "outlook-header"


def _kept(
    fn: Callable[..., tuple[str, ...]],
    kept: Callable[..., tuple[str, ...]],
    value: str,
    *more: bool,
) -> tuple[str, ...]:
    """The quote styles an id or class attribute value names, kept per (short) value:
    Outlook's class="MsoNormal" on every paragraph was lower-cased, split and looked up
    each time. A long value is not kept (memory stays bounded)."""
    return kept(value, *more) if len(value) <= MAX_KEPT_VALUE else fn(value, *more)


def _id_styles(value: str) -> tuple[str, ...]:
    eid = value.lower()
    if eid in _QUOTE_IDS:
        return (_QUOTE_IDS[eid],)
    if eid.startswith(("yahoo_quoted", "ydp")) and "yahoo_quoted" in eid:
        return ("yahoo_quoted",)
    return ()


def _class_styles(value: str, span: bool) -> tuple[str, ...]:
    styles: list[str] = []
    for cls in value.lower().split():
        if cls in _QUOTE_CLASSES and not span:
            styles.append(_QUOTE_CLASSES[cls])
        elif "yahoo_quoted" in cls:  # Yahoo prefixes its classes: ydp9b1f…yahoo_quoted
            styles.append("yahoo_quoted")
    return tuple(styles)


_kept_id_styles = functools.lru_cache(maxsize=1024)(_id_styles)
_kept_class_styles = functools.lru_cache(maxsize=1024)(_class_styles)


def _outlook_prefix(el: etree._Element) -> etree._Element:
    """Step back over the ``<hr>`` and ``#appendonsend`` Outlook puts before the quote."""
    prev = el.getprevious()
    while prev is not None and isinstance(prev.tag, str) and prev.tag in ("hr", "div"):
        if prev.tag == "hr" or (prev.get("id") or "").lower() in ("appendonsend", "x_appendonsend"):
            el, prev = prev, prev.getprevious()
        else:
            break
    return el


def _attribution_before(el: etree._Element) -> etree._Element:
    """For a cite blockquote, the attribution block just before it, if there is one."""
    prev = el.getprevious()
    if prev is not None and isinstance(prev.tag, str) and _intro_text(text_of(prev)):
        return prev
    return el


def _climb(el: etree._Element) -> etree._Element:
    """Go up while ``el`` is the first thing in its parent: insert before the wrapper."""
    for _ in range(4):
        parent = el.getparent()
        if parent is None or parent.tag in ("body", "html") or parent.tag not in _BLOCKS:
            break
        if (parent.text or "").strip() or parent.index(el) != 0:
            break
        cls = _classes(parent)
        if "wordsection1" in cls or (parent.get("id") or "").lower() == "divtagdefaultwrapper":
            break
        el = parent
    return el


def _anchor(el: etree._Element, style: str) -> etree._Element:
    if style == "divRplyFwdMsg":
        return _outlook_prefix(el)
    if style == "blockquote-cite":
        return _climb(_attribution_before(el))
    if style == "gmail_quote" and "gmail_attr" in _classes(el):
        parent = el.getparent()
        return parent if parent is not None else el
    return _climb(el)


def _intro_candidates(doc: HtmlSource) -> Iterator[etree._Element]:
    body = doc.body()
    if body is None:
        return
    for n, el in enumerate(body.iter("div", "p", "blockquote")):
        if n >= _MAX_INTRO_SCAN:
            return
        if _intro_text(text_start(el, 600)):
            yield el
            return


def _intro_text_node(doc: HtmlSource) -> Spot | None:
    """A quote intro written straight into the body (Mail.ru: ``<body>-------- …<br>``)."""
    body = doc.body()
    if body is None:
        return None
    texts = [body.text or ""] + [child.tail or "" for child in body]
    for raw in texts:
        text = raw.strip()
        if text and _intro_text(text):
            pos = doc.source.find(text[:40])
            if pos >= 0 and not doc.in_excluded(pos) and not doc.inside_tag(pos):
                return Spot(Kind.QUOTE, pos, pos, "text-intro")
    return None


def _all_candidates(doc: HtmlSource) -> list[tuple[etree._Element, str]]:
    candidates: list[tuple[etree._Element, str]] = list(_quote_candidates(doc))
    candidates += [(el, "text-intro") for el in _intro_candidates(doc)]
    return candidates


# Quote styles whose element holds the whole quote: what follows it is the sender's again
# (Gmail and Thunderbird put the sender's signature below the quote by default).
_CONTAINERS = frozenset(
    {"gmail_quote", "moz-cite-prefix", "moz-forward-container", "yahoo_quoted", "blockquote-cite"}
)


def quoted_spans(
    doc: HtmlSource, candidates: list[tuple[etree._Element, str]], intro: Spot | None
) -> list[tuple[int, int]]:
    """Source ranges of the quoted thread: containers, and all after an unwrapped header
    (sorted and merged, so a message of thousands of quotes is searched by bisection)."""
    size = len(doc.source)
    quotes = doc.root.iter("blockquote") if doc.root is not None else iter(())
    spans = [s for el in quotes if (s := doc.span(el))]
    containers = {id(el) for el, style in candidates if style in _CONTAINERS}
    spans += [s for el, style in candidates if id(el) in containers and (s := doc.span(el))]
    merged = merge_spans(spans)
    for el, style in candidates:
        if id(el) in containers:
            continue
        start = doc.offset(_anchor(el, style))
        if start is None:
            continue
        if style == "text-intro" and starts_inside(start, merged):
            continue  # an intro inside a container ("On … wrote:" in gmail_quote)
        spans.append((start, size))
    if intro is not None:
        spans.append((intro.start, size))
    return merge_spans(spans)


def find_quote(
    doc: HtmlSource,
    candidates: list[tuple[etree._Element, str]] | None = None,
    intro: Spot | None = None,
) -> tuple[Spot | None, etree._Element | None]:
    """The topmost quote anchor, and its element (None for a body text node)."""
    best: Spot | None = intro if candidates is not None else _intro_text_node(doc)
    best_el: etree._Element | None = None
    for el, style in candidates if candidates is not None else _all_candidates(doc):
        anchor = _anchor(el, style)
        start = doc.offset(anchor)
        if start is not None and (best is None or start < best.start):
            best, best_el = Spot(Kind.QUOTE, start, start, style), anchor
    return best, best_el


def find_marker(doc: HtmlSource, marker: str, limit: int) -> Spot | None:
    src = doc.source
    pos = src.find(marker)
    for _ in range(_MAX_MARKERS):  # each look-back may cost a scan of the source
        if not 0 <= pos < limit:
            break
        if not doc.in_excluded(pos) and not doc.inside_tag(pos):
            return _marker_block(doc, marker, pos) or Spot(Kind.MARKER, pos, pos + len(marker))
        pos = src.find(marker, pos + 1)
    return None


def _marker_block(doc: HtmlSource, marker: str, pos: int) -> Spot | None:
    """When the marker is alone in a paragraph, replace the paragraph."""
    if doc.root is None:
        return None
    room = len(marker) + _MAX_MARKER_BLOCK_SPACE
    for el in doc.root.iter("p", "div"):
        if len(text_head(el, room)) > room:
            continue  # cheap test first: normalising a big subtree's text per ancestor is not
        if _text(el) == marker and not any(
            _text(c) == marker for c in el.iter("p", "div") if c is not el
        ):
            span = doc.span(el)
            if span and span[0] <= pos < span[1]:
                return Spot(Kind.MARKER, span[0], span[1], "block")
    return None


def find_footer(doc: HtmlSource, limit: int, stop: etree._Element | None = None) -> Spot | None:
    """The last client footer element in the new text (document order, before ``stop``)."""
    body = doc.body()
    if body is None:
        return None
    # A footer closes the new text, so only the last elements before the quote are
    # read: matching the footer table costs ~50 us per element.
    candidates = _footer_candidates(body, stop)
    found: Spot | None = None
    for el in candidates:
        raw = text_head(el, _MAX_FOOTER_CHARS)
        if not raw or len(raw) > _MAX_FOOTER_CHARS:
            continue
        text = _norm(raw)
        if not is_footer(text):
            continue
        outer = _outermost_same_text(el, text)
        span = doc.span(outer)
        if span and span[1] <= limit and (found is None or span[0] >= found.end):
            found = Spot(Kind.FOOTER, span[0], span[1], str(outer.tag))
    return found or _footer_text_node(doc, body, limit)


def _footer_candidates(body: etree._Element, stop: etree._Element | None) -> deque[etree._Element]:
    """The last elements of the footer tags before ``stop`` (where the quoted thread
    starts: footers below it are not ours to replace), in document order."""
    candidates: deque[etree._Element] = deque(maxlen=_MAX_FOOTER_SCAN)
    # lxml's tag filter picks the elements (and ``stop``) in C: reading every node's
    # tag in Python was ~15 us of a 20 KB reply.
    stop_tag = stop.tag if stop is not None and isinstance(stop.tag, str) else None
    other = stop_tag is not None and stop_tag not in _FOOTER_TAGS
    try:
        nodes = body.iter(*_FOOTER_TAGS, *((stop_tag,) if other else ()))
    except ValueError:  # lxml's filter refuses a name libxml2 gave ("me\x11ta")
        nodes, other = body.iter(), True
    for el in nodes:
        if el is stop:
            break
        if not other or (isinstance(el.tag, str) and el.tag in _FOOTER_TAGS):
            candidates.append(el)
    return candidates


def _outermost_same_text(el: etree._Element, text: str) -> etree._Element:
    parent = el.getparent()
    while parent is not None and parent.tag in _FOOTER_TAGS and _text(parent) == text:
        el, parent = parent, parent.getparent()
    return el


def _footer_text_node(doc: HtmlSource, body: etree._Element, limit: int) -> Spot | None:
    """A footer written straight into the body (``Hello<br><br>Sent from my iPhone``)."""
    texts = [body.text or ""] + [child.tail or "" for child in body]
    tries = 0
    # The last texts only, as in find_footer: "<br>x" * 200,000 took 10 s of table matching.
    for raw in reversed(texts[-_MAX_FOOTER_SCAN:]):
        text = raw.strip()
        if text and is_footer(_norm(text)):
            tries += 1
            if tries > _MAX_FOOTER_TRIES:  # each try below scans the source
                break
            pos = doc.source.rfind(text, 0, limit)
            if pos >= 0 and not doc.in_excluded(pos) and not doc.inside_tag(pos):
                return Spot(Kind.FOOTER, pos, pos + len(text), "text")
    return None


def _ascii_any_case(tag: str) -> re.Pattern[str]:
    """``tag`` in any ASCII case: what ``src[pos:pos + len(tag)].lower() == tag`` accepts
    (no other character lower-cases to one of these; test_html_text checks every one)."""
    return re.compile("".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in tag))


_BODY_END, _HTML_END = _ascii_any_case("</body"), _ascii_any_case("</html")
_END_ANY = re.compile(_BODY_END.pattern + "|" + _HTML_END.pattern)
_END_STEPS = 4  # "</" looked at from the end before the forward search takes over


def find_end(doc: HtmlSource) -> Spot:
    """Before the last </body> outside comments and scripts, else the last </html>, else
    at the end of the text.

    Offsets into the source itself: searching ``src.lower()`` gave offsets into the
    lower-cased copy, longer than the source when it holds a character such as "İ"
    (lower-cased to two): a Turkish message's signature went into "</body>".
    </body> is among the last few tags of nearly every part, so the last "</" are
    looked at first; a part without one (Gmail's) gets one forward search for both
    tags, where a step back over every "</" cost ~25 us. A tag starting before an "</"
    ends before it (the tags hold no other "<"), so the steps and the search agree.
    """
    src = doc.source
    html_end = -1
    pos = len(src)
    for _ in range(_END_STEPS):
        pos = src.rfind("</", 0, pos)
        if pos < 0:
            break
        if doc.in_excluded(pos):
            continue
        if _BODY_END.match(src, pos):
            return Spot(Kind.END, pos, pos, "body")
        if html_end < 0 and _HTML_END.match(src, pos):
            html_end = pos
    else:
        body_end, html_before = _last_end_tags(doc, pos)
        if body_end >= 0:
            return Spot(Kind.END, body_end, body_end, "body")
        html_end = html_end if html_end >= 0 else html_before
    if html_end >= 0:
        return Spot(Kind.END, html_end, html_end, "html")
    end = len(src.rstrip())
    return Spot(Kind.END, end, end, "eof")


def _last_end_tags(doc: HtmlSource, stop: int) -> tuple[int, int]:
    """The last </body> and the last </html> (-1: none) outside comments and scripts
    that start before ``stop``."""
    body = html = -1
    for m in _END_ANY.finditer(doc.source, 0, stop):
        if not doc.in_excluded(m.start()):
            if _BODY_END.match(m.group()):
                body = m.start()
            else:
                html = m.start()
    return body, html


_OUR_COMMENT = re.compile(re.escape(OUR_COMMENT), re.I)
_OUR_CLASS = re.compile(r"\b" + re.escape(OUR_CLASS) + r"\b", re.I)
_OUR_CLASS_HINT = re.compile(re.escape(OUR_CLASS[OUR_CLASS.index("-") :]), re.I)
# Each match consumes the attribute's value, so the search is linear: the old single
# regex backtracked through every "class=" up to the next quote (20,000 of them: 20 s).
_CLASS_VALUE = re.compile(r"""class=(?:"([^"]*)"|'([^']*)'|([^"'>]*))""", re.I)


def has_our_signature(source: str, limit: int) -> bool:
    """Our comment or our class attribute in the new text (not the quoted thread)."""
    if _OUR_COMMENT.search(source, 0, limit):
        return True
    # A class value holding our class is a part of the source, so without "-signature"
    # (any case) there, no value holds it: one search (~6 us on a 20 KB reply; it starts
    # with a character that has no case, which re finds fast; _OUR_CLASS itself takes
    # ~200 us) instead of reading every class attribute (~20-50 us).
    if not _OUR_CLASS_HINT.search(source, 0, limit):
        return False
    for m in _CLASS_VALUE.finditer(source, 0, limit):
        value = m.group(1) or m.group(2) or m.group(3) or ""
        if _OUR_CLASS.search(value):
            return True
    return False


def html_spots(
    source: str,
    marker: str,
    clients: bool = True,
    card: SenderCard | None = None,
    admin: tuple[str, ...] = (),
) -> Spots:
    """Every spot the HTML source offers (the engine picks one).

    ``clients``: look for the signature the mail client inserted (to replace it), and
    with the sender's ``card``, for the one they typed (Outlook classic has no marker);
    ``admin``: the tenant's own texts to replace (regex sources).
    """
    try:
        doc = HtmlSource(source)
    except (etree.ParserError, ValueError):
        doc = HtmlSource("")
        doc.source = source
    candidates = _all_candidates(doc)
    intro = _intro_text_node(doc)
    quote, quote_el = find_quote(doc, candidates, intro)
    limit = quote.start if quote else len(source)
    found: dict[Kind, Spot] = {Kind.END: find_end(doc)}
    if quote:
        found[Kind.QUOTE] = quote
    for spot in (find_marker(doc, marker, limit), find_footer(doc, limit, quote_el)):
        if spot:
            found[spot.kind] = spot
    client: ClientSig | None = None
    if clients:
        quoted = quoted_spans(doc, candidates, intro)
        client = (
            find_html_signature(doc, quoted)
            or admintext.find_html(doc, limit, quoted, admin)
            or find_html_dashdash(doc, quoted)
            or find_html_block(doc, limit, quoted, card)
        )
        if client is not None:
            found[Kind.CLIENT] = Spot(Kind.CLIENT, client.start, client.end, client.client)
    ours = has_our_signature(source, limit)
    if client is not None and client.start >= limit:  # below the quote (Gmail, Thunderbird)
        ours = ours or has_our_signature(source[client.start :], len(source) - client.start)
    return Spots(found, limit, ours, client)
