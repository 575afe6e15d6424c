"""Where the quoted thread starts in plain-text bodies (sigfilter.placement.textquote).

Tables per client and per language, in the spirit of quotequail's tests: every case names
the exact line the quote must start on, and is checked with LF and with CRLF line ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growth import assert_linear
from hostile_text import QUOTE_TEXT_SIZE, QUOTE_TEXTS, crlf
from sigfilter.placement import textquote
from sigfilter.placement.textquote import QuoteStart, find_quote_start, starts_with_quote_intro

BODIES = Path(__file__).resolve().parent.parent / "corpus" / "bodies"
STYLES = {"attribution", "original-message", "header-block", "forward", "gt"}

NEW = "Thanks, that works for me.\n\nBest,\nAvery\n\n"
ORIGINAL = "Hello,\nthis is the original message.\n"
QUOTED = "> Hello,\n> this is the original message.\n"


def forms(text: str) -> list[str]:
    lf = text.replace("\r\n", "\n")
    return [lf, lf.replace("\n", "\r\n")]


def assert_quote(text: str, line: str | None, style: str | None) -> None:
    """``line`` is how the first quoted line starts; checked in the LF and CRLF forms."""
    line_numbers = set()
    for form in forms(text):
        qs = find_quote_start(form)
        if line is None:
            assert qs is None, form[qs.offset : qs.offset + 80] if qs else ""
            continue
        assert qs is not None, f"no quote found, expected {line!r}"
        assert qs.style == style
        assert qs.offset == 0 or form[qs.offset - 1] == "\n", "offset is not a line start"
        expected = line.replace("\n", "\r\n") if "\r\n" in form else line
        assert form[qs.offset :].startswith(expected), form[qs.offset : qs.offset + 80]
        line_numbers.add(form[: qs.offset].count("\n"))
    assert len(line_numbers) <= 1, "LF and CRLF forms disagree"


# --- real fixtures (tests/corpus/bodies, see ATTRIBUTION.md there) -------------------

FIXTURES = [
    # file, first quoted line, style
    ("db10_crisp_ios-outlook-fr.txt", "________________________________\n", "header-block"),
    ("db11_crisp_sent-from-typeapp.txt", "On Jun 17, 2017, at 14:15,", "attribution"),
    ("db12_crisp_german-outlook.txt", "-----Ursprüngliche Nachricht-----", "original-message"),
    ("db13_crisp_italian.txt", "In data 11 ottobre 2017", "attribution"),
    ("db14_crisp_portuguese.txt", "Em 10 de julho de 2017", "attribution"),
    ("db15_crisp_russian.txt", "ср, 30 апр. 2025", "attribution"),
    ("db16_crisp_french.txt", "> Le 29 avr. 2025", "gt"),
    ("db17_crisp_finnish.txt", "pe 20. lokakuuta 2017", "attribution"),
    (
        "db18_crisp_msn-underscore-separator.txt",
        "________________________________\n",
        "header-block",
    ),
    ("db19_crisp_zoho.txt", "---- On Wed, 24 Feb 2021", "attribution"),
    ("db20_erp_iphone.txt", None, None),
    ("db21_erp_blackberry.txt", None, None),
    ("db22_erp_verizon-blackberry.txt", None, None),
    ("db23_erp_sent-from-not-signature.txt", None, None),
    # The header block comes before the later "On ... wrote:" and wins.
    ("db24_erp_outlook-no-delimiter.txt", "From: Dan Watson [mailto:", "header-block"),
    # The dash rule sits a blank line above "*From:*" and belongs to the quote.
    ("db25_erp_outlook-star-headers.txt", " ------------------------------\n", "header-block"),
]


@pytest.mark.parametrize(("name", "line", "style"), FIXTURES, ids=[f[0][:4] for f in FIXTURES])
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_fixture(name: str, line: str | None, style: str | None, crlf: bool) -> None:
    raw = (BODIES / name).read_bytes().decode("utf-8")
    text = raw.replace("\n", "\r\n") if crlf else raw
    qs = find_quote_start(text)
    if line is None:
        assert qs is None
        return
    assert qs is not None
    assert qs.style == style
    if crlf:
        line = line.replace("\n", "\r\n")
        # Same line as in the LF form.
        lf = find_quote_start(raw)
        assert lf is not None
        assert text[: qs.offset].count("\n") == raw[: lf.offset].count("\n")
    assert qs.offset == 0 or text[qs.offset - 1] == "\n"
    assert text[qs.offset :].startswith(line)


# --- attributions, per client and language -------------------------------------------

ATTRIBUTIONS = [
    # (id, attribution as the client writes it; its first line is where the quote starts)
    ("en-gmail", "On Mon, Jan 1, 2024 at 10:00 AM John Doe <john@example.com> wrote:"),
    ("en-gmail-wrapped", "On Mon, Jan 1, 2024 at 10:00 AM John Doe <\njohn@example.com> wrote:"),
    (
        "en-gmail-3-lines",
        "On Mon, Jan 1, 2024 at 10:00 AM A Rather Long Name\n"
        "<a.rather.long.address@\nexample.com> wrote:",
    ),
    ("en-apple", "On Jun 17, 2017, at 14:15, Jane Roe <jane@example.com> wrote:"),
    (
        "en-apple-mailto",
        "On Jun 17, 2017, at 14:15, Jane <jane@example.com<\nmailto:jane@example.com>> wrote:",
    ),
    ("en-thunderbird", "On 1/1/2024 10:00 AM, John Doe wrote:"),
    ("en-mutt", "On Mon, Jan 01, 2024 at 10:00:00AM +0100, John Doe wrote:"),
    ("en-name-first", "John Doe <john@example.com> wrote:"),
    ("en-zoho", "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@example.com wrote ----"),
    ("de-gmail", "Am Mo., 1. Jan. 2024 um 10:00 Uhr schrieb John Doe <john@example.com>:"),
    ("de-thunderbird", "Am 01.01.2024 um 10:00 schrieb John Doe:"),
    ("de-outlook", "Am 01.01.2024 um 10:00 hat John Doe <john@example.com> geschrieben:"),
    ("de-name-first", "John Doe <john@example.com> schrieb am 01.01.2024 um 10:00:"),
    ("fr-gmail", "Le lun. 1 janv. 2024 à 10:00, John Doe <john@example.com> a écrit :"),
    ("fr-thunderbird", "Le 01/01/2024 à 10:00, John Doe a écrit :"),
    ("fr-wrapped-nbsp", "Le 1 janv. 2024 à 10:00, John Doe <john@example.com> a\nécrit\xa0:"),
    ("es-gmail", "El lun, 1 ene 2024 a las 10:00, John Doe (<john@example.com>) escribió:"),
    ("it-gmail", "Il giorno lun 1 gen 2024 alle ore 10:00 John Doe <john@example.com> ha scritto:"),
    ("it-thunderbird", "Il 01/01/2024 10:00, John Doe ha scritto:"),
    ("it-in-data", 'In data 1 gennaio 2024 10:00:00 "John Doe" <john@example.com> ha scritto:'),
    ("nl-gmail", "Op ma 1 jan. 2024 om 10:00 schreef John Doe <john@example.com>:"),
    (
        "nl-outlook",
        "Op 1 jan. 2024 om 10:00 heeft John Doe <john@example.com> het volgende geschreven:",
    ),
    ("pt-gmail", "Em seg., 1 de jan. de 2024 às 10:00, John Doe <john@example.com> escreveu:"),
    ("sv-gmail-den", "Den mån 1 jan. 2024 kl 10:00 skrev John Doe <john@example.com>:"),
    ("sv-gmail", "mån 1 jan. 2024 kl. 10:00 skrev John Doe <john@example.com>:"),
    ("da-gmail-den", "Den man. 1. jan. 2024 kl. 10.00 skrev John Doe <john@example.com>:"),
    ("da-gmail", "man. 1. jan. 2024 kl. 10.00 skrev John Doe <john@example.com>:"),
    ("no-gmail", "tir. 2. jan. 2024 kl. 10:00 skrev John Doe <john@example.com>:"),
    ("no-den", "Den 1. jan. 2024 kl. 10:00 skrev John Doe <john@example.com>:"),
    ("fi-gmail", "ma 1. tammik. 2024 klo 10.00 John Doe (john@example.com) kirjoitti:"),
    ("fi-wrapped", "pe 20. lokakuuta 2017 klo 17.50 John Coe\n<john@example.com> kirjoitti:"),
    ("pl-thunderbird", "W dniu 1.01.2024 o 10:00, John Doe pisze:"),
    ("pl-thunderbird-user", "W dniu 01.01.2024 o 10:00, użytkownik John Doe napisał:"),
    ("pl-gmail", "pon., 1 sty 2024 o 10:00 John Doe <john@example.com> napisał(a):"),
    ("ru-gmail", "пн, 1 янв. 2024\u202fг. в 10:00, John Doe <john@example.com>:"),
    ("ru-thunderbird", "01.01.2024 10:00, John Doe пишет:"),
    ("ja-gmail", "2024年1月1日(月) 10:00 John Doe <john@example.com>:"),
    ("ja-apple", "2024/01/01 10:00、John Doe <john@example.com>のメッセージ:"),
    ("ja-english", "On 2024/01/01 10:00, John Doe wrote:"),
    ("zh-gmail", "John Doe <john@example.com> 于2024年1月1日周一 10:00写道："),
    ("zh-apple", "2024年1月1日 10:00，John Doe <john@example.com> 写道："),
    ("zh-thunderbird", "在 2024/1/1 10:00, John Doe 写道:"),
]


@pytest.mark.parametrize(("intro"), [a[1] for a in ATTRIBUTIONS], ids=[a[0] for a in ATTRIBUTIONS])
def test_attribution_above_unquoted_thread(intro: str) -> None:
    # Outlook/mobile style: the old message follows without ">".
    assert_quote(NEW + intro + "\n\n" + ORIGINAL, intro.split("\n", maxsplit=1)[0], "attribution")


@pytest.mark.parametrize(("intro"), [a[1] for a in ATTRIBUTIONS], ids=[a[0] for a in ATTRIBUTIONS])
def test_attribution_above_trailing_gt_block(intro: str) -> None:
    first = intro.split("\n", maxsplit=1)[0]
    assert_quote(NEW + intro + "\n" + QUOTED, first, "attribution")
    assert_quote(NEW + intro + "\n\n" + QUOTED + "\n\n", first, "attribution")


@pytest.mark.parametrize(("intro"), [a[1] for a in ATTRIBUTIONS], ids=[a[0] for a in ATTRIBUTIONS])
def test_attribution_of_bottom_posted_reply_is_ignored(intro: str) -> None:
    assert_quote(intro + "\n" + QUOTED + "\nMy answer goes below.\n", None, None)


def test_attribution_right_after_new_text_line() -> None:
    # No blank line between the last line of new text and the attribution (db11).
    assert_quote("Sure.\nOn 1/1/2024 10:00 AM, John Doe wrote:\n" + QUOTED, "On 1/1", "attribution")


def test_attribution_at_end_of_text() -> None:
    assert_quote(NEW + "On 1/1/2024 10:00 AM, John Doe wrote:\n", "On 1/1", "attribution")


def test_wrapped_attribution_does_not_swallow_the_line_above() -> None:
    text = (
        NEW
        + "Call me at 10:30.\npe 20. lokakuuta 2017 klo 17.50 John\n<j@example.com> kirjoitti:\n"
    )
    assert_quote(text + ORIGINAL, "pe 20.", "attribution")


# --- ">" blocks ------------------------------------------------------------------------

GT_CASES = [
    ("top-posted", NEW + QUOTED, "> Hello,", "gt"),
    ("top-posted-blank-tail", NEW + QUOTED + "\n\n", "> Hello,", "gt"),
    ("nested", NEW + "> > deep\n> shallow\n>\n> > deeper\n", "> > deep", "gt"),
    ("attribution-inside-block", NEW + "> On 1/1/2024, X wrote:\n> > q\n", "> On 1/1", "gt"),
    ("blank-lines-in-block", NEW + "> a\n\n> b\n", "> a", "gt"),
    ("lenient-attribution", NEW + "John Doe wrote:\n" + QUOTED, "John Doe wrote:", "attribution"),
    ("lenient-one-blank", NEW + "Jane schrieb:\n\n" + QUOTED, "Jane schrieb:", "attribution"),
    ("lenient-two-blanks", NEW + "Jane wrote:\n\n\n" + QUOTED, "> Hello,", "gt"),
    ("prose-above-block", NEW + "See below:\n" + QUOTED, "> Hello,", "gt"),
    (
        "dated-attribution-two-blanks",
        NEW + "On 1/1/2024, X wrote:\n\n\n" + QUOTED,
        "On 1/1",
        "attribution",
    ),
    ("only-quote", QUOTED, "> Hello,", "gt"),
    # The writer answered between quotes and left the rest of the quote at the bottom:
    # the rest is trailing, so the signature goes after the last answer.
    ("interleaved-with-tail", "On 1/1/2024, X wrote:\n> q1\nanswer 1\n> q2\n> q3\n", "> q2", "gt"),
]


@pytest.mark.parametrize(
    ("text", "line", "style"), [c[1:] for c in GT_CASES], ids=[c[0] for c in GT_CASES]
)
def test_gt(text: str, line: str, style: str) -> None:
    assert_quote(text, line, style)


# --- "-----Original Message-----" ------------------------------------------------------

ORIGINAL_MESSAGE = [
    ("en-outlook", "-----Original Message-----"),
    ("en-oe", "----- Original Message -----"),
    ("en-android", "-------- Original message --------"),
    ("de", "-----Ursprüngliche Nachricht-----"),
    ("fr", "-----Message d'origine-----"),
    ("es", "-----Mensaje original-----"),
    ("it", "-----Messaggio originale-----"),
    ("nl", "-----Oorspronkelijk bericht-----"),
    ("pt", "-----Mensagem original-----"),
    ("sv", "-----Ursprungligt meddelande-----"),
    ("da", "-----Oprindelig meddelelse-----"),
    ("no", "-----Opprinnelig melding-----"),
    ("fi", "-----Alkuperäinen viesti-----"),
    ("pl", "-----Wiadomość oryginalna-----"),
    ("pl-2", "-----Oryginalna wiadomość-----"),
    ("ja", "-----元のメッセージ-----"),
    ("zh", "------------------ 原始邮件 ------------------"),
    ("ru", "-------- Исходное сообщение --------"),
]


@pytest.mark.parametrize(
    "banner", [b[1] for b in ORIGINAL_MESSAGE], ids=[b[0] for b in ORIGINAL_MESSAGE]
)
def test_original_message(banner: str) -> None:
    assert_quote(NEW + banner + "\nFrom: X\nTo: Y\n\n" + ORIGINAL, banner, "original-message")
    # An anchor even when ">" lines and new text follow it.
    assert_quote(NEW + banner + "\n> a\nb\n", banner, "original-message")


# --- Outlook header blocks -------------------------------------------------------------

HEADER_BLOCKS = [
    # (id, lines of the block)
    ("en", ["From: John Doe <john@example.com>", "Sent: Monday, January 1, 2024", "To: Jane"]),
    ("en-date", ["From: John Doe", "Date: Monday, January 1, 2024 10:00", "Subject: Hi"]),
    ("en-mailto", ["From: Dan Watson [mailto:user@host.com]", "Sent: Monday, November 26, 2012"]),
    ("en-stars", ["*From:* John Doe", "*Sent:* Monday, January 1, 2024", "*To:* Jane"]),
    ("en-late-label", ["From: John Doe", "  on behalf of", "  the team", "  sales", "Subject: Hi"]),
    (
        "de",
        ["Von: Max Mustermann <max@beispiel.de>", "Gesendet: Montag, 1. Januar 2024", "An: Erika"],
    ),
    ("fr", ["De : Jean Dupont <jean@exemple.fr>", "Envoyé : lundi 1 janvier 2024", "À : Marie"]),
    ("fr-nbsp", ["De\xa0: Jean Dupont", "Objet\xa0: Salut"]),
    ("it", ["Da: Mario Rossi <mario@esempio.it>", "Inviato: lunedì 1 gennaio 2024", "A: Luigi"]),
    ("es", ["De: Juan Pérez <juan@ejemplo.es>", "Enviado: lunes, 1 de enero de 2024", "Para: Ana"]),
    (
        "nl",
        ["Van: Jan Jansen <jan@voorbeeld.nl>", "Verzonden: maandag 1 januari 2024", "Aan: Piet"],
    ),
    (
        "pt",
        ["De: João Silva <joao@exemplo.pt>", "Data: segunda-feira, 1 de janeiro", "Assunto: Olá"],
    ),
    ("sv", ["Från: Sven Svensson <sven@exempel.se>", "Skickat: den 1 januari 2024", "Ämne: Hej"]),
    ("da", ["Fra: Jens Jensen <jens@eksempel.dk>", "Sendt: 1. januar 2024 10:00", "Til: Mette"]),
    ("no", ["Fra: Ola Nordmann <ola@eksempel.no>", "Dato: 1. januar 2024 10:00", "Emne: Hei"]),
    (
        "fi",
        ["Lähettäjä: Matti Meikäläinen", "Lähetetty: maanantai 1. tammikuuta 2024", "Aihe: Moi"],
    ),
    ("pl", ["Od: Jan Kowalski <jan@przyklad.pl>", "Wysłano: poniedziałek, 1 stycznia", "Do: Anna"]),
    ("ja", ["差出人: 山田太郎 <taro@example.jp>", "送信日時: 2024年1月1日 10:00", "件名: 件"]),
    (
        "ja-fullwidth-colon",
        ["差出人： 山田太郎 <taro@example.jp>", "送信日時： 2024年1月1日 10:00"],
    ),
    ("zh", ["发件人: 张三 <zhang@example.cn>", "发送时间: 2024年1月1日 10:00", "主题: 你好"]),
    (
        "ru",
        ["От: Иван Иванов <ivan@example.ru>", "Отправлено: 1 января 2024 г. 10:00", "Кому: Пётр"],
    ),
    ("ru-mailru", ["От кого: Иван Иванов <ivan@example.ru>", "Кому: Пётр", "Дата: 1 января 2024"]),
]


@pytest.mark.parametrize("block", [b[1] for b in HEADER_BLOCKS], ids=[b[0] for b in HEADER_BLOCKS])
def test_header_block(block: list[str]) -> None:
    assert_quote(NEW + "\n".join(block) + "\n\n" + ORIGINAL, block[0], "header-block")


SEPARATORS = [
    ("underscores", "________________________________"),
    ("underscores-20", "_" * 20),
    ("dashes-indented", " ------------------------------"),
]


@pytest.mark.parametrize("sep", [s[1] for s in SEPARATORS], ids=[s[0] for s in SEPARATORS])
@pytest.mark.parametrize("gap", ["\n", "\n\n"], ids=["adjacent", "blank-between"])
def test_header_block_starts_at_separator(sep: str, gap: str) -> None:
    block = "From: John Doe\nSent: Monday, January 1, 2024\nTo: Jane\n\n"
    assert_quote(NEW + sep + gap + block + ORIGINAL, sep + "\n", "header-block")


def test_short_rule_is_not_a_separator() -> None:
    block = "From: John Doe\nSent: Monday\n"
    assert_quote(NEW + "-----\n" + block, "From: John Doe", "header-block")


# --- forwarded-message banners ---------------------------------------------------------

FORWARDS = [
    ("en-gmail", "---------- Forwarded message ---------"),
    ("en-thunderbird", "-------- Forwarded Message --------"),
    ("en-yahoo", "----- Forwarded Message -----"),
    ("en-apple", "Begin forwarded message:"),
    ("de", "---------- Weitergeleitete Nachricht ----------"),
    ("de-apple", "Anfang der weitergeleiteten Nachricht:"),
    ("fr", "-------- Message transféré --------"),
    ("fr-apple", "Début du message réexpédié :"),
    ("es", "---------- Mensaje reenviado ---------"),
    ("it", "---------- Messaggio inoltrato ---------"),
    ("nl", "---------- Doorgestuurd bericht ---------"),
    ("pt", "---------- Mensagem encaminhada ---------"),
    ("sv", "---------- Vidarebefordrat meddelande ---------"),
    ("da", "---------- Videresendt meddelelse ----------"),
    ("no", "---------- Videresendt melding ----------"),
    ("fi", "---------- Välitetty viesti ----------"),
    ("pl", "---------- Wiadomość przekazana dalej ---------"),
    ("ja", "---------- 転送されたメッセージ ----------"),
    ("zh", "---------- 转发的邮件 ----------"),
    ("ru-mailru", "-------- Пересылаемое сообщение --------"),
]


@pytest.mark.parametrize("banner", [b[1] for b in FORWARDS], ids=[b[0] for b in FORWARDS])
def test_forward(banner: str) -> None:
    assert_quote(
        NEW + banner + "\nFrom: X <x@example.com>\nDate: today\n\n" + ORIGINAL, banner, "forward"
    )
    assert_quote(banner + "\n" + ORIGINAL, banner, "forward")


# --- first anchor wins -------------------------------------------------------------------


def test_first_anchor_wins() -> None:
    text = NEW + "-----Original Message-----\nFrom: X\n\nOn 1/1/2024, Y wrote:\n> q\n"
    assert_quote(text, "-----Original", "original-message")
    text = NEW + "On 1/1/2024, Y wrote:\nold text\n\n-----Original Message-----\n"
    assert_quote(text, "On 1/1", "attribution")


def test_ignored_attribution_then_later_anchor() -> None:
    text = (
        "On 1/1/2024, Y wrote:\n> q1\nanswer\n\n---------- Forwarded message ---------\nFrom: Z\n"
    )
    assert_quote(text, "---------- Forwarded", "forward")


# --- negatives ---------------------------------------------------------------------------

NEGATIVES = [
    ("empty", ""),
    ("plain", "Hello,\n\nsee you tomorrow.\n\nBest,\nAvery\n"),
    ("prose-wrote", "On Monday we wrote the report and sent it.\n\nThanks\n"),
    ("prose-wrote-colon-no-date", "On Monday, Bob wrote:\nthe report is done.\n"),
    ("prose-colon", "Here are the steps:\n1. do this\n2. do that\n"),
    ("from-alone", "From: the team\n\nHello all,\nwelcome.\n"),
    ("from-label-too-far", "From: the team\na\nb\nc\nd\nTo: everyone\n"),
    (
        "sent-from-my-desk",
        "Here is another email\n\nSent from my desk, is much easier then my mobile phone.\n",
    ),
    ("interleaved", "On 1/1/2024, X wrote:\n> q1\nmy answer\n> q2\nanswer 2\n"),
    ("bottom-posted", "On 1/1/2024, X wrote:\n> q1\n> q2\n\nmy answer\n\n-- \nAvery\n"),
    ("squirrelmail", "> q1\n> q2\nmy answer\n"),
    ("squirrelmail-interleaved", "Avery wrote:\n> q1\nanswer 1\n> q2\nanswer 2\n"),
    ("short-dash-rule", "Notes\n-----\nitem\n"),
    ("underscores-without-headers", "Notes\n" + "_" * 32 + "\nitem\n"),
    ("gt-in-middle", "a\n> b\nc\n"),
]


@pytest.mark.parametrize("text", [n[1] for n in NEGATIVES], ids=[n[0] for n in NEGATIVES])
def test_no_quote(text: str) -> None:
    assert_quote(text, None, None)


# --- starts_with_quote_intro (HTML element text) -----------------------------------------

INTROS = [
    "On Sep 4, 2025, at 11:30 AM, Jane Roe <jane@example.com> wrote: Hey - can we move the call?",
    "On Mon, Jan 1, 2024 at 10:00 AM John Doe <john@example.com> wrote:",
    "  On 1/1/2024 10:00 AM, John Doe wrote:",
    "From: John Doe <john@example.com> Sent: Monday, January 1, 2024 10:00 AM To: Jane Subject: Hi",
    "*From:* John Doe *Sent:* Monday, January 1, 2024",
    "-----Original Message----- From: John Doe Sent: Monday",
    "----- Original Message ----- From: X",
    "---------- Forwarded message --------- From: John Doe <john@example.com> Date: Mon",
    "Begin forwarded message: From: Jane Roe",
    "Von: Max Mustermann Gesendet: Montag, 1. Januar 2024 An: Erika Betreff: Hallo",
    "De\xa0: Jean Dupont Envoyé\xa0: lundi 1 janvier 2024 À\xa0: Marie",
    "Da: Mario Rossi Inviato: lunedì 1 gennaio 2024 A: Luigi",
    "差出人: 山田太郎 送信日時: 2024年1月1日 10:00",
    "Am 01.01.2024 um 10:00 schrieb John Doe <john@example.com>: Hallo",
    "Le lun. 1 janv. 2024 à 10:00, John Doe <john@example.com> a écrit : Bonjour",
    "El lun, 1 ene 2024 a las 10:00, John Doe (<john@example.com>) escribió: Hola",
    "Il giorno lun 1 gen 2024 alle ore 10:00 John Doe <john@example.com> ha scritto: Ciao",
    'In data 11 ottobre 2017 21:11:31 "X" <x@example.com> ha scritto:',
    "Op ma 1 jan. 2024 om 10:00 schreef John Doe <john@example.com>: Hoi",
    "Em 10 de julho de 2017 às 16:32:35, John Doe (contact@example.com) escreveu: Oi",
    "Den mån 1 jan. 2024 kl 10:00 skrev John Doe <john@example.com>: Hej",
    "man. 1. jan. 2024 kl. 10.00 skrev John Doe <john@example.com>: Hej",
    "pe 20. lokakuuta 2017 klo 17.50 John Coe <j@example.com> kirjoitti: Moi",
    "W dniu 1.01.2024 o 10:00, John Doe pisze: Cześć",
    "pon., 1 sty 2024 o 10:00 John Doe <john@example.com> napisał(a): Cześć",
    "ср, 30 апр. 2025\u202fг. в 15:19, John Doe <doe@example.com>: привет",
    "01.01.2024 10:00, John Doe пишет: привет",
    "2024/01/01 10:00、John Doe <john@example.com>のメッセージ: こんにちは",
    "John Doe <john@example.com> 于2024年1月1日周一 10:00写道： 你好",
    "John Doe <john@example.com> wrote: hi",
    "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@example.com wrote ---- Java sucks",
    "------------------ 原始邮件 ------------------ 发件人: X",
]

NOT_INTROS = [
    "",
    "On Monday we wrote the report and sent it",
    "On Monday, Bob wrote: the report is done",
    "From: the team",
    "From: the team, with love",
    "Hi John, thanks for the update. On Jan 1, 2024 X wrote: quoted",
    "Please ask Bob <bob@example.com> who wrote: the manual",
    "Sent from my desk, is much easier then my mobile phone.",
    "Subject: From: nobody",
]


@pytest.mark.parametrize("text", INTROS)
def test_starts_with_quote_intro(text: str) -> None:
    assert starts_with_quote_intro(text)


@pytest.mark.parametrize("text", NOT_INTROS)
def test_not_a_quote_intro(text: str) -> None:
    assert not starts_with_quote_intro(text)


# --- growth ----------------------------------------------------------------------------
# Each input is built at two sizes and the CPU time of the larger must grow linearly
# (tests/growth.py); the absolute times are for `make bench`, not for a test.


@pytest.mark.parametrize("make", QUOTE_TEXTS.values(), ids=QUOTE_TEXTS.keys())
def test_linear_on_large_input(make: Callable[[int], str]) -> None:
    assert_linear(find_quote_start, make, QUOTE_TEXT_SIZE)
    assert_linear(find_quote_start, crlf(make), QUOTE_TEXT_SIZE)
    assert_linear(starts_with_quote_intro, make, QUOTE_TEXT_SIZE)


# --- properties ----------------------------------------------------------------------------

LINE_POOL = [
    "",
    " ",
    "hello there",
    "> quoted",
    ">",
    "On 1/1/2024 10:00, X wrote:",
    "On Mon, Jan 1, 2024 at 10:00 AM X <",
    "x@example.com> wrote:",
    "From: X",
    "Sent: today",
    "_" * 32,
    "-----Original Message-----",
    "Begin forwarded message:",
    "pe 20. lokakuuta 2017 klo 17.50 X",
    "<x@example.com> kirjoitti:",
    "John wrote:",
]


@settings(max_examples=300, database=None, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LINE_POOL), st.text(max_size=20)), max_size=30))
def test_offset_is_a_line_start_in_both_line_endings(parts: list[str]) -> None:
    lf = "\n".join(p.replace("\r", "").replace("\n", " ") for p in parts)
    results: list[tuple[int, str] | None] = []
    for text in (lf, lf.replace("\n", "\r\n")):
        qs = find_quote_start(text)
        if qs is None:
            results.append(None)
            continue
        assert isinstance(qs, QuoteStart)
        assert qs.style in STYLES
        assert 0 <= qs.offset <= len(text)
        assert qs.offset == 0 or text[qs.offset - 1] == "\n"
        results.append((text[: qs.offset].count("\n"), qs.style))
    assert results[0] == results[1]


@pytest.mark.parametrize("text", forms(NEW + QUOTED + "\n-- \nAvery Quill\nExample Corp\n"))
def test_trailing_quote_followed_by_own_signature(text: str) -> None:
    # Gmail's default: the sender's own "-- " signature sits below the quote.
    qs = find_quote_start(text)
    assert qs is not None and qs.style == "gt"
    assert text[qs.offset :].startswith("> Hello,")


@pytest.mark.parametrize(
    "text",
    forms(
        "Got it\n\nSent from Yahoo Mail on Android\n\n  On Mon, Sep 1, 2025 at 9:00 AM, "
        "Jane Roe<jane@example.net> wrote:   Hi Avery,\n\nCould you send it?\n"
    ),
)
def test_attribution_running_into_the_quote(text: str) -> None:
    # Yahoo Mail for Android writes the quoted text on the attribution's own line.
    qs = find_quote_start(text)
    assert qs is not None and qs.style == "attribution"
    assert text[qs.offset :].lstrip().startswith("On Mon, Sep 1, 2025")


VERB_WORDS = ["wrote", "schrieb", "a écrit", "ha scritto", "пишет", "写道", "napisała"]


@settings(max_examples=500, derandomize=True)
@given(
    st.lists(
        st.sampled_from([*VERB_WORDS, ":", "：", " ", "x", "\u00a0", "-", "On Mon, 1 Jan 2024"]),
        max_size=8,
    ).map("".join)
)
def test_the_colon_test_skips_only_lines_the_inline_verb_cannot_match(line: str) -> None:
    """find_quote_start searches for "wrote:" run on into the quote only on a line with
    a colon: every form of the inline verb ends with one."""
    if textquote._VERB_INLINE_RE.search(line) is not None:
        assert textquote._has_colon(line)


@given(st.text(st.sampled_from("ab:-：\r\t \u00a0\u3000"), max_size=20))
def test_last_char_is_the_last_one_rstrip_keeps(line: str) -> None:
    assert textquote._last_char(line) == line.rstrip()[-1:]
