"""PromQL helpers for the monitoring tests: the metric names an expression selects, and
the names a /metrics text exports. Shared by test_monitoring.py (the milter) and
test_graph_sync.py (the directory sync's textfile metrics)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

RULES = (
    Path(__file__).resolve().parents[1]
    / "ansible" / "roles" / "sigfilter" / "files" / "prometheus" / "sigfilter-alerts.yml"
)  # fmt: skip


def rule_exprs() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on",
             "ignoring", "group_left", "group_right"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", " ", text)
    return {n for n in _NAME.findall(text) if n.lower() not in _KEYWORDS}


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names(text: str) -> tuple[set[str], set[str]]:
    samples, families = set(), set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        samples |= {s.name for s in family.samples}
        # a labelled counter with no child yet (no error so far) still names its series
        samples |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ())}
    return samples, families
