"""The engine on small hand-made messages: skips, header edits, modes, plain→HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

import sigfilter
from sigfilter.engine import HeaderEdit, Options, apply_header_edits, rewrite, rewritten_message
from sigfilter.placement import text as text_place
from sigfilter.signature import InlineImage, Signature
from sigfilter.skips import _AUTO
from support import SIG_TOKEN, SIGNATURE, assert_only_leaves_changed, decoded_leaves, parse

HEAD = "From: Avery Quill <avery.quill@example.com>\nTo: jane@example.net\nSubject: hi\nMessage-ID: <t@test>\n"


def msg(extra_headers: str, body: str) -> bytes:
    return (HEAD + extra_headers + "\n" + body).replace("\n", "\r\n").encode("utf-8")


PLAIN = "Content-Type: text/plain; charset=utf-8\n"
ROOT_PKG = Path(sigfilter.__file__).parent


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ("X-Sigfilter-Processed: 1\n" + PLAIN, "hi\n", "loop"),
        ("Auto-Submitted: auto-replied\n" + PLAIN, "away\n", "auto-reply"),
        ("X-Autoreply: yes\n" + PLAIN, "away\n", "auto-reply"),
        ("Precedence: auto_reply\n" + PLAIN, "away\n", "auto-reply"),
        ("Content-Class: urn:content-classes:calendarmessage\n" + PLAIN, "x\n", "calendar"),
        (
            'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\n',
            "--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: application/pkcs7-signature\n\nAAAA\n--b--\n",
            "signed-smime",
        ),
        (
            'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\n',
            "--b\n\nx\n--b\nContent-Type: application/pgp-signature\n\nsig\n--b--\n",
            "signed-pgp",
        ),
        (
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n",
            "AAAA\n",
            "encrypted",
        ),
        (
            "Content-Type: application/pkcs7-mime; smime-type=signed-data\n",
            "AAAA\n",
            "signed-smime",
        ),
        (
            'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b\n',
            "--b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--b\n\nx\n--b--\n",
            "encrypted",
        ),
        (PLAIN, "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhi\n", "signed-pgp"),
        (PLAIN, "-----BEGIN PGP MESSAGE-----\nabc\n", "encrypted"),
        (
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n",
            "--b\n\nfailed\n--b\nContent-Type: message/delivery-status\n\nStatus: 5.0.0\n--b--\n",
            "dsn",
        ),
        (
            "Content-Type: multipart/alternative; boundary=b\n",
            "--b\n\nx\n--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n--b--\n",
            "calendar",
        ),
        (
            "Content-Type: multipart/mixed; boundary=b\n",
            "--b\nContent-Type: application/ms-tnef\n\nxx\n--b--\n",
            "tnef",
        ),
        (
            "Content-Type: multipart/mixed; boundary=b\n",
            "--b\nContent-Type: application/pdf\n\n%PDF\n--b--\n",
            "no-text-part",
        ),
        ("Content-Type: multipart/mixed\n", "--b\n\nx\n--b--\n", "malformed"),
        ("Content-Type: multipart/mixed; boundary=b\n", "--b\n\nx\n", "malformed"),
        ("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n", "a=b=c\n", "malformed"),
        (
            "Content-Type: text/plain\n\tbroken\n nope: x\nbad line without colon\n",
            "x\n",
            "malformed",
        ),
        (PLAIN, "hello\n", "ok"),
    ],
)
def test_skip_reasons(headers: str, body: str, reason: str) -> None:
    raw = msg(headers, body)
    result = rewrite(raw, SIGNATURE)
    assert result.reason == reason, result.detail
    if reason != "ok":
        assert result.action == "skipped"
        assert result.body is None
        assert rewritten_message(raw, result) == raw


def test_too_large() -> None:
    raw = msg(PLAIN, "x" * 5000 + "\n")
    assert rewrite(raw, SIGNATURE, Options(max_size=1000)).reason == "too-large"


def test_single_part_charset_change_is_a_header_edit() -> None:
    raw = msg(
        "Content-Type: text/plain; charset=us-ascii; format=flowed\nContent-Transfer-Encoding: 7bit\n",
        "Hello\n",
    )
    result = rewrite(raw, SIGNATURE)
    assert result.signed
    assert (
        HeaderEdit("Content-Type", 1, "text/plain; charset=utf-8; format=flowed")
        in result.header_edits
    )
    assert HeaderEdit("Content-Transfer-Encoding", 1, "quoted-printable") in result.header_edits
    out = rewritten_message(raw, result)
    parsed = parse(out)
    assert parsed.get_content_charset() == "utf-8"
    content = parsed.get_content()
    assert (
        content.startswith("Hello\r\n\r\n-- \r\n") and SIG_TOKEN in content and "\u00b7" in content
    )
    assert_only_leaves_changed(raw, out)


def test_missing_content_type_gets_one_when_needed() -> None:
    raw = msg("", "Hello\n")
    result = rewrite(raw, SIGNATURE)
    assert HeaderEdit("Content-Type", 0, "text/plain; charset=utf-8") in result.header_edits
    assert parse(rewritten_message(raw, result)).get_content_charset() == "utf-8"


def test_nested_part_headers_are_edited_in_the_body() -> None:
    raw = msg(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n",
        "--b\nContent-Type: text/plain;\n charset=us-ascii\n\nHello\n--b\nContent-Type: application/pdf\n"
        "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n",
    )
    result = rewrite(raw, SIGNATURE)
    assert result.signed and result.header_edits == ()
    out = rewritten_message(raw, result)
    assert (
        b"Content-Type: text/plain;\r\n charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        in out
    )
    assert_only_leaves_changed(raw, out)
    parts = [p for p in parse(out).walk() if not p.is_multipart()]
    assert parts[1].get_payload(decode=True) == b"%PDF-"


@pytest.mark.parametrize(
    ("mode", "body", "expect"),
    [
        ("marker", "Hi\n\n{EMAILSIGNATURE}\n", "marker"),
        ("marker", "Hi\n\nSent from my iPhone\n", "no-marker"),
        ("mobile", "Hi\n\nSent from my iPhone\n", "footer"),
        ("mobile", "Hi\n", "not-mobile"),
        ("mobile", "Hi {EMAILSIGNATURE} there\n", "marker"),
        ("full", "Hi\n", "end"),
        (
            "full",
            "Hi\n\n-- \nAvery Quill\nHead of Mail Flow \u00b7 +1 555 0100\n",
            "already-signed",
        ),
    ],
)
def test_modes(mode: str, body: str, expect: str) -> None:
    raw = msg(PLAIN, body)
    result = rewrite(raw, SIGNATURE, Options(mode=mode))  # type: ignore[arg-type]
    assert (result.placement if result.signed else result.reason) == expect


def test_mobile_mode_accepts_mobile_mailer() -> None:
    raw = msg("X-Mailer: iPhone Mail (20A362)\n" + PLAIN, "Hi\n")
    result = rewrite(raw, SIGNATURE, Options(mode="mobile"))
    assert result.signed and result.placement == "end"


def test_marker_line_replaced_in_text() -> None:
    raw = msg(PLAIN, "Hi\n\n{EMAILSIGNATURE}\n\nlater text\n")
    out = rewritten_message(raw, rewrite(raw, SIGNATURE))
    text = decoded_leaves(out)["plain"]
    assert "{EMAILSIGNATURE}" not in text
    assert text.index("Hi") < text.index(SIG_TOKEN) < text.index("later text")


def test_footer_replaced_in_text() -> None:
    raw = msg(PLAIN, "Running late\n\nSent from my iPhone\n")
    out = rewritten_message(raw, rewrite(raw, SIGNATURE))
    text = decoded_leaves(out)["plain"]
    assert "Sent from my iPhone" not in text
    assert text.startswith("Running late\r\n\r\n-- \r\nAvery Quill")


def test_format_flowed_signature_has_no_soft_breaks() -> None:
    raw = msg("Content-Type: text/plain; charset=utf-8; format=flowed\n", "Hello \nthere\n")
    sig = SIGNATURE.__class__(html="<p>x</p>", text="Name   \n>quoted-looking\nFrom here")
    out = rewritten_message(raw, rewrite(raw, sig))
    text = decoded_leaves(out)["plain"]
    assert "Name\r\n" in text and "\r\n >quoted-looking\r\n" in text and "\r\n From here" in text


def test_plain_to_html_root() -> None:
    raw = msg(
        "MIME-Version: 1.0\n" + PLAIN + "Content-Transfer-Encoding: 8bit\n",
        "Running late <b>\n\nSent from my iPhone\n",
    )
    result = rewrite(raw, SIGNATURE, Options(plain_to_html=True))
    assert result.signed and result.placement == "footer"
    out = rewritten_message(raw, result)
    parsed = parse(out)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Content-Transfer-Encoding"] == "8bit"
    text_part, html_part = parsed.get_payload()  # type: ignore[misc]
    text = text_part.get_content()
    html = html_part.get_content()
    assert text.startswith("Running late <b>") and SIG_TOKEN in text
    assert "Running late &lt;b&gt;" in html and "sigfilter-signature" in html
    assert "Sent from my iPhone" not in html + text
    assert html.index("Running late") < html.index(SIG_TOKEN)
    # the unchanged header fields are byte-identical
    assert out.startswith(raw[: raw.index(b"Content-Type")])


def test_plain_to_html_with_bytes_the_charset_cannot_decode() -> None:
    # A text part whose bytes are not all UTF-8: the text part keeps them as they were,
    # the HTML copy shows "?" for them (it raised UnicodeEncodeError: an engine error).
    head = msg("MIME-Version: 1.0\n" + PLAIN + "Content-Transfer-Encoding: 8bit\n", "")
    raw = head + b"Price: 100 \x80 each\r\n\r\nSent from my iPhone\r\n"
    result = rewrite(raw, SIGNATURE, Options(plain_to_html=True))
    assert result.signed and result.placement == "footer"
    out = rewritten_message(raw, result)
    assert b"Price: 100 \x80 each\r\n" in out  # the text part's own bytes
    html = next(p for p in parse(out).walk() if p.get_content_type() == "text/html")
    assert "Price: 100 ? each" in html.get_content() and SIG_TOKEN in html.get_content()


def test_plain_to_html_nested_in_mixed() -> None:
    raw = msg(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n",
        "--b\nContent-Type: text/plain; charset=us-ascii\n\nHello\n--b\nContent-Type: application/pdf\n\n%PDF\n--b--\n",
    )
    result = rewrite(raw, SIGNATURE, Options(plain_to_html=True))
    out = rewritten_message(raw, result)
    assert_only_leaves_changed(raw, out)
    types = [p.get_content_type() for p in parse(out).walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
    ]


def test_apply_header_edits_keeps_other_bytes() -> None:
    raw = b"A: 1\r\nContent-Type: text/plain;\r\n\tcharset=us-ascii\r\nB: 2\r\n\r\nbody"
    out = apply_header_edits(
        raw,
        [HeaderEdit("Content-Type", 1, "text/plain; charset=utf-8"), HeaderEdit("X-New", 0, "v")],
    )
    assert out == b"A: 1\r\nContent-Type: text/plain; charset=utf-8\r\nB: 2\r\nX-New: v\r\n\r\n"


def test_reply_variant_for_quotes() -> None:
    raw = msg(PLAIN, "Sure.\n\nOn Mon, Sep 1, 2025 at 9:00 AM Jane <j@example.net> wrote:\n> hi\n")
    result = rewrite(raw, SIGNATURE)
    assert result.variant == "reply" and result.placement == "quote"
    text = decoded_leaves(rewritten_message(raw, result))["plain"]
    assert text.index("Sure.") < text.index("Avery Quill | Head") < text.index("On Mon, Sep 1")


# -- embedded images (multipart/related) ---------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
IMG = InlineImage("abc123.logo.png@sigfilter", "image/png", "logo.png", PNG)
IMG_SIG = Signature(
    html='<p>Avery Quill</p><img src="cid:abc123.logo.png@sigfilter">',
    text="-- \nAvery Quill",
    images=(IMG,),
)
ALT = (
    "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=alt\n",
    "--alt\nContent-Type: text/plain; charset=utf-8\n\nHello\n"
    "--alt\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>Hello</p></body></html>\n--alt--\n",
)


def _image_parts(out: bytes) -> list:  # type: ignore[type-arg]
    return [p for p in parse(out).walk() if p.get_content_type() == "image/png"]


def _check_image(out: bytes) -> None:
    (img,) = _image_parts(out)
    assert img["Content-ID"] == "<abc123.logo.png@sigfilter>"
    assert img.get_payload(decode=True) == PNG
    html = decoded_leaves(out)["html"]
    assert 'src="cid:abc123.logo.png@sigfilter"' in html


def test_images_wrap_html_in_related_inside_alternative() -> None:
    raw = msg(*ALT)
    out = rewritten_message(raw, rewrite(raw, IMG_SIG))
    types = [p.get_content_type() for p in parse(out).walk()]
    assert types == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    _check_image(out)
    assert_only_leaves_changed(raw, out)


def test_images_join_an_existing_related() -> None:
    raw = msg(
        "MIME-Version: 1.0\nContent-Type: multipart/related; boundary=rel\n",
        "--rel\nContent-Type: text/html; charset=utf-8\n\n<html><body><img src=cid:x1></body></html>\n"
        "--rel\nContent-Type: image/gif\nContent-ID: <x1>\nContent-Transfer-Encoding: base64\n\nR0lGODlh\n--rel--\n",
    )
    out = rewritten_message(raw, rewrite(raw, IMG_SIG))
    types = [p.get_content_type() for p in parse(out).walk()]
    assert types == ["multipart/related", "text/html", "image/gif", "image/png"]
    _check_image(out)
    # the sender's own image part keeps its bytes
    assert (
        b"--rel\r\nContent-Type: image/gif\r\nContent-ID: <x1>\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n--rel\r\n"
        in out
    )


def test_images_turn_single_html_into_related() -> None:
    raw = msg(
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
        "<p>Hi</p>\n",
    )
    result = rewrite(raw, IMG_SIG)
    out = rewritten_message(raw, result)
    assert parse(out).get_content_type() == "multipart/related"
    _check_image(out)
    assert_only_leaves_changed(raw, out)


def test_images_with_plain_to_html() -> None:
    raw = msg("MIME-Version: 1.0\n" + PLAIN, "Running late\n\nSent from my iPhone\n")
    out = rewritten_message(raw, rewrite(raw, IMG_SIG, Options(plain_to_html=True)))
    types = [p.get_content_type() for p in parse(out).walk()]
    assert types == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    _check_image(out)


def test_text_only_message_gets_no_images() -> None:
    raw = msg(PLAIN, "Hello\n")
    out = rewritten_message(raw, rewrite(raw, IMG_SIG))
    assert _image_parts(out) == []
    assert "Avery Quill" in decoded_leaves(out)["plain"]


AUTO_SUBJECTS = [
    "Automatic reply: Q3 numbers",
    "Automatische Antwort: Q3",
    "=?utf-8?Q?R=C3=A9ponse_automatique=C2=A0:_Q3?=",  # no-break space before the colon
    "Respuesta automática: Q3",
    "Risposta automatica: Q3",
    "Automatisch antwoord: Q3",
    "=?iso-8859-1?Q?Resposta_autom=E1tica:_Q3?=",
    "Automatiskt svar: Q3",
    "Automatisk svar: Q3",
    "Automaattinen vastaus: Q3",
    "=?windows-1250?Q?Automatyczna_odpowied=9F:_Piotrze?=",  # a real subject (issue212)
    "自動応答: Q3",
    "=?utf-8?B?6Ieq5Yqo562U5aSNOiBRMw==?=",  # 自动答复: Q3
    "Автоматический ответ: Q3",
]


@pytest.mark.parametrize("subject", AUTO_SUBJECTS)
def test_auto_reply_known_by_its_subject(subject: str) -> None:
    raw = msg(PLAIN, "I am away.\n").replace(b"Subject: hi", b"Subject: " + subject.encode())
    result = rewrite(raw, SIGNATURE)
    assert (result.action, result.reason) == ("skipped", "auto-reply"), result.detail
    assert rewritten_message(raw, result) == raw


@pytest.mark.parametrize(
    "subject",
    ["RE: Automatic reply: Q3", "Automatic replies are annoying", "Out of office next week"],
)
def test_person_mail_about_auto_replies_is_signed(subject: str) -> None:
    raw = msg(PLAIN, "hi\n").replace(b"Subject: hi", b"Subject: " + subject.encode())
    assert rewrite(raw, SIGNATURE).signed


@pytest.mark.parametrize(
    "header",
    [
        "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent",
        "X-MS-Exchange-Inbox-Rules-Loop: avery.quill@example.com",
        "X-MS-Exchange-Transport-Rules-Notification: 1",
        "X-MS-Journal-Report:",
    ],
)
def test_exchange_generated_mail_passes(header: str) -> None:
    raw = msg(header + "\n" + PLAIN, "Generated.\n")
    result = rewrite(raw, SIGNATURE)
    assert (result.action, result.reason) == ("skipped", "auto-reply")


def test_auto_reply_table_has_the_footer_languages() -> None:
    langs = {"en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "no", "fi", "pl", "ja", "zh"}
    table = (ROOT_PKG / "autoreplies.tsv").read_text(encoding="utf-8")
    seen = {tag for tag in langs if f"({tag}" in table or f", {tag}" in table or f"{tag})" in table}
    assert seen == langs
    assert _AUTO.subject.pattern.count("[:：]") >= 20


# -- honest errors (issue 14): the engine's own errors mean bad mail; a bug raises -------

RAW_HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"


@pytest.mark.parametrize("bug", [IndexError, KeyError, ValueError, LookupError, TypeError])
def test_a_bug_inside_the_engine_is_raised_not_skipped(
    monkeypatch: pytest.MonkeyPatch, bug: type[Exception]
) -> None:
    def broken(*args: object) -> None:
        raise bug("a bug")

    monkeypatch.setattr(text_place, "text_spots", broken)
    raw = RAW_HEAD + b"Content-Type: text/plain\r\n\r\nHello\r\n"
    with pytest.raises(bug, match="a bug"):
        rewrite(raw, SIGNATURE)


# Bad input the standard library rejects, turned into the engine's own reasons where it
# is read (codec.py, leaf.py, edits.py); each raised out of the engine before the fix.
@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        (b"text/plain; charset*=utf-8''a%00b", "charset"),  # codecs.lookup: ValueError (NUL)
        (b'text/plain; charset="a\x00b"', "charset"),
        (b"text/plain; charset=idna", "charset"),  # decoding: plain UnicodeError
        (b"text/html; charset=punycode", "charset"),
        (b"text/html; charset=undefined", "charset"),
        (b"text/plain; charset=base64", "charset"),  # a bytes codec: LookupError
    ],
)
def test_charsets_python_cannot_use_for_text_are_skipped(content_type: bytes, reason: str) -> None:
    raw = RAW_HEAD + b"Content-Type: " + content_type + b"\r\n\r\nhello \xe9\r\n"
    result = rewrite(raw, SIGNATURE)
    assert (result.action, result.reason) == ("skipped", reason)
    assert rewritten_message(raw, result) == raw


def test_an_8bit_boundary_is_written_back_as_the_same_bytes() -> None:
    # The related part's boundary is the message's own; encoding it as ASCII raised
    # UnicodeEncodeError when the signature's image was appended.
    b = b"\xe9B"
    raw = (
        RAW_HEAD + b'Content-Type: multipart/related; boundary="' + b + b'"\r\n\r\n'
        b"--" + b + b"\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n"
        b"--" + b + b"\r\nContent-Type: image/png\r\n\r\nxx\r\n--" + b + b"--\r\n"
    )  # fmt: skip
    logo = InlineImage("logo@sig", "image/png", "logo.png", b"\x89PNG")
    result = rewrite(raw, Signature(html="<p>Sig</p>", text="Sig", images=(logo,)))
    assert result.signed
    out = rewritten_message(raw, result)
    assert out.count(b"\r\n--" + b + b"\r\n") == 3 and b"Content-ID: <logo@sig>" in out
