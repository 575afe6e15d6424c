"""Invariants the fuzzers check (shared by the hypothesis tests and the atheris harness).

Each function takes one input, runs one target, and raises AssertionError when an
invariant breaks. A Python exception other than the documented refusal is a bug too.
"""

from __future__ import annotations

import re

from sigfilter.engine import rewrite, rewritten_message
from sigfilter.mime.scan import MAX_DEPTH, MAX_PARTS, MimeStructureError, Part, scan
from sigfilter.placement.html import HtmlSource, html_spots
from sigfilter.placement.spot import Kind
from support import (
    SIG_TOKEN,
    SIGNATURE,
    SKIP_REASONS,
    assert_only_leaves_changed,
    decoded_leaves,
)

MARKER = "{EMAILSIGNATURE}"


def check_scan(raw: bytes) -> None:
    """The scanner refuses with MimeStructureError or returns consistent offsets."""
    try:
        root = scan(raw)
    except MimeStructureError:
        return
    parts = root.walk()
    assert len(parts) <= MAX_PARTS
    for part in parts:
        assert part.depth <= MAX_DEPTH
        assert 0 <= part.start <= part.body_start <= part.body_end <= len(raw), part
        _check_children(part)


def _check_children(part: Part) -> None:
    prev_end = part.body_start
    for child in part.children:
        assert child.depth == part.depth + 1
        assert prev_end <= child.start and child.body_end <= part.body_end, (part, child)
        prev_end = child.body_end


def check_html(source: str) -> None:
    """Every spot lies inside the source; the marker spot covers a marker."""
    spots = html_spots(source, MARKER)
    assert 0 <= spots.quote_start <= len(source)
    for kind, spot in spots.found.items():
        assert 0 <= spot.start <= spot.end <= len(source), (kind, spot)
        if kind is Kind.MARKER:
            assert MARKER in source[spot.start : spot.end]
        if kind is Kind.QUOTE:
            assert spot.start == spots.quote_start


def check_html_index(source: str) -> None:
    """The one-pass tag index agrees with a direct scan for every element of the tree."""
    doc = HtmlSource(source)
    if doc.root is None:
        return
    for el in doc.root.iter():
        if not isinstance(el.tag, str):
            continue
        start = doc.offset(el)
        if start is None:
            continue
        found = source[start : start + len(el.tag) + 1]
        assert found.lower() == "<" + el.tag.lower()  # libxml2 lower-cases ASCII only
        mine, ref = doc.element_end(el, start), reference_end(doc, str(el.tag), start)
        # A start tag written inside another tag's attributes gets no end, by design.
        assert mine == ref or (mine is None and doc.inside_tag(start)), (el.tag, start, mine, ref)


def reference_end(doc: HtmlSource, tag: str, start: int) -> int | None:
    """The matching end tag found by scanning from ``start`` (the original method).

    One deliberate difference: ``<div/>`` has no end. The old scan then returned the
    end of the *next* element, and a span ending there replaced the wrong text.
    """
    depth = 0
    pattern = rf"<(/?){re.escape(tag)}(?=[\s/>])[^>]*>"
    for n, m in enumerate(re.finditer(pattern, doc.source[start:], re.I)):
        if n == 0 and m.group(0).endswith("/>"):
            return None
        if doc.in_excluded(start + m.start()):
            continue
        if m.group(1):
            depth -= 1
            if depth == 0:
                return start + m.end()
        elif not m.group(0).endswith("/>"):
            depth += 1
    return None


def check_engine(raw: bytes) -> None:
    """Signed with only text leaves changed, or skipped and byte-identical; never a bug."""
    result = rewrite(raw, SIGNATURE)
    # A bug raises (engine.py); bad input is one of the skip words.
    assert result.signed or result.reason in SKIP_REASONS, result.detail
    out = rewritten_message(raw, result)
    if not result.signed:
        assert out == raw
        return
    assert_only_leaves_changed(raw, out)
    assert any(SIG_TOKEN in text for text in decoded_leaves(out).values())
