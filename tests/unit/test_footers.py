"""Known client footers: the table in footers.tsv and its matcher (placement.footers).

Tables per client and per language, in the spirit of quotequail's tests. The literal
strings below are written out by hand (not derived from the table), so a broken or
deleted table row shows up as a failing real-world footer.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

import pytest
from hypothesis import given
from hypothesis import strategies as st

from growth import assert_linear
from hostile_text import FOOTER_LINE_SIZE, FOOTER_LINES
from sigfilter.placement import footers
from sigfilter.placement.footers import FooterMatch, is_footer, is_mobile_mailer, match_footer

# The languages the table must cover, in the order of the issue.
REQUIRED_LANGS = {"en", "de", "fr", "es", "it", "nl", "pt"}
REQUIRED_LANGS |= {"sv", "da", "no", "fi", "pl", "ja", "zh"}
# Danish and Norwegian clients write the same words; the row higher up in the table wins.
SAME_WORDS = {"da": {"da", "no"}, "no": {"da", "no"}}

Case = tuple[str, str]  # (expected lang, line)

APPLE: list[Case] = [
    ("en", "Sent from my iPhone"),
    ("en", "Sent from my iPad"),
    ("en", "Sent from my iPod"),
    ("de", "Von meinem iPhone gesendet"),
    ("de", "Von meinem iPad gesendet"),
    ("fr", "Envoyé de mon iPhone"),
    ("fr", "Envoyé de mon iPad"),
    ("es", "Enviado desde mi iPhone"),
    ("es", "Enviado desde mi iPad"),
    ("it", "Inviato da iPhone"),
    ("it", "Inviato da iPad"),
    ("nl", "Verstuurd vanaf mijn iPhone"),
    ("pt", "Enviado do meu iPhone"),
    ("sv", "Skickat från min iPhone"),
    ("da", "Sendt fra min iPhone"),
    ("no", "Sendt fra min iPad"),
    ("fi", "Lähetetty iPhonesta"),
    ("fi", "Lähetetty iPadista"),
    ("pl", "Wysłane z iPhone'a"),
    ("pl", "Wysłane z iPhone\u2019a"),
    ("pl", "Wysłane z iPada"),
    ("ja", "iPhoneから送信"),
    ("ja", "iPadから送信"),
    ("zh", "发自我的iPhone"),
    ("zh", "发自我的 iPad"),
    ("zh", "從我的 iPhone 傳送"),
    ("zh", "来自我的iPhone"),
    ("ko", "iPhone에서 보냄"),
    ("ru", "Отправлено с iPhone"),
    ("cs", "Odesláno z iPhonu"),
    ("tr", "iPhone'umdan gönderildi"),
]

ANDROID: list[Case] = [
    ("en", "Sent from my Samsung Galaxy smartphone."),
    ("en", "Sent from my Android phone"),
    ("en", "Sent from my Huawei phone"),
    ("en", "Sent from my Galaxy"),
    ("en", "Sent from my Galaxy Tab® S2"),
    ("en", "Sent from Samsung Mobile"),
    ("en", "Sent from my Sony Xperia™ smartphone"),
    ("en", "Sent from my HUAWEI Mate 20 Pro"),
    ("en", "Sent from my T-Mobile 4G LTE Device"),
    ("en", "Sent from my Verizon, Samsung Galaxy smartphone"),
    ("en", "Sent via the Samsung Galaxy S7, an AT&T 4G LTE smartphone"),
    ("en", "Sent via the Samsung Galaxy Note® 3"),
    ("en", "Sent from my mobile device"),
    ("en", "Sent from my Windows Phone"),
    ("en", "Sent from my Android device with K-9 Mail. Please excuse my brevity."),
    ("de", "Von meinem Samsung Galaxy Smartphone gesendet."),
    ("de", "Von meinem Huawei-Handy gesendet"),
    ("de", "Diese Nachricht wurde von meinem Android-Mobiltelefon mit K-9 Mail gesendet."),
    ("fr", "Envoyé depuis mon smartphone Samsung Galaxy."),
    ("fr", "Envoyé de mon appareil Galaxy"),
    ("es", "Enviado desde mi smartphone Samsung Galaxy."),
    ("es", "Enviado desde mi móvil Huawei"),
    ("it", "Inviato da smartphone Samsung Galaxy."),
    ("it", "Inviato dal mio dispositivo Huawei"),
    ("nl", "Verzonden vanaf mijn Samsung Galaxy-smartphone"),
    ("nl", "Verstuurd vanaf mijn telefoon"),
    ("pt", "Enviado do meu smartphone Samsung Galaxy."),
    ("pt", "Enviado do meu telemóvel Huawei"),
    ("sv", "Skickat från min Samsung Galaxy-smartphone"),
    ("sv", "Skickat från min mobil"),
    ("da", "Sendt fra min Samsung Galaxy smartphone."),
    ("no", "Sendt fra min Samsung Galaxy smarttelefon"),
    ("fi", "Lähetetty Samsung Galaxy -älypuhelimesta"),
    ("fi", "Lähetetty Huawei-puhelimesta"),
    ("pl", "Wysłane z mojego smartfona Galaxy"),
    ("pl", "Wysłano z telefonu Samsung"),
    ("ja", "Galaxy スマートフォンから送信"),
    ("ja", "Xperiaから送信"),
    ("zh", "发自我的华为手机"),
    ("zh", "发自我的小米手机"),
    ("zh", "从我的三星Galaxy智能手机发送"),
]

OUTLOOK_MOBILE: list[Case] = [
    ("en", "Get Outlook for iOS"),
    ("en", "Get Outlook for Android"),
    ("en", "Get Outlook for iOS<https://aka.ms/o0ukef>"),
    ("en", "Get Outlook for Android<https://aka.ms/AAb9ysg>"),
    ("en", "Sent from Outlook Mobile"),
    ("de", "Outlook für iOS beziehen"),
    ("de", "Outlook für Android herunterladen"),
    ("de", "Von Outlook für Android gesendet"),
    ("fr", "Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>"),
    ("fr", "Obtenir Outlook pour Android"),
    ("es", "Obtener Outlook para iOS"),
    ("it", "Ottieni Outlook per Android"),
    ("nl", "Outlook voor iOS downloaden"),
    ("pt", "Obter o Outlook para Android"),
    ("sv", "Hämta Outlook för iOS"),
    ("da", "Hent Outlook til iOS"),
    ("no", "Få Outlook for Android"),
    ("fi", "Hanki Outlook for iOS"),
    ("pl", "Pobierz aplikację Outlook dla systemu iOS"),
    ("ja", "Outlook for iOS を入手"),
    ("zh", "获取 Outlook for iOS"),
]

MAIL_FOR_WINDOWS: list[Case] = [
    ("en", "Sent from Mail for Windows 10"),
    ("en", "Sent from Mail for Windows 11"),
    ("en", "Sent from Mail for Windows"),
    ("de", "Gesendet von Mail für Windows 10"),
    ("fr", "Envoyé à partir de Courrier pour Windows 10"),
    ("es", "Enviado desde Correo para Windows 10"),
    ("it", "Inviato da Posta per Windows 10"),
    ("nl", "Verzonden vanuit Mail voor Windows 10"),
    ("pt", "Enviado do Email para Windows 10"),
    ("sv", "Skickades från E-post för Windows 10"),
    ("da", "Sendt fra Mail til Windows 10"),
    ("no", "Sendt fra E-post for Windows 10"),
    ("fi", "Lähetetty Windows 10:n Sähköpostista"),
    ("pl", "Wysłane z aplikacji Poczta dla systemu Windows 10"),
    ("ja", "Windows 10 版のメールから送信"),
    ("zh", "从 Windows 10 版邮件发送"),
    ("ru", "Отправлено из приложения Почта для Windows 10"),
]

YAHOO: list[Case] = [
    ("en", "Sent from Yahoo Mail on Android"),
    ("en", "Sent from Yahoo Mail for iPhone"),
    ("en", "Sent from Yahoo Mail for iPad"),
    ("en", "Sent from Yahoo! Mail on Android"),
    ("de", "Gesendet von Yahoo Mail auf Android"),
    ("fr", "Envoyé depuis Yahoo Mail pour Android"),
    ("es", "Enviado desde Yahoo Mail con Android"),
    ("it", "Inviato da Yahoo Mail su Android"),
    ("pt", "Enviado do Yahoo Mail no Android"),
    ("sv", "Skickat från Yahoo Mail för Android"),
    ("da", "Sendt fra Yahoo Mail på Android"),
]

BLACKBERRY: list[Case] = [
    ("en", "Sent from my BlackBerry® wireless device"),
    ("en", "Sent from my BlackBerry 10 smartphone."),
    ("en", "Sent from my Verizon Wireless BlackBerry"),
    ("en", "Sent from my BlackBerry® smartphone from Verizon Wireless"),
    ("en", "Sent from my BlackBerry device on the Rogers Wireless Network"),
    ("en", "Sent wirelessly from my BlackBerry device on the Bell network."),
    ("en", "Sent via BlackBerry by AT&T"),
    ("en", "Sent via BlackBerry from T-Mobile"),
    ("en", "Sent using BlackBerry"),
    ("en", "Sent with BlackBerry Work"),
    ("en", "Sent with BlackBerry Work (www.blackberry.com)"),
    ("de", "Von meinem BlackBerry 10-Smartphone gesendet."),
    ("fr", "Envoyé de mon smartphone BlackBerry 10 de Bell."),
]

OTHER_APPS: list[Case] = [
    ("en", "Sent from TypeApp"),
    ("en", "Sent from TypeApp<http://www.typeapp.com/r?b=2621>"),
    ("en", "Sent from TypeApp ( http://www.typeapp.com/r?b=2621 )"),
    ("en", "Sent with Sparrow (http://www.sparrowmailapp.com/?sig)"),
    ("en", "Sent with Spark"),
    ("en", "Sent with Airmail"),
    ("en", "Sent from Nine<http://www.9folders.com/>"),
    ("en", "Sent from Gmail Mobile"),
    ("en", "Sent from ProtonMail mobile"),
    ("en", "Sent from Proton Mail mobile"),
    ("en", "Sent from Proton Mail for iOS"),
    ("en", "Sent from AOL Mobile Mail"),
    ("en", "Sent from the all new AOL app for iOS"),
    ("en", "Sent from myMail for Android"),
    ("en", "Sent via Bell Mobility's Text Messaging service."),
]

CLIENTS = {
    "apple": APPLE,
    "android": ANDROID,
    "outlook-mobile": OUTLOOK_MOBILE,
    "mail-for-windows": MAIL_FOR_WINDOWS,
    "yahoo": YAHOO,
    "blackberry": BLACKBERRY,
    "other-apps": OTHER_APPS,
}
LITERAL = [
    pytest.param(lang, line, id=f"{client}-{lang}-{line[:40]}")
    for client, cases in CLIENTS.items()
    for lang, line in cases
]

# How clients and gateways wrap the footer on its line.
WRAPPED = [
    "--Sent from my iPhone",
    "-- Sent from my iPad",
    "—Sent from my iPhone",
    "– Sent from my iPhone",
    "__Sent from my iPhone",
    "Sent from my iPhone!",
    "Sent from my iPhone.",
    "  Sent from my iPhone \r",
    "Sent\u00a0from\u00a0my\u00a0iPhone",
    "Sent  from\tmy   iPhone",
    "\u200bSent from my iPhone\ufeff",
    "SENT FROM MY IPHONE",
    "sent from my iphone",
    "Sent from my iPhone (http://www.example.com/)",
    "Get Outlook for iOS <https://aka.ms/o0ukef>.",
    "iPhone から送信",
    "发自我的 iPhone",
]

NOT_FOOTERS = [
    "Sent from my desk, is much easier then my mobile phone.",
    "Sent from my desk, which is much easier than my mobile phone.",
    "Sent from my desk",
    "Sent from my kitchen table",
    "I sent this from my iPhone yesterday",
    "Sent from my iPhone and I think it is great because of reasons that go on and on",
    "Hello",
    "",
    "   ",
    "Get Outlook",
    "Get Outlook for Windows",
    "Sent from my computer",
    "Sent from my iPhone's charger",
    "iPhone",
    "> Sent from my iPhone",
    "Re: Sent from my iPhone",
    "Sent from Yahoo",
    "Von meinem Schreibtisch gesendet",
    "Envoyé de mon bureau",
    "发自我的电脑",
    "Sent from my iPhone, please excuse typos",
]


@pytest.mark.parametrize(("lang", "line"), LITERAL)
def test_real_footer(lang: str, line: str) -> None:
    found = match_footer(line)
    assert found is not None, line
    assert found.lang in SAME_WORDS.get(lang, {lang}), found
    assert is_footer(line)


def test_literal_cases_cover_required_languages() -> None:
    langs = {lang for cases in CLIENTS.values() for lang, _ in cases}
    assert langs >= REQUIRED_LANGS
    apple = {lang for lang, _ in APPLE}
    assert apple >= REQUIRED_LANGS


@pytest.mark.parametrize("line", WRAPPED)
def test_wrapped_footer(line: str) -> None:
    assert is_footer(line), line


@pytest.mark.parametrize("line", NOT_FOOTERS)
def test_not_a_footer(line: str) -> None:
    assert match_footer(line) is None
    assert not is_footer(line)


def test_match_reports_the_row() -> None:
    assert match_footer("Envoyé de mon iPhone") == FooterMatch("fr", "Envoyé de mon {device}")
    assert match_footer("Von meinem iPhone gesendet") == FooterMatch(
        "de", "Von meinem {device} gesendet"
    )
    assert match_footer("Lähetetty iPhonesta") == FooterMatch("fi", "Lähetetty {device}")
    assert match_footer("iPhoneから送信") == FooterMatch("ja", "{device}から送信")
    assert match_footer("Sent from Mail for Windows 10") == FooterMatch(
        "en", "Sent from Mail for Windows {tail}"
    )
    assert match_footer("Sent from TypeApp<http://www.typeapp.com/r?b=2621>") == FooterMatch(
        "en", "Sent from TypeApp"
    )
    # An app's own row is listed before the generic phone wording, so it wins.
    k9 = match_footer("Sent from my Android device with K-9 Mail. Please excuse my brevity.")
    assert k9 == FooterMatch("en", "Sent from my {device} with K-9 Mail. Please excuse my brevity.")


# --- every table row --------------------------------------------------------------------


def table_rows(kind: str) -> list[tuple[str, str]]:
    text = files("sigfilter.placement").joinpath("footers.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == kind:
            rows.append((cols[1], cols[2]))
    return rows


FOOTER_ROWS = table_rows("footer")


def fill(text: str, device: str, tail: str) -> str:
    return text.replace("{device}", device).replace("{tail}", tail)


@pytest.mark.parametrize(("lang", "text"), FOOTER_ROWS, ids=[t for _, t in FOOTER_ROWS])
@pytest.mark.parametrize("device", ["iPhone", "Samsung Galaxy smartphone"])
@pytest.mark.parametrize("tail", ["Android", "", "for iPhone"])
def test_every_row_matches(lang: str, text: str, device: str, tail: str) -> None:
    line = fill(text, device, tail)
    found = match_footer(line)
    assert found is not None, line
    assert found.lang in SAME_WORDS.get(lang, {lang}), (line, found)


@pytest.mark.parametrize(
    ("lang", "text"),
    [(lang, text) for lang, text in FOOTER_ROWS if "{device}" in text],
    ids=[t for _, t in FOOTER_ROWS if "{device}" in t],
)
def test_every_row_needs_a_device(lang: str, text: str) -> None:
    for device in ("desk", "kitchen table", "computer"):
        line = fill(text, device, "")
        assert match_footer(line) is None, line


def test_table_covers_required_languages() -> None:
    assert {lang for lang, _ in FOOTER_ROWS} >= REQUIRED_LANGS
    devices = {text for _, text in table_rows("device")}
    assert {"iPhone", "iPad", "Android", "Samsung", "BlackBerry", "Handy", "手机"} <= devices


# --- long and hostile lines -------------------------------------------------------------


def match_both(line: str) -> None:
    match_footer(line)
    is_mobile_mailer(line)


@pytest.mark.parametrize("make", FOOTER_LINES.values(), ids=FOOTER_LINES.keys())
def test_long_line_is_linear(make: Callable[[int], str]) -> None:
    assert_linear(match_both, make, FOOTER_LINE_SIZE)


@given(st.text(max_size=200))
def test_any_text(line: str) -> None:
    assert is_footer(line) == (match_footer(line) is not None)


@given(st.sampled_from([line for _, line in APPLE + ANDROID]), st.integers(13, 30))
def test_footer_followed_by_prose_is_not_a_footer(footer: str, words: int) -> None:
    assert match_footer(footer + " blah" * words) is None


# --- X-Mailer / User-Agent --------------------------------------------------------------

MOBILE_MAILERS = [
    "iPhone Mail (16G77)",
    "iPhone Mail (22G86)",
    "iPad Mail (15E148)",
    "Outlook for iOS and Android",
    "WebService/1.1.24187 YahooMailAndroidMobile YMobile/1.0",
    "YahooMailIosMobile YMobile/1.0 (com.yahoo.Aerogram/6.12.0; iOS/13.3)",
    "K-9 Mail for Android",
    "BlackBerry Email (10.3.3.2205)",
    "Samsung Mobile",
    "Nine for Android",
]
NOT_MOBILE_MAILERS = [
    "Microsoft Outlook 16.0",
    "Mozilla Thunderbird",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:52.0) Gecko/20100101 Thunderbird/52.9.1",
    "Apple Mail (2.3445)",
    "Apple Mail (2.3826.700.81)",
    "Microsoft-MacOutlook/16.89.24091630",
    "WebService/1.1.24187 YMailNorrin",
    "Roundcube Webmail/1.1.4",
    "Ninety Mailer",
    "",
]


@pytest.mark.parametrize("value", MOBILE_MAILERS)
def test_mobile_mailer(value: str) -> None:
    assert is_mobile_mailer(value)


@pytest.mark.parametrize("value", NOT_MOBILE_MAILERS)
def test_not_mobile_mailer(value: str) -> None:
    assert not is_mobile_mailer(value)


# --- the guard on rows that start with {device} -------------------------------------------


def _unguarded() -> footers._Compiled:
    """The table compiled without the look-ahead guard (footers._guard): the reference."""
    table = files("sigfilter.placement").joinpath("footers.tsv").read_text(encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(footers, "_guard", lambda after: "")
        return footers._build(table)


UNGUARDED = _unguarded()


def reference_match(line: str) -> FooterMatch | None:
    text = line.translate(footers._INVISIBLE).strip()
    m = UNGUARDED.footer.fullmatch(text) if text else None
    if m is None:
        return None
    return next((found for name, found in UNGUARDED.groups if m.start(name) >= 0), None)


GUARD_LINES = [
    *(line for cases in CLIENTS.values() for _, line in cases),
    *WRAPPED,
    *NOT_FOOTERS,
    *(fill(t, d, "") for _, t in FOOTER_ROWS for d in ("iPhone", "desk", "Galaxy S24")),
    "iPhone 版 Outlook を入手",
    "Galaxy から送信",
    "iPhone iPad から 送信",
    "Item 8",
    "Hi Jonas,",
    "4994,80 €",
]


def test_guard_is_in_the_compiled_table() -> None:
    assert "(?=[\\s\\S]*?" in footers._COMPILED.footer.pattern
    assert "(?=[\\s\\S]*?" not in UNGUARDED.footer.pattern


@pytest.mark.parametrize("line", GUARD_LINES)
def test_guard_changes_no_match(line: str) -> None:
    assert footers._match(line) == reference_match(line)


@given(
    st.lists(
        st.sampled_from(
            [
                "iPhone",
                "Galaxy",
                "から送信",
                "より",
                "에서 보냄",
                "gönderildi",
                "版",
                "Outlook",
                "を入手",
                "Sent",
                "from",
                "my",
                "x",
                " ",
                "。",
                "送信",
            ]
        ),
        max_size=8,
    ).map(" ".join)
    | st.text(max_size=60)
)
def test_guard_changes_no_match_on_any_line(line: str) -> None:
    assert footers._match(line) == reference_match(line)


DASHES = ["-- ", "--", "—", "– ", "__ ", "-", "---", "_", "—\u00a0"]


def test_a_line_after_a_signature_dash_reads_as_the_whole_table_does() -> None:
    """Such a line gets the rows of its first character and of the one after the dash.
    (One test over every dash and line: as parameters they were 5,800 test ids.)"""
    lines = [dash + line for dash in DASHES for line in GUARD_LINES]
    wrong = [x for x in lines if footers._match(x) != reference_match(x)]
    assert len(lines) > 1000 and not wrong, wrong[:5]


@given(
    st.lists(
        st.sampled_from(
            [
                "--",
                "—",
                "–",
                "__",
                "-",
                "Sent",
                "from",
                "my",
                "iPhone",
                "Galaxy",
                "から送信",
                "gönderildi",
                "GÖNDERİLDİ",
                "에서",
                "보냄",
                "版",
                "Outlook",
                "を入手",
                "より送信",
                "Von",
                "meinem",
                "gesendet",
                "<https://aka.ms/o0ukef>",
                ".",
                " ",
                "\u00a0",
                "\t",
                "\u200b",
                "\u00ad",
                "\ufeff",
            ]
        ),
        max_size=9,
    ).map("".join)
    | st.lists(st.sampled_from(["--", "—", " ", "Sent from my iPhone", "x"]), max_size=5).map(
        " ".join
    )
)
def test_row_selection_changes_no_match(line: str) -> None:
    """The rows left out for a line (its first characters, the guards' searches) could
    not have matched it: the answer is the whole unguarded table's."""
    assert footers._match(line) == reference_match(line)


def test_guard_searches_cover_every_guarded_row() -> None:
    guarded = [n for n, row in enumerate(footers._COMPILED.rows) if row.text.startswith("{device}")]
    assert guarded and [n for n, _ in footers._COMPILED.needs] == guarded


# --- the table format -------------------------------------------------------------------

SMALL = "device\t*\tphone\nmailer\t*\tFooMail\n"


def test_table_extends_with_a_row() -> None:
    built = footers._build(SMALL + "footer\txx\tSent by {device} via {tail}\t# unverified\n")
    assert built.footer.fullmatch("Sent by my phone via Foo Bar")
    assert not built.footer.fullmatch("Sent by my desk via Foo Bar")
    assert built.groups[0][1] == FooterMatch("xx", "Sent by {device} via {tail}")
    assert built.mailer.search("FooMail/1.0")


@pytest.mark.parametrize(
    "row",
    [
        "footer\ten",  # missing column
        "footer\ten\tSent from\textra",  # fourth column that is not a comment
        "fotter\ten\tSent from my {device}",  # unknown kind
        "footer\t\tSent from my {device}",  # no lang
        "footer\ten\tSent from my{device}",  # placeholder glued to a word
        "footer\ten\tSent from Mail{tail}",  # no space before {tail}
        "footer\ten\t{device} and {device}",  # two device phrases
        "device\t*\t{device}",  # placeholder outside a footer row
    ],
)
def test_bad_rows_are_rejected(row: str) -> None:
    with pytest.raises(ValueError, match=r"footers\.tsv"):
        footers._build(SMALL + row + "\n")


def test_long_lines_are_not_kept() -> None:
    # The answers for recent lines are kept; a message's last lines can be megabytes
    # long, and 2,048 of them kept would hold gigabytes.
    kept = footers._kept_match
    footers.clear_kept()
    long_footer = "Sent from my iPhone " + "x" * 100_000  # a device phrase of two words
    assert match_footer(long_footer) == match_footer(long_footer[:30])
    assert match_footer("Sent from my iPhone") is not None
    assert kept.cache_info().currsize == 2  # the two short lines
