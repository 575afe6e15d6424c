"""Known mail-client footers ("Sent from my iPhone") and mobile X-Mailer values.

The phrases live in ``footers.tsv`` (package data) so they can be extended without
touching code; its header comment documents the format. The table is read once at
import and compiled into one regex for footers and one for mailers.

Words and spaces are matched possessively and the number of words in a placeholder is
bounded, so no line can make the footer regex backtrack badly: a long line fails fast.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files
from itertools import groupby

__all__ = ["FooterMatch", "clear_kept", "is_footer", "is_mobile_mailer", "match_footer"]

_TABLE = "footers.tsv"
_KINDS = frozenset({"footer", "device", "mailer"})
_MAX_DEVICE_WORDS = 5
_MAX_TAIL_WORDS = 6


@dataclass(frozen=True)
class FooterMatch:
    """The table row a footer line matched."""

    lang: str  # language code of the matching row
    phrase: str  # the table row's text


@dataclass(frozen=True)
class _Row:
    kind: str
    lang: str
    text: str
    line: int


# Letters and digits of the scripts that separate words with spaces (Latin, Greek,
# Cyrillic, with combining marks). Chinese/Japanese/Korean are left out on purpose: that
# text is glued to a device name ("iPhoneから送信") and must not become part of the word.
_ALNUM = (
    "0-9A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af"
    "\u0300-\u036f\u0370-\u03ff\u0400-\u052f\u1e00-\u1fff"
)
_WORD_CHAR = f"[{_ALNUM}'’®™.+&\\-]"
_WORD = f"{_WORD_CHAR}++"  # possessive: a word is always taken whole
_APOSTROPHES = "'’"
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# str.translate reads a non-ASCII line character by character through the dict (~26 µs
# for a 400-character paragraph); this search finds the lines it would change (~0.5 µs).
_HAS_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")

_PREFIX = r"(?:(?:--|__|[—–])\s*+)?"
_LINK = (
    r"(?:<(?:https?://|www\.)[^\s<>]*+>"
    r"|\(\s*+(?:https?://|www\.)[^\s()]*+\s*+\))"
)
_SUFFIX = rf"(?:\s*+[.!])?(?:\s*+{_LINK})?(?:\s*+[.!])?"
_SLOT = "\0"  # where {device} goes, until the row is split there
_TAIL = rf"(?:\s++{_WORD}){{0,{_MAX_TAIL_WORDS}}}"


def _is_cjk(ch: str) -> bool:
    if len(ch) != 1:
        return False
    cp = ord(ch)
    return (
        0x1100 <= cp <= 0x11FF  # Hangul Jamo
        or 0x2E80 <= cp <= 0x9FFF  # CJK radicals, punctuation, kana, ideographs
        or 0xAC00 <= cp <= 0xD7AF  # Hangul syllables
        or 0xF900 <= cp <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= cp <= 0xFFEF  # half- and full-width forms
        or 0x20000 <= cp <= 0x3FFFF  # CJK extensions
    )


def _is_word_char(ch: str) -> bool:
    return re.fullmatch(_WORD_CHAR, ch) is not None


def _parse(table: str) -> list[_Row]:
    rows: list[_Row] = []
    for n, raw in enumerate(table.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cols = raw.split("\t")
        if len(cols) == 4 and cols[3].lstrip().startswith("#"):
            cols = cols[:3]  # trailing comment column
        if len(cols) != 3:
            raise ValueError(f"{_TABLE}:{n}: want kind<TAB>lang<TAB>text, got {raw!r}")
        kind, lang, text = (c.strip() for c in cols)
        if kind not in _KINDS:
            raise ValueError(f"{_TABLE}:{n}: unknown kind {kind!r}")
        if not lang or not text:
            raise ValueError(f"{_TABLE}:{n}: empty lang or text")
        if _SLOT in text:
            raise ValueError(f"{_TABLE}:{n}: NUL character in {text!r}")
        rows.append(_Row(kind, lang, text, n))
    return rows


def _atoms(text: str) -> list[str]:
    """Single characters, " " for a whitespace run, and the placeholders."""
    out: list[str] = []
    for part in re.split(r"(\{device\}|\{tail\})", text):
        if part in ("{device}", "{tail}"):
            out.append(part)
            continue
        for ch in part:
            if ch.isspace():
                if out[-1:] != [" "]:
                    out.append(" ")
            else:
                out.append(ch)
    return out


def _pattern(row: _Row, placeholders: bool) -> str:
    """Regex source for a row's text, with ``_SLOT`` where {device} goes."""
    atoms = _atoms(row.text)
    out: list[str] = []
    for i, atom in enumerate(atoms):
        prev = atoms[i - 1] if i else ""
        nxt = atoms[i + 1] if i + 1 < len(atoms) else ""
        if atom in ("{device}", "{tail}"):
            if not placeholders:
                raise ValueError(f"{_TABLE}:{row.line}: {atom} only works in footer rows")
            if _is_word_char(prev) or _is_word_char(nxt):
                raise ValueError(f"{_TABLE}:{row.line}: put a space around {atom}")
            if atom == "{tail}" and prev != " ":
                raise ValueError(f"{_TABLE}:{row.line}: put a space before {{tail}}")
            out.append(_SLOT if atom == "{device}" else _TAIL)
        elif atom == " ":
            if nxt != "{tail}":  # the tail brings its own spaces
                out.append(r"\s*+" if _is_cjk(prev) or _is_cjk(nxt) else r"\s++")
        else:
            if prev not in ("", " ") and _is_cjk(prev) != _is_cjk(atom):
                out.append(r"\s*+")  # "iPhone から送信" is written both ways
            out.append(f"[{_APOSTROPHES}]" if atom in _APOSTROPHES else re.escape(atom))
    return "".join(out)


def _alternation(patterns: list[str]) -> str:
    return "(?:" + "|".join(sorted(set(patterns), key=len, reverse=True)) + ")"


def _device_phrase(devices: list[_Row]) -> tuple[str, str]:
    """Regex sources (device word, any word) for a {device} phrase."""
    latin = [_pattern(r, False) for r in devices if not _is_cjk(r.text[0])]
    cjk = [_pattern(r, False) for r in devices if _is_cjk(r.text[0])]
    cjk_word = _alternation(cjk) if cjk else "(?!)"
    # A device word starts with a device name that is not part of a longer word:
    # "BlackBerry®", "Android-Gerät" and "iPhone." count, "iPhones" and "iPhone's" do not.
    latin_device = rf"(?=(?:{_alternation(latin)})(?![{_ALNUM}{_APOSTROPHES}])){_WORD}"
    return f"(?:{latin_device}|{cjk_word})", f"(?:{_WORD}|{cjk_word})"


@dataclass(frozen=True)
class _Compiled:
    footer: re.Pattern[str]  # every footer row
    mailer: re.Pattern[str]
    groups: tuple[tuple[str, FooterMatch], ...]  # (regex group, row), in table order
    rows: tuple[_Row, ...] = ()  # the footer rows, in table order
    words: tuple[str, str] = ("", "")  # the device phrase's (device word, any word)
    # Per footer row: the one character a line matching it starts with (None: any).
    firsts: tuple[re.Pattern[str] | None, ...] = ()
    # Rows that start with {device}: (row, a search that finds what its guard needs).
    needs: tuple[tuple[int, re.Pattern[str]], ...] = ()


Indexed = tuple[int, _Row]  # a footer row and its place in the table


def _device_block(
    rows: list[Indexed], first: int, device_word: str, any_word: str
) -> tuple[str, list[tuple[str, FooterMatch]]]:
    """One branch for consecutive {device} rows, sharing a single device phrase.

    The phrase regex is large (every device name), so it is written once per block:
    each row's text before {device} is a named alternative, and its text after
    {device} is only tried when that alternative matched.
    """
    names = [f"g{n}" for n, _ in rows]
    halves: list[list[str]] = []
    for _, row in rows:
        if row.text.count("{device}") > 1:
            raise ValueError(f"{_TABLE}:{row.line}: only one {{device}} per row")
        halves.append(_pattern(row, True).split(_SLOT))
    dev = f"d{first}"
    # "At least one device word" without trying every split of the phrase: a device
    # word is captured, and the conditional fails the phrase if none ever was.
    phrase = (
        rf"(?:\s*+(?:(?P<{dev}>{device_word})|{any_word})){{1,{_MAX_DEVICE_WORDS}}}"
        rf"(?({dev})|(?!))"
    )
    before = "|".join(f"(?P<{n}>{b or _guard(a)})" for n, (b, a) in zip(names, halves, strict=True))
    after = "|".join(f"(?({n}){a}|(?!))" for n, (_, a) in zip(names, halves, strict=True))
    groups = [(n, FooterMatch(r.lang, r.text)) for n, (_, r) in zip(names, rows, strict=True)]
    return f"(?:{before}){phrase}(?:{after})", groups


def _guard(after: str) -> str:
    """For a row that starts with {device} ("{device}から送信"): its text after the
    device must appear somewhere in the line, or the device phrase is not tried.

    Without it every line ran the phrase (up to five words, each tried against every
    device name) once per such row: ~70 µs for any short line, ~2 ms per 21 KB
    Outlook reply whose lines were not cached (measured). The lookahead only tests
    what the row needs anyway (the same pattern, searched ahead), so the match and
    the row that wins are unchanged.
    """
    return rf"(?=[\s\S]*?{after})" if after else ""


def _need(row: _Row) -> re.Pattern[str] | None:
    """A search that finds a match wherever the guard of a {device}-first row holds.

    The guard looks ahead for the row's text after {device}, which opens with the
    space before it (``\\s++``) or the optional one where CJK text meets a device
    (``\\s*+``), then a character that is not a space. Where that text matches, the
    search finds the same text (``\\s*+`` dropped, or one space kept of ``\\s++``); so a
    line it finds nothing in fails the guard at every position. None: no search.
    """
    if _atoms(row.text)[0] != "{device}":
        return None
    after = _pattern(row, True).split(_SLOT)[1]
    for lead, keep in ((r"\s*+", ""), (r"\s++", r"\s")):
        rest = after[len(lead) :]
        if after.startswith(lead) and rest and rest[0] not in "\\(":  # a literal next
            return re.compile(keep + rest, re.IGNORECASE)
    return None


def _first(row: _Row) -> str | None:
    """Regex source of the character every match of ``row`` starts with (None: any)."""
    atom = _atoms(row.text)[0]
    if atom in ("{device}", "{tail}"):
        return None
    return f"[{_APOSTROPHES}]" if atom in _APOSTROPHES else re.escape(atom)


def _footer_regex(
    rows: tuple[_Row, ...], keep: frozenset[int], words: tuple[str, str]
) -> tuple[re.Pattern[str] | None, tuple[tuple[str, FooterMatch], ...]]:
    """The regex of the footer rows numbered in ``keep`` (None if there are none).

    Blocks keep table order, so the row higher up in the table still wins; a block of
    {device} rows keeps its place and loses only the rows not kept.
    """
    branches: list[str] = []
    groups: list[tuple[str, FooterMatch]] = []
    start = 0
    for has_device, group in groupby(rows, key=lambda r: "{device}" in r.text):
        run = list(group)
        kept = [(start + j, row) for j, row in enumerate(run) if start + j in keep]
        if has_device and kept:
            branch, block = _device_block(kept, start, *words)
            branches.append(branch)
            groups.extend(block)
        elif kept:
            for n, row in kept:
                branches.append(f"(?P<g{n}>{_pattern(row, True)})")
                groups.append((f"g{n}", FooterMatch(row.lang, row.text)))
        start += len(run)
    if not branches:
        return None, ()
    footer = re.compile(_PREFIX + "(?:" + "|".join(branches) + ")" + _SUFFIX, re.IGNORECASE)
    return footer, tuple(groups)


def _build(table: str) -> _Compiled:
    rows = _parse(table)
    devices = [r for r in rows if r.kind == "device"]
    footers = tuple(r for r in rows if r.kind == "footer")
    mailers = [r for r in rows if r.kind == "mailer"]
    if not devices or not footers or not mailers:
        raise ValueError(f"{_TABLE}: needs footer, device and mailer rows")
    words = _device_phrase(devices)
    footer, groups = _footer_regex(footers, frozenset(range(len(footers))), words)
    assert footer is not None  # there are footer rows
    # Whole words only: "Nine" is a mail app, "Ninety" is not.
    clients = _alternation([_pattern(r, False) for r in mailers])
    mailer = re.compile(rf"(?<![^\W_]){clients}(?![^\W_])", re.IGNORECASE)
    firsts = tuple(re.compile(f, re.IGNORECASE) if (f := _first(r)) else None for r in footers)
    needs = tuple((n, rx) for n, r in enumerate(footers) if (rx := _need(r)) is not None)
    return _Compiled(footer, mailer, groups, footers, words, firsts, needs)


_COMPILED = _build(files("sigfilter.placement").joinpath(_TABLE).read_text(encoding="utf-8"))
_PREFIX_RE = re.compile(_PREFIX[:-1])  # the signature dash, not optional


@functools.lru_cache(maxsize=512)
def _rows_starting(char: str) -> frozenset[int]:
    """The footer rows a line that starts with ``char`` (not a prefix) can match."""
    firsts = _COMPILED.firsts
    return frozenset(n for n, t in enumerate(firsts) if t is None or t.fullmatch(char))


@functools.lru_cache(maxsize=128)
def _regex_for(
    keep: frozenset[int],
) -> tuple[re.Pattern[str] | None, tuple[tuple[str, FooterMatch], ...]]:
    return _footer_regex(_COMPILED.rows, keep, _COMPILED.words)


def _table_for(text: str) -> tuple[re.Pattern[str] | None, tuple[tuple[str, FooterMatch], ...]]:
    """The regex for a line: only the rows that can match it.

    The whole table tries every row at the line's start: ~10 µs for any line that is
    not a footer (most of a message's lines), ~1-3 µs with the rows of its first
    character (measured). A row left out cannot match (its first character's test is
    its own regex's, with the same flags), so the answer is the same. Each set of rows
    is compiled once, when first needed (the table has ~20 such sets; 4-15 ms each).

    A line that opens with a signature dash ("-- ", "—") may start its row after it:
    the rows of both characters. The {device}-first rows are in every set, and their
    guards scanned the whole line each: ~30 µs for a 400-character paragraph (the
    last line of most replies' new text), ~6 µs with the searches of _need, which
    drop the rows whose guard cannot hold (measured, tests/bench make_message lines).
    """
    rows = _rows_starting(text[0])
    dash = _PREFIX_RE.match(text)
    if dash is not None and dash.end() < len(text):
        rows |= _rows_starting(text[dash.end()])
    absent = [n for n, rx in _COMPILED.needs if rx.search(text) is None]
    return _regex_for(rows.difference(absent))


MAX_KEPT_LINE = 300  # characters of a line whose answer is kept


def match_footer(line: str) -> FooterMatch | None:
    """The footer row that ``line`` (one line of text, or one element's text) is.

    The whole line must be the footer, give or take a signature dash before it and a
    link and "." or "!" after it.
    """
    # The same few footer lines ("Sent from my iPhone") arrive over and over, and
    # matching one against the table costs ~50 µs: answers are kept for the short lines
    # seen most recently. A message's last lines can be megabytes long: 2,048 of them
    # kept held gigabytes.
    return _kept_match(line) if len(line) <= MAX_KEPT_LINE else _match(line)


def clear_kept() -> None:
    """Forget the kept answers (a benchmark's messages must all be new)."""
    _kept_match.cache_clear()


def _match(line: str) -> FooterMatch | None:
    text = (line.translate(_INVISIBLE) if _HAS_INVISIBLE.search(line) else line).strip()
    if not text:
        return None
    footer, groups = _table_for(text)
    m = footer.fullmatch(text) if footer is not None else None
    if m is None:
        return None
    return next((found for name, found in groups if m.start(name) >= 0), None)


_kept_match = functools.lru_cache(maxsize=2048)(_match)


def is_footer(line: str) -> bool:
    return match_footer(line) is not None


def is_mobile_mailer(header_value: str) -> bool:
    """Whether an X-Mailer or User-Agent value names a mobile mail client."""
    return _COMPILED.mailer.search(header_value) is not None
