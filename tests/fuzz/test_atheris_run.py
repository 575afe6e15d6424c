"""A short, seeded atheris run of tests/fuzz/fuzz_atheris.py (``make fuzz`` runs it long)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")  # in the test extra; absent only outside `make deps`

HARNESS = Path(__file__).resolve().parent / "fuzz_atheris.py"
RUNS = 1500
# A hang guard, not a speed claim: instrumenting the imports costs ~20 s of CPU, which
# took 53 s of wall time at load average 9.5 and over 120 s (the old limit) in a full
# suite run beside two other suites on this 2-core machine.
HANG = 900


@pytest.mark.slow
def test_short_atheris_run_finds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", "-seed=1", "-max_len=65536",
         "-timeout=10", "-rss_limit_mb=2048", str(corpus)],
        cwd=tmp_path, capture_output=True, text=True, timeout=HANG, check=False,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f"Done {RUNS} runs" in log, log[-2000:]
    assert not list(tmp_path.glob("crash-*")), log[-4000:]
    assert len(list(corpus.iterdir())) > 50  # seeded from tests/messages and tests/corpus
