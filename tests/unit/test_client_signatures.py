"""The signature the mail client already inserted is replaced by ours: never two.

Per client (quotequail-style tables), new mail and reply, shapes from
../shared/notes/client-signature-markers.md; and every real message in
tests/corpus/client-signatures/ (attribution in its ATTRIBUTION.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sigfilter.engine import Options, Result, rewrite, rewritten_message
from sigfilter.placement.clientsig import RULES, parse_table
from support import (
    CORPUS,
    SIGNATURE,
    assert_only_leaves_changed,
    decoded_leaves,
    line_forms,
    parse,
)

OURS = '<div class="sigfilter-signature">'
OLD = "Old Title - Mail Team"
HEAD = (
    "From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\n"
    "Subject: hi\r\nMessage-ID: <t@test>\r\nMIME-Version: 1.0\r\n"
)


def html_message(html: str) -> bytes:
    return (
        HEAD
        + "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + html
    ).encode("utf-8")


def alternative(text: str, html: str) -> bytes:
    return (
        HEAD + 'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text.replace("\n", "\r\n")
        + "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html + "\r\n--b--\r\n"
    ).encode("utf-8")


def sign(raw: bytes, **opts: str) -> tuple[Result, dict[str, str]]:
    result = rewrite(raw, SIGNATURE, Options(**opts))  # type: ignore[arg-type]
    assert result.signed, (result.reason, result.detail)
    out = rewritten_message(raw, result)
    return result, decoded_leaves(out)


SIG = f'<div id="Signature">Avery Quill<br>{OLD}<br>Phone 555 0199</div>'
OWA_QUOTE = (
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Jane Roe<br><b>Sent:</b> Monday<br>'
    "<b>Subject:</b> hi</div><div>Quoted text</div>"
    f'<div id="x_Signature">Jane Roe<br>{OLD.replace("Mail", "Quoted")}</div>'
)
GMAIL_QUOTE = (
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Sep 1, 2025 at 9:00 AM '
    'Jane Roe &lt;jane@example.net&gt; wrote:<br></div><blockquote class="gmail_quote">Quoted'
    '<div class="gmail_signature">Jane Roe<br>Quoted Title</div></blockquote></div>'
)
TB_QUOTE = (
    '<div class="moz-cite-prefix">On 9/1/25 9:00 AM, Jane Roe wrote:<br></div>'
    '<blockquote type="cite">Quoted<div class="moz-signature">-- <br>Jane Roe</div></blockquote>'
)

# client, HTML (new text + signature + quote), the quoted part that must stay byte-identical,
# whether ours must come below that quote (the client's was there)
HTML_CASES = [
    pytest.param("outlook-web", f"<div>Hello</div>{SIG}", "", False, id="owa-new"),
    pytest.param(
        "outlook-web",
        '<div>Hello</div><div id="Signature" class="elementToProof">Avery Quill<br>'
        f"{OLD}</div>{OWA_QUOTE}",
        OWA_QUOTE,
        False,
        id="owa-reply-elementToProof",
    ),
    pytest.param(
        "outlook-ios",
        '<div dir="auto">Hi</div><div id="ms-outlook-mobile-signature" dir="auto">Avery Quill</div>'
        f'<div id="ms-outlook-mobile-signature" dir="auto">{OLD}</div>',
        "",
        False,
        id="outlook-ios-repeated-id",
    ),
    pytest.param(
        "outlook-ios",
        '<div dir="auto">Hi</div><div class="ms-outlook-ios-signature" id="ms-outlook-mobile-signature">'
        f'{OLD}</div><div id="ms-outlook-mobile-body-separator-line"></div>{OWA_QUOTE}',
        OWA_QUOTE,
        False,
        id="outlook-ios-reply",
    ),
    pytest.param(
        "outlook-android",
        f'<div dir="auto">Hi<br><span id="OutlookSignature">{OLD}</span></div>{OWA_QUOTE}',
        OWA_QUOTE,
        False,
        id="outlook-android-reply",
    ),
    pytest.param(
        "outlook-android",
        f'<div dir="auto">Hi</div><div dir="auto"><span id="OutlookSignature">{OLD}</span></div>',
        "",
        False,
        id="outlook-android-new",
    ),
    pytest.param(
        "ios-mail",
        f'<div dir="ltr">Hi</div><br id="lineBreakAtBeginningOfSignature"><div dir="ltr">{OLD}</div>'
        '<div dir="ltr"><br><blockquote type="cite">On Sep 1, 2025, at 9:00 AM, Jane wrote:<br>'
        "Quoted</blockquote></div>",
        '<blockquote type="cite">On Sep 1, 2025, at 9:00 AM, Jane wrote:<br>Quoted</blockquote>',
        False,
        id="ios17-reply",
    ),
    pytest.param(
        "samsung-email",
        f'<div dir="auto">Hi</div><div id="composer_signature"><div dir="auto">{OLD}</div></div>'
        '<div><br></div><div align="left" dir="auto">-------- Original message --------</div>'
        '<div dir="auto">From: Jane</div><div dir="auto">Quoted</div>',
        '<div align="left" dir="auto">-------- Original message --------</div>',
        False,
        id="samsung-reply",
    ),
    pytest.param(
        "yahoo",
        f'<div class="ydp1a2b3c4dyahoo-style-wrap">Hi</div><div class="ydp1a2b3c4dsignature">{OLD}</div>'
        '<div id="yahoo_quoted_123" class="yahoo_quoted"><div>On Monday, September 1, 2025, '
        'Jane wrote:</div><div class="yiv123signature">Quoted sig</div></div>',
        '<div id="yahoo_quoted_123" class="yahoo_quoted">',
        False,
        id="yahoo-reply",
    ),
    pytest.param(
        "gmail",
        '<div dir="ltr">Hi<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span>'
        f'<br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">{OLD}</div></div>',
        "",
        False,
        id="gmail-new",
    ),
    pytest.param(
        "gmail",
        f'<div dir="ltr">Hi</div><div class="gmail_signature">{OLD}</div><br>{GMAIL_QUOTE}',
        GMAIL_QUOTE,
        False,
        id="gmail-reply-above",
    ),
    pytest.param(
        "gmail",
        f'<div dir="ltr">Hi</div><br>{GMAIL_QUOTE}<div><br clear="all"></div><br>'
        f'<span class="gmail_signature_prefix">-- </span><br><div class="gmail_signature">{OLD}</div>',
        GMAIL_QUOTE,
        True,
        id="gmail-reply-below",
    ),
    pytest.param(
        "ios-mail",
        f'<div dir="ltr">Hi</div><div id="AppleMailSignature" dir="ltr">{OLD}</div>'
        '<div dir="ltr"><br><blockquote type="cite">On Sep 1, 2025, at 9:00 AM, Jane wrote:<br>'
        "Quoted</blockquote></div>",
        '<blockquote type="cite">On Sep 1, 2025, at 9:00 AM, Jane wrote:<br>Quoted</blockquote>',
        False,
        id="ios12-reply",
    ),
    pytest.param(
        "ios-mail",
        f'<div dir="ltr">Hi</div><br id="lineBreakAtBeginningOfSignature"><div dir="ltr">{OLD}</div>',
        "",
        False,
        id="ios17-new",
    ),
    pytest.param(
        "thunderbird",
        f'<p>Hi</p><div class="moz-signature">-- <br>{OLD}</div>',
        "",
        False,
        id="thunderbird-new",
    ),
    pytest.param(
        "thunderbird",
        f'{TB_QUOTE}<p>Hi</p><pre class="moz-signature" cols="72">-- \n{OLD}</pre>',
        TB_QUOTE,
        True,
        id="thunderbird-reply-below",
    ),
    pytest.param(
        "samsung-email",
        f'<div dir="auto">Hi</div><div id="composer_signature"><div dir="auto">{OLD}</div></div>',
        "",
        False,
        id="samsung-new",
    ),
    pytest.param(
        "yahoo",
        f'<div class="ydp1a2b3c4dyahoo-style-wrap">Hi</div><div class="ydp1a2b3c4dsignature">{OLD}</div>',
        "",
        False,
        id="yahoo-new",
    ),
    pytest.param(
        "proton",
        '<div>Hi</div><div class="protonmail_signature_block"><div class="protonmail_signature_block-user">'
        f"{OLD}</div></div>",
        "",
        False,
        id="proton-new",
    ),
    pytest.param(
        "spark",
        f'<div name="messageBodySection">Hi</div><div name="messageSignatureSection"><br><div>{OLD}</div></div>',
        "",
        False,
        id="spark-new",
    ),
    pytest.param(
        "zoho",
        f'<div>Hi</div><div id="Zm-_Id_-Sgn" data-zbluepencil-ignore="true">{OLD}</div>',
        "",
        False,
        id="zoho-new",
    ),
    pytest.param(
        "roundcube",
        f'<p>Hi</p><div id="signature">-- <br>{OLD}</div>',
        "",
        False,
        id="roundcube-new",
    ),
    pytest.param(
        "outlook-desktop",
        f'<p class="MsoNormal">Hi</p><p class="MsoNormal"><a name="_MailAutoSig">{OLD}</a></p>',
        "",
        False,
        id="outlook-autosig-bookmark",
    ),
]


@pytest.mark.parametrize(("client", "html", "quote", "below"), HTML_CASES)
def test_client_signature_replaced(client: str, html: str, quote: str, below: bool) -> None:
    doc = f"<html><body>{html}</body></html>"
    result, leaves = sign(html_message(doc))
    out = leaves["html"]
    assert result.placement == "client" and result.replaced == client
    assert out.count(OURS) == 1
    assert OLD not in out, "the client's signature is still there"
    if quote:
        assert quote in out, "the quote changed"
        assert (out.index(OURS) > out.index(quote)) is below
    # ours sits exactly where the old one began
    first_old = doc.find(OLD)
    assert out[: out.index(OURS)] == doc[: len(out[: out.index(OURS)])]
    assert out.index(OURS) <= first_old


# Quoted, renamed, empty and look-alike markers: never replaced.
NOT_OURS = [
    pytest.param(f"<div>Hello</div>{OWA_QUOTE}", id="x_Signature-in-quote"),
    pytest.param(f"<div>Hello</div><br>{GMAIL_QUOTE}", id="gmail_signature-in-blockquote"),
    pytest.param(f"<p>Hello</p>{TB_QUOTE}", id="moz-signature-in-blockquote"),
    pytest.param('<div>Hello</div><div id="signature_bookmark"></div>', id="owa-empty-bookmark"),
    pytest.param('<div>Hello</div><div id="Signature"><br></div>', id="owa-empty-signature"),
    pytest.param(
        '<div>Hello</div><div class="protonmail_signature_block protonmail_signature_block-empty">'
        "<div></div></div>",
        id="proton-empty",
    ),
    pytest.param(
        '<div>Hello</div><div class="zmail_extra"><div id="Zm-_Id_-Sgn1">---- On Mon, 01 Sep 2025'
        " Jane wrote ----</div><blockquote>Quoted</blockquote></div>",
        id="zoho-quote-header-prefix",
    ),
    pytest.param(
        '<div>Hello</div><div class="gmail-m_123gmail_signature">Jane</div>', id="gmail-renamed"
    ),
    pytest.param(
        "<style>span.-x-evo-signature {mso-style-name:-x-evo-signature;}</style><p>Hello</p>",
        id="marker-in-css",
    ),
]


@pytest.mark.parametrize("html", NOT_OURS)
def test_no_client_signature(html: str) -> None:
    doc = f"<html><body>{html}</body></html>"
    result, leaves = sign(html_message(doc))
    assert result.placement != "client" and result.replaced is None
    out = leaves["html"]
    assert out.count(OURS) == 1
    # everything the sender wrote is still there, byte for byte
    assert (
        out.replace(
            out[out.index(OURS) : out.index("</div>", out.index("<!--sigfilter-->")) + 6], ""
        )
        == doc
    )


def test_keep_policy_adds_ours_and_keeps_theirs() -> None:
    doc = f"<html><body><div>Hello</div>{SIG}</body></html>"
    result, leaves = sign(html_message(doc), client_signature="keep")
    assert result.replaced is None and result.placement == "end"
    assert OLD in leaves["html"] and leaves["html"].count(OURS) == 1


# -- HTML and text agree ---------------------------------------------------------------

TEXT_CASES = [
    pytest.param(
        "Hello\n\nAvery Quill\nOld Title - Mail Team\nPhone 555 0199\n",
        f"<div>Hello</div>{SIG}",
        "outlook-web",
        "",
        id="owa-new",
    ),
    pytest.param(
        "Hello\n\nAvery Quill\nOld Title - Mail Team\n[cid:image001.png@01DA0000.1234]\n\n"
        "________________________________\nFrom: Jane Roe\nSent: Monday\nSubject: hi\n\n"
        "Quoted text\nJane Roe\nOld Title - Quoted Team\n",
        f'<div>Hello</div><div id="Signature">Avery Quill<br>{OLD}<br>'
        f'<img src="cid:image001.png@01DA0000.1234"></div>{OWA_QUOTE}',
        "outlook-web",
        "________________________________\nFrom: Jane Roe",
        id="owa-reply-image-token",
    ),
    pytest.param(
        "Hi\n\nOn Mon, Sep 1, 2025 at 9:00 AM Jane Roe <jane@example.net> wrote:\n\n> Quoted\n"
        "> Jane Roe\n\n-- \nOld Title - Mail Team\n",
        f'<div dir="ltr">Hi</div><br>{GMAIL_QUOTE}<br><span class="gmail_signature_prefix">-- </span>'
        f'<br><div class="gmail_signature">{OLD}</div>',
        "gmail",
        "On Mon, Sep 1, 2025 at 9:00 AM Jane Roe <jane@example.net> wrote:\n\n> Quoted\n> Jane Roe\n",
        id="gmail-below-quote",
    ),
]


@pytest.mark.parametrize(("text", "html", "client", "quote"), TEXT_CASES)
def test_text_counterpart_removed(text: str, html: str, client: str, quote: str) -> None:
    raw = alternative(text, f"<html><body>{html}</body></html>")
    result, leaves = sign(raw)
    assert result.replaced == client
    assert result.parts == ("text/plain:client", "text/html:client")
    plain = leaves["plain"].replace("\r\n", "\n")
    assert OLD not in plain and "Phone 555 0199" not in plain.split("From:")[0]
    assert plain.count("Avery Quill") == 1  # ours (the old one named the sender too)
    assert "cid:image001" not in plain.split("From:")[0]
    assert plain.startswith("Hi" if client == "gmail" else "Hello\n\n-- \nAvery Quill")
    if quote:
        assert quote in plain
    assert_only_leaves_changed(raw, rewritten_message(raw, result))


# -- images only the old signature showed ----------------------------------------------


def related(html: str, cids: list[str]) -> bytes:
    images = "".join(
        f"--r\r\nContent-Type: image/png; name={c}\r\nContent-ID: <{c}>\r\n"
        f"Content-Disposition: inline; filename={c}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "iVBORw0KGgo=\r\n"
        for c in cids
    )
    return (
        HEAD + 'Content-Type: multipart/related; type="text/html"; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
        + "\r\n"
        + images
        + "--r--\r\n"
    ).encode("utf-8")


def test_signature_image_removed_quote_image_kept() -> None:
    html = (
        '<html><body><div>Hello</div><div id="Signature">Avery Quill<img src="cid:logo.png@01">'
        '<img src="cid:shared.png@01"></div>'
        + OWA_QUOTE
        + '<img src="cid:shared.png@01"></body></html>'
    )
    raw = related(html, ["logo.png@01", "shared.png@01", "photo.jpg@01"])
    result = rewrite(raw, SIGNATURE)
    assert result.replaced == "outlook-web"
    out = rewritten_message(raw, result)
    msg = parse(out)
    ids = [p["Content-ID"] for p in msg.walk() if p["Content-ID"]]
    assert ids == ["<shared.png@01>", "<photo.jpg@01>"]  # the quote's and an unused one stay
    assert out.endswith(raw[raw.index(b"--r\r\nContent-Type: image/png; name=shared") :])
    assert msg.get_body(("html",)) is not None


# -- the real corpus --------------------------------------------------------------------

FOLDER = CORPUS / "client-signatures"
with (FOLDER / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
    MANIFEST = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}

# file prefix: (expected placement or skip, what is replaced)
CORPUS_EXPECT = {
    "001": ("footer", None),  # iOS 5 text-only: the "Sent from my iPhone" tagline
    "003": ("client", "thunderbird"),  # moz-signature after an inline forward
    "006": ("client", "dash-dash"),
    "007": ("client", "dash-dash"),  # after KMail's closing forward line
    "008": ("client", "dash-dash"),  # Gnus: the signature in its own last text part
    "011": ("client", "dash-dash"),  # base64
    "012": ("client", "dash-dash"),  # QP with encoded line breaks
    "013": ("client", "dash-dash"),  # the whole own text is the signature
    "015": ("skip:tnef", None),
    "016": ("quote", None),  # NEGATIVE: the only signature is inside the quote
    "017": ("skip:signed-pgp", None),
    "019": ("skip:signed-pgp", None),
    "020": ("skip:signed-pgp", None),
    "022": ("client", "dash-dash"),
    "023": ("client", "dash-dash"),  # below an interleaved reply
    "025": ("client", "dash-dash"),
    "026": ("client", "dash-dash"),
    "028": ("client", "dash-dash"),  # the author's block, not the list footer after it
    "030": ("client", "dash-dash"),
    "032": ("skip:signed-pgp", None),
}
FILES = sorted(FOLDER.glob("*.eml"))


def test_corpus_expectations_cover_every_file() -> None:
    assert {p.name[:3] for p in FILES} == set(CORPUS_EXPECT)
    assert {p.name for p in FILES} == set(MANIFEST)


def _gt_lines(text: str) -> list[str]:
    return [
        line.rstrip() for line in text.replace("\r\n", "\n").split("\n") if line.startswith(">")
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
@pytest.mark.parametrize("form", ["crlf", "lf"])
def test_corpus(path: Path, form: str) -> None:
    expect, replaced = CORPUS_EXPECT[path.name[:3]]
    raw = line_forms(path.read_bytes())[form]
    result = rewrite(raw, SIGNATURE)
    if expect.startswith("skip:"):
        assert (result.action, result.reason) == ("skipped", expect[5:])
        assert rewritten_message(raw, result) == raw
        return
    assert result.signed, (result.reason, result.detail)
    assert (result.placement, result.replaced) == (expect, replaced)
    out = rewritten_message(raw, result)
    before, after = decoded_leaves(raw), decoded_leaves(out)
    sig_text = MANIFEST[path.name]["signature_text"].strip()
    for kind, text in after.items():
        assert text.count(OURS if kind == "html" else "Avery Quill") == 1
        assert _gt_lines(text) == _gt_lines(before[kind]), "a quoted line changed"
        if replaced and kind == "plain":
            assert text.count(sig_text) < before[kind].count(sig_text), "old signature kept"
    if path.name.startswith("016"):
        assert "Sent with my Delta Chat Messenger" in after["html"]  # quoted: stays


def test_table_rows_cite_sources() -> None:
    assert len({r.client for r in RULES}) >= 20
    assert all("[" in r.source for r in RULES)
    with pytest.raises(ValueError, match="unknown match"):
        parse_table("x\tbogus\tv\tno\t[SRC] y\n")
    with pytest.raises(ValueError, match="mobile"):
        parse_table("x\tid\tv\tmaybe\t[SRC] y\n")


# -- the tenant's own texts ---------------------------------------------------------------

ADMIN = (r"Sent\s+from\s+Mail\s+for\s+Windows", r"Confidential: .{1,80}")


@pytest.mark.parametrize(
    ("text", "html", "gone"),
    [
        (
            "Hi\n\nSent from Mail for Windows\n",
            "<div>Hi</div><div>Sent from Mail for\nWindows</div>",
            "Mail for",
        ),
        (
            "Hi\n\nConfidential: for the addressee only.\n\nOn Mon, Sep 1, 2025 at 9:00 AM Jane "
            "<jane@example.net> wrote:\n> Confidential: quoted\n",
            "<div>Hi</div><p>Confidential: for the addressee only.</p>"
            + GMAIL_QUOTE.replace("Quoted", "Confidential: quoted"),
            "addressee",
        ),
    ],
)
def test_admin_texts_replaced_outside_the_quote(text: str, html: str, gone: str) -> None:
    raw = alternative(text, f"<html><body>{html}</body></html>")
    result = rewrite(raw, SIGNATURE, Options(replace_texts=ADMIN))
    assert result.replaced == "admin-text" and result.placement == "client"
    leaves = decoded_leaves(rewritten_message(raw, result))
    for kind, body in leaves.items():
        assert gone not in body.replace("\r\n", " ").replace("\n", " ")
        assert body.count(OURS if kind == "html" else "Avery Quill") == 1
        if "quoted" in text:
            assert "Confidential: quoted" in body  # inside the quote: stays


def test_mobile_mode_counts_only_phone_clients() -> None:
    ios = (
        '<html><body><div dir="auto">Hi</div><div id="ms-outlook-mobile-signature">'
        f"{OLD}</div></body></html>"
    )
    result, leaves = sign(html_message(ios), mode="mobile")
    assert result.replaced == "outlook-ios" and OLD not in leaves["html"]
    owa = f"<html><body><div>Hello</div>{SIG}</body></html>"
    skipped = rewrite(html_message(owa), SIGNATURE, Options(mode="mobile"))
    assert (skipped.action, skipped.reason) == ("skipped", "not-mobile")


def test_mailautosig_bookmark_starts_a_signature_that_runs_to_the_quote() -> None:
    """Word's _MailAutoSig bookmark wraps only the first run of the signature."""
    quote = (
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
        '<p class="MsoNormal"><b>From:</b> Jane<br><b>Sent:</b> Monday<br><b>Subject:</b> x</p>'
        "</div><p>Quoted</p>"
    )
    html = (
        '<html><body><div class="WordSection1"><p class="MsoNormal">Hi</p>'
        '<p class="MsoNormal"><a name="_MailAutoSig"><span>Zed Old</span></a><o:p></o:p></p>'
        f'<p class="MsoNormal">{OLD}</p><p class="MsoNormal">&nbsp;</p>{quote}</div></body></html>'
    )
    result, leaves = sign(html_message(html))
    out = leaves["html"]
    assert result.replaced == "outlook-desktop"
    assert "Zed Old" not in out and OLD not in out and quote in out
    assert out.index('<p class="MsoNormal">Hi</p>') < out.index(OURS) < out.index(quote)
