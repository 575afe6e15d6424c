"""TNEF (application/ms-tnef, winmail.dat): read it with bounded work, say what it is.

Pure: bytes in, a :class:`TnefContent` (or :class:`TnefRefused` with a reason) out.
tnefparse does the decoding and compressed_rtf the RTF decompression (through
tnefparse); RTFDE takes the HTML out of RTF that encapsulates it (``\\fromhtml1``).

tnefparse trusts the counts it reads: a hostile 32-bit property or value count made it
loop for billions of rounds, and it copies the rest of the stream for every object
(quadratic). So before it runs, :func:`check_frames` walks the object framing (level,
id, length, checksum: 11 bytes each, no decoding) and refuses what tnefparse would
misread; while it runs, a per-thread call budget (``sys.setprofile``) bounds its work
and any warning it logs (bad checksum, a property it could not decode) stops it. What
it does not fully understand is refused, and the message passes unchanged.
"""

from __future__ import annotations

import logging
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from lark.exceptions import LarkError
from RTFDE.deencapsulate import DeEncapsulator  # type: ignore[import-untyped]
from RTFDE.exceptions import (  # type: ignore[import-untyped]
    MalformedEncapsulatedRtf,
    MalformedRtf,
    NotEncapsulatedRtf,
    UnsupportedRTFFormat,
)
from tnefparse import properties as mapi  # type: ignore[import-untyped]
from tnefparse.codepage import Codepage  # type: ignore[import-untyped]
from tnefparse.tnef import TNEF  # type: ignore[import-untyped]

from ..defaults import (
    TNEF_CALLS_BASE,
    TNEF_CALLS_PER_BYTE,
    TNEF_MAX_ATTACHMENTS,
    TNEF_MAX_BYTES,
    TNEF_MAX_COPY,
    TNEF_MAX_RTF,
)
from ..reasons import SkipReason

SIGNATURE = 0x223E9F78
_LEVELS = (TNEF.LVL_MESSAGE, TNEF.LVL_ATTACHMENT)
_KNOWN_IDS = frozenset(TNEF.codes)

# The attribute-level class (attMessageClass) of old-style TNEF, as MAPI names it.
_LEGACY_CLASSES = {
    "ipm.microsoft mail.note": "IPM.Note",
    "ipm.microsoft mail.read receipt": "Report.IPM.Note.IPNRN",
    "ipm.microsoft mail.non-delivery": "Report.IPM.Note.NDR",
    "ipm.microsoft schedule.mtgreq": "IPM.Schedule.Meeting.Request",
    "ipm.microsoft schedule.mtgrespp": "IPM.Schedule.Meeting.Resp.Pos",
    "ipm.microsoft schedule.mtgrespn": "IPM.Schedule.Meeting.Resp.Neg",
    "ipm.microsoft schedule.mtgrespa": "IPM.Schedule.Meeting.Resp.Tent",
    "ipm.microsoft schedule.mtgcncl": "IPM.Schedule.Meeting.Canceled",
}

# Class prefixes -> the label counted in metrics (a fixed set: classes are sender data).
CLASS_LABELS = (
    ("ipm.note.smime.multipartsigned", "IPM.Note.SMIME.MultipartSigned"),
    ("ipm.note.smime", "IPM.Note.SMIME"),
    ("ipm.note", "IPM.Note.*"),
    ("ipm.schedule.meeting", "IPM.Schedule.Meeting.*"),
    ("ipm.appointment", "IPM.Appointment"),
    ("ipm.taskrequest", "IPM.TaskRequest.*"),
    ("ipm.task", "IPM.Task"),
    ("ipm.contact", "IPM.Contact"),
    ("ipm.distlist", "IPM.DistList"),
    ("ipm.stickynote", "IPM.StickyNote"),
    ("report.", "Report.*"),
)

# PidLidVerbStream / PidLidVerbResponse in PSETID_Common: voting buttons, and a vote.
# Outlook writes the verb stream only when the sender set voting options.
_PSETID_COMMON = "00062008-0000-0000-c000-000000000046"
_VOTING_LIDS = frozenset({0x8520, 0x8524})
_ATTACH_BY_VALUE = 1
_ATTACH_EMBEDDED_MSG = 5
_ATTACH_OLE = 6


class TnefRefused(Exception):
    """This TNEF is not converted; ``reason`` is the one-word skip reason."""

    def __init__(self, reason: SkipReason, detail: str = "", message_class: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.message_class = message_class


@dataclass(frozen=True, slots=True)
class TnefAttachment:
    name: str
    data: bytes
    mime_type: str = ""  # PR_ATTACH_MIME_TAG, when the sender set one
    content_id: str = ""  # PR_ATTACH_CONTENT_ID: an image the HTML shows inline
    method: int = _ATTACH_BY_VALUE


@dataclass(frozen=True, slots=True)
class TnefContent:
    message_class: str
    subject: str = ""
    html: bytes | None = None  # in ``html_charset``
    html_charset: str = "utf-8"
    text: str | None = None
    rtf: bytes | None = None  # decompressed, when that is the only formatted body
    attachments: tuple[TnefAttachment, ...] = ()
    voting: bool = False
    importance: int | None = None  # PR_IMPORTANCE: 0 low, 1 normal, 2 high
    sensitivity: int | None = None  # PR_SENSITIVITY: 0 normal … 3 confidential
    flags: tuple[str, ...] = field(default=())  # what else was seen (for the detail)


def class_label(message_class: str) -> str:
    """The fixed label a message class is counted under."""
    low = message_class.strip().lower()
    if low == "ipm.note":
        return "IPM.Note"
    if not low:
        return "unknown"
    for prefix, label in CLASS_LABELS:
        if low.startswith(prefix):
            return label
    return "other"


# -- bounds ------------------------------------------------------------------------------


def check_frames(data: bytes) -> int:
    """Walk the attribute framing; return the number of attributes.

    Raises TnefRefused("tnef-damaged") for what tnefparse would misread: a wrong
    signature, an attribute that runs past the end or has a bad checksum, an unknown
    level or attribute id, an attachment attribute before the attachment starts, or
    trailing bytes. Nothing is decoded here.
    """
    if len(data) < 6 or struct.unpack_from("<I", data)[0] != SIGNATURE:
        raise TnefRefused("tnef-damaged", "no TNEF signature")
    pos, count, in_attachment = 6, 0, False
    while pos < len(data):
        if pos + 11 > len(data):
            raise TnefRefused("tnef-damaged", f"{len(data) - pos} trailing bytes at {pos}")
        level, ident, _type, length = struct.unpack_from("<BHHI", data, pos)
        end = pos + 9 + length
        if end + 2 > len(data):
            raise TnefRefused("tnef-damaged", f"attribute at {pos} runs past the end")
        if level not in _LEVELS or ident not in _KNOWN_IDS:
            raise TnefRefused("tnef-damaged", f"unknown attribute {level}/{ident:#06x} at {pos}")
        in_attachment = in_attachment or ident == TNEF.ATTATTACHRENDDATA
        if level == TNEF.LVL_ATTACHMENT and not in_attachment:
            raise TnefRefused("tnef-damaged", f"attachment attribute at {pos} before its start")
        if sum(data[pos + 9 : end]) & 0xFFFF != struct.unpack_from("<H", data, end)[0]:
            raise TnefRefused("tnef-damaged", f"bad checksum at {pos}")
        pos, count = end + 2, count + 1
    return count


class _Stop(Exception):
    """Raised inside tnefparse to stop it (budget spent, or it logged a problem)."""


_guard = threading.local()


class _RaiseOnWarning(logging.Filter):
    """tnefparse logs what it could not decode, then goes on: here that stops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_guard, "active", False) and record.levelno >= logging.WARNING:
            raise _Stop(record.getMessage()[:200])
        return True


_LOG = logging.getLogger("tnefparse")
_LOG.addFilter(_RaiseOnWarning())
_LOG.setLevel(logging.WARNING)  # its debug lines would cost a record per property
_LOG.propagate = False  # its complaints reach our log line as the skip detail instead
_LOG.addHandler(logging.NullHandler())  # (and not logging's last-resort stderr handler)
logging.getLogger("RTFDE").setLevel(logging.ERROR)


@contextmanager
def _bounded(calls: int) -> Iterator[None]:
    """Run the block with at most ``calls`` Python/C calls on this thread."""
    left = [calls]
    previous = sys.getprofile()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            left[0] -= 1
            if left[0] < 0:
                raise _Stop("work budget spent")

    _guard.active = True
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
        _guard.active = False


# Exceptions tnefparse, compressed_rtf and RTFDE raise on data they cannot read (struct
# errors for short data, codec errors, bad dates; compressed_rtf raises bare Exception).
_PARSE_ERRORS = (_Stop, ValueError, LookupError, struct.error, UnicodeError, AssertionError,
                 OverflowError, TypeError, AttributeError, RecursionError)  # fmt: skip


def _guarded(work: Callable[[], Any], budget: int, what: str) -> Any:
    try:
        with _bounded(budget):
            return work()
    except _PARSE_ERRORS as exc:
        raise TnefRefused("tnef-damaged", f"{what}: {type(exc).__name__}: {exc}"[:300]) from exc


# -- reading -----------------------------------------------------------------------------


def read_class(data: bytes) -> str:
    """The message class only (for counting); "" when the TNEF cannot be read."""
    try:
        return _message_class(_parse(data))
    except TnefRefused:
        return ""


def _parse(data: bytes) -> Any:
    if len(data) > TNEF_MAX_BYTES:
        raise TnefRefused("tnef-too-large", f"TNEF of {len(data)} bytes > {TNEF_MAX_BYTES}")
    count = check_frames(data)
    if count * len(data) > TNEF_MAX_COPY:  # tnefparse copies the rest per attribute
        raise TnefRefused("tnef-too-large", f"{count} attributes in {len(data)} bytes")
    budget = TNEF_CALLS_BASE + TNEF_CALLS_PER_BYTE * len(data)
    return _guarded(lambda: TNEF(data, do_checksum=True), budget, "tnefparse")


def _mapi_value(props: list[Any], name: int) -> Any:
    for p in props:
        if p.name == name and not p.guid:
            return p.data
    return None


def _message_class(t: Any) -> str:
    value = _mapi_value(t.mapiprops, mapi.MAPI_MESSAGE_CLASS)
    if isinstance(value, str) and value.strip():
        return value.strip("\x00 ")
    for obj in t.msgprops:
        if obj.name == TNEF.ATTMESSAGECLASS and isinstance(obj.data, str):
            legacy = obj.data.strip("\x00 ")
            return _LEGACY_CLASSES.get(legacy.lower(), legacy)
    return "IPM.Note" if t.objects else ""  # attMessageClass absent: a plain note


def read_tnef(data: bytes) -> TnefContent:
    """Everything conversion needs; raises TnefRefused for what must pass unchanged."""
    t = _parse(data)
    klass = _message_class(t)
    try:
        return _content(t, klass)
    except TnefRefused as exc:
        exc.message_class = exc.message_class or klass
        raise
    except _PARSE_ERRORS as exc:  # a property value tnefparse kept but cannot decode
        raise TnefRefused("tnef-damaged", f"{type(exc).__name__}: {exc}"[:300], klass) from exc


def _content(t: Any, klass: str) -> TnefContent:
    props = t.mapiprops
    rtf = _rtf(t) if getattr(t, "_rtfbody", None) and not t.htmlbody else None
    html, charset = _html(t, props, rtf)
    text = t.body.decode(t.codepage or "cp1252") if isinstance(t.body, bytes) else t.body
    subject = _mapi_value(props, mapi.MAPI_SUBJECT)
    if not isinstance(subject, str):
        subject = next((o.data for o in t.msgprops if o.name == TNEF.ATTSUBJECT), "")
    return TnefContent(
        message_class=klass,
        subject=str(subject or "").strip("\x00"),
        html=html,
        html_charset=charset,
        text=text.strip("\x00") if isinstance(text, str) else None,
        rtf=rtf if html is None else None,
        attachments=tuple(_attachment(a) for a in t.attachments[: TNEF_MAX_ATTACHMENTS + 1]),
        voting=any(str(p.guid) == _PSETID_COMMON and p.guid_prop in _VOTING_LIDS for p in props),
        importance=_int(_mapi_value(props, mapi.MAPI_IMPORTANCE)),
        sensitivity=_int(_mapi_value(props, mapi.MAPI_SENSITIVITY)),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _codepage_codec(props: list[Any]) -> str | None:
    cp = _mapi_value(props, mapi.MAPI_INTERNET_CODEPAGE)
    return Codepage(cp).best_guess() if isinstance(cp, int) and cp > 0 else None


def _html(t: Any, props: list[Any], rtf: bytes | None) -> tuple[bytes | None, str]:
    """The HTML body as bytes and its charset: PR_HTML, else HTML encapsulated in RTF."""
    if t.htmlbody:
        codec = _codepage_codec(props) or "utf-8"
        if isinstance(t.htmlbody, bytes):
            return t.htmlbody, codec
        return t.htmlbody.encode(codec), codec
    if rtf is None or b"\\fromhtml" not in rtf[:1024]:
        return None, "utf-8"
    return _deencapsulate(rtf), "utf-8"


def _rtf(t: Any) -> bytes:
    compressed = t._rtfbody  # tnefparse keeps the compressed RTF here
    if len(compressed) > TNEF_MAX_RTF:
        raise TnefRefused("tnef-too-large", f"compressed RTF of {len(compressed)} bytes")
    try:
        with _bounded(TNEF_CALLS_BASE + TNEF_CALLS_PER_BYTE * 40 * len(compressed)):
            rtf = t.rtfbody
    except _Stop as exc:
        raise TnefRefused("tnef-damaged", f"compressed RTF: {exc}") from exc
    except Exception as exc:  # compressed_rtf raises bare Exception for a bad header or CRC
        raise TnefRefused("tnef-damaged", f"compressed RTF: {exc}"[:300]) from exc
    if not isinstance(rtf, bytes) or len(rtf) > TNEF_MAX_RTF * 10:
        raise TnefRefused("tnef-damaged", "compressed RTF did not decompress")
    return rtf


def _deencapsulate(rtf: bytes) -> bytes:
    """The HTML inside ``\\fromhtml1`` RTF (RTFDE: 20-80 µs a byte here, hence the cap)."""
    if len(rtf) > TNEF_MAX_RTF:
        raise TnefRefused("tnef-too-large", f"RTF of {len(rtf)} bytes > {TNEF_MAX_RTF}")
    try:
        dec = DeEncapsulator(rtf)
        dec.deencapsulate()
    except (MalformedRtf, MalformedEncapsulatedRtf, NotEncapsulatedRtf, UnsupportedRTFFormat,
            LarkError, *_PARSE_ERRORS) as exc:  # fmt: skip
        raise TnefRefused("tnef-damaged", f"RTFDE: {type(exc).__name__}: {exc}"[:300]) from exc
    html = dec.html
    if dec.get_content_type() != "html" or not isinstance(html, (bytes, str)):
        raise TnefRefused("tnef-damaged", "RTF holds no HTML")
    return html.encode("utf-8") if isinstance(html, str) else html


def _attachment(a: Any) -> TnefAttachment:
    props = a.mapi_attrs
    method = _int(_mapi_value(props, mapi.MAPI_ATTACH_METHOD))
    if hasattr(a, "embed"):
        method = _ATTACH_EMBEDDED_MSG
    mime = _mapi_value(props, mapi.MAPI_ATTACH_MIME_TAG)
    cid = _mapi_value(props, mapi.MAPI_ATTACH_CONTENT_ID)
    name = a.long_filename()
    return TnefAttachment(
        name=name if isinstance(name, str) else "",
        data=a.data if isinstance(a.data, bytes) else b"",
        mime_type=mime.strip("\x00 ") if isinstance(mime, str) else "",
        content_id=cid.strip("\x00 <>") if isinstance(cid, str) else "",
        method=_ATTACH_BY_VALUE if method is None else method,
    )


# -- what must not be converted ----------------------------------------------------------


def refusal(content: TnefContent) -> TnefRefused | None:
    """Why converting this TNEF would lose meaning, or None when it is safe."""
    klass = content.message_class
    low = klass.lower()
    if low != "ipm.note":
        return TnefRefused(_class_reason(low), f"message class {klass[:80]}", klass)
    if content.voting:
        return TnefRefused("tnef-voting", "voting buttons", klass)
    if len(content.attachments) > TNEF_MAX_ATTACHMENTS:
        return TnefRefused("tnef-too-large", f"more than {TNEF_MAX_ATTACHMENTS} attachments")
    for att in content.attachments:
        if att.method == _ATTACH_EMBEDDED_MSG:
            return TnefRefused("tnef-embedded", "an attached Outlook item", klass)
        if att.method == _ATTACH_OLE:
            return TnefRefused("tnef-ole", "an embedded OLE object", klass)
        if att.method != _ATTACH_BY_VALUE:
            return TnefRefused("tnef-attach-ref", f"attachment method {att.method}", klass)
    if content.html is None and content.text is None:
        why = "RTF-only body and no plain text" if content.rtf is not None else "no body"
        return TnefRefused("tnef-no-body", why, klass)
    return None


def _class_reason(low: str) -> SkipReason:
    if low.startswith(("ipm.appointment", "ipm.schedule")):
        return "tnef-calendar"
    if low.startswith("ipm.task"):
        return "tnef-task"
    if low.startswith("ipm.note.smime") or "rpmsg" in low or "secure" in low:
        return "tnef-secure"
    return "tnef-class"
