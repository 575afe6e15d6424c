"""Content-Transfer-Encoding and charset helpers (stdlib codecs, no re-serialisation)."""

from __future__ import annotations

import binascii
import codecs
import functools
import re

IDENTITY_CTES = frozenset({"7bit", "8bit", "binary", ""})
KNOWN_CTES = IDENTITY_CTES | {"quoted-printable", "base64"}
MAX_LINE = 998  # RFC 5322 2.1.1, octets excluding CRLF

_QP_ENCODED_EOL = re.compile(rb"=0[aAdD]")
# One hard line of quoted-printable: soft-broken lines ("...=" + EOL) then the line
# that ends it; the outer loop is possessive, so each line is tried once, in C.
_QP_HARD_LINE = re.compile(rb"(?:[^\n]*=[ \t\r]*\n)*+[^\n]*\n?")

# Charset labels that can name a codec are printable ASCII (RFC 2978 asks for less);
# anything else is an unknown charset and never reaches codecs.lookup, which raises
# ValueError for an embedded NUL and UnicodeEncodeError for a lone surrogate.
_CHARSET_LABEL = re.compile(r"[ -~]{1,100}")

# Charset labels mail clients use that Python spells differently.
_CHARSET_ALIASES = {
    "x-unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "ks_c_5601-1987": "cp949",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "gb2312": "gb18030",  # senders label GBK/GB18030 text gb2312; the superset decodes both
}


class TransferError(ValueError):
    """The body cannot be decoded with its declared transfer encoding."""


def eol_of(data: bytes, default: bytes = b"\r\n", start: int = 0, end: int | None = None) -> bytes:
    """The line ending ``data[start:end]`` uses (its first one), or ``default``."""
    nl = data.find(b"\n", start, len(data) if end is None else end)
    if nl < 0:
        return default
    return b"\r\n" if nl > start and data[nl - 1 : nl] == b"\r" else b"\n"


# A message's parts name one or two charsets, the same ones message after message; the
# label checks and the codec registry's lookup cost ~1-4 µs a part (measured).
@functools.lru_cache(maxsize=256)
def python_codec(charset: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when unknown."""
    if not charset:
        return "ascii"
    label = charset.strip().strip('"').lower()
    if not _CHARSET_LABEL.fullmatch(label):
        return None
    if label in _CHARSET_ALIASES:
        alias = _CHARSET_ALIASES[label]
        # The registry's own name, as for every other label ("mac_roman" -> "mac-roman"):
        # callers compare names (the leaf's stateless-codec fast path does).
        return codecs.lookup(alias).name if alias else None
    if label in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        return "ascii"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def transfer_decode(body: bytes, cte: str) -> bytes:
    if cte in IDENTITY_CTES:
        return body
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error as exc:
            raise TransferError(f"bad base64: {exc}") from exc
    raise TransferError(f"unsupported Content-Transfer-Encoding {cte!r}")


def _with_eol(data: bytes, eol: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", eol) if eol != b"\n" else data


def qp_encode(data: bytes, eol: bytes) -> bytes:
    """Quoted-printable with lines of at most 76 characters and the given line ending."""
    return _with_eol(binascii.b2a_qp(data, quotetabs=False, istext=True, header=False), eol)


def b64_encode(data: bytes, eol: bytes, line_length: int = 76, final_eol: bool = True) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    line_length = max(4, line_length - line_length % 4)
    lines = [encoded[i : i + line_length] for i in range(0, len(encoded), line_length)]
    return eol.join(lines) + (eol if final_eol and lines else b"")


def b64_line_length(body: bytes) -> int:
    """The line length to re-encode a base64 body with: its own, unless that is unsafe.

    Lines over 998 octets (RFC 5322) would be folded by Postfix's smtp client with a
    space, which corrupts base64: such a body gets 76-character lines (RFC 2045).
    """
    nl = body.find(b"\n")
    first = body[: nl if nl >= 0 else len(body)].rstrip(b"\r")
    if nl < 0 or len(first) < 4 or longest_line(body) > MAX_LINE:
        return 76
    return len(first)


def qp_has_encoded_eol(body: bytes) -> bool:
    return _QP_ENCODED_EOL.search(body) is not None


def qp_hard_line_offsets(body: bytes, wanted: int) -> list[int]:
    """Raw offsets where hard lines 0..wanted begin (a soft break "=" continues a line)."""
    starts = [0]
    pos, size = 0, len(body)
    while len(starts) <= wanted and pos < size:
        m = _QP_HARD_LINE.match(body, pos)
        assert m is not None  # the pattern matches the empty string
        pos = m.end()
        starts.append(pos)
    while len(starts) <= wanted:
        starts.append(size)
    return starts


def longest_line(data: bytes) -> int:
    return max((len(line.rstrip(b"\r")) for line in data.split(b"\n")), default=0)
