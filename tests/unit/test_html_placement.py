"""HTML placement per mail client (quotequail-style tables).

Each case is an HTML body wrapped in a one-part message and run through the engine;
the test reads the decoded HTML back and asserts where our signature landed relative
to text that must stay before it and the quote marker that must stay after it.
"""

from __future__ import annotations

import pytest

from sigfilter.engine import Options, rewrite, rewritten_message
from sigfilter.placement.html import html_spots
from sigfilter.placement.spot import Kind
from support import CORPUS, SIGNATURE, decoded_leaves

BODIES = CORPUS / "bodies"
OURS = '<div class="sigfilter-signature">'


def sign_html(html: str, mode: str = "full") -> tuple[str, str]:
    raw = (
        "From: avery.quill@example.com\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html
    ).encode("utf-8")
    result = rewrite(raw, SIGNATURE, Options(mode=mode))  # type: ignore[arg-type]
    assert result.signed, (result.reason, result.detail)
    assert result.placement is not None
    return decoded_leaves(rewritten_message(raw, result))["html"], result.placement


# file, placement, text that stays before the signature, quote marker after it, footer gone
CLIENT_BODIES = [
    ("db01_quotequail_apple_reply.html", "quote", "Bar</div>", '<blockquote type="cite"', None),
    ("db02_quotequail_apple_forward.html", "quote", "blah<br", '<blockquote type="cite"', None),
    (
        "db03_quotequail_ios_mail_reply.html",
        "footer",
        "there at 2.</div>",
        "On Sep 4, 2025",
        "Sent from my iPhone",
    ),
    (
        "db04_quotequail_gmail_reply.html",
        "quote",
        "bar</div></div>",
        '<div class="gmail_quote">',
        None,
    ),
    (
        "db05_quotequail_gmail_forward.html",
        "quote",
        "blah</div>",
        '<div class="gmail_quote">',
        None,
    ),
    (
        "db06_quotequail_outlook_forward.html",
        "quote",
        "More text</span>",
        "border-top:solid #B5C4DF",
        None,
    ),
    (
        "db07_quotequail_thunderbird_forward.html",
        "quote",
        "<p><br>",
        '<div class="moz-forward-container">',
        None,
    ),
    (
        "db08_quotequail_yahoo_reply.html",
        "quote",
        "<br><br>Dan</div>",
        'class="ydp9b1f0a55yahoo_quoted"',
        None,
    ),
    (
        "db09_quotequail_mailru_forward.html",
        "quote",
        "<body>",
        "-------- Пересылаемое сообщение",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "placement", "before", "after", "footer"), CLIENT_BODIES, ids=lambda v: str(v)[:20]
)
def test_client_bodies(
    name: str, placement: str, before: str, after: str, footer: str | None
) -> None:
    source = (BODIES / name).read_text("utf-8")
    out, got = sign_html(source)
    assert got == placement
    sig = out.index(OURS)
    assert out.index(before) + len(before) <= sig, "the signature sits above the new text"
    assert sig < out.index(after), "the signature sits below the quote marker"
    assert out.count(after) == source.count(after)
    if footer:
        assert footer not in out[: out.index(after)]
    # nothing but the signature was added
    assert out.replace(_sig_block(out), "") == _without_footer(source, out)


def _sig_block(out: str) -> str:
    start = out.index(OURS)
    depth, pos = 0, start
    while True:
        nxt_open = out.find("<div", pos)
        nxt_close = out.find("</div>", pos)
        if nxt_open != -1 and nxt_open < nxt_close:
            depth, pos = depth + 1, nxt_open + 4
        else:
            depth, pos = depth - 1, nxt_close + 6
            if depth == 0:
                return out[start:pos]


def _without_footer(source: str, out: str) -> str:
    """The source with the replaced footer element removed (for footer placements)."""
    if "Sent from my iPhone" in source and "Sent from my iPhone" not in out:
        return source.replace('<div dir="ltr">Sent from my iPhone</div>', "")
    return source


SYNTHETIC = [
    pytest.param(
        '<html><body><div>Works for me.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Jane<br><b>Sent:</b> Monday</div><div>old</div></body></html>',
        "quote",
        "Works for me.</div>",
        '<div id="appendonsend">',
        id="outlook-web",
    ),
    pytest.param(
        '<html><body><div>Ok</div><hr><div id="x_divRplyFwdMsg"><b>From:</b> Jane</div></body></html>',
        "quote",
        "Ok</div>",
        "<hr>",
        id="outlook-mac-x-prefixed",
    ),
    pytest.param(
        '<html><body><div>Ok</div><div class="moz-cite-prefix">On 9/1/25 Jane wrote:<br></div>'
        '<blockquote type="cite">old</blockquote></body></html>',
        "quote",
        "Ok</div>",
        '<div class="moz-cite-prefix">',
        id="thunderbird-reply",
    ),
    pytest.param(
        '<html><body><p>Grazie</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt">'
        "<p><b>Da:</b> Mario<br><b>Inviato:</b> lunedì<br><b>A:</b> Luigi<br><b>Oggetto:</b> x</p></div></div>"
        "</body></html>",
        "quote",
        "Grazie</p>",
        "<div><div style=",
        id="outlook-italian-border-top",
    ),
    pytest.param(
        '<html><body><div dir="ltr">Thanks</div><div id="ms-outlook-mobile-signature"><div><br></div>'
        'Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a></div>'
        '<div id="mail-editor-reference-message-container"><b>From:</b> Jane</div></body></html>',
        "client",
        "Thanks</div>",
        '<div id="mail-editor-reference-message-container">',
        id="outlook-ios-footer",
    ),
    pytest.param(
        '<html><body><div>See you</div><div style="font-size:75%;color:#575757">Sent from my Samsung Galaxy smartphone.</div></body></html>',
        "footer",
        "See you</div>",
        "</body>",
        id="samsung-footer",
    ),
    pytest.param(
        '<html><body><div>Yes</div><div id="ymail_android_signature"><a href="https://go.onelink.me/x">Sent from Yahoo Mail on Android</a></div></body></html>',
        "client",
        "Yes</div>",
        "</body>",
        id="yahoo-android-footer",
    ),
    pytest.param(
        "<html><body>Running late<br><br>Sent from my iPhone</body></html>",
        "footer",
        "Running late<br><br>",
        "</body>",
        id="footer-as-body-text",
    ),
    pytest.param(
        "<html><body><p>Hello</p><p>{EMAILSIGNATURE}</p><p>PS: more</p></body></html>",
        "marker",
        "Hello</p>",
        "<p>PS: more",
        id="marker-paragraph",
    ),
    pytest.param(
        "<html><body><p>Hello {EMAILSIGNATURE} there</p></body></html>",
        "marker",
        "Hello ",
        " there</p>",
        id="marker-inline",
    ),
    pytest.param(
        "<html><body><p>Hello</p></body></html>\n",
        "end",
        "Hello</p>",
        "</body>",
        id="end-before-body-close",
    ),
    pytest.param("<p>Hello</p>\n", "end", "Hello</p>", "", id="end-without-body"),
    pytest.param(
        "<html><p>Hello</p></html>", "end", "Hello</p>", "</html>", id="end-before-html-close"
    ),
    pytest.param(
        '<html><body><div>Hi</div><div class="gmail_quote"><div class="sigfilter-signature"><!--sigfilter-->old sig</div></div></body></html>',
        "quote",
        "Hi</div>",
        '<div class="gmail_quote">',
        id="our-signature-only-in-quote",
    ),
]


@pytest.mark.parametrize(("html", "placement", "before", "after"), SYNTHETIC)
def test_synthetic(html: str, placement: str, before: str, after: str) -> None:
    out, got = sign_html(html)
    assert got == placement
    sig = out.index(OURS)
    assert out.index(before) + len(before) <= sig
    if after:
        assert sig < out.index(after, out.index(before))
    else:
        assert out.rstrip().endswith("</div>")
    assert "{EMAILSIGNATURE}" not in out


def test_marker_split_across_tags_is_not_recognised() -> None:
    html = "<html><body><p><span>{EMAIL</span><span>SIGNATURE}</span></p></body></html>"
    spots = html_spots(html, "{EMAILSIGNATURE}")
    assert Kind.MARKER not in spots.found
    assert spots.best().kind is Kind.END


@pytest.mark.parametrize(
    "html",
    [
        '<html><body><img alt="{EMAILSIGNATURE}"><p>x</p></body></html>',
        "<html><body><!-- {EMAILSIGNATURE} --><p>x</p></body></html>",
        "<html><head><style>/* {EMAILSIGNATURE} */</style></head><body><p>x</p></body></html>",
    ],
)
def test_marker_outside_text_is_ignored(html: str) -> None:
    assert Kind.MARKER not in html_spots(html, "{EMAILSIGNATURE}").found


def test_our_signature_in_new_text_counts() -> None:
    html = '<html><body><div>Hi</div><div class="sigfilter-signature"><!--sigfilter-->x</div></body></html>'
    assert html_spots(html, "{EMAILSIGNATURE}").ours


def test_our_signature_in_quote_does_not_count() -> None:
    html = (
        '<html><body><div>Hi</div><div class="gmail_quote"><div class="sigfilter-signature">'
        "<!--sigfilter-->x</div></div></body></html>"
    )
    assert not html_spots(html, "{EMAILSIGNATURE}").ours


def test_meta_charset_and_markup_survive() -> None:
    html = (
        '<html><head><meta charset="windows-1252"><META http-equiv=Content-Type content="text/html">'
        "</head><body><P class=MsoNormal>Hi<o:p></o:p></P></body></html>"
    )
    out, _ = sign_html(html)
    assert out.replace(_sig_block(out), "") == html


def test_sentence_mentioning_a_phone_is_not_a_footer() -> None:
    html = "<html><body><div>Sent from my desk, is much easier then my mobile phone.</div></body></html>"
    out, placement = sign_html(html)
    assert placement == "end"
    assert "Sent from my desk" in out


@pytest.mark.parametrize("text", ["İstanbul'dan selamlar", "İİİ ok", "Straße, KELVIN \u212a"])
def test_end_of_body_with_characters_that_lower_case_longer(text: str) -> None:
    # "İ".lower() is two characters: an offset found in the lower-cased copy of the
    # part pointed into the middle of "</body>" (placement/html.py find_end).
    html, placement = sign_html(f"<html><body><p>{text}</p></body></html>")
    assert placement == "end"
    assert html.endswith("</body></html>"), html
    assert html.index(text) < html.index(OURS) < html.index("</body>")
