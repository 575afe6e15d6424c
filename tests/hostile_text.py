"""Hostile text shapes for placement, built at any size: shared by the growth tests
(tests/unit/test_textquote.py, test_footers.py, test_hostile_html.py) and the benchmark
that prints their absolute times (tests/bench/bench_placement.py).
"""

from __future__ import annotations

from collections.abc import Callable

# -- plain-text quote search (placement.textquote) ---------------------------------------

LINE_MIX = (
    "Some ordinary line of text in the new message body, nothing special here.\n"
    "Steps to follow on 1/1/2024 at 10:00:\n"
    "On Monday, at 10:00, the team wrote and reviewed the plan for 2024 and more:\n"
    "From: somebody in the team\n"
    "> a quoted line in the middle\n"
    "an answer line\n"
    "------------------------------------------------------------\n"
    "\n"
)

QUOTE_TEXT_SIZE = 500_000  # characters (the quadratic paths took seconds at this size)


def lines(line: str) -> Callable[[int], str]:
    return lambda n: line * max(n // len(line), 1)


QUOTE_TEXTS: dict[str, Callable[[int], str]] = {
    "mixed": lines(LINE_MIX),
    "colons": lines("see the list below:\n"),
    "dated-colons": lines("Meeting on 1/1/2024 at 10:00 in room 4:\n"),
    "interleaved-attributions": lines("On 1/1/2024, X <x@example.com> wrote:\n> q\nanswer\n"),
    "gt-interleaved": lines("> q\na\n"),
    "long-line": lambda n: "a" * n,
    "long-line-colon": lambda n: "On 1/1/2024 " + "x " * (n // 2) + "wrote:",
    "long-line-spaces": lambda n: "On " + " " * n + ":",
    "long-dashes": lambda n: "-" * n + "x",
    "long-from": lambda n: "From: " + "To: " * (n // 4),
    "long-weekday": lambda n: "pe 20. " * (n // 7) + "kirjoitti",
    "long-wrapped": lambda n: ("On 1/1/2024 10:00 " * (n // 54) + "\n") * 3 + "wrote:\n",
}


def crlf(make: Callable[[int], str]) -> Callable[[int], str]:
    return lambda n: make(n).replace("\n", "\r\n")


# -- one long line against the footer table (placement.footers) ---------------------------

FOOTER_LINE_SIZE = 100_000  # characters in one line
FOOTER_LINES: dict[str, Callable[[int], str]] = {
    "repeated footer": lambda n: "Sent from my iPhone " * (n // 20),
    "repeated device": lambda n: "iPhone " * (n // 7),
    "one long word": lambda n: "a" * n,
    "prefix, long word": lambda n: "Sent from my " + "a" * n,
    "prefix, devices": lambda n: "Sent from my " + "Samsung Galaxy " * (n // 15),
    "prefix, spaces": lambda n: "Sent" + " " * n + "from my iPhone x",
    "dashes": lambda n: "-" * n,
    "cjk devices": lambda n: "发自我的" + "手机" * (n // 2) + "x",
    "kana": lambda n: "スマートフォン" * (n // 7) + "から送信x",
    "open link": lambda n: "Sent from my iPhone<http://" + "a" * n,
    "links": lambda n: "Sent from my iPhone" + " <http://a>" * (n // 11),
    "tail": lambda n: "Sent from Yahoo Mail " + "on " * (n // 3),
    "device and tail": lambda n: "Sent wirelessly from my " + "BlackBerry " * (n // 11),
    "nbsp": lambda n: "Sent\u00a0from\u00a0my\u00a0" + "iPhone\u00a0" * (n // 7) + "x",
}


# -- HTML placement (placement.html): each shape was quadratic once ---------------------

HTML_SOURCE_SIZE = 8000  # repetitions of each shape
HTML_SOURCES: dict[str, Callable[[int], str]] = {
    # 14 s: every quote candidate searched the source for its k-th start tag.
    "cite-blockquotes": lambda n: '<blockquote type="cite">x</blockquote>\n' * n,
    "gmail-quotes": lambda n: '<div class="gmail_quote">x</div>\n' * n,
    # 7 s: each "<script " without ">" rescanned the rest of the source.
    "unclosed-scripts": lambda n: "<script " * (n * 5),
    # each "</" in a script is compared with its name (html.excluded_regions)
    "script-closer-lookalikes": lambda n: "<script>" + "</scripx </SCRIPT \t" * (n * 2),
    "unclosed-comments": lambda n: "<!--" * (n * 5),
    # 20 s: our-signature search backtracked through every "class=".
    "class-attributes": lambda n: "class=" * (n * 2),
    # 10 s: every text node after a <br> matched against the footer table.
    "br-text-nodes": lambda n: "<br>x" * (n * 20),
    # many footer elements, each needing a span
    "footer-paragraphs": lambda n: "<p>Sent from my iPhone</p>\n" * n,
}
