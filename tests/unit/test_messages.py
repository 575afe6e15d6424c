"""Every synthetic per-client message and every real corpus message, CRLF and LF.

For each: the decision (placement or skip reason) is the expected one; a skipped
message comes out byte-identical; a signed one differs only inside its text leaves,
keeps its attachments, carries the signature in each text leaf, above the quote
marker, with the client footer gone from the new text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sigfilter.engine import Result, rewrite, rewritten_message
from support import (
    CORPUS,
    MESSAGES,
    SIG_TOKEN,
    SIGNATURE,
    Expectation,
    assert_only_leaves_changed,
    attachments,
    decoded_leaves,
    line_forms,
    load_manifest,
    parse,
)

OURS = '<div class="sigfilter-signature">'
SYNTHETIC = load_manifest(MESSAGES)


def _check_signed(raw: bytes, result: Result, exp: Expectation) -> None:
    out = rewritten_message(raw, result)
    assert_only_leaves_changed(raw, out)
    assert attachments(parse(out)) == attachments(parse(raw))
    before = decoded_leaves(raw)
    after = decoded_leaves(out)
    assert after.keys() == before.keys()
    for kind, text in after.items():
        sig = text.find(OURS if kind == "html" else SIG_TOKEN)
        assert sig >= 0, f"no signature in the text/{kind} part"
        marker = exp.html_quote_marker if kind == "html" else exp.text_quote_marker
        if marker != "-":
            assert marker in text, f"quote marker lost from text/{kind}"
            assert sig < text.index(marker), f"signature below the quote in text/{kind}"
            assert text.count(marker) == before[kind].count(marker)
        if exp.footer != "-":
            new_text = text[: text.index(marker)] if marker != "-" and marker in text else text
            assert exp.footer not in new_text, f"footer left in text/{kind}"


@pytest.mark.parametrize("exp", SYNTHETIC, ids=lambda e: e.file[:-4])
@pytest.mark.parametrize("form", ["crlf", "lf"])
def test_synthetic_messages(exp: Expectation, form: str) -> None:
    raw = line_forms((MESSAGES / exp.file).read_bytes())[form]
    result = rewrite(raw, SIGNATURE)
    if exp.expect.startswith("skip:"):
        assert (result.action, result.reason) == ("skipped", exp.expect[5:]), result.detail
        assert rewritten_message(raw, result) == raw
        return
    assert result.signed, (result.reason, result.detail)
    assert result.placement == exp.expect
    _check_signed(raw, result, exp)


def test_manifest_covers_every_file() -> None:
    listed = {e.file for e in SYNTHETIC}
    assert listed == {p.name for p in MESSAGES.glob("*.eml")}
    assert len(listed) >= 40


# Real messages from public projects' fixtures (tests/corpus/ATTRIBUTION.md): what a
# person would expect for each, full mode, with our test signature.
CORPUS_EXPECT: dict[str, tuple[str, str, str, str]] = {
    # file prefix: (expect, html quote marker, text quote marker, footer)
    "d001": ("quote", '<div class="gmail_quote">', "-", "-"),  # its text part has no quote
    "d002": ("skip:charset", "-", "-", "-"),
    "d003": ("quote", "-", "---------- Forwarded message ----------", "-"),
    "d004": ("skip:signed-smime", "-", "-", "-"),
    "d005": ("skip:signed-pgp", "-", "-", "-"),
    "d006": ("skip:auto-reply", "-", "-", "-"),
    "d007": ("end", "-", "-", "-"),
    "d008": ("end", "-", "-", "-"),
    "d009": ("end", "-", "-", "-"),
    "d010": ("end", "-", "-", "-"),
    "d011": ("skip:malformed", "-", "-", "-"),
    "d012": ("end", "-", "-", "-"),
    "d013": ("skip:signed-pgp", "-", "-", "-"),
    "d014": ("skip:auto-reply", "-", "-", "-"),
    "d015": ("skip:malformed", "-", "-", "-"),
    "d016": ("skip:malformed", "-", "-", "-"),
    "d017": ("end", "-", "-", "-"),
    "d018": ("end", "-", "-", "-"),
    "d019": ("end", "-", "-", "-"),
    "d020": ("end", "-", "-", "-"),
    "d021": ("end", "-", "-", "-"),
    "d022": ("skip:malformed", "-", "-", "-"),
    "d023": ("skip:signed-pgp", "-", "-", "-"),
    "d024": ("end", "-", "-", "-"),
    "d025": ("skip:encrypted", "-", "-", "-"),
    "d026": ("skip:signed-smime", "-", "-", "-"),
    "d027": ("skip:calendar", "-", "-", "-"),
    "d028": ("end", "-", "-", "-"),
    "d029": ("skip:malformed", "-", "-", "-"),
    "d030": ("end", "-", "-", "-"),
    "d031": ("quote", "border-top:solid #E1E1E1", "Da:", "-"),
    "d032": ("end", "-", "-", "-"),
    "d033": ("client", "-", "-", "-"),  # Gmail signature below the quote: test_client_signatures
    "d034": ("skip:auto-reply", "-", "-", "-"),
    "d035": ("end", "-", "-", "-"),
    "d036": ("end", "-", "-", "-"),
    "d037": ("client", "-", "-", "-"),
}
CORPUS_FILES = sorted(CORPUS.glob("d*.eml"))


def test_corpus_table_is_complete() -> None:
    assert {p.name[:4] for p in CORPUS_FILES} == set(CORPUS_EXPECT)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name[:30])
@pytest.mark.parametrize("form", ["crlf", "lf"])
def test_corpus_messages(path: Path, form: str) -> None:
    expect, html_marker, text_marker, footer = CORPUS_EXPECT[path.name[:4]]
    raw = line_forms(path.read_bytes())[form]
    result = rewrite(raw, SIGNATURE)
    if expect.startswith("skip:"):
        assert (result.action, result.reason) == ("skipped", expect[5:]), result.detail
        assert rewritten_message(raw, result) == raw
        return
    assert result.signed, (result.reason, result.detail)
    assert result.placement == expect
    exp = Expectation(path.name, "-", expect, html_marker, text_marker, footer, "")
    _check_signed(raw, result, exp)
