"""Find where a signature goes in a plain-text part, and shape the text to insert."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import admintext
from .footers import is_footer
from .lines import line_spans_reversed
from .ownsig import TYPED, find_text_block
from .spot import Kind, Spot, Spots
from .textquote import find_quote_start
from .textsig import find_dashdash, find_tail_dashdash

if TYPE_CHECKING:
    from ..signature import SenderCard

_FOOTER_LINES = 3  # a footer is one of the last few non-blank lines of the new text


def find_marker(text: str, marker: str, limit: int) -> Spot | None:
    pos = text.find(marker, 0, limit)
    if pos < 0:
        return None
    ls = text.rfind("\n", 0, pos) + 1
    le = text.find("\n", pos)
    le = len(text) if le < 0 else le
    if le > ls and text[le - 1] == "\r":
        le -= 1
    if text[ls:le].strip() == marker:
        return Spot(Kind.MARKER, ls, le, "line")
    return Spot(Kind.MARKER, pos, pos + len(marker), "inline")


def find_footer(text: str, limit: int) -> Spot | None:
    seen = 0
    for start, end in line_spans_reversed(text, 0, limit):
        line = text[start:end]
        if not line.strip():
            continue
        if is_footer(line):
            return Spot(Kind.FOOTER, start, end, "line")
        seen += 1
        if seen >= _FOOTER_LINES:
            break
    return None


def find_end(text: str, limit: int) -> Spot:
    """Just after the last non-blank line of the new text."""
    for start, end in line_spans_reversed(text, 0, limit):
        if text[start:end].strip():
            nl = text.find("\n", end, limit)
            pos = end if nl < 0 else nl + 1
            return Spot(Kind.END, pos, pos, "after-text")
    return Spot(Kind.END, 0, 0, "empty")


DASH_DASH = "dash-dash"  # the name of the RFC 3676 "-- " signature in decisions


def text_spots(
    text: str,
    marker: str,
    signatures: tuple[str, ...] = (),
    clients: bool = True,
    card: SenderCard | None = None,
    admin: tuple[str, ...] = (),
) -> Spots:
    quote = find_quote_start(text)
    limit = quote.offset if quote else len(text)
    found: dict[Kind, Spot] = {Kind.END: find_end(text, limit)}
    if quote:
        found[Kind.QUOTE] = Spot(Kind.QUOTE, quote.offset, quote.offset, quote.style)
    for spot in (find_marker(text, marker, limit), find_footer(text, limit)):
        if spot:
            found[spot.kind] = spot
    if clients:
        span = find_dashdash(text, limit) or (find_tail_dashdash(text, limit) if quote else None)
        if span is not None:
            found[Kind.CLIENT] = Spot(Kind.CLIENT, span[0], span[1], DASH_DASH)
        elif (own := admintext.find_text(text, limit, admin)) is not None:
            found[Kind.CLIENT] = Spot(Kind.CLIENT, own[0], own[1], admintext.ADMIN)
        elif (typed := find_text_block(text, limit, card)) is not None:
            found[Kind.CLIENT] = Spot(Kind.CLIENT, typed[0], typed[1], TYPED)
    return Spots(found, limit, _ours(text, limit, signatures))


def _ours(text: str, limit: int, signatures: tuple[str, ...]) -> bool:
    """Whether one of our text signatures (either variant) is in ``text[:limit]``.

    Recognised by its rendered text, whitespace squashed. Each of its words then lies
    inside one word of the text: a signature one of whose words the text lacks is not
    there, and the text is squashed only when one could be (~20 -> ~2 µs a reply).
    """
    squashed: str | None = None
    for sig in signatures:
        words = sig.split()
        if not words or any(text.find(word, 0, limit) < 0 for word in words):
            continue
        if squashed is None:
            squashed = _squash(text[:limit])
        if " ".join(words) in squashed:
            return True
    return False


def _squash(text: str) -> str:
    return " ".join(text.split())


def flowed_safe(signature: str) -> str:
    """Make signature lines safe inside format=flowed text (RFC 3676).

    Trailing spaces would join lines (soft breaks), and a line starting with a space,
    ">" or "From " must be space-stuffed. The "-- " delimiter keeps its space.
    """
    out = []
    for line in signature.split("\n"):
        safe = line if line == "-- " else line.rstrip(" ")
        out.append(" " + safe if safe.startswith((" ", ">", "From ")) else safe)
    return "\n".join(out)


def shape_insert(text: str, spot: Spot, signature: str) -> str:
    """The text to splice at ``spot``: blank lines around the signature as needed."""
    sig = signature.strip("\n")
    if spot.kind in (Kind.MARKER, Kind.CLIENT, Kind.FOOTER):
        return sig
    before = text[: spot.start]
    prefix = ""
    if before and not before.endswith("\n"):
        prefix = "\n\n"
    elif before.rstrip("\r\n") and not before.endswith(("\n\n", "\n\r\n")):
        prefix = "\n"
    if spot.kind is Kind.QUOTE:
        return prefix + sig + "\n\n"
    return prefix + sig + "\n"
