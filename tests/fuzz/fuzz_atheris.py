"""Coverage-guided fuzzing with atheris (libFuzzer) of the scanner, HTML placement and engine.

    make fuzz                          # 10 minutes, corpus kept in .fuzz-corpus/
    make fuzz FUZZ_SECONDS=3600        # longer
    .venv/bin/python tests/fuzz/fuzz_atheris.py -runs=2000 -seed=1 DIR   # any libFuzzer flags

The first input byte picks the target; the rest is the message (or the HTML source).
Seeds come from tests/messages and tests/corpus. A crash writes ``crash-<sha1>`` in
the current directory: add it to tests/unit/test_hostile_regressions.py and fix it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "fuzz")]

with atheris.instrument_imports():
    import checks

    import sigfilter.engine
    import sigfilter.mime.scan
    import sigfilter.placement.html  # noqa: F401

TARGETS = (
    checks.check_scan,
    checks.check_engine,
    lambda data: checks.check_html(data.decode("utf-8", "replace")),
    lambda data: checks.check_html_index(data.decode("utf-8", "replace")),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](data[1:])


def seed_corpus(directory: Path) -> None:
    """Put the test messages into ``directory`` once, one per target."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    sources = sorted((TESTS / "messages").glob("*.eml")) + sorted((TESTS / "corpus").glob("*.eml"))
    for n, path in enumerate(sources):
        raw = path.read_bytes()[: 64 * 1024]
        (directory / f"seed-{n:03d}").write_bytes(bytes([n % len(TARGETS)]) + raw)


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if paths and not paths[0].is_file():  # a corpus directory, not crash files to replay
        seed_corpus(paths[0])
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
