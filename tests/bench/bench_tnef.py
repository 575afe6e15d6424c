"""Benchmark: what a TNEF message costs the engine, against a MIME message in the same run.

    .venv/bin/python tests/bench/bench_tnef.py [--runs N]

For each corpus sample (tests/corpus/tnef) prints the median time of the engine with
``tnef = "pass"`` (decode the winmail.dat and read its class, to count it) and with
``tnef = "convert"`` (read, convert, sign, or refuse), and the ratio against the same
engine signing the converted MIME message of the real Exchange sample
(mimekit-ukr.eml, converted once up front), which is what a MIME copy of that message
would cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sigfilter.engine import Options, rewrite
from sigfilter.mime.headers import parse_header_block
from sigfilter.mime.scan import scan
from sigfilter.tnefconv import convert, find_tnef, tnef_bytes
from support import SIGNATURE
from tnefdata import FILES, corpus_message


def median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    ukr = corpus_message("mimekit-ukr.eml")
    head = parse_header_block(ukr)
    root = scan(ukr, head)
    part = find_tnef(root)
    assert part is not None
    mime = convert(ukr, head, root, part, tnef_bytes(ukr, part)).message  # unsigned MIME
    assert rewrite(mime, SIGNATURE, Options()).signed
    base = median_ms(lambda: rewrite(mime, SIGNATURE, Options()), runs)
    print(f"baseline: mimekit-ukr.eml as MIME, signed: {base:.2f} ms (median of {runs})")
    print(f"{'sample':30} {'bytes':>9} {'pass ms':>8} {'convert ms':>10} {'x base':>7}  outcome")
    for name in FILES:
        raw = corpus_message(name)
        passed = median_ms(lambda r=raw: rewrite(r, SIGNATURE, Options(tnef="pass")), runs)
        conv = median_ms(lambda r=raw: rewrite(r, SIGNATURE, Options(tnef="convert")), runs)
        result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
        print(f"{name:30} {len(raw):9} {passed:8.2f} {conv:10.2f} {conv / base:7.1f}  "
              f"{result.action}:{result.reason}")  # fmt: skip


if __name__ == "__main__":
    main()
