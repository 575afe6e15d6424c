"""Byte edits: top-level header changes (milter terms), splices, part header rewrites."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import codec
from .headers import HeaderBlock, HeaderField, parse_header_block, set_param, set_value
from .scan import Part


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """A top-level header change, in milter terms.

    ``index`` is the 1-based occurrence of ``name`` to change (``chgheader``); 0 adds a
    new field (``addheader``). ``value`` None deletes the field.
    """

    name: str
    index: int
    value: str | None


@dataclass(slots=True)
class Splice:
    start: int
    end: int
    data: bytes


def apply_splices(raw: bytes, body_start: int, splices: list[Splice]) -> bytes:
    view = memoryview(raw)  # slices of a view are not copies: the join copies once
    out: list[bytes | memoryview] = []
    pos = body_start
    for sp in sorted(splices, key=lambda s: s.start):
        out.append(view[pos : sp.start])
        out.append(sp.data)
        pos = sp.end
    out.append(view[pos:])
    return b"".join(out)


def root_header_edits(
    raw: bytes, headers: HeaderBlock, charset: str | None, cte: str | None
) -> list[HeaderEdit]:
    edits: list[HeaderEdit] = []
    if charset:
        ct = headers.get("content-type")
        if ct is None:
            edits.append(HeaderEdit("Content-Type", 0, f"text/plain; charset={charset}"))
        else:
            edits.append(HeaderEdit("Content-Type", 1, param_value(ct.value, "charset", charset)))
    if cte:
        has = headers.get("content-transfer-encoding") is not None
        edits.append(HeaderEdit("Content-Transfer-Encoding", 1 if has else 0, cte))
    return edits


def param_value(value: str, name: str, new: str) -> str:
    line = b"X: " + value.encode("latin-1") + b"\n"
    fld = HeaderField("x", 0, len(line), value)
    return set_param(line, fld, name, new)[3:].rstrip(b"\r\n").decode("latin-1")


def part_headers(raw: bytes, part: Part, charset: str | None, cte: str | None) -> bytes:
    """The part's header block with the charset parameter and CTE changed in place."""
    head_end = part.headers.end
    replace: dict[int, tuple[int, bytes]] = {}
    added: list[bytes] = []
    eol = codec.eol_of(raw, b"\r\n", part.start, part.body_end)  # no copy of the part
    if charset:
        ct = part.headers.get("content-type")
        if ct is None:
            added.append(b"Content-Type: text/plain; charset=" + charset.encode() + eol)
        else:
            replace[ct.start] = (ct.end, set_param(raw, ct, "charset", charset))
    if cte:
        f = part.headers.get("content-transfer-encoding")
        if f is None:
            added.append(b"Content-Transfer-Encoding: " + cte.encode() + eol)
        else:
            replace[f.start] = (f.end, set_value(raw, f, cte))
    blank = raw[part.start : head_end].rfind(b"\n", 0, head_end - part.start - 1) + 1
    fields_end = part.start + blank if part.headers.fields else part.start
    out: list[bytes] = []
    pos = part.start
    for start in sorted(replace):
        end, data = replace[start]
        out += [raw[pos:start], data]
        pos = end
    out += [raw[pos:fields_end], *added, raw[fields_end:head_end]]
    return b"".join(out)


def apply_header_edits(raw: bytes, edits: Iterable[HeaderEdit]) -> bytes:
    """The original header block with ``edits`` applied, byte-exact elsewhere."""
    headers = parse_header_block(raw)
    head = raw[: headers.end]
    eol = codec.eol_of(raw)
    blank = len(eol) if head.endswith(eol + eol) or head == eol else 0
    fields_part, tail = head[: len(head) - blank], head[len(head) - blank :]
    for edit in edits:
        fields_part = _apply_edit(fields_part, edit, eol)
    return fields_part + tail


def _apply_edit(head: bytes, edit: HeaderEdit, eol: bytes) -> bytes:
    line = b"" if edit.value is None else edit.name.encode() + b": " + edit.value.encode() + eol
    if edit.index == 0:
        return head + line
    matches = parse_header_block(head + eol).get_all(edit.name)
    if len(matches) < edit.index:
        return head + line
    f = matches[edit.index - 1]
    return head[: f.start] + line + head[f.end :]


def set_header(headers: HeaderBlock, name: str, value: str) -> HeaderEdit:
    return HeaderEdit(name, 1 if headers.get(name) else 0, value)


def moved_root_headers(
    raw: bytes, headers: HeaderBlock, charset: str | None, cte: str | None, eol: bytes
) -> bytes:
    """The top-level Content-Type/CTE, rewritten as the header block of the text part."""
    ct = headers.get("content-type")
    value = ct.value if ct else "text/plain; charset=us-ascii"
    if charset:
        value = param_value(value, "charset", charset)
    out = b"Content-Type: " + value.encode("latin-1") + eol
    f = headers.get("content-transfer-encoding")
    new_cte = cte or (f.value.strip() if f else None)
    if new_cte:
        out += b"Content-Transfer-Encoding: " + new_cte.encode("latin-1") + eol
    return out + eol


# -- embedded images (multipart/related) ------------------------------------------------

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def image_part(cid: str, content_type: str, filename: str, data: bytes, eol: bytes) -> bytes:
    """One inline image body part (headers and base64 body, no trailing line break)."""
    name = _SAFE_NAME.sub("_", filename).encode("ascii")
    return (
        b"Content-Type: " + content_type.encode("ascii") + b'; name="' + name + b'"' + eol
        + b"Content-Transfer-Encoding: base64" + eol
        + b"Content-ID: <" + cid.encode("ascii") + b">" + eol
        + b'Content-Disposition: inline; filename="' + name + b'"' + eol + eol
        + codec.b64_encode(data, eol, 76, final_eol=False)
    )  # fmt: skip


def appended_parts(parts: list[bytes], boundary: str, eol: bytes) -> bytes:
    """Bytes to insert at the end of a multipart's last part to add ``parts`` to it.

    ``boundary`` may be the message's own, read as latin-1 (scan.py): written back as
    the same bytes, 8-bit ones included.
    """
    delim = b"--" + boundary.encode("latin-1")
    return b"".join(eol + delim + eol + part for part in parts)


def multipart_body(first: bytes, parts: list[bytes], boundary: str, eol: bytes) -> bytes:
    """A multipart body: ``first`` then ``parts``, ending with the close delimiter."""
    delim = b"--" + boundary.encode("latin-1")
    return delim + eol + first + appended_parts(parts, boundary, eol) + eol + delim + b"--"
