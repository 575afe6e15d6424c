"""eltext reads an element's text as lxml's text serialisation does, without it.

The oracle is ``etree.tostring(el, method="text", with_tail=False)``: every element of
generated fragments (comments, processing instructions, script and style, entities,
no-break and other spaces, nesting) and of every HTML part of the test messages.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from lxml import etree

from sigfilter.placement.eltext import has_text, text_head, text_of, text_start
from support import html_fragments, serialised_text

TESTS = Path(__file__).resolve().parents[1]
MESSAGES = sorted((TESTS / "messages").glob("*.eml")) + sorted((TESTS / "corpus").glob("*.eml"))


def check_element(el: etree._Element) -> None:
    if not isinstance(el.tag, str):
        return  # comments and processing instructions: the callers read elements only
    whole = serialised_text(el)
    assert text_of(el) == whole
    assert has_text(el) == bool(whole.strip())
    for size in (0, 1, 5, 40, len(whole) - 1, len(whole), len(whole) + 1):
        if size < 0:
            continue
        head = text_head(el, size)
        assert head == whole[: len(head)]  # a start of the text
        assert head[:size] == whole[:size]
        assert text_start(el, size) == whole[:size]
        assert (len(head) <= size) == (head == whole and len(whole) <= size)


_PIECES = ["", " ", "\xa0", "\n\t", "Avery", "ß", "\u2003", "&amp;", "&nbsp;", "&bogus;",
           "<!--c-->", "<?pi x?>", "x<!-- c --> y", "<br>", "<img src=a>"]  # fmt: skip
_TAGS = ["p", "div", "span", "b", "td", "font", "script", "style", "title", "textarea"]


@settings(max_examples=1000, derandomize=True)
@given(html_fragments(_PIECES, _TAGS, most=4))
def test_generated_fragments(fragment: str) -> None:
    root = etree.fromstring(f"<html><body><div>{fragment}</div></body></html>", etree.HTMLParser())
    for el in root.iter():
        check_element(el)


def _html_parts(path: Path) -> list[str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True) or b""
            out.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return out


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.name)
def test_every_element_of_real_messages(path: Path) -> None:
    for html in _html_parts(path):
        if not html.strip():
            continue
        root = etree.fromstring(html.encode(), etree.HTMLParser(encoding="utf-8"))
        if root is None:
            continue
        for el in root.iter():
            check_element(el)


def test_the_messages_have_html() -> None:
    assert sum(bool(_html_parts(p)) for p in MESSAGES) >= 20
