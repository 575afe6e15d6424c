"""Reproducers of crashes and misplacements the fuzzers found (tests/fuzz/)."""

from __future__ import annotations

import pytest

from sigfilter.engine import rewrite, rewritten_message
from sigfilter.placement.html import HtmlSource, html_spots
from sigfilter.placement.spot import Kind
from support import SIGNATURE, decoded_leaves

REPLY = (
    '<html><body><p>Hi<br>{c}there</p><div class="gmail_quote">On Mon, Bob wrote:'
    "<blockquote>old</blockquote></div></body></html>"
)


# atheris, crash-244e5abe…: a control character after a <br> made lxml refuse the
# private tree's tail text (ValueError); html_spots fell back to no tree, lost the
# quote and put the signature below the quoted thread.
@pytest.mark.parametrize("char", ["\x01", "\x0b", "\x0c", "\x1b", "\ufffe"])
def test_control_character_in_text_keeps_the_quote(char: str) -> None:
    source = REPLY.format(c=char)
    HtmlSource(source)  # raised ValueError before the fix
    spots = html_spots(source, "{EMAILSIGNATURE}")
    quote = spots.get(Kind.QUOTE)
    assert quote is not None and quote.detail == "gmail_quote"
    assert quote.start == source.index('<div class="gmail_quote">')


def test_form_feed_reply_is_signed_above_the_quote() -> None:
    raw = (
        "From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + REPLY.format(c="\x0c")
    ).encode()
    result = rewrite(raw, SIGNATURE)
    assert result.signed and result.placement == "quote"
    html = decoded_leaves(rewritten_message(raw, result))["html"]
    assert html.index("sigfilter-signature") < html.index("gmail_quote")
