"""The no-op pymilter: the floor for any Python milter that rewrites bodies.

    python noop_milter.py unix:/path/noop.sock

Copied from the workshop's bench harness (shared/bench/milters.py, class Noop): it
asks for the envelope, the headers, end of headers and the body, as a body rewriter
must, answers CONTINUE to each (no no-reply flags, as there) and ACCEPTs at end of
message. bench_stack.py runs it next to sigfilter so the difference is our own work.
"""

from __future__ import annotations

import sys
from pathlib import Path

import Milter  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from harness.milterscript import serve


class Noop(Milter.Base):  # type: ignore[misc]
    """Sees everything a body rewriter needs; does nothing."""

    def envfrom(self, mailfrom: str, *params: str) -> int:
        return int(Milter.CONTINUE)

    def envrcpt(self, to: str, *params: str) -> int:
        return int(Milter.CONTINUE)

    def header(self, name: str, value: str) -> int:
        return int(Milter.CONTINUE)

    def eoh(self) -> int:
        return int(Milter.CONTINUE)

    def body(self, chunk: bytes) -> int:
        return int(Milter.CONTINUE)

    def eom(self) -> int:
        return int(Milter.ACCEPT)


def main() -> None:
    serve(sys.argv, "bench-noop", Noop, 0, 240)


if __name__ == "__main__":
    main()
