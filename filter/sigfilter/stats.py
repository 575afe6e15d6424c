"""`sigfilter stats`: the milter's per-minute counts (its /stats endpoint) as a summary.

The milter keeps one bucket of ``action:reason`` counts per minute for the last hour
(metrics.MinuteHistory); this module only adds them up and lays them out. Pure.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def summarise(data: dict[str, Any], minutes: int) -> dict[str, Any]:
    """Totals by action and by action:reason over the last ``minutes`` of ``data``."""
    now = float(data.get("now", 0))
    since = (int(now // 60) - minutes + 1) * 60
    by_reason: Counter[str] = Counter()
    for bucket in data.get("buckets", []):
        if int(bucket["start"]) >= since:
            by_reason.update({str(k): int(v) for k, v in bucket["counts"].items()})
    by_action: Counter[str] = Counter()
    for key, n in by_reason.items():
        by_action[key.partition(":")[0]] += n
    return {
        "minutes": minutes,
        "total": sum(by_action.values()),
        "by_action": dict(by_action),
        "by_reason": dict(by_reason.most_common()),
        "catalog_version": data.get("catalog_version"),
        "in_flight": data.get("in_flight", 0),
        "uptime_seconds": data.get("uptime_seconds", 0),
    }


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m"


def render(summary: dict[str, Any], url: str) -> str:
    total = summary["total"]
    acts = summary["by_action"]
    version = summary["catalog_version"]
    lines = [
        f"sigfilter at {url}: catalog version {version if version is not None else 'unknown'}, "
        f"up {_duration(summary['uptime_seconds'])}, {summary['in_flight']} in flight",
        f"last {summary['minutes']} min: {total} messages, "
        f"{acts.get('signed', 0)} signed ({_pct(acts.get('signed', 0), total)}), "
        f"{acts.get('skipped', 0)} skipped, "
        f"{acts.get('rejected', 0) + acts.get('tempfailed', 0)} refused, "
        f"{acts.get('error', 0)} errors",
    ]
    rows = [(*key.split(":", 1), n) for key, n in summary["by_reason"].items()]
    width = max([len(r[1]) for r in rows] + [6])
    for action, reason, n in rows:
        lines.append(f"  {action:8} {reason:{width}} {n:>7} {_pct(n, total):>6}")
    return "\n".join(lines)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"
