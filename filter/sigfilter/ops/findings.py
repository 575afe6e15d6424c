"""What `sigfilter doctor` reports: findings (ok, warn, fail, each with its fix) and the
text and exit code they make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    level: Level
    area: str
    message: str
    fix: str = ""


def report(findings: list[Finding], verbose: bool = True) -> tuple[str, int]:
    """The text to print and the exit code (1 if anything failed)."""
    lines = []
    for f in findings:
        if f.level == "ok" and not verbose:
            continue
        lines.append(f"{f.level.upper() if f.level != 'ok' else 'ok':5} {f.area:8} {f.message}")
        if f.fix and f.level != "ok":
            lines.append(f"      fix: {f.fix}")
    fails = sum(f.level == "fail" for f in findings)
    warns = sum(f.level == "warn" for f in findings)
    lines.append(
        f"{fails} failure(s), {warns} warning(s)" if fails or warns else "everything looks right"
    )
    return "\n".join(lines), 1 if fails else 0
