"""Property: with client_signature = "replace", no generated message ever ends up with two
of our signatures, keeps the client's own one, or loses a byte of its quoted thread."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigfilter.engine import Options, rewrite, rewritten_message
from support import SIGNATURE, assert_only_leaves_changed, decoded_leaves

PROPS = settings(
    max_examples=200,
    deadline=10_000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
OURS = '<div class="sigfilter-signature">'
OLD = "Zed Oldsig Title"  # the client's signature text: never in our signature or prose
HEAD = "From: a@example.com\r\nTo: b@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\n"

words = st.text(alphabet="abcdefghij klmnop,.", min_size=1, max_size=40).map(
    lambda s: s.strip() or "ok"
)


@dataclass(frozen=True)
class Shape:
    name: str
    html: str  # {old} is the client's signature text
    text: str
    below: bool  # the client puts it below the quote


SHAPES = [
    Shape("owa", '<div id="Signature">{old}</div>', "{old}\n", False),
    Shape("gmail-above", '<div class="gmail_signature">{old}</div>', "{old}\n", False),
    Shape(
        "gmail-below",
        '<br><span class="gmail_signature_prefix">-- </span><br><div class="gmail_signature">{old}</div>',
        "-- \n{old}\n",
        True,
    ),
    Shape(
        "thunderbird-below", '<div class="moz-signature">-- <br>{old}</div>', "-- \n{old}\n", True
    ),
    Shape("ios12", '<div id="AppleMailSignature" dir="ltr">{old}</div>', "{old}\n", False),
    Shape("dash-dash", "<div>-- <br>{old}</div>", "-- \n{old}\n", False),
    Shape("none", "", "", False),
]

# Quoted threads, with client markers and one of OUR signatures inside (all must stay).
QUOTES_HTML = [
    '<div class="gmail_quote"><div class="gmail_attr">On Mon, Sep 1, 2025 at 9:00 AM J '
    '&lt;j@example.net&gt; wrote:<br></div><blockquote class="gmail_quote">{q}'
    '<div class="gmail_signature">Quoted Gmail Sig</div>'
    '<div class="sigfilter-signature"><!--sigfilter-->Earlier ours</div></blockquote></div>',
    '<div class="moz-cite-prefix">On 9/1/25 9:00 AM, J wrote:<br></div>'
    '<blockquote type="cite">{q}<div class="moz-signature">-- <br>Quoted TB</div></blockquote>',
]
QUOTE_TEXT = (
    "On Mon, Sep 1, 2025 at 9:00 AM J <j@example.net> wrote:\n\n> {q}\n> -- \n> Quoted sig\n"
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, str, str, Shape]:
    shape = draw(st.sampled_from(SHAPES))
    new = draw(words)
    quoted = draw(st.one_of(st.none(), words))
    html_quote = draw(st.sampled_from(QUOTES_HTML)).format(q=quoted) if quoted is not None else ""
    text_quote = QUOTE_TEXT.format(q=quoted) if quoted is not None else ""
    sig_html = shape.html.format(old=OLD)
    sig_text = shape.text.format(old=OLD)
    if shape.below and quoted is not None:
        html = f"<div>{new}</div>{html_quote}{sig_html}"
        text = f"{new}\n\n{text_quote}\n{sig_text}"
    else:
        html = f"<div>{new}</div>{sig_html}{html_quote}"
        text = f"{new}\n\n{sig_text}\n{text_quote}"
    html = f"<html><body>{html}</body></html>"
    raw = (
        HEAD + 'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + text.replace("\n", "\r\n")
        + "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
        + "\r\n--b--\r\n"
    ).encode()
    return raw, html_quote, text_quote.replace("\n", "\r\n"), shape


@PROPS
@given(messages())
def test_replace_never_two_signatures_never_a_quote_byte_lost(
    case: tuple[bytes, str, str, Shape],
) -> None:
    raw, html_quote, text_quote, shape = case
    result = rewrite(raw, SIGNATURE, Options(client_signature="replace"))
    assert result.signed, (result.reason, result.detail)
    out = rewritten_message(raw, result)
    assert_only_leaves_changed(raw, out)
    before, after = decoded_leaves(raw), decoded_leaves(out)
    # exactly one more of ours: the earlier one in the quote stays, no second new one
    assert after["html"].count(OURS) == before["html"].count(OURS) + 1
    assert after["plain"].count("Avery Quill") == 1
    # the quoted thread, byte for byte (client markers and our old signature included)
    assert html_quote in after["html"]
    assert text_quote in after["plain"]
    if shape.name != "none":
        assert OLD not in after["html"] and OLD not in after["plain"], shape.name
        assert result.replaced is not None
