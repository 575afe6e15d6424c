"""TNEF messages in the engine: find the winmail.dat part, and either say what it is
(``tnef = "pass"``) or turn the message into MIME that the engine then signs
(``tnef = "convert"``). Pure: bytes in, bytes and header edits out.

Only Exchange's own layout converts: the TNEF part is the whole message, or the last
of at most two parts of a multipart/mixed whose other part is the text/plain version.
The outer header block is kept, except Content-Type (and a Content-Transfer-Encoding
a multipart cannot have); Subject, Importance and Sensitivity are added from the TNEF
only when the header block has none.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from .mime import codec
from .mime.edits import HeaderEdit, apply_header_edits, set_header
from .mime.headers import HeaderBlock
from .mime.scan import Part
from .mime.tnef import TnefContent, TnefRefused, read_class, read_tnef, refusal
from .mime.tnefmime import build

TNEF_TYPE = "application/ms-tnef"
_IMPORTANCE = {0: "low", 2: "high"}
_SENSITIVITY = {1: "Personal", 2: "Private", 3: "Company-Confidential"}


@dataclass(frozen=True, slots=True)
class Converted:
    message: bytes  # the whole converted message (edited header block + new body)
    edits: tuple[HeaderEdit, ...]  # how the original header block became its header block
    message_class: str
    attachments: int


def find_tnef(root: Part) -> Part | None:
    return next((p for p in root.walk() if p.ctype.type == TNEF_TYPE), None)


def tnef_bytes(raw: bytes, part: Part) -> bytes:
    """The decoded winmail.dat (raises TnefRefused when its encoding is broken)."""
    try:
        return codec.transfer_decode(raw[part.body_start : part.body_end], part.cte)
    except codec.TransferError as exc:
        raise TnefRefused("tnef-damaged", str(exc)) from exc


def passed(data: bytes) -> TnefRefused:
    """The skip for a tenant that passes TNEF (the class is still read, to count it)."""
    return TnefRefused("tnef", 'tenant passes TNEF (tnef = "pass")', read_class(data))


def convert(raw: bytes, headers: HeaderBlock, root: Part, part: Part, data: bytes) -> Converted:
    """The message as MIME, or TnefRefused saying why it passes unchanged."""
    try:
        text = _text_part(root, part)
    except TnefRefused as exc:
        exc.message_class = read_class(data)  # still counted with its class
        raise
    content = read_tnef(data)
    refused = refusal(content)
    if refused is not None:
        raise refused
    eol = codec.eol_of(raw)
    entity = raw[text.start : text.body_end] if text is not None else None
    built = build(content, entity, eol, raw)
    edits = _root_edits(headers, built.content_type, built.body) + _visible(headers, content)
    message = apply_header_edits(raw, edits) + built.body
    return Converted(message, tuple(edits), content.message_class, len(content.attachments))


def _text_part(root: Part, part: Part) -> Part | None:
    """The text/plain sibling in Exchange's layout; TnefRefused for any other layout."""
    if part is root:
        return None
    kids = root.children
    layout = root.ctype.type == "multipart/mixed" and kids and kids[-1] is part
    if layout and len(kids) == 1:
        return None
    if layout and len(kids) == 2 and kids[0].ctype.type == "text/plain":
        return kids[0]
    raise TnefRefused("tnef-layout", "TNEF is not the message's only attachment")


def _root_edits(headers: HeaderBlock, ctype: str, body: bytes) -> list[HeaderEdit]:
    edits = [set_header(headers, "Content-Type", ctype)]
    cte = headers.get("content-transfer-encoding")
    if cte is not None and cte.value.strip().lower() not in ("7bit", "8bit", "binary"):
        eight = any(b > 0x7F for b in body)
        edits.append(HeaderEdit("Content-Transfer-Encoding", 1, "8bit" if eight else "7bit"))
    if headers.get("mime-version") is None:
        edits.append(HeaderEdit("MIME-Version", 0, "1.0"))
    return edits


def _visible(headers: HeaderBlock, content: TnefContent) -> list[HeaderEdit]:
    """Visible properties the header block lacks (Exchange normally writes them all)."""
    edits = []
    subject = content.subject.replace("\r", " ").replace("\n", " ").strip()
    if headers.get("subject") is None and subject:
        edits.append(HeaderEdit("Subject", 0, _header_text(subject)))
    importance = _IMPORTANCE.get(content.importance if content.importance is not None else 1)
    if headers.get("importance") is None and importance:
        edits.append(HeaderEdit("Importance", 0, importance))
    sensitivity = _SENSITIVITY.get(content.sensitivity or 0)
    if headers.get("sensitivity") is None and sensitivity:
        edits.append(HeaderEdit("Sensitivity", 0, sensitivity))
    return edits


def _header_text(text: str) -> str:
    """Plain ASCII as it is; anything else as one RFC 2047 encoded word per chunk."""
    if text.isascii() and text.isprintable():
        return text[:900]
    chunks = [text[i : i + 30] for i in range(0, min(len(text), 600), 30)]
    return " ".join(
        "=?utf-8?b?" + base64.b64encode(c.encode("utf-8")).decode("ascii") + "?=" for c in chunks
    )
