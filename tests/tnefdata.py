"""The TNEF corpus (tests/corpus/tnef, see its ATTRIBUTION.md) as messages the relay sees.

Raw winmail.dat streams are wrapped the way Exchange sends legacy TNEF: a
multipart/mixed of the text/plain version and application/ms-tnef (base64).
What a TNEF holds is read here with tnefparse and RTFDE directly, not through
sigfilter, so the tests compare our conversion with the libraries' own reading.
"""

from __future__ import annotations

import base64
import email
import email.policy
from pathlib import Path

from RTFDE.deencapsulate import DeEncapsulator
from tnefparse.tnef import TNEF

TNEF_CORPUS = Path(__file__).resolve().parent / "corpus" / "tnef"
FILES = sorted(p.name for p in TNEF_CORPUS.iterdir() if p.suffix in (".eml", ".tnef", ".dat"))


def exchange_message(
    tnef: bytes, sender: str = "avery.quill@example.com", rcpt: str = "jane@example.com",
    text: str = "The plain text version.\r\n",
) -> bytes:  # fmt: skip
    b64 = base64.encodebytes(tnef).replace(b"\n", b"\r\n")
    return (
        (
            f"From: Avery Quill <{sender}>\r\nTo: <{rcpt}>\r\nSubject: TNEF test\r\n"
            "Message-ID: <tnef-test@example.com>\r\nX-MS-TNEF-Correlator: <00000000AABBCC>\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="_000_TNEF_"\r\n\r\n'
            "--_000_TNEF_\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"{text}\r\n--_000_TNEF_\r\n"
            'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'
            'Content-Disposition: attachment; filename="winmail.dat"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + b64
        + b"\r\n--_000_TNEF_--\r\n"
    )


def corpus_message(name: str) -> bytes:
    data = (TNEF_CORPUS / name).read_bytes()
    return data if name.endswith(".eml") else exchange_message(data)


def tnef_in(raw: bytes) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() == "application/ms-tnef":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no application/ms-tnef part")


def held_html(tnef: bytes) -> str | None:
    """The HTML body the TNEF holds, as tnefparse (or RTFDE, for RTF) reads it."""
    t = TNEF(tnef)
    if t.htmlbody:
        if isinstance(t.htmlbody, bytes):
            return t.htmlbody.decode("utf-8")
        return str(t.htmlbody)
    rtf = t.rtfbody
    if rtf and b"\\fromhtml" in rtf[:1024]:
        dec = DeEncapsulator(rtf)
        dec.deencapsulate()
        html = dec.html
        return html.decode("utf-8") if isinstance(html, bytes) else str(html)
    return None


def held_attachments(tnef: bytes) -> list[tuple[str, bytes]]:
    return sorted((a.long_filename(), a.data) for a in TNEF(tnef).attachments)
