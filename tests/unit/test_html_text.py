"""The shortcuts HTML placement takes to read element text give the old answers.

Placement reads element text many times per message; the cheaper forms here must be
equal to the forms they replaced, for every input (tests/bench/engine_digest.py
compares the engine's answers over the corpus; these pin the pieces).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_textquote import INTROS

from sigfilter.placement import clientsig, html
from sigfilter.placement.html import OUR_CLASS, OUR_COMMENT, _norm
from sigfilter.placement.textquote import starts_with_quote_intro
from support import CORPUS

BODIES = CORPUS / "bodies"

WHITESPACE = re.compile(r"\s+")


def test_regex_whitespace_is_str_whitespace_on_every_code_point() -> None:
    # _norm splits with str.split(); the regex form it replaced used re's \s.
    spaces = re.compile(r"\s")
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        assert bool(spaces.match(ch)) == ch.isspace(), hex(cp)


@given(st.text(alphabet=st.sampled_from("ab \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000é"), max_size=40))
def test_norm_is_the_regex_form(text: str) -> None:
    assert _norm(text) == WHITESPACE.sub(" ", text).strip()


def reference_ours(source: str, limit: int) -> bool:
    """has_our_signature before the "-signature" pre-check (the old code)."""
    if re.compile(re.escape(OUR_COMMENT), re.I).search(source, 0, limit):
        return True
    ours = re.compile(r"\b" + re.escape(OUR_CLASS) + r"\b", re.I)
    for m in html._CLASS_VALUE.finditer(source, 0, limit):
        if ours.search(m.group(1) or m.group(2) or m.group(3) or ""):
            return True
    return False


OURS_CASES = [
    '<div class="sigfilter-signature">x</div>',
    "<div class='a SIGFILTER-Signature b'>x</div>",
    "<div class=sigfilter-signature>x</div>",
    '<div class="sigfilter-signatures">x</div>',  # another class
    '<div title="sigfilter-signature">x</div>',  # not a class
    '<div class="x">sigfilter-signature</div>',  # text
    '<div class="sigfilter-ſignature">x</div>',  # re's IGNORECASE: ſ is s
    '<div class="x"><!--SigFilter--></div>',
    '<p class="-signature">a</p><p class="sigfilter-signature">b</p>',
    "class=" * 50 + '"sigfilter-signature"',
]


@pytest.mark.parametrize("source", OURS_CASES)
def test_our_signature_check_is_the_old_one(source: str) -> None:
    for limit in range(len(source) + 1):
        assert html.has_our_signature(source, limit) == reference_ours(source, limit), limit


@given(
    st.lists(
        st.sampled_from(
            [
                "class=",
                '"',
                "'",
                ">",
                "<",
                " ",
                "sigfilter",
                "-",
                "signature",
                "SIGNATURE",
                "ſ",
                "x",
            ]
        ),
        max_size=14,
    ).map("".join)
)
def test_our_signature_check_on_any_source(source: str) -> None:
    assert html.has_our_signature(source, len(source)) == reference_ours(source, len(source))


# -- small HTML documents for the shortcuts that skip a search ----------------------------

PIECES = [
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<span>",
    "</span>",
    "<pre>",
    "<br>",
    "<b>",
    "</b>",
    "<style>",
    "</style>",
    "<!--",
    "-->",
    "--",
    "-",
    "&#45;",
    "&nbsp;",
    "\xa0",
    " ",
    "\n",
    "sig",
    "Avery Quill",
    '<blockquote type="cite">',
    "</blockquote>",
    '<div class="gmail_quote">',
]
DOCUMENTS = st.lists(st.sampled_from(PIECES), max_size=16).map(
    lambda parts: "<html><head><style><!--\np{}\n--></style></head><body>" + "".join(parts)
)


@given(DOCUMENTS)
def test_dash_pre_check_changes_no_answer(source: str) -> None:
    doc = html.HtmlSource(source)
    quoted = html.quoted_spans(doc, html._all_candidates(doc), html._intro_text_node(doc))
    found = clientsig.find_html_dashdash(doc, quoted)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clientsig, "_dash_in_text", lambda root: True)
        assert clientsig.find_html_dashdash(doc, quoted) == found


def test_dash_pre_check_lets_a_delimiter_through() -> None:
    doc = html.HtmlSource("<html><body><p>Hi</p><div>--&nbsp;<br>Avery</div></body></html>")
    found = clientsig.find_html_dashdash(doc, [])
    assert found is not None and found.text == "Avery"


ODD_TAGS = (
    "<html><body><a{b>x</a{b><q*>y</q*><o:p>z</o:p><P>w</P><x-y>v</x-y><div><p>u</div>"
    "<!-- c --><?pi x?><svg><path/></svg><math><mi>t</mi></math></body></html>"
)


@pytest.mark.parametrize(
    "source",
    [ODD_TAGS, *(p.read_text("utf-8", "replace") for p in sorted(BODIES.glob("*.html")))],
)
def test_numbering_per_tag_is_numbering_of_all(source: str) -> None:
    doc = html.HtmlSource(source)
    every = doc._numbered_all()
    for el in doc.elements():
        assert doc._element_number(el) == every.get(id(el)), el.tag


# -- the quote-intro pre-check (html._may_open_quote) ------------------------------------

INTRO_WORDS = [
    "On",
    "Mon,",
    "Jan",
    "1,",
    "2024",
    "10",
    "00",
    "AM",
    "John",
    "<john@example.com>",
    "wrote",
    "writes",
    "From",
    "Von",
    "Sent",
    "Original",
    "Message",
    "Begin forwarded message",
    "Am",
    "schrieb",
    "差出人",
    "于2024年1月1日",
    "写道",
    "пишет",
    "ср,",
    "30",
    "апр.",
    "г.",
    "в",
    "*",
    ":",
    "：",
    "-",
    "----",
    "\xa0",
]


@pytest.mark.parametrize("text", INTROS)
def test_every_intro_example_passes_the_pre_check(text: str) -> None:
    assert starts_with_quote_intro(text) and html._may_open_quote(text)


@given(st.lists(st.sampled_from(INTRO_WORDS), max_size=14).map(" ".join))
def test_no_intro_fails_the_pre_check(text: str) -> None:
    if starts_with_quote_intro(text):
        assert html._may_open_quote(text), text


@given(
    st.lists(
        st.sampled_from([w for w in INTRO_WORDS if not html._may_open_quote(w)]), max_size=14
    ).map(" ".join)
)
def test_without_colon_or_dash_nothing_is_an_intro(text: str) -> None:
    assert not starts_with_quote_intro(text)


# -- comments and raw-text elements (html.excluded_regions) -------------------------------

EXCLUDED_PIECES = [
    "<!--",
    "-->",
    "<!-",
    "--",
    "<script",
    "<SCRIPT>",
    "<style>",
    "<ſtyle>",
    "<tıtle>",
    "<tİtle>",
    "<textarea x=1>",
    "</style>",
    "</style >",
    "</STYLE\n>",
    "</ſtyle>",
    "</script>",
    "</scrİpt>",
    "</scripts>",
    "<scriptx>",
    "</title>",
    "</tıtle>",
    "</textarea>",
    ">",
    "<",
    "x",
    " ",
    "\n",
]


def reference_excluded(source: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in html._EXCLUDED.finditer(source)]


@given(st.lists(st.sampled_from(EXCLUDED_PIECES), max_size=16).map("".join))
def test_excluded_regions_are_the_regex_matches(source: str) -> None:
    assert html.excluded_regions(source) == reference_excluded(source)


@pytest.mark.parametrize("path", sorted(BODIES.glob("*.html")), ids=lambda p: p.name)
def test_excluded_regions_of_the_corpus(path: Path) -> None:
    source = path.read_text("utf-8", "replace")
    assert html.excluded_regions(source) == reference_excluded(source)


# -- the end of the body (html.find_end) ---------------------------------------------------


def test_only_ascii_letters_lower_case_to_the_end_tags_letters() -> None:
    letters = set("bodyhtml")
    for cp in range(sys.maxunicode + 1):
        low = chr(cp).lower()
        if low in letters:
            assert chr(cp) in (low, low.upper()), hex(cp)


def reference_end(source: str) -> tuple[int, str]:
    """find_end as it was: stepping back over every "</"."""
    doc = html.HtmlSource(source)
    for tag in ("</body", "</html"):
        end = len(source)
        while True:
            pos = source.rfind("</", 0, end)
            while pos >= 0 and not (
                pos + len(tag) <= end and source[pos : pos + len(tag)].lower() == tag
            ):
                pos = source.rfind("</", 0, pos + 1)
            if pos < 0 or not doc.in_excluded(pos):
                break
            end = pos
        if pos >= 0:
            return pos, tag[2:]
    return len(source.rstrip()), "eof"


END_PIECES = ["</body>", "</BODY >", "</bOdY", "</html>", "</HTML", "</b", "</", "<!--", "-->"]
END_PIECES += ["<script>", "</script>", "x", "İ", "K", " ", "\n", "</ody>", "</bodyx"]


@given(st.lists(st.sampled_from(END_PIECES), max_size=12).map("".join), st.integers(0, 12))
def test_find_end_is_the_old_search(source: str, closers: int) -> None:
    source += "</p>" * closers  # more than html._END_STEPS: the forward search answers
    spot = html.find_end(html.HtmlSource(source))
    assert (spot.start, spot.detail) == reference_end(source)
