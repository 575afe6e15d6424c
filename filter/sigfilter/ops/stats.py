"""`sigfilter stats`: the milter's per-minute counts (its /stats endpoint) as a summary.

The milter keeps one bucket of ``action:reason`` counts per minute for the last hour
(metrics.MinuteHistory); this module only adds them up and lays them out. Pure.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .metrics import TNEF_KEY


def summarise(data: dict[str, Any], minutes: int) -> dict[str, Any]:
    """Totals by action and by action:reason over the last ``minutes`` of ``data``."""
    now = float(data.get("now", 0))
    since = (int(now // 60) - minutes + 1) * 60
    by_reason: Counter[str] = Counter()
    tnef: Counter[str] = Counter()
    for bucket in data.get("buckets", []):
        if int(bucket["start"]) >= since:
            for k, v in bucket["counts"].items():
                (tnef if str(k).startswith(TNEF_KEY) else by_reason)[str(k)] += int(v)
    by_action: Counter[str] = Counter()
    for key, n in by_reason.items():
        by_action[key.partition(":")[0]] += n
    return {
        "minutes": minutes,
        "total": sum(by_action.values()),
        "by_action": dict(by_action),
        "by_reason": dict(by_reason.most_common()),
        "tnef": _tnef_rows(tnef),
        "catalog_version": data.get("catalog_version"),
        "in_flight": data.get("in_flight", 0),
        "uptime_seconds": data.get("uptime_seconds", 0),
    }


def _tnef_rows(counts: Counter[str]) -> list[dict[str, Any]]:
    """TNEF messages per tenant and message class: how many were signed, how many passed."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for key, n in counts.items():
        tenant, label, action = [*key[len(TNEF_KEY) :].split("\t"), "", ""][:3]
        row = rows.setdefault((tenant, label), {"tenant": tenant, "message_class": label,
                                                "signed": 0, "passed": 0})  # fmt: skip
        row["signed" if action == "signed" else "passed"] += n
    return sorted(rows.values(), key=lambda r: (r["tenant"], -(r["signed"] + r["passed"])))


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
    lines += _tnef_lines(summary.get("tnef", []))
    return "\n".join(lines)


def _tnef_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    passed = sum(r["passed"] for r in rows)
    total = passed + sum(r["signed"] for r in rows)
    lines = [f"TNEF (winmail.dat) messages: {total}, {passed} passed unsigned"]
    width = max(len(r["message_class"]) for r in rows)
    twidth = max(len(r["tenant"]) for r in rows)
    for r in rows:
        lines.append(f"  {r['tenant']:{twidth}} {r['message_class']:{width}} "
                     f"{r['signed']:>7} signed {r['passed']:>7} passed")  # fmt: skip
    return lines


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"
