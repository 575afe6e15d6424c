"""Skip rules: messages that must pass byte-identical, each with a one-word reason."""

from __future__ import annotations

from collections.abc import Iterable

from .defaults import PROCESSED_HEADER
from .mime.headers import ContentType, HeaderBlock
from .mime.leaf import TextLeaf
from .mime.scan import Part


class Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


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


def type_reason(ctype: ContentType, child_types: Iterable[str] = ()) -> str | None:
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
