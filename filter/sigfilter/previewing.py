"""One message through the engine as the relay would handle it: ``sigfilter preview``
and the preview page's dropped messages share this (one code path with the milter's
lookup and rewrite)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import getaddresses
from typing import Any

from .defaults import Mode
from .engine import Result, rewrite, rewritten_message, tenant_options
from .mime.headers import parse_header_block
from .service import Lookup, SignatureService

# Result fields that are the new message rather than the decision about it.
_NOT_DECISION = frozenset({"body", "header_edits"})


@dataclass(frozen=True, slots=True)
class Previewed:
    sender: str
    found: Lookup
    result: Result
    message: bytes  # the rewritten message (byte-identical to the input when skipped)


def sender_of(raw: bytes) -> str:
    headers = parse_header_block(raw)
    for name in ("sender", "from"):
        f = headers.get(name)
        if f:
            addrs = getaddresses([f.value])
            if addrs and addrs[0][1]:
                return addrs[0][1]
    return ""


def recipients_of(raw: bytes) -> list[str]:
    headers = parse_header_block(raw)
    values = [f.value for name in ("to", "cc") for f in headers.get_all(name)]
    return [addr for _, addr in getaddresses(values) if addr]


def preview_result(found: Lookup, raw: bytes, mode: Mode | None, tnef: str | None = None) -> Result:
    if found.signature is None or found.tenant is None:
        return Result("skipped", found.reason, found.detail)
    opts = tenant_options(found.tenant, mode=mode)
    return rewrite(raw, found.signature, replace(opts, tnef=tnef) if tnef else opts)


def preview_message(
    service: SignatureService,
    raw: bytes,
    sender: str | None = None,
    recipients: Sequence[str] = (),
    mode: Mode | None = None,
    tnef: str | None = None,
) -> Previewed:
    """Look the sender up and rewrite ``raw``; recipients default to To and Cc;
    ``mode`` and ``tnef`` override the tenant's settings."""
    sender = sender or sender_of(raw)
    found = service.lookup(sender, list(recipients) or recipients_of(raw))
    result = preview_result(found, raw, mode, tnef)
    return Previewed(sender, found, result, rewritten_message(raw, result))


def decision_fields(result: Result) -> dict[str, Any]:
    """Every field of the engine's decision, whatever fields the Result has."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        if f.name in _NOT_DECISION:
            continue
        value = getattr(result, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
