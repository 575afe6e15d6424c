"""Refactoring guard: one digest line per (message, options) of what the engine decides.

    .venv/bin/python tests/bench/engine_digest.py > /tmp/before.tsv   # on the old code
    .venv/bin/python tests/bench/engine_digest.py --compare /tmp/before.tsv  # on the new

A change meant to make the engine cheaper must not change a single answer: the digest
covers the action, reason, placement, replaced client signature, header edits and the
SHA-256 of the new body, for every .eml under tests/ and ../shared/, every HTML and text
body of the shared corpus wrapped in a message, 60 generated Outlook-style replies
(tests/bench/make_message.py) and 40 Gmail-style ones (bench_engine.py), each under five
option sets (the fifth with a card named as the message's From). It is a tool, not a test: its expected output is the old code's output.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path

from sigfilter.engine import Options, rewrite
from sigfilter.signature import SenderCard, Signature

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(HERE))
from bench_engine import SIGNATURE, make_reply  # noqa: E402

OPTIONS = {
    "default": Options(),
    "keep": Options(client_signature="keep"),
    "plain2html": Options(plain_to_html=True, replace_texts=(r"Sent from my \w+",)),
    "mobile": Options(mode="mobile"),
    # The milter's usual case: the example tenant's admin text, and a card named as the
    # message's From (so the typed-signature search reads every message that shows it).
    "sender": Options(replace_texts=(r"Sent\s+from\s+Mail\s+for\s+Windows",)),
}
_FROM_NAME = re.compile(rb'^From:[ \t]*"?([^"<\r\n]+?)"?[ \t]*<', re.MULTILINE | re.IGNORECASE)


def _signature(raw: bytes, label: str) -> Signature:
    """SIGNATURE, or for "sender" SIGNATURE with a card named as the From header."""
    m = _FROM_NAME.search(raw[:65536]) if label == "sender" else None
    if m is None or SIGNATURE.sender is None:
        return SIGNATURE
    try:
        name = str(make_header(decode_header(m.group(1).decode("utf-8", "replace")))).strip()
    except (ValueError, LookupError, HeaderParseError):  # a broken encoded word
        return SIGNATURE
    return replace(SIGNATURE, sender=SenderCard(name, SIGNATURE.sender.details))


def _wrap(name: str, body: bytes) -> bytes:
    kind = "html" if name.endswith((".html", ".htm")) else "plain"
    return (
        b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\n"
        b"Subject: corpus body\r\nMIME-Version: 1.0\r\n"
        + f"Content-Type: text/{kind}; charset=utf-8\r\n".encode()
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    )


def messages() -> Iterator[tuple[str, bytes]]:
    for base in (ROOT / "tests", SHARED):
        for path in sorted(base.rglob("*.eml")):
            yield str(path.relative_to(base.parent)), path.read_bytes()
    for path in sorted((SHARED / "corpus" / "bodies").glob("*")):
        if path.suffix in (".html", ".txt"):
            yield str(path.relative_to(SHARED)), _wrap(path.name, path.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(60):
            out = Path(tmp) / f"{seed}.eml"
            subprocess.run(
                [sys.executable, str(HERE / "make_message.py"), str(out), "--seed", str(seed)],
                check=True,
                capture_output=True,
            )
            yield f"make_message-{seed}", out.read_bytes().replace(b"\n", b"\r\n")
    for seed in range(40):
        rng = random.Random(seed)
        yield f"gmail-{seed}", make_reply(rng, attachments=seed % 3, client_sig=seed % 2 == 0)


def digest(raw: bytes, opts: Options, signature: Signature = SIGNATURE) -> str:
    r = rewrite(raw, signature, opts)
    body = hashlib.sha256(r.body).hexdigest()[:16] if r.body is not None else "-"
    edits = hashlib.sha256(repr(r.header_edits).encode()).hexdigest()[:8]
    return "\t".join(
        str(x)
        for x in (r.action, r.reason, r.placement, r.variant, r.replaced, r.parts, edits, body)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", type=Path, help="a digest file from the old code")
    args = parser.parse_args()
    lines = [
        f"{name}\t{label}\t{digest(raw, opts, _signature(raw, label))}"
        for name, raw in messages()
        for label, opts in OPTIONS.items()
    ]
    if args.compare is None:
        print("\n".join(lines))
        return
    old = args.compare.read_text().splitlines()
    changed = [(a, b) for a, b in zip(old, lines, strict=False) if a != b]
    for a, b in changed[:20]:
        print(f"- {a}\n+ {b}")
    same = len(old) == len(lines)
    print(f"{len(lines)} digests, {len(changed)} changed" + ("" if same else f", was {len(old)}"))
    sys.exit(1 if changed or not same else 0)


if __name__ == "__main__":
    main()
