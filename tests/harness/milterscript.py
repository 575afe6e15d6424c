"""The main() of the small pymilter scripts (the benchmark's no-op, the dying milter):
serve one Milter.Base class on a unix socket that Postfix's processes can reach."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import Milter  # type: ignore[import-untyped]


def serve(argv: list[str], name: str, factory: Callable[[], Any], flags: int, timeout: int) -> None:
    """Serve ``factory`` on the ``unix:PATH`` in argv[1] until killed."""
    if len(argv) != 2 or not argv[1].startswith("unix:"):
        raise SystemExit(f"usage: {Path(argv[0]).name} unix:/path/to/socket")
    path = argv[1].removeprefix("unix:")
    if os.path.exists(path):
        os.unlink(path)
    os.umask(0o000)  # smtpd and cleanup (user postfix) must be able to connect
    Milter.factory = factory
    Milter.set_flags(flags)
    Milter.runmilter(name, argv[1], timeout)
