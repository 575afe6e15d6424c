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

from .defaults import DEFAULT_MARKER, DEFAULT_MAX_SIZE, MODES, PROCESSED_HEADER, Mode
from .mime import codec
from .mime.body import body_leaves
from .mime.edits import (
    HeaderEdit,
    Splice,
    apply_header_edits,
    apply_splices,
    moved_root_headers,
    part_headers,
    root_header_edits,
    set_header,
)
from .mime.headers import HeaderBlock, parse_header_block
from .mime.leaf import LeafError, TextLeaf, edit_leaf, open_leaf
from .mime.scan import MimeStructureError, Part, scan
from .placement import html as html_place
from .placement import text as text_place
from .placement.footers import is_mobile_mailer
from .placement.spot import Kind, Spot, Spots
from .signature import Signature, wrap_html
from .skips import Skip, check_headers, check_inline_pgp, check_structure

__all__ = [
    "DEFAULT_MARKER",
    "DEFAULT_MAX_SIZE",
    "MODES",
    "PROCESSED_HEADER",
    "HeaderEdit",
    "Mode",
    "Options",
    "Result",
    "apply_header_edits",
    "body_leaves",
    "rewrite",
    "rewritten_message",
]


@dataclass(frozen=True, slots=True)
class Options:
    mode: Mode = "full"
    marker: str = DEFAULT_MARKER
    plain_to_html: bool = False
    max_size: int = DEFAULT_MAX_SIZE


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


def _assemble(
    raw: bytes, headers: HeaderBlock, root: Part, leaves: list[_Leaf], kind: Kind, reply: bool
) -> Result:
    splices: list[Splice] = []
    edits: list[HeaderEdit] = []
    for lf in leaves:
        assert lf.spot is not None
        change = edit_leaf(lf.leaf, lf.spot.start, lf.spot.end, lf.insert)
        part = lf.leaf.part
        if part is root:
            edits += root_header_edits(raw, headers, change.charset, change.cte)
            splices.append(Splice(part.body_start, part.body_end, change.body))
        else:
            new_head = part_headers(raw, part, change.charset, change.cte)
            splices.append(Splice(part.start, part.body_end, new_head + change.body))
    body = apply_splices(raw, headers.end, splices)
    return Result(
        "signed",
        "ok",
        placement=kind.word,
        variant="reply" if reply else "default",
        body=body,
        header_edits=tuple(edits),
        parts=tuple(f"text/{lf.kind}:{lf.spot.kind.word}" for lf in leaves if lf.spot),
    )


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
        moved_root_headers(raw, headers, change.charset, change.cte, eol)
        if is_root
        else part_headers(raw, part, change.charset, change.cte)
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
        edits = [set_header(headers, "Content-Type", ctype)]
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
    body = apply_splices(raw, headers.end, [Splice(part.start, part.body_end, wrapper)])
    return Result("signed", "ok", body=body, **common)  # type: ignore[arg-type]


# -- for preview and tests: the whole message after the edits --------------------------


def rewritten_message(raw: bytes, result: Result) -> bytes:
    """The whole message as it leaves (the input itself when skipped)."""
    if result.body is None:
        return raw
    return apply_header_edits(raw, result.header_edits) + result.body
