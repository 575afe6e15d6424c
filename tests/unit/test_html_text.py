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
from lxml import etree
from test_textquote import INTROS

from sigfilter.placement import clientsig, html, ownsig
from sigfilter.placement.html import OUR_CLASS, OUR_COMMENT, _norm
from sigfilter.placement.spot import Kind
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
    "<!-- c --><?pi x?><svg><path/></svg><math><mi>t</mi></math><me\x11ta>s</me\x11ta>"
    "</body></html>"
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


# -- client-signature rules (clientsig.rule_for) ------------------------------------------


def reference_rule(el: etree._Element) -> clientsig.Rule | None:
    """rule_for as it was: every attribute read whatever the element carries."""
    tag: object = el.tag
    if not isinstance(tag, str):
        return None
    ix = clientsig._INDEX
    eid = el.get("id")
    if eid is not None:
        if tag == "br":
            return ix.br_ids.get(eid)
        if eid in ix.ids:
            return ix.ids[eid]
    cls = el.get("class")
    if cls:
        for token in cls.split():
            if token in ix.classes:
                return ix.classes[token]
            for rx, rule in ix.class_res:
                if rx.fullmatch(token):
                    return rule
    name = el.get("name")
    if name is not None and name in ix.names:
        return ix.names[name]
    for attr, value, rule in ix.attrs:
        if el.get(attr) == value:
            return rule
    return ix.tags.get(tag.lower())


CLASS_RE_EXAMPLES = {"ydp[0-9a-f]{8}signature": "ydp1a2b3c4dsignature"}


def _marked_elements() -> str:
    rows = clientsig.RULES
    out = ["<html><body><br id=''><p id='' class='' name=''>x</p><signature>s</signature>"]
    for r in rows:
        if r.match in ("id", "br-id"):
            out.append(f"<br id='{r.value}'><div id='{r.value}' class='gmail_signature'>x</div>")
        elif r.match in ("class", "class-re"):
            value = r.value if r.match == "class" else CLASS_RE_EXAMPLES[r.value]
            out.append(
                f"<div class='MsoNormal {value}' id='x'>x</div><span class='{value}'>y</span>"
            )
        elif r.match in ("name", "start-name"):
            out.append(f"<a name='{r.value}'></a><div name='{r.value}' data-marker='x'>z</div>")
        elif r.match == "attr":
            attr, value = r.value.split("=", 1)
            out.append(f"<div {attr}='{value}'>w</div><div {attr}='{value}x'>w</div>")
        else:
            out.append(f"<{r.value}>t</{r.value}>")
    return "".join(out) + "</body></html>"


@pytest.mark.parametrize(
    "source",
    [_marked_elements(), *(p.read_text("utf-8", "replace") for p in sorted(BODIES.glob("*.html")))],
)
def test_rule_for_is_the_old_rule(source: str) -> None:
    doc = html.HtmlSource(source)
    rules = [clientsig.rule_for(el) for el in doc.elements()]
    assert rules == [reference_rule(el) for el in doc.elements()]


def test_the_marked_elements_carry_every_kind_of_rule() -> None:
    doc = html.HtmlSource(_marked_elements())
    found = {rule.match for el in doc.elements() if (rule := clientsig.rule_for(el))}
    assert found == {r.match for r in clientsig.RULES}


# -- the sender's name in the new text (ownsig.shows_name) ---------------------------------


def test_folds_to_ascii_lists_every_such_character() -> None:
    found = "".join(
        chr(cp)
        for cp in range(0x80, sys.maxunicode + 1)
        if any(ord(x) < 0x80 for x in chr(cp).casefold())
    )
    assert found == ownsig.FOLDS_TO_ASCII


NAME_TEXT = st.text(
    alphabet=st.sampled_from("aAvVeErRyYsSiIkKfFlLtT ü<>\ud800" + ownsig.FOLDS_TO_ASCII)
)
FIRSTS = ["avery", "ss", "strasse", "fi", "k", "i̇", "müller", "ry", "a"]


@given(NAME_TEXT, st.sampled_from(FIRSTS))
def test_shows_name_is_a_search_of_the_folded_text(text: str, first: str) -> None:
    assert ownsig.shows_name(text, first) == (first in text.casefold())


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Grüße von Avery", "avery"),
        ("Straße", "strasse"),
        ("Grüße, STRAẞE", "strasse"),
        ("ﬁrst", "first"),
        ("\u212aate", "kate"),
        ("Av\u00e9ry", "avery"),
        ("Avẙ", "avy\u030a"),
    ],
)
def test_shows_name_examples(text: str, first: str) -> None:
    assert ownsig.shows_name(text, first) == (first in text.casefold())


def test_long_attribute_values_are_not_kept() -> None:
    value = "gmail_quote " + "x" * clientsig.MAX_KEPT_VALUE
    doc = html.HtmlSource(f'<html><body><div class="{value}" id="{value}">q</div></body></html>')
    before = (
        clientsig._kept_class_rule.cache_info().currsize,
        html._kept_class_styles.cache_info().currsize,
        html._kept_id_styles.cache_info().currsize,
    )
    assert [style for _, style in html._quote_candidates(doc)] == ["gmail_quote"]
    assert [clientsig.rule_for(el) for el in doc.elements()] == [None] * 3
    after = (
        clientsig._kept_class_rule.cache_info().currsize,
        html._kept_class_styles.cache_info().currsize,
        html._kept_id_styles.cache_info().currsize,
    )
    assert after == before


def test_a_tag_name_lxml_cannot_filter_on() -> None:
    # atheris: libxml2 names an element "me\x11ta", which lxml's tag filter refuses
    # (ValueError); such an element is numbered, and ends the footer scan, all the same.
    intro = "On Mon, Jan 1, 2024 at 10:00 AM Jane <jane@example.net> wrote:"
    source = (
        "<html><body><p>Hi</p><p>Sent from my iPhone</p>"
        f'<me\x11ta>{intro}</me\x11ta><blockquote type="cite">old</blockquote>'
        "<p>Sent from my iPad</p></body></html>"
    )
    spots = html.html_spots(source, "{EMAILSIGNATURE}")
    quote, footer = spots.get(Kind.QUOTE), spots.get(Kind.FOOTER)
    assert quote is not None and source[quote.start :].startswith("<me\x11ta>")
    assert footer is not None and source[footer.start : footer.end].startswith(
        "<p>Sent from my iPhone"
    )
