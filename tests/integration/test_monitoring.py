"""The Prometheus alert rules and the Grafana dashboard in the Ansible role's files/:
validated by promtool (Debian's prometheus package: `promtool check rules`, and
`promtool test rules` with the cases in tests/monitoring/), and every metric they name
checked against the /metrics of a real milter serving from a real Redis, with mail
sent through a real Postfix."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.sink import free_port
from harness.stack import running_stack
from promql import RULES, exported_names, metric_names, rule_exprs
from support import MESSAGES, to_crlf

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "ansible" / "roles" / "sigfilter" / "files"
DASHBOARD = FILES / "grafana" / "sigfilter-dashboard.json"
RULE_TESTS = sorted((ROOT / "tests" / "monitoring").glob("*.test.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# Grafana's variables, replaced by something PromQL accepts before promtool parses it.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$instance": ".*", "$tenant": ".*"}
# Metrics Prometheus makes itself (not the milter's).
PROMETHEUS_OWN = {"up"}
# `sigfilter users sync` writes these to files for node_exporter (not the milter's port).
SYNC_PREFIX = "sigfilter_sync_"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool missing: `make deps` installs Debian's prometheus"
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panel_exprs() -> dict[str, str]:
    out = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out[f"{panel['title']} / {target['refId']}"] = expr
    return out


def test_metric_names_finds_selectors_only() -> None:
    expr = (
        'sum by (le, instance) (rate(a_b_total{job="x", q=~"y|z"}[5m])) / on(instance) '
        'group_left(kind) c:d and time() - e_seconds > 7 * 86400 and absent(up{job="s"})'
    )
    assert metric_names(expr) == {"a_b_total", "c:d", "e_seconds", "up"}


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_exprs())} rules found" in result.stdout


@pytest.mark.parametrize("cases", RULE_TESTS, ids=lambda p: p.name)
def test_alerts_fire_when_they_should(cases: Path, tmp_path: Path) -> None:
    """promtool's unit tests; the descriptions are filled in from the rules file (one
    source for their text), the summaries are spelled out in the cases."""
    spec = yaml.safe_load(cases.read_text())
    rules = yaml.safe_load(RULES.read_text())
    descriptions = {r["alert"]: r["annotations"]["description"]
                    for g in rules["groups"] for r in g["rules"]}  # fmt: skip
    fired = set()
    for case in spec["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check.get("exp_alerts", []):
                alert.setdefault("exp_annotations", {})["description"] = descriptions[
                    check["alertname"]
                ]
                fired.add(check["alertname"])
    spec["rule_files"] = [str(RULES)]
    target = tmp_path / cases.name
    target.write_text(yaml.safe_dump(spec))
    result = promtool("test", "rules", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert fired  # every case file expects some alert to fire


def test_every_alert_has_a_case_that_fires_it() -> None:
    fired = {
        check["alertname"]
        for cases in RULE_TESTS
        for case in yaml.safe_load(cases.read_text())["tests"]
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert fired == set(rule_exprs())


def test_dashboard_is_well_formed() -> None:
    dash = dashboard()
    assert dash["uid"] == "sigfilter-relay" and dash["title"]
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(pos["x"] + i, pos["y"] + j) for i in range(pos["w"]) for j in range(pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names == ["datasource", "instance", "tenant"]


def test_dashboard_expressions_parse(tmp_path: Path) -> None:
    """promtool parses each panel's query (as a recording rule)."""
    exprs = panel_exprs()
    rules = [{"record": f"dashboard:panel_{n}", "expr": e} for n, e in enumerate(exprs.values())]
    target = tmp_path / "dashboard-queries.yml"
    target.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# -- against a real milter's /metrics ---------------------------------------------------


@pytest.fixture(scope="module")
def exported() -> Iterator[tuple[set[str], set[str]]]:
    """(sample names the milter exports, its metric families) after real traffic."""
    with running_stack("sigfilter-monitoring-", {"metrics_port": free_port()}, redis=True) as stack:
        for name in ("c24_generic_html-base64.eml", "c32_gmail_skip-loop-header.eml"):
            stack.send(to_crlf((MESSAGES / name).read_bytes()), "avery.quill@example.com")
        url = stack.milter.metrics_url + "/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        yield exported_names(text)


def test_rules_name_only_exported_metrics(exported: tuple[set[str], set[str]]) -> None:
    samples, _ = exported
    for alert, expr in rule_exprs().items():
        names = metric_names(expr)
        assert names, alert
        if all(n.startswith(SYNC_PREFIX) for n in names):
            continue  # the sync's own files: test_graph_sync.py checks these names
        assert names <= samples | PROMETHEUS_OWN, f"{alert}: {sorted(names - samples)}"


def test_dashboard_names_only_exported_metrics(exported: tuple[set[str], set[str]]) -> None:
    samples, _ = exported
    for panel, expr in panel_exprs().items():
        names = metric_names(expr)
        assert names, panel
        assert names <= samples | PROMETHEUS_OWN, f"{panel}: {sorted(names - samples)}"


def test_dashboard_shows_every_metric_the_milter_exports(
    exported: tuple[set[str], set[str]],
) -> None:
    _, families = exported
    used = {n for expr in panel_exprs().values() for n in metric_names(expr)}
    # the text format shows each counter's creation time as a gauge family of its own
    families = {f for f in families if not f.endswith("_created")}
    forms = ("", "_total", "_bucket", "_sum", "_count")
    shown = {f for f in families if used & {f + suffix for suffix in forms}}
    assert families.issuperset({"sigfilter_messages", "sigfilter_cache_lookups"})  # Redis mode
    assert families - shown == set()
