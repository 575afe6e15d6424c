"""A MIME body built from what a TNEF part held (pure: content in, bytes out).

Layout, as Outlook itself sends MIME::

    multipart/mixed                 (only when there are attachments)
      multipart/related             (only when the HTML shows attached images by cid:)
        multipart/alternative       (only when there is text and HTML)
          text/plain                (the message's own text part, byte-identical, if any)
          text/html
        image parts (Content-ID)
      attachment parts

Every attachment keeps its bytes (base64) and its name (RFC 2231 when not plain ASCII).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from urllib.parse import quote

from . import codec
from .edits import multipart_body
from .tnef import TnefAttachment, TnefContent, TnefRefused

_TOKEN_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_PLAIN_VALUE = re.compile(r"[ -~]*")
_CID = re.compile(r"[!-;=?-~]+")  # printable ASCII without '<', '>' and spaces


@dataclass(frozen=True, slots=True)
class Built:
    content_type: str  # the root Content-Type value
    body: bytes  # the new root body


def build(content: TnefContent, text_entity: bytes | None, eol: bytes, seed: bytes) -> Built:
    """The MIME body for ``content``; ``text_entity`` is a text/plain part kept as it was.

    The root is always multipart/mixed (with one part when nothing is attached), so no
    transfer encoding moves to the message's own header block.
    """
    names = _Boundaries(seed)
    text = text_entity if text_entity is not None else _text_entity(content, eol)
    html = _html_entity(content, eol)
    inline, attached = _split(content)
    if text is not None and html is not None:
        body = _multipart("alternative", [text, html], names, eol)
    else:
        body = text if text is not None else html or b""
    if inline:
        images = [_attachment_entity(a, eol, inline=True) for a in inline]
        body = _multipart("related", [body, *images], names, eol)
    parts = [body, *(_attachment_entity(a, eol, inline=False) for a in attached)]
    boundary = names.new("mixed", parts)
    ctype = f'multipart/mixed; boundary="{boundary}"'
    return Built(ctype, multipart_body(parts[0], parts[1:], boundary, eol) + eol)


def _multipart(subtype: str, parts: list[bytes], names: _Boundaries, eol: bytes) -> bytes:
    """A multipart entity (its Content-Type field, a blank line, the body)."""
    boundary = names.new(subtype, parts)
    extra = ""
    if subtype == "related":  # RFC 2387: the type of the root part (ours: Content-Type first)
        first = parts[0].split(b";", 1)[0].split(eol, 1)[0]
        extra = f'; type="{first.removeprefix(b"Content-Type: ").decode("ascii")}"'
    head = f'Content-Type: multipart/{subtype}{extra}; boundary="{boundary}"'.encode()
    return head + eol + eol + multipart_body(parts[0], parts[1:], boundary, eol)


class _Boundaries:
    def __init__(self, seed: bytes) -> None:
        self.seed = hashlib.sha256(seed).hexdigest()[:24]

    def new(self, kind: str, parts: list[bytes]) -> str:
        for n in range(100):
            b = f"=_sigfilter_tnef_{kind}_{self.seed}_{n}"
            if not any(b.encode() in p for p in parts):
                return b
        # Only a message built to hold all 100 candidates (which depend on its own
        # hash) gets here: bad input, so a skip and not an error.
        raise TnefRefused("tnef-layout", "no boundary found that the parts do not contain")


def _text_entity(content: TnefContent, eol: bytes) -> bytes | None:
    if content.text is None:
        return None
    data = content.text.replace("\r\n", "\n").encode("utf-8")
    return (
        b"Content-Type: text/plain; charset=utf-8" + eol
        + b"Content-Transfer-Encoding: quoted-printable" + eol + eol
        + codec.qp_encode(data, eol)
    )  # fmt: skip


def _html_entity(content: TnefContent, eol: bytes) -> bytes | None:
    if content.html is None:
        return None
    return (
        b"Content-Type: text/html; charset=" + content.html_charset.encode("ascii") + eol
        + b"Content-Transfer-Encoding: quoted-printable" + eol + eol
        + codec.qp_encode(content.html, eol)
    )  # fmt: skip


def _split(content: TnefContent) -> tuple[list[TnefAttachment], list[TnefAttachment]]:
    """(images the HTML shows by cid:, other attachments)."""
    html = (content.html or b"").decode("latin-1").lower()
    inline: list[TnefAttachment] = []
    attached: list[TnefAttachment] = []
    for att in content.attachments:
        cid = att.content_id
        shown = bool(cid) and _CID.fullmatch(cid) is not None and f"cid:{cid.lower()}" in html
        (inline if shown else attached).append(att)
    return inline, attached


def content_type_of(att: TnefAttachment) -> str:
    if _TOKEN_TYPE.fullmatch(att.mime_type):
        return att.mime_type.lower()
    guessed, _ = mimetypes.guess_type(att.name, strict=False)
    return guessed or "application/octet-stream"


def param(name: str, value: str) -> str:
    """``name="value"``, or RFC 2231 ``name*=utf-8''…`` for anything else than plain ASCII."""
    if _PLAIN_VALUE.fullmatch(value) and '"' not in value and "\\" not in value:
        return f'{name}="{value}"'
    return f"{name}*=utf-8''{quote(value, safe='')}"


def _attachment_entity(att: TnefAttachment, eol: bytes, inline: bool) -> bytes:
    fold = (";" + eol.decode() + " ").encode()
    ctype = content_type_of(att).encode()
    disposition = b"inline" if inline else b"attachment"
    if att.name:
        ctype += fold + param("name", att.name).encode()
        disposition += fold + param("filename", att.name).encode()
    out = b"Content-Type: " + ctype + eol + b"Content-Transfer-Encoding: base64" + eol
    if inline:
        out += b"Content-ID: <" + att.content_id.encode("ascii") + b">" + eol
    out += b"Content-Disposition: " + disposition + eol + eol
    return out + codec.b64_encode(att.data, eol, 76, final_eol=False)
