"""The signature the sender's mail client already inserted: found, so ours replaces it.

HTML: the markers live in ``client_signatures.tsv`` (package data, one row per client
marker with its source). A marked element counts only in the sender's own text: never
inside a quote container, never after an unwrapped quote header (Outlook's
``divRplyFwdMsg``, a "From: … Sent: …" block), but also BELOW a quote container, where
Gmail and Thunderbird put the signature by default. Text: the counterpart of the HTML
signature found in the same message, else the RFC 3676 ``-- `` block of the own text.

Pure: strings in, character ranges out.
"""

from __future__ import annotations

import functools
import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from lxml import etree

from .eltext import has_text, text_of

if TYPE_CHECKING:
    from .html import HtmlSource

__all__ = ["RULES", "ClientSig", "Rule", "find_html_signature", "rule_for"]

_TABLE = "client_signatures.tsv"
_MATCHES = frozenset({"id", "class", "class-re", "name", "attr", "br-id", "tag", "start-name"})
_CLIENT_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True, slots=True)
class Rule:
    client: str
    match: str
    value: str
    mobile: bool
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class ClientSig:
    """The client's signature: ``source[start:end]`` is replaced by ours."""

    client: str
    start: int
    end: int
    text: str  # its visible text, whitespace-normalised (to find the text counterpart)
    cids: tuple[str, ...] = ()  # Content-IDs its images show (cid: URLs, unquoted)
    mobile: bool = False


def parse_table(table: str) -> tuple[Rule, ...]:
    rows: list[Rule] = []
    for n, raw in enumerate(table.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cols = raw.split("\t")
        if len(cols) != 5:
            raise ValueError(f"{_TABLE}:{n}: want client, match, value, mobile, source")
        client, match, value, mobile, source = (c.strip() for c in cols)
        if not _CLIENT_NAME.fullmatch(client):
            raise ValueError(f"{_TABLE}:{n}: bad client name {client!r}")
        if match not in _MATCHES:
            raise ValueError(f"{_TABLE}:{n}: unknown match {match!r}")
        if mobile not in ("yes", "no") or not value or not source:
            raise ValueError(f"{_TABLE}:{n}: mobile must be yes/no; value and source needed")
        if match == "class-re":
            re.compile(value)
        if match == "attr" and "=" not in value:
            raise ValueError(f"{_TABLE}:{n}: attr wants name=value")
        rows.append(Rule(client, match, value, mobile == "yes", source, n))
    return tuple(rows)


RULES = parse_table(files("sigfilter.placement").joinpath(_TABLE).read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class _Index:
    ids: dict[str, Rule]
    classes: dict[str, Rule]
    class_res: tuple[tuple[re.Pattern[str], Rule], ...]
    names: dict[str, Rule]
    attrs: tuple[tuple[str, str, Rule], ...]
    br_ids: dict[str, Rule]
    tags: dict[str, Rule]


def _index(rules: tuple[Rule, ...]) -> _Index:
    def by(match: str) -> dict[str, Rule]:
        return {r.value: r for r in rules if r.match == match}

    return _Index(
        ids=by("id"),
        classes=by("class"),
        class_res=tuple((re.compile(r.value), r) for r in rules if r.match == "class-re"),
        names={**by("name"), **by("start-name")},
        attrs=tuple((*r.value.split("=", 1), r) for r in rules if r.match == "attr"),  # type: ignore[misc]
        br_ids=by("br-id"),
        tags={r.value.lower(): r for r in rules if r.match == "tag"},
    )


_INDEX = _index(RULES)


def rule_for(el: etree._Element) -> Rule | None:
    """The table row that marks ``el`` as a client signature element, if any."""
    tag: object = el.tag  # a comment's tag is a function
    if not isinstance(tag, str):
        return None
    return _rule(el, tag, el.keys())


def _rule(el: etree._Element, tag: str, keys: Sequence[str | bytes]) -> Rule | None:
    """rule_for with the element's tag and attribute names read already.

    The names say which attributes to read: most elements of a reply carry only
    ``style``, ``lang`` or Outlook's ``class="MsoNormal"``, and reading four attributes
    of each was ~1 us (~35 -> ~26 us for a 20 KB Outlook reply).
    """
    ix = _INDEX
    if keys:
        if "id" in keys:
            eid = el.get("id")
            if tag == "br":
                return ix.br_ids.get(eid) if eid is not None else None
            if eid in ix.ids:
                return ix.ids[eid]
        cls = el.get("class") if "class" in keys else None
        if cls:
            found = _class_rule(cls)
            if found is not None:
                return found
        if "name" in keys:
            name = el.get("name")
            if name is not None and name in ix.names:
                return ix.names[name]
        for attr, value, rule in ix.attrs:
            if attr in keys and el.get(attr) == value:
                return rule
    return ix.tags.get(tag.lower())


# Outlook puts class="MsoNormal" on nearly every element, and each token was tried against
# every class-re row: ~50 elements of a 20 KB reply cost ~40 us. The same few class
# values recur (in a message and across messages), so the answer for a short one is kept
# (short: 1,024 kept values of a hostile part's megabyte-long classes would hold a GB).
MAX_KEPT_VALUE = 200


def _class_rule(value: str) -> Rule | None:
    return _kept_class_rule(value) if len(value) <= MAX_KEPT_VALUE else _class_rule_of(value)


def _class_rule_of(value: str) -> Rule | None:
    """The rule the first marking token of a class attribute value matches, if any."""
    ix = _INDEX
    for token in value.split():
        if token in ix.classes:
            return ix.classes[token]
        for rx, rule in ix.class_res:
            if rx.fullmatch(token):
                return rule
    return None


_kept_class_rule = functools.lru_cache(maxsize=1024)(_class_rule_of)


# -- HTML --------------------------------------------------------------------------


def _visible(el: etree._Element) -> bool:
    """Text other than whitespace, or an image: empty placeholders are not signatures."""
    if has_text(el):  # str.strip() takes no-break spaces as whitespace too
        return True
    return el.tag == "img" or next(el.iter("img"), None) is not None


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint ranges covering ``spans`` (nested quotes become one range)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _at(span_start: int, spans: list[tuple[int, int]]) -> int:
    """Index of the last merged range starting at or before ``span_start`` (-1: none)."""
    return bisect_right(spans, (span_start, sys.maxsize)) - 1


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """``span`` lies within one of the merged ``spans`` (bisect: many quotes stay cheap)."""
    i = _at(span[0], spans)
    return i >= 0 and span[1] <= spans[i][1]


def starts_inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    i = _at(pos, spans)
    return i >= 0 and pos < spans[i][1]


def _cids(els: list[etree._Element]) -> tuple[str, ...]:
    out: list[str] = []
    for el in els:
        for img in el.iter("img"):
            src = (img.get("src") or "").strip()
            if src[:4].lower() == "cid:" and src[4:] not in out:
                out.append(src[4:])
    return tuple(out)


def _text_of(els: list[etree._Element]) -> str:
    raw = " ".join(text_of(el) for el in els)
    return " ".join(raw.split())  # str.split() takes no-break spaces as whitespace too


@dataclass(slots=True)
class _Found:
    rule: Rule
    els: list[etree._Element]
    start: int
    end: int


def find_html_signature(doc: HtmlSource, quoted: list[tuple[int, int]]) -> ClientSig | None:
    """The last own client-signature element run of ``doc``.

    ``quoted``: source ranges that belong to the quoted thread (containers, and
    everything after an unwrapped quote header), merged (``merge_spans``).
    """
    root = doc.root
    if root is None:
        return None
    last: _Found | None = None
    for el in doc.elements():
        tag: object = el.tag  # a comment's tag is a function
        if not isinstance(tag, str):
            continue
        keys = el.keys()
        if not keys and tag not in _INDEX.tags:
            continue  # most elements: 160,000 bare <br> cost 0.07 s here (an XPath 0.2 s)
        rule = _rule(el, tag, keys)
        if rule is None:
            continue
        found = _candidate(doc, el, rule, quoted)
        if found is None:
            continue
        if last is not None and found.start < last.end:
            continue  # nested in the one already taken (the outermost wins)
        last = found
    if last is None:
        return None
    last = _extend_run(doc, last)
    start = _gmail_prefix(doc, last)
    return ClientSig(
        last.rule.client, start, last.end, _text_of(last.els), _cids(last.els), last.rule.mobile
    )


def _candidate(
    doc: HtmlSource, el: etree._Element, rule: Rule, quoted: list[tuple[int, int]]
) -> _Found | None:
    span_of = doc.span
    els = [el]
    if rule.match == "start-name":
        return _to_end(doc, el, rule, quoted)
    if rule.match == "br-id":
        nxt = el.getnext()
        if nxt is None or not isinstance(nxt.tag, str):
            return None
        start = doc.offset(el)
        nspan = span_of(nxt)
        if start is None or nspan is None:
            return None
        span: tuple[int, int] | None = (start, nspan[1])
        els = [nxt]
    else:
        span = span_of(el)
    if span is None or _inside(span, quoted) or _overlaps(span, quoted):
        return None
    if not all(_visible(e) for e in els):
        return None
    return _Found(rule, els, span[0], span[1])


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    i = _at(span[0], spans)
    if i >= 0 and span[0] < spans[i][1]:
        return True
    return i + 1 < len(spans) and spans[i + 1][0] < span[1]


def next_start(pos: int, spans: list[tuple[int, int]], default: int) -> int:
    """Where the first merged range at or after ``pos`` starts, else ``default``."""
    i = bisect_left(spans, (pos, -1))
    return spans[i][0] if i < len(spans) else default


def _to_end(
    doc: HtmlSource, el: etree._Element, rule: Rule, quoted: list[tuple[int, int]]
) -> _Found | None:
    """From the paragraph holding ``el`` to the last own sibling with visible content."""
    block = el
    parent = block.getparent()
    while parent is not None and block.tag not in ("p", "div", "td", "li"):
        block, parent = parent, parent.getparent()
    span = doc.span(block)
    if span is None or _inside(span, quoted) or _overlaps(span, quoted):
        return None
    stop = next_start(span[1], quoted, len(doc.source))
    els, end = [block], span[1]
    for sib in block.itersiblings():
        sspan = doc.span(sib) if isinstance(sib.tag, str) else None
        if sspan is None or sspan[1] > stop:
            break
        els.append(sib)
        if _visible(sib):
            end = sspan[1]
    if not any(_visible(e) for e in els):
        return None
    return _Found(rule, [e for e in els if (s := doc.span(e)) and s[1] <= end], span[0], end)


_BETWEEN = re.compile(r"(?:\s|&nbsp;|<br\s*/?>)*", re.I)


def _extend_run(doc: HtmlSource, found: _Found) -> _Found:
    """Take the whole contiguous run of siblings carrying the same marker."""
    src: str = doc.source
    el = found.els[0]
    prev = el.getprevious()
    while prev is not None and found.rule.match != "br-id" and rule_for(prev) == found.rule:
        span = doc.span(prev)
        if span is None or not _BETWEEN.fullmatch(src, span[1], found.start):
            break
        found = _Found(found.rule, [prev, *found.els], span[0], found.end)
        prev = prev.getprevious()
    return found


# Older Gmail writes a bare "-- <br>" before the signature div.
_BARE_DASHES = re.compile(r"--(?: |&nbsp;|\xa0)?\s*<br\s*/?>\s*$", re.I)


def _gmail_prefix(doc: HtmlSource, found: _Found) -> int:
    """Gmail's ``<span class="gmail_signature_prefix">-- </span><br>`` goes with it."""
    if found.rule.client != "gmail":
        return found.start
    bare = _BARE_DASHES.search(doc.source, max(found.start - 40, 0), found.start)
    if bare is not None and not doc.in_excluded(bare.start()):
        return bare.start()
    prev = found.els[0].getprevious()
    if prev is not None and prev.tag == "br":
        prev = prev.getprevious()
    if prev is None or "gmail_signature_prefix" not in (prev.get("class") or "").split():
        return found.start
    span = doc.span(prev)
    src: str = doc.source
    if span is None or not _BETWEEN.fullmatch(src, span[1], found.start):
        return found.start
    return span[0]


# -- the "-- " signature of clients that mark nothing else (K-9, Evolution, KMail …) ---

_DASHES = re.compile(r"--[ \xa0]")
_MAX_DASH_TEXT = 600  # a longer block is not a signature
_VISIBLE = re.compile(r"<(?:img)\b|[^\s<>]", re.I)


def find_html_dashdash(doc: HtmlSource, quoted: list[tuple[int, int]]) -> ClientSig | None:
    """The last own element whose text starts with the RFC 3676 ``-- `` delimiter and
    that closes its own region (nothing visible follows before the quote or the end)."""
    body = doc.body()
    if body is None or "--" not in doc.source or not _dash_in_text(doc.root):
        return None
    found: list[tuple[int, int, str]] = []
    for el in _dash_holders(body):
        text = text_of(el).lstrip()
        if len(text) > _MAX_DASH_TEXT or not _DASHES.match(text[:3] + " "):
            continue
        span = doc.span(el)
        if span is None or _inside(span, quoted) or _overlaps(span, quoted):
            continue
        found.append((span[0], span[1], " ".join(text[2:].replace("\xa0", " ").split())))
    best: tuple[int, int, str] | None = None
    for cand in sorted(found):  # document order; an element nested in the one taken is not
        if best is None or cand[0] >= best[1]:
            best = cand
    if best is None or not best[2]:
        return None
    stop = next_start(best[1], quoted, len(doc.source))
    if _VISIBLE.search(_strip_tags(doc.source[best[1] : stop])):
        return None  # more own text follows: a "-- " in the middle is not the signature
    return ClientSig("dash-dash", best[0], best[1], best[2])


def _dash_in_text(root: etree._Element | None) -> bool:
    """Whether a "-- " delimiter can start any element's text.

    An element's text is a run of the document's text, and a delimiter is "--" then a
    space or a no-break space, or "--" alone (which has no signature text after it, so
    it is never the answer). One serialisation of the document (~6 us) instead of the
    XPath below (~30-45 us): Outlook's <style><!-- … --> has "--" in every reply.
    Serialised in C (eltext's GIL-holding read of a whole document costs more).
    """
    if root is None:
        return False
    text = str(etree.tostring(root, method="text", encoding=str, with_tail=False))
    return "-- " in text or "--\xa0" in text


_DASH_TEXT = etree.XPath("//text()[starts-with(normalize-space(.), '--')]")
_DASH_TAGS = ("div", "p", "pre", "span")


def _dash_holders(body: etree._Element) -> list[etree._Element]:
    """Elements whose text may start with "--": found from the text nodes, in C (reading
    every element's text made a deeply nested message quadratic)."""
    out: list[etree._Element] = []
    seen: set[etree._Element] = set()
    for node in cast("list[Any]", _DASH_TEXT(body)):
        el = node.getparent()
        if el is not None and node.is_tail:
            el = el.getparent()
        for _ in range(4):  # "-- " may sit in a <span> inside the signature's <div>
            if el is None or el.tag == "body":
                break
            if el.tag in _DASH_TAGS and el not in seen:
                seen.add(el)
                out.append(el)
            el = el.getparent()
    return out


_TAGS = re.compile(r"<!--.*?-->|<(?!img\b)[^>]*>", re.S | re.I)


def _strip_tags(fragment: str) -> str:
    return _TAGS.sub("", fragment).replace("&nbsp;", " ")
