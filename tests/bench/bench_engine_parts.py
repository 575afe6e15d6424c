"""Benchmark: where the engine's time goes on replies it has not seen before.

    .venv/bin/python tests/bench/bench_engine_parts.py [--outlook 120] [--gmail 40] [--rounds 5]
    PYTHONPATH=/path/to/other/checkout/filter .venv/bin/python tests/bench/bench_engine_parts.py

Generates Outlook-style replies (make_message.py, one seed each) and Gmail-style ones
(bench_engine.py), records the decoded HTML and text bodies the engine hands to placement,
then prints per-message medians of the thread's CPU time (and wall time) for
``engine.rewrite``, ``html_spots`` and ``text_spots``. Every message differs, and the
footer-answer cache is cleared before each call, so no cache hides the work. Rounds take
turns over all messages, so a burst of load on the shared machine hits all rows alike.

To compare two versions, run it twice in the same session, once with PYTHONPATH set to
the other checkout's ``filter`` directory (it prints which package it measured).
It prints numbers only: speed is never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import SIGNATURE, make_reply  # noqa: E402
from make_message import build  # noqa: E402

import sigfilter  # noqa: E402
from sigfilter import engine  # noqa: E402
from sigfilter.engine import Options, rewrite  # noqa: E402
from sigfilter.placement import html as html_place  # noqa: E402
from sigfilter.placement import text as text_place  # noqa: E402
from sigfilter.placement.footers import match_footer  # noqa: E402

WARMUP = 5


def _messages(outlook: int, gmail: int) -> dict[str, list[bytes]]:
    return {
        "outlook": [build(seed=s).replace(b"\n", b"\r\n") for s in range(outlook)],
        "gmail": [make_reply(random.Random(1000 + s)) for s in range(gmail)],
    }


Call = tuple[tuple[Any, ...], dict[str, Any]]


def _record(raw: bytes, opts: Options) -> tuple[list[Call], list[Call]]:
    """The arguments the engine passes to html_spots and text_spots for ``raw``."""
    calls: tuple[list[Call], list[Call]] = ([], [])
    real = (html_place.html_spots, text_place.text_spots)

    def spy(n: int) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[n].append((args, kwargs))
            return real[n](*args, **kwargs)

        return call

    html_place.html_spots, text_place.text_spots = spy(0), spy(1)  # type: ignore[assignment]
    try:
        rewrite(raw, SIGNATURE, opts)
    finally:
        html_place.html_spots, text_place.text_spots = real  # type: ignore[assignment]
    return calls


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    match_footer.cache_clear()
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.thread_time() - c0, time.perf_counter() - t0


def _measure(raws: list[bytes], opts: Options, rounds: int) -> dict[str, list[float]]:
    """Per message (median over rounds): CPU and wall seconds of each function."""
    recorded = [_record(raw, opts) for raw in raws]
    rows: dict[str, list[list[tuple[float, float]]]] = {
        "rewrite": [[] for _ in raws],
        "html_spots": [[] for _ in raws],
        "text_spots": [[] for _ in raws],
    }
    for _ in range(rounds):
        for n, raw in enumerate(raws):
            rows["rewrite"][n].append(_timed(lambda raw=raw: rewrite(raw, SIGNATURE, opts)))
            for args, kwargs in recorded[n][0]:
                rows["html_spots"][n].append(
                    _timed(lambda a=args, k=kwargs: html_place.html_spots(*a, **k))
                )
            for args, kwargs in recorded[n][1]:
                rows["text_spots"][n].append(
                    _timed(lambda a=args, k=kwargs: text_place.text_spots(*a, **k))
                )
    out: dict[str, list[float]] = {}
    for name, per_message in rows.items():
        cpu = [statistics.median(c for c, _ in m) for m in per_message if m]
        wall = [statistics.median(w for _, w in m) for m in per_message if m]
        out[name] = [
            statistics.median(cpu) if cpu else 0.0,
            statistics.median(wall) if wall else 0.0,
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outlook", type=int, default=120, help="Outlook-style replies")
    ap.add_argument("--gmail", type=int, default=40, help="Gmail-style replies")
    ap.add_argument("--rounds", type=int, default=5, help="timed calls per message")
    args = ap.parse_args()
    sets = _messages(args.outlook, args.gmail)
    opts = Options()
    for raw in sets["outlook"][:WARMUP] + sets["gmail"][:WARMUP]:
        rewrite(raw, SIGNATURE, opts)
    print(f"package: {Path(sigfilter.__file__).parent}  (engine: {Path(engine.__file__).name})")
    print(f"{'set':<9}{'n':>5}  {'function':<12}{'cpu p50':>10}{'wall p50':>10}")
    for name, raws in sets.items():
        for fn, (cpu, wall) in _measure(raws, opts, args.rounds).items():
            print(f"{name:<9}{len(raws):>5}  {fn:<12}{cpu * 1e3:>8.3f}ms{wall * 1e3:>8.3f}ms")
    print(f"load average while measured: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
