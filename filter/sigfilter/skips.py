"""Skip rules: messages that must pass byte-identical, each with a one-word reason."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable
from email.errors import CharsetError, HeaderParseError
from email.header import decode_header, make_header
from importlib.resources import files

from .defaults import PROCESSED_HEADER
from .mime.headers import ContentType, HeaderBlock
from .mime.leaf import TextLeaf
from .mime.scan import Part
from .reasons import SkipReason


class Skip(Exception):
    def __init__(self, reason: SkipReason, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def check_headers(headers: HeaderBlock) -> None:
    """Skip rules decided by the top-level header block alone (before the body)."""
    # The names present, once: a lookup per rule read every field (~10 µs a message).
    names = {f.name for f in headers.fields}
    if PROCESSED_HEADER.lower() in names:
        raise Skip("loop", f"{PROCESSED_HEADER} present")
    auto = headers.get("auto-submitted")
    if auto and auto.value.strip().lower().split(";")[0].strip() != "no":
        raise Skip("auto-reply", f"Auto-Submitted: {auto.value[:40]}")
    for name in ("x-autoreply", "x-autorespond"):
        if name in names:
            raise Skip("auto-reply", f"{name} present")
    precedence = headers.get("precedence")
    if precedence and precedence.value.strip().lower() == "auto_reply":
        raise Skip("auto-reply", "Precedence: auto_reply")
    for name in _AUTO.headers:
        if name in names:
            raise Skip("auto-reply", f"{name} present")
    subject = headers.get("subject")
    if subject and _AUTO.subject.match(_subject_text(subject.value)):
        raise Skip("auto-reply", "Subject: an automatic-reply prefix")
    klass = headers.get("content-class")
    if klass and "calendarmessage" in klass.value.lower():
        raise Skip("calendar", "Content-Class calendarmessage")


# -- machine-written mail, from autoreplies.tsv ---------------------------------------


class _AutoReplies:
    def __init__(self, table: str) -> None:
        prefixes: list[str] = []
        headers: list[str] = []
        for n, raw in enumerate(table.splitlines(), 1):
            if not raw.strip() or raw.startswith("#"):
                continue
            cols = raw.split("\t")
            if len(cols) != 3 or cols[0] not in ("subject", "header") or not cols[1].strip():
                raise ValueError(f"autoreplies.tsv:{n}: want subject|header<TAB>value<TAB>source")
            if cols[0] == "subject":
                prefixes.append(_prefix_source(cols[1]))
            else:
                headers.append(cols[1].strip().lower())
        alternatives = "|".join(sorted(set(prefixes), key=len, reverse=True))
        self.subject = re.compile(rf"\s*(?:{alternatives})", re.IGNORECASE)
        self.headers = tuple(dict.fromkeys(headers))


def _prefix_source(prefix: str) -> str:
    """Regex for a prefix: any spacing between words and before the colon."""
    words = prefix.strip().rstrip(":：").split()
    return r"\s+".join(re.escape(w) for w in words) + r"\s*[:：]"


_AUTO = _AutoReplies(files("sigfilter").joinpath("autoreplies.tsv").read_text(encoding="utf-8"))
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2009": " "})


# The milter reads the Subject at end of headers and the engine again: the stdlib's
# RFC 2047 decoder costs ~15-60 µs a time (measured on a 21 KB reply), and a thread's
# replies repeat their Subject.
@functools.lru_cache(maxsize=1024)
def _subject_text(value: str) -> str:
    """The Subject as a person reads it (RFC 2047 words decoded), or the raw value."""
    if not value.isascii():  # raw 8-bit (SMTPUTF8): header values are read as latin-1
        with contextlib.suppress(UnicodeError):  # not UTF-8: keep the latin-1 reading
            value = value.encode("latin-1").decode("utf-8")
    if "=?" not in value:
        return value.translate(_SPACES)  # nothing encoded: skip the stdlib's decoder
    try:
        text = str(make_header(decode_header(value)))
    except (CharsetError, HeaderParseError, LookupError, UnicodeError, ValueError):
        text = value
    return text.translate(_SPACES)


_SKIP_TYPES: dict[str, SkipReason] = {
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


def type_reason(ctype: ContentType, child_types: Iterable[str] = ()) -> SkipReason | None:
    """Why a part of this type makes the message pass unchanged, or None."""
    kind = ctype.type
    if kind == "multipart/signed":
        proto = (ctype.param("protocol") or "").lower()
        return "signed-pgp" if "pgp" in " ".join([proto, *child_types]) else "signed-smime"
    if kind in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        smime = (ctype.param("smime-type") or "").lower()
        return "signed-smime" if smime == "signed-data" else "encrypted"
    return _SKIP_TYPES.get(kind)


def check_structure(root: Part, allow_tnef: bool = False) -> None:
    for part in root.walk():
        reason = type_reason(part.ctype, (c.ctype.type for c in part.children))
        if reason and not (allow_tnef and reason == "tnef"):
            raise Skip(reason, part.ctype.type)


def check_inline_pgp(leaf: TextLeaf) -> None:
    if "-----BEGIN PGP SIGNED MESSAGE-----" in leaf.text:
        raise Skip("signed-pgp", "inline PGP signature")
    if "-----BEGIN PGP MESSAGE-----" in leaf.text:
        raise Skip("encrypted", "inline PGP message")
