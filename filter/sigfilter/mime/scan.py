"""Scan a raw message into a tree of parts with byte offsets.

The scanner never copies or re-encodes: every :class:`Part` records where its header
block and body lie in the original bytes, so the engine can splice new bytes into one
leaf and leave every other byte alone. Anything the scanner cannot read with certainty
(missing or duplicated boundaries, unterminated multiparts, too deep a tree) raises
:class:`MimeStructureError`; the engine then passes the message through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..defaults import MIME_MAX_DEPTH, MIME_MAX_PARTS
from .headers import (
    DEFAULT_RFC822,
    DEFAULT_TEXT,
    TOO_MANY_LINES,
    ContentType,
    HeaderBlock,
    parse_content_type,
    parse_header_block,
)

MAX_DEPTH = MIME_MAX_DEPTH
MAX_PARTS = MIME_MAX_PARTS


class MimeStructureError(ValueError):
    """The message's MIME structure cannot be trusted for a byte-exact rewrite."""


@dataclass(slots=True)
class Part:
    """One MIME entity. Offsets index the original message bytes."""

    start: int  # first byte of the entity's header block
    headers: HeaderBlock
    ctype: ContentType
    body_start: int
    body_end: int  # excludes the line break that belongs to the next delimiter
    depth: int
    children: list[Part] = field(default_factory=list)

    @property
    def is_multipart(self) -> bool:
        return self.ctype.maintype == "multipart"

    @property
    def cte(self) -> str:
        f = self.headers.get("content-transfer-encoding")
        return f.value.strip().lower() if f else "7bit"

    @property
    def disposition(self) -> str:
        f = self.headers.get("content-disposition")
        return f.value.split(";", 1)[0].strip().lower() if f else ""

    @property
    def filename(self) -> bool:
        """Whether the part names a file (an attachment, whatever its disposition)."""
        d = self.headers.get("content-disposition")
        c = self.headers.get("content-type")
        return bool((d and "filename" in d.value.lower()) or (c and "name=" in c.value.lower()))

    def walk(self) -> list[Part]:
        out: list[Part] = []
        stack = [self]
        while stack:
            p = stack.pop()
            out.append(p)
            stack.extend(reversed(p.children))
        return out


def _content_type(headers: HeaderBlock, default: ContentType) -> ContentType:
    fields = headers.get_all("content-type")
    if len(fields) > 1:
        raise MimeStructureError("two Content-Type fields in one part")
    return parse_content_type(fields[0].value if fields else None, default)


def scan(raw: bytes, top: HeaderBlock | None = None) -> Part:
    """Scan a whole message (header block + body).

    ``top`` is the message's own header block when the caller has parsed it already
    (``parse_header_block(raw)``): it is not parsed again.
    """
    counter = [0]
    return _scan_entity(raw, 0, len(raw), 0, DEFAULT_TEXT, counter, top)


def _scan_entity(
    raw: bytes,
    start: int,
    end: int,
    depth: int,
    default: ContentType,
    counter: list[int],
    parsed: HeaderBlock | None = None,
) -> Part:
    counter[0] += 1
    if counter[0] > MAX_PARTS:
        raise MimeStructureError(f"more than {MAX_PARTS} parts")
    if depth > MAX_DEPTH:
        raise MimeStructureError(f"multipart nesting deeper than {MAX_DEPTH}")
    headers = parsed if parsed is not None else parse_header_block(raw, start, end)
    if TOO_MANY_LINES in headers.defects:
        raise MimeStructureError("a header block has too many lines")
    ctype = _content_type(headers, default)
    part = Part(start, headers, ctype, headers.end, end, depth)
    if part.is_multipart:
        boundary = ctype.param("boundary")
        if not boundary:
            raise MimeStructureError(f"{ctype.type} without a boundary")
        child_default = DEFAULT_RFC822 if ctype.subtype == "digest" else DEFAULT_TEXT
        for cstart, cend in _split_multipart(raw, headers.end, end, boundary):
            part.children.append(_scan_entity(raw, cstart, cend, depth + 1, child_default, counter))
        _check_boundaries(part)
    return part


def _split_multipart(raw: bytes, start: int, end: int, boundary: str) -> Iterator[tuple[int, int]]:
    """Yield the (start, end) spans of the body parts between delimiter lines.

    A delimiter line is "--boundary", optionally "--", then only transport padding
    (RFC 2046 5.1.1); the line break before it belongs to it. ``bytes.find`` keeps
    this fast over megabytes of base64. A generator, so that the part limit stops the
    scan at the first part too many instead of after splitting 100,000 of them.
    """
    needle = b"\n--" + boundary.encode("latin-1")  # the longer the needle, the faster find()
    spans = 0
    part_start: int | None = None
    first = raw.startswith(needle[1:], start)
    pos = start
    while True:
        if first:
            hit, first = start, False
            pos = start + len(needle) - 1
        else:
            nl_hit = raw.find(needle, max(pos - 1, 0), end)
            if nl_hit < 0:
                raise MimeStructureError("multipart has no closing delimiter")
            hit = nl_hit + 1
            pos = nl_hit + len(needle)
        nl = raw.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        rest = raw[pos:line_end].rstrip(b"\r\n")
        closing = rest.startswith(b"--")
        if closing:
            rest = rest[2:]
        if rest.strip(b" \t"):
            raise MimeStructureError("text after a boundary delimiter")
        if part_start is not None:
            spans += 1
            yield part_start, _strip_eol_before(raw, hit, part_start)
        if closing:
            if not spans:
                raise MimeStructureError("multipart without body parts")
            return
        part_start = line_end
        pos = line_end


def _strip_eol_before(raw: bytes, pos: int, floor: int) -> int:
    if pos > floor and raw[pos - 1 : pos] == b"\n":
        pos -= 1
        if pos > floor and raw[pos - 1 : pos] == b"\r":
            pos -= 1
    return pos


def _check_boundaries(part: Part) -> None:
    """Refuse nested multiparts whose boundary collides with an enclosing one."""
    outer = part.ctype.param("boundary") or ""
    for child in part.walk()[1:]:
        inner = child.ctype.param("boundary") if child.is_multipart else None
        if inner and (inner.startswith(outer) or outer.startswith(inner)):
            raise MimeStructureError("nested multipart reuses the enclosing boundary")
