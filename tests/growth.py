"""Growth checks that a busy machine cannot fail: CPU time of this thread, as ratios.

Wall-clock limits in tests failed CI on a loaded machine (1.04 s against a 1.0 s limit
with three busy loops beside pytest) and passed on the same commit when it was quiet.
So a test that guards against quadratic blow-up measures the calling thread's CPU time
(CLOCK_THREAD_CPUTIME_ID: other processes' load does not count) at two sizes in the same
run and asserts the growth, never an absolute number of seconds. The absolute numbers
live in `make bench`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRIES = 3  # the best of three: a stray GC pass or a cache-cold start is not growth


def cpu_seconds(fn: Callable[[T], object], arg: T) -> float:
    """CPU time this thread spent in ``fn(arg)``."""
    start = time.thread_time()
    fn(arg)
    return time.thread_time() - start


def best_cpu_seconds(fn: Callable[[T], object], arg: T, tries: int = TRIES) -> float:
    return min(cpu_seconds(fn, arg) for _ in range(tries))


def assert_linear(
    fn: Callable[[T], object],
    make: Callable[[int], T],
    n: int,
    k: int = 4,
    factor: float = 2.5,
    slack: float = 0.02,
) -> tuple[float, float]:
    """``fn`` on ``make(n)`` costs at most ``factor`` times linear growth from ``make(n // k)``.

    Linear work grows about k times, quadratic k*k times: with k = 4 and factor 2.5 the
    bound is 10x, so 16x fails. ``slack`` absorbs timer resolution on tiny inputs. The big
    input is measured again (best of TRIES) only when its first time is over the bound.
    """
    small = best_cpu_seconds(fn, make(max(n // k, 1)))
    big_input = make(n)
    bound = slack + factor * k * small
    big = cpu_seconds(fn, big_input)
    for _ in range(TRIES - 1):
        if big < bound:
            break
        big = min(big, cpu_seconds(fn, big_input))
    assert big < bound, (
        f"{k}x the input cost {big / max(small, 1e-9):.1f}x: {small:.4f} s -> {big:.4f} s"
    )
    return small, big
