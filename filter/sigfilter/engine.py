"""The rewrite engine: raw message + signature → new body and header edits, or a skip.

Pure: bytes and strings in, bytes and decisions out. It never raises for bad input: a
message it cannot handle with certainty is skipped with a machine-readable reason
(reasons.py), and the caller passes it on byte-identical. Only the errors the engine
raises on purpose mean bad input (Skip, LeafError, MimeStructureError, TnefRefused, and
RecursionError for nesting deeper than Python goes); bad input the standard library
rejects is turned into one of those where it is read (codec.py, leaf.py). Anything
else is a bug and is raised: the milter counts it in sigfilter_errors_total{kind},
logs its traceback and passes the message unchanged.
"""

from __future__ import annotations

import hashlib
import html as htmllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from .defaults import (
    DEFAULT_CLIENT_SIGNATURE,
    DEFAULT_MARKER,
    DEFAULT_MAX_SIZE,
    DEFAULT_TNEF,
    MAX_TEXT_LEAF,
    MODES,
    PROCESSED_HEADER,
    ClientPolicy,
    Mode,
)
from .mime import codec
from .mime.body import body_leaves
from .mime.edits import (
    HeaderEdit,
    Splice,
    appended_parts,
    apply_header_edits,
    apply_splices,
    image_part,
    moved_root_headers,
    multipart_body,
    part_headers,
    root_header_edits,
    set_header,
)
from .mime.headers import HeaderBlock, parse_header_block
from .mime.leaf import LeafEdit, LeafError, TextLeaf, edit_leaf, open_leaf
from .mime.scan import MimeStructureError, Part, scan
from .mime.tnef import TnefRefused
from .placement import html as html_place
from .placement import text as text_place
from .placement.clientsig import ClientSig
from .placement.footers import is_mobile_mailer
from .placement.spot import Kind, Spot, Spots
from .placement.textsig import find_counterpart
from .reasons import Reason
from .signature import InlineImage, Signature, wrap_html
from .skips import Skip, check_headers, check_inline_pgp, check_structure
from .tnefconv import convert, find_tnef, passed, tnef_bytes

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
    tnef: str = DEFAULT_TNEF  # pass | convert (TNEF IPM.Note to MIME, then sign)
    # The client's own signature: replace it, or keep it; and the tenant's own texts to
    # replace (regex sources: tenant.toml replace_texts and replace_patterns).
    client_signature: ClientPolicy = DEFAULT_CLIENT_SIGNATURE
    replace_texts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    action: Literal["signed", "skipped"]
    reason: Reason
    detail: str = ""
    placement: str | None = None
    variant: str | None = None
    body: bytes | None = None  # the new body (everything after the header block)
    header_edits: tuple[HeaderEdit, ...] = ()
    parts: tuple[str, ...] = field(default=())  # e.g. ("text/plain:footer", "text/html:footer")
    tnef_class: str | None = None  # a TNEF message: its MAPI message class ("" unreadable)
    replaced: str | None = None  # the client signature ours replaced ("outlook-web")

    @property
    def signed(self) -> bool:
        return self.action == "signed"


def tenant_options(
    tenant: TenantLike, max_size: int = DEFAULT_MAX_SIZE, mode: str | None = None
) -> Options:
    """Engine options from a tenant's settings (``mode`` overrides, for previews)."""
    chosen = mode or tenant.mode
    if chosen not in MODES:
        raise ValueError(f"unknown mode {chosen!r}")
    return Options(
        mode=chosen,
        marker=tenant.marker,
        plain_to_html=tenant.plain_to_html,
        max_size=max_size,
        tnef=tenant.tnef,
        client_signature=tenant.client_signature,
        replace_texts=tenant.replace_texts,
    )


class TenantLike(Protocol):
    @property
    def mode(self) -> str: ...
    @property
    def marker(self) -> str: ...
    @property
    def plain_to_html(self) -> bool: ...
    @property
    def tnef(self) -> str: ...
    @property
    def client_signature(self) -> ClientPolicy: ...
    @property
    def replace_texts(self) -> tuple[str, ...]: ...


# Asked for the bytes of text the rewrite is about to decode and edit (the milter's
# memory budget, budget.py); False: the message is skipped ("over-budget").
Reserve = Callable[[int], bool]


def rewrite(
    raw: bytes,
    signature: Signature,
    options: Options | None = None,
    headers: HeaderBlock | None = None,
    reserve: Reserve | None = None,
) -> Result:
    """Put ``signature`` into ``raw`` (a whole message), or say why not.

    ``headers``: ``parse_header_block(raw)`` when the caller has it already (the milter
    parses the header block at end of headers), so it is read once per message.
    ``reserve``: see Reserve; the text parts' work is what grows with them (~17-128
    bytes of memory per byte of text, defaults.TEXT_FACTOR).
    """
    opts = options or Options()
    try:
        return _rewrite(raw, signature, opts, headers, reserve)
    except TnefRefused as exc:
        return Result("skipped", exc.reason, exc.detail, tnef_class=exc.message_class)
    except Skip as skip:
        return Result("skipped", skip.reason, skip.detail)
    except LeafError as exc:
        return Result("skipped", exc.reason, exc.detail)
    except (MimeStructureError, RecursionError) as exc:
        return Result("skipped", "malformed", f"{type(exc).__name__}: {exc}")


# -- the rewrite ---------------------------------------------------------------------


@dataclass(slots=True)
class _Leaf:
    leaf: TextLeaf
    spots: Spots
    kind: str  # "plain" | "html"
    spot: Spot | None = None
    insert: str = ""


def _rewrite(
    raw: bytes,
    signature: Signature,
    opts: Options,
    parsed: HeaderBlock | None,
    reserve: Reserve | None = None,
) -> Result:
    if len(raw) > opts.max_size:
        raise Skip("too-large", f"{len(raw)} bytes > {opts.max_size}")
    headers = parsed if parsed is not None else parse_header_block(raw)
    if headers.defects:
        raise Skip("malformed", "header block: " + ", ".join(sorted(set(headers.defects))))
    if not headers.closed:
        raise Skip("malformed", "no empty line ends the header block")
    check_headers(headers)
    root = scan(raw, headers)
    tnef = find_tnef(root)
    if tnef is not None:
        return _tnef(raw, headers, root, tnef, signature, opts, reserve)
    check_structure(root)
    plain, html = body_leaves(root)
    if plain is None and html is None:
        raise Skip("no-text-part", f"no editable text in {root.ctype.type}")
    _reserve(reserve, plain, html)
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
        return _plain_to_html(raw, headers, leaves[0], html_sig, kind, reply, signature.images)
    return _assemble(raw, headers, root, leaves, kind, reply, signature.images)


def _reserve(reserve: Reserve | None, *leaves: Part | None) -> None:
    sizes = [p.body_end - p.body_start for p in leaves if p is not None]
    if reserve is None or max(sizes) > MAX_TEXT_LEAF:  # _open refuses a part that large
        return
    if not reserve(sum(sizes)):
        raise Skip("over-budget", f"no room in the memory budget for {sum(sizes)} bytes of text")


def _tnef(
    raw: bytes,
    headers: HeaderBlock,
    root: Part,
    part: Part,
    sig: Signature,
    opts: Options,
    reserve: Reserve | None,
) -> Result:
    """A TNEF message: counted with its class; converted to MIME and signed if the
    tenant asks (``tnef = "convert"``), else passed unchanged."""
    check_structure(root, allow_tnef=True)  # signed, encrypted, calendar MIME: as always
    data = tnef_bytes(raw, part)
    if opts.tnef != "convert":
        raise passed(data)
    conv = convert(raw, headers, root, part, data)
    try:
        signed = _rewrite(conv.message, sig, replace(opts, tnef=DEFAULT_TNEF), None, reserve)
    except Skip as skip:  # not signed: the TNEF message passes as it came
        raise TnefRefused(skip.reason, skip.detail, conv.message_class) from skip
    return replace(
        signed,
        detail=f"converted from TNEF ({conv.attachments} attachments)",
        header_edits=conv.edits + signed.header_edits,
        tnef_class=conv.message_class,
    )


def _open(raw: bytes, part: Part, kind: str) -> TextLeaf:
    size = part.body_end - part.body_start
    if size > MAX_TEXT_LEAF:  # decoding and placement cost grows with the text
        raise Skip("too-large", f"text/{kind} part of {size} bytes > {MAX_TEXT_LEAF}")
    leaf = open_leaf(raw, part)
    check_inline_pgp(leaf)
    return leaf


def _open_leaves(
    raw: bytes, plain: Part | None, html: Part | None, sig: Signature, opts: Options
) -> list[_Leaf]:
    replacing = opts.client_signature == "replace"
    html_leaf: _Leaf | None = None
    if html is not None:  # first: its client signature tells the text part what to look for
        leaf = _open(raw, html, "html")
        spots = html_place.html_spots(
            leaf.text, opts.marker, replacing, sig.sender, opts.replace_texts
        )
        html_leaf = _Leaf(leaf, spots, "html")
    leaves: list[_Leaf] = []
    if plain is not None:
        leaf = _open(raw, plain, "plain")
        spots = text_place.text_spots(
            leaf.text, opts.marker, sig.texts(), replacing, sig.sender, opts.replace_texts
        )
        client = html_leaf.spots.client if html_leaf else None
        if client is not None and html_leaf is not None:
            _add_counterpart(leaf.text, spots, client, html_leaf.spots.quote_start)
        leaves.append(_Leaf(leaf, spots, "plain"))
    if html_leaf is not None:
        leaves.append(html_leaf)
    return leaves


def _add_counterpart(text: str, spots: Spots, client: ClientSig, html_quote: int) -> None:
    """The text form of the HTML client signature replaces the text part's guess."""
    if client.start >= html_quote:  # below the quote: it ends the text part too
        span = find_counterpart(text, client.text, spots.quote_start, len(text), at_end=True)
    else:
        span = find_counterpart(text, client.text, 0, spots.quote_start)
    if span is not None:
        spots.found[Kind.CLIENT] = Spot(Kind.CLIENT, span[0], span[1], client.client)


def _message_kind(leaves: Iterable[_Leaf]) -> Kind:
    return min(lf.spots.best().kind for lf in leaves)


def _gate(kind: Kind, leaves: list[_Leaf], headers: HeaderBlock, opts: Options) -> None:
    if opts.mode == "marker" and kind is not Kind.MARKER:
        raise Skip("no-marker", f"marker mode and no {opts.marker} in the new text")
    if opts.mode == "mobile" and not _mobile_spot(kind, leaves) and not _mobile_mailer(headers):
        raise Skip("not-mobile", "mobile mode and no mobile footer, marker or mailer")
    if kind is not Kind.MARKER and any(lf.spots.ours for lf in leaves):
        raise Skip("already-signed", "our signature is already in the new text")


def _mobile_spot(kind: Kind, leaves: list[_Leaf]) -> bool:
    if kind is Kind.CLIENT:  # a phone client's signature element, or the footer it holds
        client = [lf.spots.client for lf in leaves if lf.spots.client]
        return any(c.mobile for c in client) or any(Kind.FOOTER in lf.spots.found for lf in leaves)
    return kind <= Kind.FOOTER


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
    raw: bytes,
    headers: HeaderBlock,
    root: Part,
    leaves: list[_Leaf],
    kind: Kind,
    reply: bool,
    images: tuple[InlineImage, ...],
) -> Result:
    splices: list[Splice] = []
    edits: list[HeaderEdit] = []
    for lf in leaves:
        assert lf.spot is not None
        change = edit_leaf(lf.leaf, lf.spot.start, lf.spot.end, lf.insert)
        part = lf.leaf.part
        embed = images if lf.kind == "html" else ()
        if part is root and embed:
            return _root_related(raw, headers, part, change, embed, kind, reply, leaves)
        if part is root:
            edits += root_header_edits(raw, headers, change.charset, change.cte)
            splices.append(Splice(part.body_start, part.body_end, change.body))
            continue
        new_part = part_headers(raw, part, change.charset, change.cte) + change.body
        splices += _embed(raw, root, part, new_part, embed)
    splices += _orphan_images(raw, root, leaves)
    return _signed(apply_splices(raw, headers.end, splices), edits, kind, reply, leaves)


def _orphan_images(raw: bytes, root: Part, leaves: list[_Leaf]) -> list[Splice]:
    """Remove the related image parts only the replaced client signature showed.

    A leftover would show as an attachment. A part the rest of the HTML (the quote
    included) still refers to stays.
    """
    lf = next((x for x in leaves if x.kind == "html"), None)
    if lf is None or lf.spot is None or lf.spot.kind is not Kind.CLIENT or not lf.spots.client:
        return []
    rest = (lf.leaf.text[: lf.spot.start] + lf.leaf.text[lf.spot.end :]).lower()
    wanted = {c.lower() for c in lf.spots.client.cids if "cid:" + c.lower() not in rest}
    if not wanted:
        return []
    out: list[Splice] = []
    for parent in root.walk():
        if parent.ctype.type != "multipart/related":
            continue
        for child in parent.children:
            cid = child.headers.get("content-id")
            if cid and cid.value.strip().strip("<>").lower() in wanted and not child.children:
                out.append(Splice(_delimiter_start(raw, child.start), child.body_end, b""))
    return out


def _delimiter_start(raw: bytes, part_start: int) -> int:
    """Offset of the line break before the delimiter line that opens a part (RFC 2046)."""
    line = raw.rfind(b"\n", 0, part_start - 1) + 1  # the "--boundary" line
    if line >= 2 and raw[line - 2 : line] == b"\r\n":
        return line - 2
    return line - 1 if line >= 1 else line


def _signed(
    body: bytes, edits: list[HeaderEdit], kind: Kind, reply: bool, leaves: list[_Leaf]
) -> Result:
    return Result(
        "signed",
        "ok",
        placement=kind.word,
        variant="reply" if reply else "default",
        body=body,
        header_edits=tuple(edits),
        parts=tuple(f"text/{lf.kind}:{lf.spot.kind.word}" for lf in leaves if lf.spot),
        replaced=_replaced(leaves),
    )


def _replaced(leaves: list[_Leaf]) -> str | None:
    """The client whose signature ours replaced (the HTML part's name first)."""
    names = [lf.spot.detail for lf in leaves if lf.spot and lf.spot.kind is Kind.CLIENT]
    return names[-1] if names else None


def _image_parts(raw: bytes, images: tuple[InlineImage, ...]) -> list[bytes]:
    eol = codec.eol_of(raw)
    return [image_part(i.cid, i.content_type, i.filename, i.data, eol) for i in images]


def _embed(
    raw: bytes, root: Part, part: Part, new_part: bytes, images: tuple[InlineImage, ...]
) -> list[Splice]:
    """Splices that replace ``part`` and carry ``images`` in a multipart/related."""
    if not images:
        return [Splice(part.start, part.body_end, new_part)]
    eol = codec.eol_of(raw)
    parent = next((p for p in root.walk() if part in p.children), None)
    if parent is not None and parent.ctype.subtype == "related":
        last = parent.children[-1]
        boundary = parent.ctype.param("boundary") or ""
        added = appended_parts(_image_parts(raw, images), boundary, eol)
        return [
            Splice(part.start, part.body_end, new_part),
            Splice(last.body_end, last.body_end, added),
        ]
    return [Splice(part.start, part.body_end, _related_entity(raw, new_part, images))]


def _related_entity(raw: bytes, html_part: bytes, images: tuple[InlineImage, ...]) -> bytes:
    """A multipart/related entity (headers and body) around an HTML part and its images."""
    eol = codec.eol_of(raw)
    boundary = _boundary(raw, b"related")
    return (
        f'Content-Type: multipart/related; type="text/html"; boundary="{boundary}"'.encode()
        + eol
        + eol
        + multipart_body(html_part, _image_parts(raw, images), boundary, eol)
    )


def _root_related(
    raw: bytes,
    headers: HeaderBlock,
    part: Part,
    change: LeafEdit,
    images: tuple[InlineImage, ...],
    kind: Kind,
    reply: bool,
    leaves: list[_Leaf],
) -> Result:
    """A single-part HTML message becomes multipart/related with its images."""
    eol = codec.eol_of(raw)
    boundary = _boundary(raw, b"related")
    first = moved_root_headers(raw, headers, change.charset, change.cte, eol) + change.body
    body = multipart_body(first, _image_parts(raw, images), boundary, eol) + eol
    ctype = f'multipart/related; type="text/html"; boundary="{boundary}"'
    edits = _multipart_root_edits(headers, ctype, change.cte or part.cte)
    return _signed(body, edits, kind, reply, leaves)


def _multipart_root_edits(headers: HeaderBlock, ctype: str, inner_cte: str) -> list[HeaderEdit]:
    """Top-level edits that turn a single-part message into a multipart one."""
    edits = [set_header(headers, "Content-Type", ctype)]
    if headers.get("content-transfer-encoding"):
        value = "8bit" if inner_cte == "8bit" else None
        edits.append(HeaderEdit("Content-Transfer-Encoding", 1, value))
    if not headers.get("mime-version"):
        edits.append(HeaderEdit("MIME-Version", 0, "1.0"))
    return edits


# -- plain text that becomes multipart/alternative -------------------------------------


def _boundary(raw: bytes, salt: bytes = b"") -> str:
    """A boundary derived from the message (pure, repeatable), never found inside it."""
    digest = hashlib.sha256(salt + raw).hexdigest()[:32]
    boundary = f"=_sigfilter_{digest}"
    if boundary.encode() in raw:  # astronomically unlikely; still, never collide
        boundary += "_" + hashlib.sha256(raw + b"x").hexdigest()[:8]
    return boundary


def _text_to_html(text: str) -> str:
    return htmllib.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")


def _plain_to_html(
    raw: bytes,
    headers: HeaderBlock,
    lf: _Leaf,
    html_sig: str,
    kind: Kind,
    reply: bool,
    images: tuple[InlineImage, ...],
) -> Result:
    """Sign the text part and add an HTML alternative showing the text and HTML signature."""
    assert lf.spot is not None
    leaf, spot = lf.leaf, lf.spot
    change = edit_leaf(leaf, spot.start, spot.end, lf.insert)
    part = leaf.part
    eol = codec.eol_of(raw)
    html_doc = (
        '<html><head><meta charset="utf-8"></head><body>'
        + _text_to_html(leaf.text[: spot.start])
        + wrap_html(html_sig)
        + _text_to_html(leaf.text[spot.end :])
        + "</body></html>\n"
    )
    html_part = (
        b"Content-Type: text/html; charset=utf-8" + eol
        + b"Content-Transfer-Encoding: quoted-printable" + eol + eol
        # Bytes the part's charset could not decode (kept as surrogates, so the text part
        # keeps them) show as "?" in this copy: strict encoding raised on them, and the
        # message went out unsigned as an engine error (d032, a gb2312 message).
        + codec.qp_encode(html_doc.encode("utf-8", "replace"), eol).rstrip(b"\r\n")
    )  # fmt: skip
    if images:
        html_part = _related_entity(raw, html_part, images)
    is_root = part.depth == 0
    text_part = (
        moved_root_headers(raw, headers, change.charset, change.cte, eol)
        if is_root
        else part_headers(raw, part, change.charset, change.cte)
    ) + change.body.rstrip(b"\r\n")
    boundary = _boundary(raw)
    inner = multipart_body(text_part, [html_part], boundary, eol)
    ctype = f'multipart/alternative; boundary="{boundary}"'
    lf_html = _Leaf(leaf, lf.spots, "html", spot)
    if is_root:
        edits = _multipart_root_edits(headers, ctype, change.cte or part.cte)
        return _signed(inner + eol, edits, kind, reply, [lf, lf_html])
    wrapper = b"Content-Type: " + ctype.encode() + eol + eol + inner
    body = apply_splices(raw, headers.end, [Splice(part.start, part.body_end, wrapper)])
    return _signed(body, [], kind, reply, [lf, lf_html])


# -- for preview and tests: the whole message after the edits --------------------------


def rewritten_message(raw: bytes, result: Result) -> bytes:
    """The whole message as it leaves (the input itself when skipped)."""
    if result.body is None:
        return raw
    return apply_header_edits(raw, result.header_edits) + result.body
