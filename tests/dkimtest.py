"""DKIM test helpers: real RSA keys (openssl), DNS answered from a dict, prior ARC hops."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dkim

from sigfilter.dkim.keys import generate_key, record_name, txt_record

TENANT_DOMAIN = "example.com"
TENANT_SELECTOR = "sig1"
RELAY = "relay.sigfilter.test"  # our ARC sealer (d= and authserv-id)
ARC_SELECTOR = "arc1"


def make_key(folder: Path, name: str) -> bytes:
    return generate_key(folder / f"{name}.pem", bits=2048)


@dataclass
class FakeDns:
    """dkimpy's dnsfunc answered from published records; counts the questions."""

    records: dict[bytes, bytes] = field(default_factory=dict)
    asked: list[bytes] = field(default_factory=list)

    def publish(self, selector: str, domain: str, pem: bytes) -> None:
        name = record_name(selector, domain).encode() + b"."
        self.records[name] = txt_record(pem).encode()

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        self.asked.append(name)
        return self.records.get(name)


def presign(raw: bytes, pem: bytes, selector: str = TENANT_SELECTOR,
            domain: str = TENANT_DOMAIN, length: bool = False) -> bytes:  # fmt: skip
    """``raw`` with a DKIM-Signature on top, as Exchange Online signs before the connector."""
    sig = dkim.sign(raw, selector.encode(), domain.encode(), pem,
                    canonicalize=(b"relaxed", b"relaxed"), length=length)  # fmt: skip
    return bytes(sig) + raw


def add_hop(raw: bytes, pem: bytes, hop: str, chain: str = "") -> bytes:
    """One ARC set by another sealer ``hop`` (its Authentication-Results stays, as MTAs do)."""
    results = f"{hop}; dkim=pass header.d={TENANT_DOMAIN}" + (f"; arc={chain}" if chain else "")
    with_ar = b"Authentication-Results: " + results.encode() + b"\r\n" + raw
    fields = dkim.arc_sign(with_ar, ARC_SELECTOR.encode(), hop.encode(), pem, hop.encode(),
                           timestamp=int(time.time()))  # fmt: skip
    assert fields, "the hop's own seal must exist for the chain test to mean anything"
    return b"".join(fields) + with_ar
