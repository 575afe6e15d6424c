"""Outlook for Windows (classic) marks nothing: the signature the sender typed is found
by their directory fields, at the end of the new text, and nowhere else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sigfilter.engine import rewrite, rewritten_message
from sigfilter.placement import ownsig
from sigfilter.placement.lines import SKIPPABLE, line_spans
from sigfilter.placement.ownsig import is_signature_block, is_signoff
from sigfilter.service import SignatureService, embedded_store
from sigfilter.signature import SenderCard
from support import (
    SIGNATURE,
    assert_only_leaves_changed,
    decoded_leaves,
    html_fragments,
    serialised_text,
)

CARD = SenderCard("Avery Quill", ("Head of Mail Flow", "Example Corp", "+1 555 0100"))
SIG = replace(SIGNATURE, sender=CARD)
OURS = '<div class="sigfilter-signature">'
HEAD = (
    "From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\nSubject: x\r\n"
    "MIME-Version: 1.0\r\n"
)
WORD_QUOTE = (
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
    '<p class="MsoNormal"><b>From:</b> Jane Roe &lt;jane@example.net&gt;<br><b>Sent:</b> Monday'
    "<br><b>To:</b> Avery Quill<br><b>Subject:</b> x</p></div>"
    '<p class="MsoNormal">Avery Quill</p><p class="MsoNormal">Head of Mail Flow</p>'
)
TEXT_QUOTE = (
    "From: Jane Roe <jane@example.net>\nSent: Monday\nTo: Avery Quill\nSubject: x\n\n"
    "Avery Quill\nHead of Mail Flow\n"
)


def p(text: str) -> str:
    return f'<p class="MsoNormal">{text}<o:p></o:p></p>'


def message(text: str, html: str | None) -> bytes:
    if html is None:
        return (
            (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text)
            .replace("\n", "\r\n")
            .replace("\r\r\n", "\r\n")
            .encode()
        )
    return (
        HEAD + 'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + text.replace("\n", "\r\n")
        + "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + f'<html><body><div class="WordSection1">{html}</div></body></html>\r\n--b--\r\n'
    ).encode()


# name, text part, HTML part (None: plain-text Outlook), what must stay in the new text
POSITIVE = [
    pytest.param(
        "Hi Jane,\n\nsee below.\n\nAvery Quill\n\nHead of Mail Flow\n\nT +1 (555) 0100\n",
        p("Hi Jane,")
        + p("see below.")
        + p("&nbsp;")
        + p("<b>Avery Quill</b>")
        + p("Head of Mail Flow")
        + p("T +1 (555) 0100"),
        "see below.",
        id="new-word-paragraphs",
    ),
    pytest.param(
        "Thanks!\n\nBest regards,\nAvery Quill | Example Corp\n[cid:image001.png@01DA]\n\n"
        + TEXT_QUOTE,
        p("Thanks!")
        + p("Best regards,")
        + p("Avery Quill | Example Corp")
        + p('<img src="cid:image001.png@01DA">')
        + WORD_QUOTE,
        "Best regards,",
        id="reply-name-pipe-company",
    ),
    pytest.param(
        "Sure.\n\nKind regards,\nAvery\nHead of Mail Flow\n\n" + TEXT_QUOTE,
        p("Sure.") + p("Kind regards,") + p("Avery") + p("Head of Mail Flow") + WORD_QUOTE,
        "Kind regards,",
        id="first-name-after-signoff",
    ),
    pytest.param(
        "Hi,\n\nfine by me.\n\nAvery Quill\nHead of Mail Flow\n+1 555 0100\n",
        None,
        "fine by me.",
        id="plain-text-outlook",
    ),
]


@pytest.mark.parametrize(("text", "html", "stays"), POSITIVE)
def test_typed_signature_replaced(text: str, html: str | None, stays: str) -> None:
    raw = message(text, html)
    result = rewrite(raw, SIG)
    assert result.signed and result.replaced == "typed-signature", result
    out = rewritten_message(raw, result)
    assert_only_leaves_changed(raw, out)
    for kind, body in decoded_leaves(out).items():
        new = body.split("From:")[0]
        assert stays in new
        assert "T +1 (555) 0100" not in new and "Example Corp" not in new
        assert "cid:image001" not in new
        assert new.count("Avery Quill") == 1  # ours only
        assert new.count(OURS if kind == "html" else "-- ") == 1
        if "From:" in text:  # the quote, with the name and title inside it, is untouched
            quote = WORD_QUOTE if kind == "html" else TEXT_QUOTE.replace("\n", "\r\n")
            assert quote in body


NEGATIVE = [
    pytest.param(
        "Avery Quill will send the numbers, Head of Mail Flow agreed.\n", id="name-in-sentence"
    ),
    pytest.param("Hi,\n\nAvery Quill\nHead of Mail Flow\n\nP.S. see you Monday\n", id="text-after"),
    pytest.param("Hi,\n\nthanks\n\nAvery Quill\n", id="name-only"),
    pytest.param("Hi,\n\nsee you then\n\nAvery\nHead of Mail Flow\n", id="first-name-no-signoff"),
    pytest.param("Hi,\n\nthanks\n\n" + TEXT_QUOTE, id="only-in-the-quote"),
    pytest.param(
        "Hi,\n\nAvery Quill\n" + "a long line of prose that goes on and on " * 4 + "+1 555 0100\n",
        id="prose-line",
    ),
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_no_typed_signature(text: str) -> None:
    raw = message(text, None)
    result = rewrite(raw, SIG)
    assert result.signed and result.replaced is None
    body = decoded_leaves(rewritten_message(raw, result))["plain"].replace("\r\n", "\n")
    for line in text.splitlines():
        assert line in body  # nothing the sender wrote is gone


def test_without_directory_fields_nothing_is_guessed() -> None:
    raw = message("Hi,\n\nAvery Quill\nHead of Mail Flow\n", None)
    assert rewrite(raw, SIGNATURE).replaced is None


def test_catalog_lookup_carries_the_directory_card() -> None:
    catalog = Path(__file__).resolve().parents[2] / "examples" / "catalog"
    found = SignatureService(embedded_store(catalog)).lookup("avery.quill@example.com")
    assert found.signature is not None
    card = found.signature.sender
    assert card is not None and card.name == "Avery Quill"
    assert "Head of Mail Flow" in card.details and "+1 555 0100" in card.details


# --- the search reads only the last lines: the same answers as reading them all --------


def all_lines_reading(text: str, limit: int, card: SenderCard) -> tuple[int, int] | None:
    """The first implementation: every non-blank line of the new text, each block's
    sign-off tested; the reference for ownsig.find_text_block."""
    lines = [(s, e) for s, e in line_spans(text, 0, limit) if SKIPPABLE.sub("", text[s:e]).strip()]
    tail = lines[-10:]
    for i in range(len(tail) - 1, -1, -1):
        block = [text[s:e] for s, e in tail[i:]]
        before = text[tail[i - 1][0] : tail[i - 1][1]] if i else ""
        if is_signature_block(block, card, is_signoff(before)):
            return tail[i][0], ownsig._image_lines_end(text, tail[-1][1], limit)
    return None


TYPED_LINES = [
    "Avery Quill", "Avery", "avery quill | Example Corp", "Avery Quill - Head of Mail Flow",
    "Best regards,", "Thanks!", "Head of Mail Flow", "Example Corp", "T +1 (555) 0100",
    "www.example.com", "P.S. see you Monday", "[cid:image001.png@01DA]", "<https://x.example>",
    "", " ", "\t", "x" * 100, "y" * 101, " " + "z" * 100 + " ", "prose about Avery Quill " * 5,
    "Avery Quill " + "w" * 95, "-- ", ">",
]  # fmt: skip


@settings(max_examples=2000, derandomize=True)
@given(
    st.lists(st.sampled_from(TYPED_LINES), max_size=16),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.integers(0, 3000),
    st.sampled_from([CARD, SenderCard("Avery", ("Example Corp",))]),
)
def test_reading_from_the_end_finds_what_reading_all_lines_finds(
    lines: list[str], eol: str, final: bool, cut: int, card: SenderCard
) -> None:
    text = eol.join(lines) + (eol if final else "")
    for limit in {len(text), min(cut, len(text))}:
        want = all_lines_reading(text, limit, card)
        assert ownsig.find_text_block(text, limit, card) == want


# --- climbing to the outermost block: the structural check against the old reading ---

_PIECES = ["", " ", "\xa0", "\n\t", "Avery", "Quill", "ß", "\u2003", "<!--c-->", "x<!--c--> "]
_TAGS = ["p", "div", "span", "b", "td", "font", "i"]


def _text_reading(parent: etree._Element, el: etree._Element) -> bool:
    """The old rule: the parent's normalised text is the element's."""
    return ownsig._norm(serialised_text(parent)) == ownsig._norm(serialised_text(el))


@settings(max_examples=1500, derandomize=True)
@given(html_fragments(_PIECES, _TAGS))
def test_shows_only_answers_as_comparing_the_texts(fragment: str) -> None:
    root = etree.fromstring(f"<html><body><div>{fragment}</div></body></html>", etree.HTMLParser())
    for el in root.iter():
        parent = el.getparent()
        if isinstance(el.tag, str) and parent is not None:
            assert ownsig._shows_only(parent, el) == _text_reading(parent, el), fragment
