"""Benchmark: placement on hostile text at full size, the absolute numbers behind the tests.

    .venv/bin/python tests/bench/bench_placement.py [--scale 2]

The tests (test_textquote.py, test_footers.py, test_hostile_html.py) assert only growth,
as a ratio of CPU times at two sizes, so a busy machine cannot fail them. This prints
what they no longer assert: each shape's CPU time at the test's size times --scale (best
of 3), and its growth from one eighth of that size (linear work: about 8x; the old
quadratic paths: about 64x).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from growth import best_cpu_seconds
from hostile_text import (
    FOOTER_LINE_SIZE,
    FOOTER_LINES,
    HTML_SOURCE_SIZE,
    HTML_SOURCES,
    QUOTE_TEXT_SIZE,
    QUOTE_TEXTS,
)
from sigfilter.placement.footers import is_mobile_mailer, match_footer
from sigfilter.placement.html import html_spots
from sigfilter.placement.textquote import find_quote_start


def footer(line: str) -> None:
    match_footer(line)
    is_mobile_mailer(line)


def spots(source: str) -> None:
    html_spots(source, "{EMAILSIGNATURE}")


def report(
    title: str, fn: Callable[[str], object], shapes: dict[str, Callable[[int], str]], size: int
) -> None:
    print(f"{title} (size {size:,})")
    for name, make in shapes.items():
        big = best_cpu_seconds(fn, make(size))
        small = best_cpu_seconds(fn, make(size // 8))
        growth = big / small if small > 1e-6 else float("nan")
        print(f"  {name:28} {big * 1e3:9.1f} ms CPU   x{growth:5.1f} for 8x the input")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=2, help="times the tests' sizes (default 2)")
    scale = ap.parse_args().scale
    report("find_quote_start", find_quote_start, QUOTE_TEXTS, QUOTE_TEXT_SIZE * scale)
    report("footer table, one line", footer, FOOTER_LINES, FOOTER_LINE_SIZE * scale)
    report("html_spots", spots, HTML_SOURCES, HTML_SOURCE_SIZE * scale)


if __name__ == "__main__":
    main()
