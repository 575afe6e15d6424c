"""Benchmark: DKIM/ARC signing after the rewrite, next to the rewrite itself, same run.

    .venv/bin/python tests/bench/bench_dkim.py [--runs N]

For the ~20 KB HTML reply and the ~3 MB message of bench_engine (each arriving with
an Exchange-style DKIM signature, RSA 2048), prints the median time of: the engine's
rewrite; ``auth_changes`` with resign (strip the broken signature, sign the new
message); and with resign + ARC (which also verifies the original signature for our
Authentication-Results, DNS answered from memory). Ratios are against the rewrite.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dkim
from bench_engine import SIGNATURE, _time, make_reply

from sigfilter.dkim.keys import generate_key, txt_record
from sigfilter.dkim.sign import AuthPolicy, SigningKey, auth_changes
from sigfilter.engine import Options, rewrite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pem = generate_key(Path(tmp) / "k.pem", 2048)
    records = {b"s1._domainkey.example.com.": txt_record(pem).encode(),
               b"arc1._domainkey.relay.test.": txt_record(pem).encode()}  # fmt: skip

    def dns(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    key = SigningKey("example.com", "s1", pem)
    resign = AuthPolicy("resign", key)
    sealed = AuthPolicy("resign", key, True, SigningKey("relay.test", "arc1", pem), "relay.test")
    rng = random.Random(2)
    print(f"{'message':<22}{'size':>10}{'rewrite':>11}{'resign':>11}{'ratio':>7}"
          f"{'resign+ARC':>12}{'ratio':>7}")  # fmt: skip
    for name, plain in (("20 KB HTML reply", make_reply(rng)),
                        ("3 MB with attachments", make_reply(rng, attachments=2_200_000))):  # fmt: skip
        _row(name, plain, pem, (resign, sealed), dns, args.runs)


def _row(name: str, plain: bytes, pem: bytes, policies: tuple[AuthPolicy, AuthPolicy],
         dns: Callable[..., bytes | None], runs: int) -> None:  # fmt: skip
    """One message: arriving signed as Exchange signs (relaxed/relaxed), then rewritten."""
    raw = (
        dkim.sign(plain, b"s1", b"example.com", pem, canonicalize=(b"relaxed", b"relaxed")) + plain
    )
    opts = Options()
    result = rewrite(raw, SIGNATURE, opts)
    assert result.signed and result.body is not None, result
    body, edits, now = result.body, result.header_edits, int(time.time())
    resign, sealed = policies
    assert "arc=i1" in auth_changes(raw, body, edits, sealed, dns, now).notes
    runs = runs if len(raw) < 100_000 else max(10, runs // 10)
    eng, _ = _time(lambda: rewrite(raw, SIGNATURE, opts), runs)
    res, _ = _time(lambda: auth_changes(raw, body, edits, resign, dns, now), runs)
    arc, _ = _time(lambda: auth_changes(raw, body, edits, sealed, dns, now), runs)
    print(f"{name:<22}{len(raw):>10}{eng:>9.2f}ms{res:>9.2f}ms{res / eng:>6.1f}x"
          f"{arc:>10.2f}ms{arc / eng:>6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
