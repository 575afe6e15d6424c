"""Benchmark: where the engine's time goes on replies it has not seen before.

    .venv/bin/python tests/bench/bench_engine_parts.py [--outlook 120] [--gmail 40] [--rounds 6]
    .venv/bin/python tests/bench/bench_engine_parts.py --against ../main/filter
    .venv/bin/python tests/bench/bench_engine_parts.py --evict 8

Generates Outlook-style replies (make_message.py, one seed each) and Gmail-style ones
(bench_engine.py), records the decoded HTML and text bodies the engine hands to placement,
then prints per-message medians of the thread's CPU time (and wall time) for
``engine.rewrite``, ``html_spots`` and ``text_spots``. Every message differs, and the
footer-answer cache is cleared before each call, so no cache hides the work. Rounds take
turns over all messages, so a burst of load on the shared machine hits all rows alike.

``--against DIR`` loads a second copy of the package from another checkout's ``filter``
directory (under another name; the core imports itself relatively) and times it on the
same messages, call for call after this one, so both see the same load: it prints both
and the ratio. Package data (the footer and client tables) is this checkout's.
``--evict MB`` writes MB of memory before every timed call, so the call starts with
cold CPU caches, as it does in the milter, where Postfix's processes and the other
sessions' callbacks run between two rewrites (README, "CPU per message": a rewrite
cost about twice its in-process time there). It prints numbers only: speed is never
asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import SIGNATURE, make_reply  # noqa: E402
from make_message import build  # noqa: E402

import sigfilter  # noqa: E402

WARMUP = 5
FUNCTIONS = ("rewrite", "html_spots", "text_spots")
Call = tuple[tuple[Any, ...], dict[str, Any]]


@dataclasses.dataclass
class Engine:
    """One copy of the package: the three functions timed, and its own argument types."""

    name: str
    package: ModuleType
    signature: Any
    options: Any

    def module(self, name: str) -> Any:
        return importlib.import_module(f"{self.package.__name__}.{name}")

    def rewrite(self, raw: bytes) -> object:
        return self.module("engine").rewrite(raw, self.signature, self.options)


def _engine(package: ModuleType) -> Engine:
    sig_mod = importlib.import_module(f"{package.__name__}.signature")
    card = SIGNATURE.sender
    assert card is not None
    sender = sig_mod.SenderCard(**{f.name: getattr(card, f.name) for f in dataclasses.fields(card)})
    fields = {f.name: getattr(SIGNATURE, f.name) for f in dataclasses.fields(SIGNATURE)}
    signature = sig_mod.Signature(**{**fields, "sender": sender})
    options = importlib.import_module(f"{package.__name__}.engine").Options()
    return Engine(str(Path(package.__file__ or "").parent), package, signature, options)


def _load_other(filter_dir: Path) -> ModuleType:
    """The package in ``filter_dir``, imported as ``sigfilter_other``."""
    init = filter_dir / "sigfilter" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "sigfilter_other", init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no sigfilter package in {filter_dir}")
    package = importlib.util.module_from_spec(spec)
    sys.modules["sigfilter_other"] = package
    spec.loader.exec_module(package)
    return package


def _messages(outlook: int, gmail: int) -> dict[str, list[bytes]]:
    return {
        "outlook": [build(seed=s).replace(b"\n", b"\r\n") for s in range(outlook)],
        "gmail": [make_reply(random.Random(1000 + s)) for s in range(gmail)],
    }


def _record(engine: Engine, raw: bytes) -> tuple[list[Call], list[Call]]:
    """The arguments the engine passes to html_spots and text_spots for ``raw``."""
    calls: tuple[list[Call], list[Call]] = ([], [])
    mods = (engine.module("placement.html"), engine.module("placement.text"))
    real = (mods[0].html_spots, mods[1].text_spots)

    def spy(n: int) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[n].append((args, kwargs))
            return real[n](*args, **kwargs)

        return call

    mods[0].html_spots, mods[1].text_spots = spy(0), spy(1)
    try:
        engine.rewrite(raw)
    finally:
        mods[0].html_spots, mods[1].text_spots = real
    return calls


class Evictor:
    """Writes ``mb`` MiB before each timed call (0: nothing), pushing the engine's code
    and data out of L1/L2 and most of a shared L3 (this VM: 1 MiB L2 per core)."""

    def __init__(self, mb: int) -> None:
        self._buf = bytearray(mb << 20)
        self._fill = [bytes([n]) * len(self._buf) for n in (1, 2)] if mb else []
        self._turn = 0

    def __call__(self) -> None:
        if self._fill:  # a different value each time: every cache line is written
            self._turn ^= 1
            self._buf[:] = self._fill[self._turn]


def _timed(engine: Engine, fn: Callable[[], object], evict: Evictor) -> tuple[float, float]:
    evict()
    footers = engine.module("placement.footers")
    if hasattr(footers, "clear_kept"):
        footers.clear_kept()
    else:  # a checkout from before footers.clear_kept
        footers.match_footer.cache_clear()
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.thread_time() - c0, time.perf_counter() - t0


def _calls(engine: Engine, raw: bytes) -> dict[str, list[Callable[[], object]]]:
    """The calls timed for one message: the rewrite, and placement with its arguments."""
    html_calls, text_calls = _record(engine, raw)
    html, text = engine.module("placement.html"), engine.module("placement.text")
    return {
        "rewrite": [lambda: engine.rewrite(raw)],
        "html_spots": [lambda a=a, k=k: html.html_spots(*a, **k) for a, k in html_calls],
        "text_spots": [lambda a=a, k=k: text.text_spots(*a, **k) for a, k in text_calls],
    }


Samples = dict[str, list[list[tuple[float, float]]]]


def _measure(
    engines: list[Engine], raws: list[bytes], rounds: int, evict: Evictor
) -> list[Samples]:
    """Per engine, function and message: (CPU, wall) seconds of each call."""
    calls = [[_calls(e, raw) for raw in raws] for e in engines]
    samples: list[Samples] = [{f: [[] for _ in raws] for f in FUNCTIONS} for _ in engines]
    ahead = list(range(len(engines)))
    for r in range(rounds):
        for n in range(len(raws)):
            # Call for call, so both see the same load. The second call finds the
            # message's data in the CPU caches (~20% cheaper for a 60 us call), so
            # the engines take turns going first, round by round.
            order = ahead if (r + n) % 2 == 0 else ahead[::-1]
            for fn in FUNCTIONS:
                for e in order:
                    for call in calls[e][n][fn]:
                        samples[e][fn][n].append(_timed(engines[e], call, evict))
    return samples


def _medians(per_message: list[list[tuple[float, float]]]) -> tuple[float, float]:
    """Median over messages of each message's median (CPU, wall)."""
    cpu = [statistics.median(c for c, _ in m) for m in per_message if m]
    wall = [statistics.median(w for _, w in m) for m in per_message if m]
    return (statistics.median(cpu), statistics.median(wall)) if cpu else (0.0, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outlook", type=int, default=120, help="Outlook-style replies")
    ap.add_argument("--gmail", type=int, default=40, help="Gmail-style replies")
    ap.add_argument("--rounds", type=int, default=6, help="timed calls per message")
    ap.add_argument("--against", type=Path, help="another checkout's filter directory")
    ap.add_argument(
        "--evict", type=int, default=0, metavar="MB", help="write MB of memory before each call"
    )
    args = ap.parse_args()
    if args.evict < 0:
        ap.error(f"--evict: MB must be 0 or more, not {args.evict}")
    evict = Evictor(args.evict)
    engines = [_engine(sigfilter)]
    if args.against is not None:
        engines.append(_engine(_load_other(args.against.resolve())))
    sets = _messages(args.outlook, args.gmail)
    for engine in engines:
        for raw in sets["outlook"][:WARMUP] + sets["gmail"][:WARMUP]:
            engine.rewrite(raw)
    for n, engine in enumerate(engines):
        print(f"engine {n + 1}: {engine.name}")
    print(f"caches: {f'{args.evict} MiB written before each call' if args.evict else 'warm'}")
    head = "".join(f"{f'cpu p50 ({n + 1})':>14}" for n in range(len(engines)))
    print(
        f"{'set':<9}{'n':>5}  {'function':<12}{head}{'wall p50 (1)':>14}"
        + (f"{'cpu 2/1':>9}" if len(engines) == 2 else "")
    )
    for name, raws in sets.items():
        samples = _measure(engines, raws, args.rounds, evict)
        for fn in FUNCTIONS:
            meds = [_medians(s[fn]) for s in samples]
            cols = "".join(f"{cpu * 1e3:>12.3f}ms" for cpu, _ in meds)
            ratio = f"{meds[1][0] / meds[0][0]:>8.2f}x" if len(meds) == 2 and meds[0][0] else ""
            print(f"{name:<9}{len(raws):>5}  {fn:<12}{cols}{meds[0][1] * 1e3:>12.3f}ms{ratio}")
    print(f"load average while measured: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
