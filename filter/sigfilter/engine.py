"""The rewrite engine: raw message + signature → new body and header edits, or a skip.

Pure: bytes and strings in, bytes and decisions out. It never raises for bad input: a
message it cannot handle with certainty is skipped with a machine-readable reason, and
the caller passes it on byte-identical.
"""

from __future__ import annotations

import hashlib
import html as htmllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .mime import codec
from .mime.headers import HeaderBlock, HeaderField, parse_header_block, set_param, set_value
from .mime.leaf import LeafError, TextLeaf, edit_leaf, open_leaf
from .mime.scan import MimeStructureError, Part, scan
from .placement import html as html_place
from .placement import text as text_place
from .placement.footers import is_mobile_mailer
from .placement.spot import Kind, Spot, Spots
from .signature import Signature, wrap_html

Mode = Literal["marker", "mobile", "full"]
MODES: tuple[Mode, ...] = ("marker", "mobile", "full")
PROCESSED_HEADER = "X-Sigfilter-Processed"
DEFAULT_MARKER = "{EMAILSIGNATURE}"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Options:
    mode: Mode = "full"
    marker: str = DEFAULT_MARKER
    plain_to_html: bool = False
    max_size: int = DEFAULT_MAX_SIZE


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """A top-level header change, in milter terms.

    ``index`` is the 1-based occurrence of ``name`` to change (``chgheader``); 0 adds a
    new field (``addheader``). ``value`` None deletes the field.
    """

    name: str
    index: int
    value: str | None


@dataclass(frozen=True, slots=True)
class Result:
    action: Literal["signed", "skipped"]
    reason: str
    detail: str = ""
    placement: str | None = None
    variant: str | None = None
    body: bytes | None = None  # the new body (everything after the header block)
    header_edits: tuple[HeaderEdit, ...] = ()
    parts: tuple[str, ...] = field(default=())  # e.g. ("text/plain:footer", "text/html:footer")

    @property
    def signed(self) -> bool:
        return self.action == "signed"


class Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def rewrite(raw: bytes, signature: Signature, options: Options | None = None) -> Result:
    """Put ``signature`` into ``raw`` (a whole message), or say why not."""
    opts = options or Options()
    try:
        return _rewrite(raw, signature, opts)
    except Skip as skip:
        return Result("skipped", skip.reason, skip.detail)
    except (MimeStructureError, LeafError, ValueError, LookupError, RecursionError) as exc:
        reason = exc.reason if isinstance(exc, LeafError) else "malformed"
        return Result("skipped", reason, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bug here must still pass the mail on untouched
        return Result("skipped", "error", f"{type(exc).__name__}: {exc}")


# -- skip rules --------------------------------------------------------------------


def check_headers(headers: HeaderBlock) -> None:
    """Skip rules decided by the top-level header block alone (before the body)."""
    if headers.get(PROCESSED_HEADER):
        raise Skip("loop", f"{PROCESSED_HEADER} present")
    auto = headers.get("auto-submitted")
    if auto and auto.value.strip().lower().split(";")[0].strip() != "no":
        raise Skip("auto-reply", f"Auto-Submitted: {auto.value[:40]}")
    for name in ("x-autoreply", "x-autorespond"):
        if headers.get(name):
            raise Skip("auto-reply", f"{name} present")
    precedence = headers.get("precedence")
    if precedence and precedence.value.strip().lower() == "auto_reply":
        raise Skip("auto-reply", "Precedence: auto_reply")
    klass = headers.get("content-class")
    if klass and "calendarmessage" in klass.value.lower():
        raise Skip("calendar", "Content-Class calendarmessage")


_SKIP_TYPES = {
    "multipart/encrypted": "encrypted",
    "application/pgp-encrypted": "encrypted",
    "multipart/report": "dsn",
    "message/delivery-status": "dsn",
    "message/disposition-notification": "dsn",
    "message/feedback-report": "dsn",
    "text/calendar": "calendar",
    "application/ics": "calendar",
    "application/ms-tnef": "tnef",
}


def check_structure(root: Part) -> None:
    for part in root.walk():
        ctype = part.ctype.type
        if ctype == "multipart/signed":
            proto = (part.ctype.param("protocol") or "").lower()
            kinds = " ".join([proto, *(c.ctype.type for c in part.children)])
            raise Skip("signed-pgp" if "pgp" in kinds else "signed-smime", ctype)
        if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            kind = (part.ctype.param("smime-type") or "").lower()
            raise Skip("signed-smime" if kind == "signed-data" else "encrypted", ctype)
        if ctype in _SKIP_TYPES:
            raise Skip(_SKIP_TYPES[ctype], ctype)


def check_inline_pgp(leaf: TextLeaf) -> None:
    if "-----BEGIN PGP SIGNED MESSAGE-----" in leaf.text:
        raise Skip("signed-pgp", "inline PGP signature")
    if "-----BEGIN PGP MESSAGE-----" in leaf.text:
        raise Skip("encrypted", "inline PGP message")


# -- which leaves are the message's own text ----------------------------------------


def _is_attachment(part: Part) -> bool:
    return part.disposition == "attachment" or part.filename


def body_leaves(root: Part) -> tuple[Part | None, Part | None]:
    """The text/plain and text/html leaves that carry the message's own text."""
    found: dict[str, Part] = {}
    _visit(root, found)
    return found.get("plain"), found.get("html")


def _visit(part: Part, found: dict[str, Part]) -> None:
    ctype = part.ctype
    if ctype.maintype == "multipart":
        if not part.children:
            return
        if ctype.subtype == "alternative":
            for child in part.children:
                _visit(child, found)
        elif ctype.subtype == "related":
            _visit(_related_root(part), found)
        else:
            _visit(part.children[0], found)
    elif ctype.type in ("text/plain", "text/html") and not _is_attachment(part):
        if ctype.subtype == "html":
            found["html"] = part  # the last HTML alternative is the richest
        else:
            found.setdefault("plain", part)


def _related_root(part: Part) -> Part:
    start = part.ctype.param("start")
    if start:
        for child in part.children:
            cid = child.headers.get("content-id")
            if cid and cid.value.strip() == start.strip():
                return child
    return part.children[0]


# -- the rewrite ---------------------------------------------------------------------


@dataclass(slots=True)
class _Leaf:
    leaf: TextLeaf
    spots: Spots
    kind: str  # "plain" | "html"
    spot: Spot | None = None
    insert: str = ""


def _rewrite(raw: bytes, signature: Signature, opts: Options) -> Result:
    if len(raw) > opts.max_size:
        raise Skip("too-large", f"{len(raw)} bytes > {opts.max_size}")
    headers = parse_header_block(raw)
    if headers.defects:
        raise Skip("malformed", "header block: " + ", ".join(sorted(set(headers.defects))))
    check_headers(headers)
    root = scan(raw)
    check_structure(root)
    plain, html = body_leaves(root)
    if plain is None and html is None:
        raise Skip("no-text-part", f"no editable text in {root.ctype.type}")
    leaves = _open_leaves(raw, plain, html, signature, opts)
    kind = _message_kind(leaves)
    _gate(kind, leaves, headers, opts)
    reply = Kind.QUOTE in {k for lf in leaves for k in lf.spots.found} or bool(
        headers.get("in-reply-to")
    )
    html_sig, text_sig = signature.pick(reply)
    for lf in leaves:
        _choose(lf, kind, html_sig, text_sig)
    if plain is not None and html is None and opts.plain_to_html:
        return _plain_to_html(raw, headers, leaves[0], html_sig, kind, reply)
    return _assemble(raw, headers, root, leaves, kind, reply)


def _open_leaves(
    raw: bytes, plain: Part | None, html: Part | None, sig: Signature, opts: Options
) -> list[_Leaf]:
    leaves: list[_Leaf] = []
    for part, kind in ((plain, "plain"), (html, "html")):
        if part is None:
            continue
        leaf = open_leaf(raw, part)
        check_inline_pgp(leaf)
        if kind == "html":
            spots = html_place.html_spots(leaf.text, opts.marker)
        else:
            spots = text_place.text_spots(leaf.text, opts.marker, sig.texts())
        leaves.append(_Leaf(leaf, spots, kind))
    return leaves


def _message_kind(leaves: Iterable[_Leaf]) -> Kind:
    return min(lf.spots.best().kind for lf in leaves)


def _gate(kind: Kind, leaves: list[_Leaf], headers: HeaderBlock, opts: Options) -> None:
    if opts.mode == "marker" and kind is not Kind.MARKER:
        raise Skip("no-marker", f"marker mode and no {opts.marker} in the new text")
    if opts.mode == "mobile" and kind > Kind.FOOTER and not _mobile_mailer(headers):
        raise Skip("not-mobile", "mobile mode and no mobile footer, marker or mailer")
    if kind is not Kind.MARKER and any(lf.spots.ours for lf in leaves):
        raise Skip("already-signed", "our signature is already in the new text")


def _mobile_mailer(headers: HeaderBlock) -> bool:
    return any(
        is_mobile_mailer(f.value)
        for name in ("x-mailer", "user-agent")
        for f in headers.get_all(name)
    )


def _choose(lf: _Leaf, kind: Kind, html_sig: str, text_sig: str) -> None:
    spot = lf.spots.get(kind) or lf.spots.best()
    lf.spot = spot
    if lf.kind == "html":
        lf.insert = wrap_html(html_sig)
        return
    sig = text_place.flowed_safe(text_sig) if lf.leaf.flowed else text_sig
    lf.insert = text_place.shape_insert(lf.leaf.text, spot, sig)


@dataclass(slots=True)
class _Splice:
    start: int
    end: int
    data: bytes


def _assemble(
    raw: bytes, headers: HeaderBlock, root: Part, leaves: list[_Leaf], kind: Kind, reply: bool
) -> Result:
    splices: list[_Splice] = []
    edits: list[HeaderEdit] = []
    for lf in leaves:
        assert lf.spot is not None
        change = edit_leaf(lf.leaf, lf.spot.start, lf.spot.end, lf.insert)
        part = lf.leaf.part
        if part is root:
            edits += _root_header_edits(raw, headers, change.charset, change.cte)
            splices.append(_Splice(part.body_start, part.body_end, change.body))
        else:
            new_head = _part_headers(raw, part, change.charset, change.cte)
            splices.append(_Splice(part.start, part.body_end, new_head + change.body))
    body = _apply(raw, headers.end, splices)
    return Result(
        "signed",
        "ok",
        placement=kind.word,
        variant="reply" if reply else "default",
        body=body,
        header_edits=tuple(edits),
        parts=tuple(f"text/{lf.kind}:{lf.spot.kind.word}" for lf in leaves if lf.spot),
    )


def _apply(raw: bytes, body_start: int, splices: list[_Splice]) -> bytes:
    view = memoryview(raw)  # slices of a view are not copies: the join copies once
    out: list[bytes | memoryview] = []
    pos = body_start
    for sp in sorted(splices, key=lambda s: s.start):
        out.append(view[pos : sp.start])
        out.append(sp.data)
        pos = sp.end
    out.append(view[pos:])
    return b"".join(out)


def _root_header_edits(
    raw: bytes, headers: HeaderBlock, charset: str | None, cte: str | None
) -> list[HeaderEdit]:
    edits: list[HeaderEdit] = []
    if charset:
        ct = headers.get("content-type")
        if ct is None:
            edits.append(HeaderEdit("Content-Type", 0, f"text/plain; charset={charset}"))
        else:
            edits.append(HeaderEdit("Content-Type", 1, _param_value(ct.value, "charset", charset)))
    if cte:
        has = headers.get("content-transfer-encoding") is not None
        edits.append(HeaderEdit("Content-Transfer-Encoding", 1 if has else 0, cte))
    return edits


def _param_value(value: str, name: str, new: str) -> str:
    line = b"X: " + value.encode("latin-1") + b"\n"
    fld = HeaderField("x", 0, len(line), value)
    return set_param(line, fld, name, new)[3:].rstrip(b"\r\n").decode("latin-1")


def _part_headers(raw: bytes, part: Part, charset: str | None, cte: str | None) -> bytes:
    """The part's header block with the charset parameter and CTE changed in place."""
    head_end = part.headers.end
    replace: dict[int, tuple[int, bytes]] = {}
    added: list[bytes] = []
    eol = codec.eol_of(raw[part.start : part.body_end])
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


# -- plain text that becomes multipart/alternative -------------------------------------


def _boundary(raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:32]
    boundary = f"=_sigfilter_{digest}"
    if boundary.encode() in raw:  # astronomically unlikely; still, never collide
        boundary += "_" + hashlib.sha256(raw + b"x").hexdigest()[:8]
    return boundary


def _text_to_html(text: str) -> str:
    return htmllib.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")


def _plain_to_html(
    raw: bytes, headers: HeaderBlock, lf: _Leaf, html_sig: str, kind: Kind, reply: bool
) -> Result:
    """Sign the text part and add an HTML alternative showing the text and HTML signature."""
    assert lf.spot is not None
    leaf, spot = lf.leaf, lf.spot
    change = edit_leaf(leaf, spot.start, spot.end, lf.insert)
    part = leaf.part
    html_doc = (
        '<html><head><meta charset="utf-8"></head><body>'
        + _text_to_html(leaf.text[: spot.start])
        + wrap_html(html_sig)
        + _text_to_html(leaf.text[spot.end :])
        + "</body></html>\n"
    )
    eol = codec.eol_of(raw)
    boundary = _boundary(raw)
    delim = b"--" + boundary.encode()
    html_part = (
        b"Content-Type: text/html; charset=utf-8"
        + eol
        + b"Content-Transfer-Encoding: quoted-printable"
        + eol
        + eol
        + codec.qp_encode(html_doc.encode("utf-8"), eol)
    )
    is_root = part.depth == 0
    text_headers = (
        _moved_root_headers(raw, headers, change.charset, change.cte, eol)
        if is_root
        else _part_headers(raw, part, change.charset, change.cte)
    )
    text_body = change.body if change.body.endswith(b"\n") else change.body + eol
    inner = (
        delim
        + eol
        + text_headers
        + text_body
        + delim
        + eol
        + html_part.rstrip(b"\r\n")
        + eol
        + delim
        + b"--"
    )
    ctype = f'multipart/alternative; boundary="{boundary}"'
    parts = ("text/plain:" + spot.kind.word, "text/html:" + spot.kind.word)
    common = {"placement": kind.word, "variant": "reply" if reply else "default", "parts": parts}
    if is_root:
        edits = [_set_header(headers, "Content-Type", ctype)]
        text_cte = change.cte or part.cte
        if headers.get("content-transfer-encoding"):
            edits.append(
                HeaderEdit("Content-Transfer-Encoding", 1, "8bit" if text_cte == "8bit" else None)
            )
        if not headers.get("mime-version"):
            edits.append(HeaderEdit("MIME-Version", 0, "1.0"))
        body = inner + eol
        return Result("signed", "ok", body=body, header_edits=tuple(edits), **common)  # type: ignore[arg-type]
    wrapper = b"Content-Type: " + ctype.encode() + eol + eol + inner
    body = _apply(raw, headers.end, [_Splice(part.start, part.body_end, wrapper)])
    return Result("signed", "ok", body=body, **common)  # type: ignore[arg-type]


def _set_header(headers: HeaderBlock, name: str, value: str) -> HeaderEdit:
    return HeaderEdit(name, 1 if headers.get(name) else 0, value)


def _moved_root_headers(
    raw: bytes, headers: HeaderBlock, charset: str | None, cte: str | None, eol: bytes
) -> bytes:
    """The top-level Content-Type/CTE, rewritten as the header block of the text part."""
    ct = headers.get("content-type")
    value = ct.value if ct else "text/plain; charset=us-ascii"
    if charset:
        value = _param_value(value, "charset", charset)
    out = b"Content-Type: " + value.encode("latin-1") + eol
    f = headers.get("content-transfer-encoding")
    new_cte = cte or (f.value.strip() if f else None)
    if new_cte:
        out += b"Content-Transfer-Encoding: " + new_cte.encode("latin-1") + eol
    return out + eol


# -- for preview and tests: the whole message after the edits --------------------------


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


def rewritten_message(raw: bytes, result: Result) -> bytes:
    """The whole message as it leaves (the input itself when skipped)."""
    if result.body is None:
        return raw
    return apply_header_edits(raw, result.header_edits) + result.body
