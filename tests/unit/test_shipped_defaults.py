"""One value for each Postfix milter setting: defaults.py, the Ansible role, the docs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from sigfilter.config import MilterConfig
from sigfilter.defaults import (
    DEFAULT_MEMORY_BUDGET,
    MILTER_DEFAULT_ACTION,
    MILTER_TIMEOUTS,
    OVER_BUDGET_ACTIONS,
    SINGLE_CPU,
)
from sigfilter.milter.runtime import MilterSettings

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible" / "roles" / "sigfilter"


def role_defaults() -> dict[str, Any]:
    return dict(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))


def test_production_default_action_is_tempfail() -> None:
    assert MILTER_DEFAULT_ACTION == "tempfail"
    assert role_defaults()["sigfilter_milter_default_action"] == "tempfail"
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert options["sigfilter_milter_default_action"]["default"] == "tempfail"
    # accept stays an explicit, documented choice
    assert options["sigfilter_milter_default_action"]["choices"] == ["accept", "tempfail"]
    readme = (REPO / "postfix" / "README.md").read_text()
    assert "| `tempfail` (default) |" in readme


def test_milter_timeouts_agree() -> None:
    defaults = role_defaults()
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    readme = (REPO / "postfix" / "README.md").read_text()
    for name, seconds in MILTER_TIMEOUTS.items():
        key = "sigfilter_" + name
        assert defaults[key] == f"{seconds}s", key
        assert options[key]["default"] == f"{seconds}s", key
        row = re.search(rf"\| `{name.upper()}` \| .*", readme)
        assert row is not None and row.group(0).count(f"`{seconds}s`") == 2, row


def test_connector_ca_file_holds_only_the_roots_of_exchanges_certificate() -> None:
    """Issue 12, point 7: the default trusted every public CA for the client certificate."""
    defaults = role_defaults()
    assert defaults["sigfilter_tls_smtpd_ca_file"] == "/etc/sigfilter/tls/exo-connector-roots.pem"
    assert defaults["sigfilter_tls_smtpd_ca_src"].endswith("/exo-connector-roots.pem")
    pem = REPO / "postfix" / "exo-connector-roots.pem"
    out = subprocess.run(
        ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(pem)], capture_output=True, check=True
    ).stdout
    subjects = subprocess.run(
        ["openssl", "pkcs7", "-print_certs", "-noout"], input=out, capture_output=True, check=True
    ).stdout.decode()
    names = sorted(
        line.rpartition("CN = ")[2] for line in subjects.splitlines() if "subject=" in line
    )
    assert names == ["DigiCert Global Root G2", "GlobalSign"]
    assert "GlobalSign Root CA - R3" in subjects


def test_memory_budget_agrees() -> None:
    """One default for the memory budget: defaults.py, the milter's config, the role."""
    defaults = role_defaults()
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    conf = MilterConfig()
    assert conf.memory_budget == MilterSettings().memory_budget == DEFAULT_MEMORY_BUDGET
    assert defaults["sigfilter_memory_budget"] == DEFAULT_MEMORY_BUDGET
    assert defaults["sigfilter_over_budget"] == conf.over_budget == "pass"
    assert tuple(options["sigfilter_over_budget"]["choices"]) == OVER_BUDGET_ACTIONS
    template = (ROLE / "templates" / "sigfilter.toml.j2").read_text()
    assert "memory_budget = {{ sigfilter_memory_budget | int }}" in template
    assert 'over_budget = "{{ sigfilter_over_budget }}"' in template


def test_single_cpu_agrees() -> None:
    """One default for running on one CPU: defaults.py, the config, the settings, the role."""
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    option = specs["argument_specs"]["main"]["options"]["sigfilter_single_cpu"]
    assert MilterConfig().single_cpu is MilterSettings().single_cpu is SINGLE_CPU is True
    assert role_defaults()["sigfilter_single_cpu"] is option["default"] is SINGLE_CPU
    template = (ROLE / "templates" / "sigfilter.toml.j2").read_text()
    assert "single_cpu = {{ sigfilter_single_cpu | bool | lower }}" in template
