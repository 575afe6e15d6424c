"""Shared helpers for the tests: message loading, signatures, byte-identity checks."""

from __future__ import annotations

import csv
import email
import email.policy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, get_args

from hypothesis import strategies as st
from lxml import etree

from sigfilter.engine import Result, body_leaves, rewritten_message
from sigfilter.milter.runtime import MilterSettings, Runtime
from sigfilter.mime.headers import parse_header_block
from sigfilter.mime.leaf import open_leaf
from sigfilter.mime.scan import Part, scan
from sigfilter.reasons import SkipReason
from sigfilter.service import SignatureService
from sigfilter.signature import Signature

TESTS = Path(__file__).resolve().parent

# Every word the engine may give for passing a message unchanged (a bug raises instead).
SKIP_REASONS = frozenset(get_args(SkipReason))
CORPUS = TESTS / "corpus"
MESSAGES = TESTS / "messages"

# The default variant carries a non-ASCII character so that charset handling is
# exercised on every us-ascii / latin-1 message; the reply variant is ASCII.
SIGNATURE = Signature(
    html=(
        '<table cellpadding="0"><tr><td><b>Avery Quill</b></td></tr>'
        "<tr><td>Head of Mail Flow \u00b7 +1 555 0100</td></tr></table>"
    ),
    text="-- \nAvery Quill\nHead of Mail Flow \u00b7 +1 555 0100",
    reply_html="<p><b>Avery Quill</b> | Head of Mail Flow | +1 555 0100</p>",
    reply_text="-- \nAvery Quill | Head of Mail Flow | +1 555 0100",
)
SIG_TOKEN = "Avery Quill"


def to_lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def to_crlf(raw: bytes) -> bytes:
    return to_lf(raw).replace(b"\n", b"\r\n")


def line_forms(raw: bytes) -> dict[str, bytes]:
    return {"crlf": to_crlf(raw), "lf": to_lf(raw)}


@dataclass(frozen=True)
class Expectation:
    file: str
    client: str
    expect: str
    html_quote_marker: str
    text_quote_marker: str
    footer: str
    notes: str


def load_manifest(folder: Path = MESSAGES) -> list[Expectation]:
    path = folder / "MANIFEST.tsv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [
        Expectation(**{k: (v or "-") for k, v in r.items() if k in Expectation.__annotations__})
        for r in rows
    ]


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def decoded_leaves(raw: bytes) -> dict[str, str]:
    """Decoded text of the message's own text/plain and text/html leaves (our scanner)."""
    root = scan(raw)
    plain, html = body_leaves(root)
    out: dict[str, str] = {}
    for name, part in (("plain", plain), ("html", html)):
        if part is not None:
            out[name] = open_leaf(raw, part).text
    return out


def _spans(root: Part) -> list[tuple[int, int]]:
    plain, html = body_leaves(root)
    return sorted((p.start, p.body_end) for p in (plain, html) if p is not None)


_MAY_CHANGE = {"content-type", "content-transfer-encoding", "mime-version"}


def assert_only_leaves_changed(raw: bytes, out: bytes) -> None:
    """Every byte outside the edited text leaves of ``raw`` is in ``out``, in order.

    The top-level header block may differ only in Content-Type, CTE and MIME-Version
    (the milter's header edits); everything else must be byte-identical.
    """
    root = scan(raw)
    h_in, h_out = parse_header_block(raw), parse_header_block(out)
    _assert_headers_same(raw, h_in, out, h_out)
    spans = [(max(s, h_in.end), e) for s, e in _spans(root)]
    body_out = out[h_out.end :]
    # Unchanged runs: before the first leaf, between leaves, after the last leaf.
    cuts = [h_in.end] + [x for span in spans for x in span] + [len(raw)]
    runs = [raw[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2)]
    assert body_out.startswith(runs[0]), "bytes before the first edited leaf changed"
    pos = len(runs[0])
    for run in runs[1:-1]:
        found = body_out.find(run, pos)
        assert found >= 0, "bytes between the edited leaves changed"
        pos = found + len(run)
    assert body_out.endswith(runs[-1]), "bytes after the last edited leaf changed"
    assert len(body_out) - len(runs[-1]) >= pos


def _assert_headers_same(raw: bytes, h_in, out: bytes, h_out) -> None:  # type: ignore[no-untyped-def]
    a = [raw[f.start : f.end] for f in h_in.fields if f.name not in _MAY_CHANGE]
    b = [out[f.start : f.end] for f in h_out.fields if f.name not in _MAY_CHANGE]
    assert a == b, "top-level header fields other than Content-Type/CTE changed"


def full_output(raw: bytes, result: Result) -> bytes:
    return rewritten_message(raw, result)


def attachments(msg: EmailMessage) -> list[tuple[str, bytes]]:
    """Content type and decoded payload of every non-text-body part (stdlib parser)."""
    out = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() == "multipart":
            continue  # (the stdlib leaves a multipart it cannot split unsplit)
        ctype = part.get_content_type()
        if (
            ctype in ("text/plain", "text/html")
            and part.get_content_disposition() != "attachment"
            and not part.get_filename()
        ):
            continue
        payload = part.get_payload(decode=True)
        out.append((ctype, payload if isinstance(payload, bytes) else b""))
    return out


# The test profile of the milter: no TLS client certificate, no Exchange tenant stamp.
TEST_SETTINGS = MilterSettings(max_size=10_000, connector_cert_name="", tenant_id_missing="accept")


@contextmanager
def milter_runtime(
    service: SignatureService, settings: MilterSettings = TEST_SETTINGS, **parts: Any
) -> Iterator[Runtime]:
    """A runtime of the test's own (fresh metrics, keys, DNS cache, pool unless given in
    ``parts``); its pool is shut down after the test, and no global is changed."""
    runtime = Runtime(service, settings, **parts)
    try:
        yield runtime
    finally:
        runtime.executor.shutdown(wait=True)


# Postfix values doctor finds nothing wrong with (the shipped shape), for tests that
# feed doctor's checks a postconf of their own.
POSTCONF_GOOD = {
    "smtpd_milters": "unix:/run/sigfilter/milter.sock",
    "milter_default_action": "tempfail",
    "milter_connect_timeout": "5s",
    "milter_command_timeout": "10s",
    "milter_content_timeout": "30s",
    "message_size_limit": "36700160",
    "smtpd_tls_security_level": "may",
    "smtp_tls_security_level": "secure",
    "smtpd_tls_protocols": ">=TLSv1.2",
    "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
    "smtp_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
    "smtp_tls_mandatory_protocols": ">=TLSv1.2",
    "smtpd_relay_restrictions": "permit_mynetworks, reject",
    "smtpd_sender_restrictions": "reject",
    "mynetworks": "40.92.0.0/15",
}


def serialised_text(el: etree._Element) -> str:
    """An element's text as lxml serialises it (no tail): the oracle for the placement
    code's own readings (placement/eltext.py)."""
    return str(etree.tostring(el, method="text", encoding=str, with_tail=False))


@st.composite
def html_fragments(
    draw: st.DrawFn, pieces: Sequence[str], tags: Sequence[str], most: int = 3, depth: int = 3
) -> str:
    """Generated HTML: up to ``most`` of ``pieces``, each maybe followed by an element of
    ``tags`` holding a fragment of its own, nested ``depth`` deep at most."""
    parts = []
    for _ in range(draw(st.integers(0, most))):
        parts.append(draw(st.sampled_from(pieces)))
        if depth > 0 and draw(st.booleans()):
            tag = draw(st.sampled_from(tags))
            inner = draw(html_fragments(pieces, tags, most, depth - 1))
            parts.append(f"<{tag}>{inner}</{tag}>")
    return "".join(parts)
