"""DKIM and ARC after the rewrite: which header fields to delete and which to insert.

Pure: the original message, the engine's result and the tenant's policy in; header
changes out. Keys arrive as PEM bytes and DNS as an injected lookup function, so
nothing here reads a file or the network (dkim/keys.py does that for the milter).

What is signed is exactly what Postfix sends: CRLF line endings, the header block
after the engine's header edits, our deletions and the processed header Postfix
appends (``smfi_addheader`` adds at the end), and the new body. Postfix puts its own
``Received:`` field in front; we never sign Received, so the signatures hold with it.
Our new fields go on top (``smfi_insheader`` at index 0): the milter inserts them in
reverse so that they appear in the order of ``AuthChanges.insert``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import dkim  # type: ignore[import-untyped]
from dkim.canonicalization import (  # type: ignore[import-untyped]
    CanonicalizationPolicy,
    Relaxed,
    compress_whitespace,
    correct_empty_body,
    strip_trailing_lines,
    strip_trailing_whitespace,
)
from dkim.util import InvalidTagValueList, parse_tag_value  # type: ignore[import-untyped]

from ..defaults import DKIM_MAX_VERIFY, PROCESSED_HEADER
from ..mime.edits import HeaderEdit, apply_header_edits
from ..mime.headers import parse_header_block
from ..reasons import SignReason

DkimPolicy = Literal["keep", "strip", "resign"]
DKIM_POLICIES: tuple[DkimPolicy, ...] = ("keep", "strip", "resign")

# dkimpy's lookup signature: (name, timeout=...) -> the TXT record or None.
DnsFunc = Callable[..., bytes | None]

# dkimpy logs every failed verification at error level; ours says what matters.
_QUIET = logging.getLogger("sigfilter.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,253}")  # what we copy into our AR header
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9.-]{1,253}")
# relaxed headers (Postfix re-spaces and re-folds what the milter changed); simple body:
# Postfix sends our body bytes as they are (disable_mime_output_conversion = yes), and
# relaxed body canonicalisation costs a regex pass over every byte (60 ms on 3 MB).
BODY_CANON = (b"relaxed", b"simple")
_DONE = {"keep": "dkim=keep", "strip": "dkim=stripped", "resign": "dkim=resigned"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str
    selector: str
    pem: bytes = field(repr=False)  # never in a repr, hence never in a log line


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    dkim: DkimPolicy = "keep"
    key: SigningKey | None = None  # for resign
    arc: bool = False
    arc_key: SigningKey | None = None
    authserv_id: str = ""

    @property
    def active(self) -> bool:
        return self.dkim != "keep" or self.arc


@dataclass(frozen=True, slots=True)
class AuthChanges:
    """Header changes in milter terms.

    ``delete``: (name, 1-based index among fields of that name), highest index first
    so that each deletion leaves the indexes of the next ones alone.
    ``insert``: (name, value) top-down; values fold with LF, as milter values do.
    ``notes``: words for the log line (``dkim=resigned``, ``arc=empty`` …).
    """

    delete: tuple[tuple[str, int], ...] = ()
    insert: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


class SigningError(Exception):
    """The message cannot be signed as the policy asks (it then passes unchanged)."""

    def __init__(self, reason: SignReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def crlf(data: bytes) -> bytes:
    """Every line ending as CRLF, as Postfix's SMTP client sends them."""
    if data.count(b"\n") == data.count(b"\r\n"):  # the milter's case: no copy of 3 MB
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _loaded(cls: Any, message: bytes, **kwargs: Any) -> Any:
    """A dkimpy DKIM/ARC object for a CRLF ``message``, parsing only its header block.

    dkimpy's own parser splits the whole message into lines and joins them again (a
    third of the cost on a 3 MB message); for CRLF input its body is the bytes after
    the blank line, which is what we set.
    """
    head, body = split_message(message)
    obj = cls(head, logger=_QUIET, **kwargs)
    obj.body = body
    return obj


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block including its blank line, body)."""
    end = parse_header_block(raw).end
    return raw[:end], raw[end:]


# -- the plan ---------------------------------------------------------------------------


def auth_changes(
    original: bytes,
    body: bytes,
    edits: Iterable[HeaderEdit],
    policy: AuthPolicy,
    dns: DnsFunc,
    now: int,
    processed: tuple[str, str] = (PROCESSED_HEADER, "1"),
    arc_signer: Callable[..., list[bytes]] | None = None,
) -> AuthChanges:
    """The header changes that make DKIM/ARC right for the rewritten message.

    ``original`` is the whole message as received; ``body`` and ``edits`` are the
    engine's result. Raises SigningError when resigning is asked and impossible.
    """
    if not policy.active:
        return AuthChanges(notes=("dkim=keep",))
    original = crlf(original)
    head = original[: parse_header_block(original).end]  # the body is not copied
    block = crlf(apply_header_edits(head, edits))
    new_body = crlf(body)
    delete = _broken_signatures(block, new_body) if policy.dkim != "keep" else []
    block = _without(block, "dkim-signature", [i for _, i in delete])
    # RFC 8601 §5: results that arrive claiming our authserv-id are forgeries; drop them.
    forged = _our_results(block, policy.authserv_id) if policy.arc else []
    block = _without(block, "authentication-results", forged)
    block = _append(block, processed)
    sent = block + new_body
    inserts: list[tuple[bytes, bytes]] = []
    notes = [_DONE[policy.dkim]]
    if delete:
        notes.append(f"removed={len(delete)}")
    if forged:
        notes.append(f"forged-ar={len(forged)}")
    if policy.arc:
        arc_set, note = _arc_set(original, sent, policy, dns, now, arc_signer or _arc_sign)
        inserts += arc_set
        notes.append(note)
    if policy.dkim == "resign":
        inserts.append(_dkim_signature(sent, policy.key))
    return AuthChanges(
        delete=tuple(("DKIM-Signature", i) for _, i in sorted(delete, key=lambda d: -d[1]))
        + tuple(("Authentication-Results", i) for i in sorted(forged, reverse=True)),
        insert=tuple(_milter_field(name, value) for name, value in inserts),
        notes=tuple(notes),
    )


def signed_message(original: bytes, body: bytes, edits: Iterable[HeaderEdit],
                   changes: AuthChanges, processed: tuple[str, str] = (PROCESSED_HEADER, "1"),
                   ) -> bytes:  # fmt: skip
    """The message as Postfix will send it (without its Received field), for checks."""
    head, _ = split_message(crlf(original))
    block = crlf(apply_header_edits(head, edits))
    for name, index in changes.delete:
        block = _without(block, name.lower(), [index])
    block = _append(block, processed)
    top = b"".join(
        name.encode() + b": " + value.encode().replace(b"\n", b"\r\n") + b"\r\n"
        for name, value in changes.insert
    )
    return top + block + crlf(body)


# -- DKIM-Signature fields we break ----------------------------------------------------


def _broken_signatures(block: bytes, new_body: bytes) -> list[tuple[bytes, int]]:
    """(field bytes, 1-based index) of each DKIM-Signature the new message breaks.

    A signature stays when its body hash still matches the new body and no header it
    signs changed; one with ``l=`` counts as broken (the tail it leaves open is where
    a receiver would see unsigned text). Unparseable fields are left alone.
    """
    fields = parse_header_block(block).get_all("dkim-signature")
    broken = []
    digests: dict[tuple[bytes, bytes], bytes] = {}
    for index, fld in enumerate(fields, 1):
        raw = block[fld.start : fld.end]
        try:
            tags = parse_tag_value(raw.split(b":", 1)[1])
        except (InvalidTagValueList, IndexError):
            continue
        if b"l" in tags or not _body_hash_holds(tags, new_body, digests):
            broken.append((raw, index))
    return broken


def _body_hash_holds(
    tags: dict[bytes, bytes], body: bytes, digests: dict[tuple[bytes, bytes], bytes]
) -> bool:
    """Does the new body still have the signature's bh=? (one hash per c= and a=)."""
    c_value, a_value = tags.get(b"c", b"simple/simple"), tags.get(b"a", b"")
    try:
        expected = base64.b64decode(re.sub(rb"\s+", b"", tags.get(b"bh", b"")))
        if (c_value, a_value) not in digests:
            canon = CanonicalizationPolicy.from_c_value(c_value)
            algo = {b"rsa-sha256": hashlib.sha256, b"ed25519-sha256": hashlib.sha256,
                    b"rsa-sha1": hashlib.sha1}[a_value]  # fmt: skip
            relaxed = canon.body_algorithm is Relaxed
            canonical = relaxed_body(body) if relaxed else canon.canonicalize_body(body)
            digests[c_value, a_value] = algo(canonical).digest()
    except (KeyError, ValueError, dkim.DKIMException):
        return False
    return digests[c_value, a_value] == expected


def relaxed_body(body: bytes, chunk: int = 65536) -> bytes:
    """dkimpy's relaxed body canonicalisation, byte for byte, without its regex pass over
    chunks that have nothing to change (base64 attachments: most of a large message).

    Chunks end just after a CRLF, so no whitespace run (nor its CRLF) spans two chunks.
    """
    out = []
    pos, end = 0, len(body)
    while pos < end:
        cut = body.find(b"\r\n", min(pos + chunk, end) - 1)
        stop = end if cut < 0 else cut + 2
        piece = body[pos:stop]
        if b"\t" in piece or b"  " in piece or b" \r\n" in piece:
            piece = compress_whitespace(strip_trailing_whitespace(piece))
        out.append(piece)
        pos = stop
    canonical: bytes = correct_empty_body(strip_trailing_lines(b"".join(out)))
    return canonical


def _without(block: bytes, name: str, indexes: list[int]) -> bytes:
    """``block`` without the fields called ``name`` at these 1-based indexes."""
    if not indexes:
        return block
    fields = parse_header_block(block).get_all(name)
    drop = sorted((fields[i - 1] for i in indexes if 0 < i <= len(fields)),
                  key=lambda f: -f.start)  # fmt: skip
    for f in drop:
        block = block[: f.start] + block[f.end :]
    return block


def _append(block: bytes, fld: tuple[str, str]) -> bytes:
    """Add a field at the end of the block, where smfi_addheader puts it."""
    line = fld[0].encode() + b": " + fld[1].encode() + b"\r\n"
    return block[:-2] + line + b"\r\n"


# -- signing ------------------------------------------------------------------------------


def _dkim_signature(sent: bytes, key: SigningKey | None) -> tuple[bytes, bytes]:
    if key is None:
        raise SigningError("dkim-key", "resign needs a selector, a domain and a key")
    try:
        header = _loaded(dkim.DKIM, sent).sign(
            key.selector.encode(), key.domain.encode(), key.pem, canonicalize=BODY_CANON
        )
    except dkim.DKIMException as exc:
        raise SigningError("dkim-sign", f"{type(exc).__name__}: {exc}") from exc
    return _split_field(header)


def _arc_set(
    original: bytes,
    sent: bytes,
    policy: AuthPolicy,
    dns: DnsFunc,
    now: int,
    arc_signer: Callable[..., list[bytes]],
) -> tuple[list[tuple[bytes, bytes]], str]:
    """The ARC set for ``sent`` and a log note; an empty set when dkimpy gives none."""
    key = policy.arc_key or policy.key
    # authres lower-cases the authserv-id it parses: a mixed-case one would never match
    # and dkimpy would return no ARC set at all.
    authserv_id = policy.authserv_id.lower()
    if key is None or not _AUTHSERV_ID.fullmatch(authserv_id):
        raise SigningError("arc-config", "ARC needs a key and an authserv-id")
    results = authentication_results(original, authserv_id, dns)
    end = parse_header_block(sent).end
    head = sent[:end]
    # Only our own Authentication-Results goes in: dkimpy copies every AR field that
    # carries our authserv-id into the seal, so a forged one from a sender would be
    # sealed as ours. AR fields are signed by neither AMS nor AS, so this changes no
    # signature.
    kept = _without(head, "authentication-results", _all_indexes(head, "authentication-results"))
    ours = b"Authentication-Results: " + results.encode() + b"\r\n"
    arc_input = b"".join((ours, kept, memoryview(sent)[end:]))  # one copy of the body
    try:
        fields = arc_signer(
            arc_input,
            key.selector.encode(),
            key.domain.encode(),
            key.pem,
            authserv_id.encode(),
            timestamp=now,
            logger=_QUIET,
        )
    except (dkim.DKIMException, UnicodeDecodeError) as exc:
        raise SigningError("arc-sign", f"{type(exc).__name__}: {exc}") from exc
    if not fields:
        return [], "arc=empty"
    instance = re.search(rb"\bi=(\d+)", fields[0])
    return [
        _split_field(f) for f in fields
    ], f"arc=i{instance.group(1).decode() if instance else '?'}"


def _our_results(block: bytes, authserv_id: str) -> list[int]:
    """1-based indexes of the Authentication-Results fields that carry our authserv-id."""
    ours = authserv_id.lower()
    fields = parse_header_block(block).get_all("authentication-results")
    ids = (re.sub(r"\([^)]*\)", "", f.value).split(";", 1)[0].strip().lower() for f in fields)
    return [n for n, found in enumerate(ids, 1) if found == ours]


def _arc_sign(message: bytes, selector: bytes, domain: bytes, pem: bytes, srv_id: bytes,
              timestamp: int, logger: logging.Logger) -> list[bytes]:  # fmt: skip
    """dkimpy's arc_sign (same arguments), without its whole-message parse."""
    arc = _loaded(dkim.ARC, message, signature_algorithm=b"rsa-sha256")
    signed = arc.default_sign_headers()
    fields: list[bytes] = arc.sign(selector, domain, pem, srv_id, signed, timestamp)
    return fields


def _all_indexes(block: bytes, name: str) -> list[int]:
    return list(range(1, parse_header_block(block).count(name) + 1))


def authentication_results(original: bytes, authserv_id: str, dns: DnsFunc) -> str:
    """Our Authentication-Results value for the message as it reached us.

    One ``dkim=`` result per DKIM-Signature (at most DKIM_MAX_VERIFY), ``dkim=none``
    when there is none, and ``arc=`` when the message already carries an ARC chain
    (dkimpy continues a chain only with that result, and refuses it on a first seal).
    """
    parts = [authserv_id]
    count = min(_signature_count(original), DKIM_MAX_VERIFY)
    parts += [_dkim_result(original, i, dns) for i in range(count)] or ["dkim=none"]
    chain = _arc_result(original, dns)
    if chain:
        parts.append(f"arc={chain}")
    return ";\r\n ".join(parts)


def _signature_count(message: bytes) -> int:
    return parse_header_block(message).count("dkim-signature")


def _dkim_result(message: bytes, index: int, dns: DnsFunc) -> str:
    checker = _loaded(dkim.DKIM, message)
    try:
        ok = checker.verify(idx=index, dnsfunc=dns)
    except dkim.DKIMException:
        ok = False
    except Exception:  # noqa: BLE001 - a DNS function's own error is a temperror, not a crash
        return "dkim=temperror"
    tags = checker.signature_fields or {}
    props = [f"header.{k}={_token(tags.get(t))}" for k, t in (("d", b"d"), ("s", b"s"))
             if _token(tags.get(t))]  # fmt: skip
    sig_b = re.sub(rb"[^A-Za-z0-9+/]", b"", tags.get(b"b", b""))[:8]
    if sig_b:
        props.append(f"header.b={sig_b.decode()}")
    return " ".join([f"dkim={'pass' if ok else 'fail'}", *props])


def _token(value: Any) -> str:
    """A domain or selector from the message, or "" if it is not safe to copy."""
    if isinstance(value, bytes) and _TOKEN.fullmatch(value):
        return value.decode()
    return ""


def _arc_result(message: bytes, dns: DnsFunc) -> str:
    """pass/fail for an ARC chain already on the message; "" when there is none."""
    if not any(parse_header_block(message).get(n) for n in ("arc-seal", "arc-message-signature")):
        return ""
    try:
        cv, _, _ = _loaded(dkim.ARC, message).verify(dnsfunc=dns)
    except Exception:  # noqa: BLE001 - any failure to validate is a failed chain
        return "fail"
    return "pass" if cv == dkim.CV_Pass else "fail"


def _split_field(data: bytes) -> tuple[bytes, bytes]:
    name, _, value = data.partition(b":")
    return name.strip(), value.strip(b" \t\r\n")


def _milter_field(name: bytes, value: bytes) -> tuple[str, str]:
    """(name, value) as pymilter takes them: text, folded with LF (Postfix writes CRLF)."""
    return name.decode("ascii"), value.replace(b"\r\n", b"\n").decode("ascii")
