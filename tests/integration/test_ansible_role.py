"""The Ansible side: lint, syntax, the role applied for real to localhost, idempotence.

The role runs with its test profile (no packages, no user, no systemd; every path under
a temporary directory). The Postfix it configured and the milter with the config it
wrote then carry a message to a sink: it arrives signed. A second run changes nothing.
The Azure provisioning playbook cannot reach Azure here: its syntax and lint are
checked, and the address list its network security group admits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.milterctl import MilterProcess
from harness.postfixctl import ROLE_FILTERS, PostfixInstance, connector_ranges, new_workdir
from harness.sink import Sink, free_port
from support import decoded_leaves

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "sigfilter"
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted((ANSIBLE / "playbooks").glob("*.yml"))
TIMEOUT = 300


FILTERS = ROLE_FILTERS

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists(), reason="ansible is in the test extra"
)


def run(*args: str, cwd: Path = ANSIBLE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counts for localhost."""
    m = re.search(r"^localhost\s*:\s*(.*)$", output, re.M)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_every_playbook_passes_syntax_check(playbook: Path) -> None:
    result = run(str(BIN / "ansible-playbook"), "--syntax-check", str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    result = run(str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_every_role_variable_is_documented_with_its_default() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name
        assert spec.get("description"), name
    used = set(re.findall(r"\b(sigfilter_[a-z_]+)\b", _role_text()))
    registered = {"sigfilter_published", "sigfilter_postfix_values",
                  "sigfilter_connector_networks_effective", "sigfilter_queue", "sigfilter_health",
                  "sigfilter_postfix_template",
                  "sigfilter_connector_networks", "sigfilter_maps",
                  "sigfilter_transport_args"}  # fmt: skip
    assert used - registered <= set(defaults), sorted(used - registered - set(defaults))


def _role_text() -> str:
    """Tasks, templates, defaults: not files/, copied as they are (its sigfilter_* words
    are metric names in the alert rules and the dashboard, not role variables)."""
    files = ROLE / "files"
    return "\n".join(
        p.read_text()
        for p in ROLE.rglob("*")
        if p.is_file() and p.suffix != ".py" and files not in p.parents
    )


def test_azure_nsg_admits_exactly_the_shared_connector_ranges() -> None:
    play = yaml.safe_load((ANSIBLE / "playbooks" / "provision-azure.yml").read_text())[0]
    assert "eop-outbound-ranges.txt" in play["vars"]["sigfilter_eop_ranges"]
    tasks = {t["name"]: t for t in play["tasks"]}
    nsg = tasks["Network security group (SMTP from Exchange Online only)"]
    rules = nsg["azure.azcollection.azure_rm_securitygroup"]["rules"]
    smtp = [r for r in rules if r["destination_port_range"] == 25]
    assert len(smtp) == 1 and smtp[0]["source_address_prefix"] == "{{ sigfilter_eop_ranges }}"
    # What that expression gives, through the role's own filter, is the data file's list.
    ranges = (REPO / "postfix" / "eop-outbound-ranges.txt").read_text()
    networks = FILTERS.connector_networks(ranges)
    assert networks == connector_ranges()[1]
    assert "40.107.0.0/16" in networks and len(networks) == 6


class RoleConfigured(PostfixInstance):
    """A private Postfix whose configuration the role wrote (this class only makes dirs)."""

    def write_config(self) -> None:
        self.make_dirs()


@pytest.fixture
def applied() -> Iterator[tuple[Path, dict[str, object], Sink]]:
    work = new_workdir("sigfilter-ansible-")
    sink = Sink()
    sink.start()
    port = free_port()
    pf = work / "postfix"
    # The catalog is the one list of tenants: its return_host is the sink here.
    catalog = work / "catalog-src"
    shutil.copytree(REPO / "examples" / "catalog", catalog)
    toml = catalog / "tenants" / "example.com" / "tenant.toml"
    toml.write_text(
        toml.read_text().replace(
            'return_host = "example-com.mail.protection.outlook.com"',
            f'return_host = "127.0.0.1:{sink.port}"',
        )
    )
    variables: dict[str, object] = {
        "sigfilter_manage_packages": False,
        "sigfilter_manage_user": False,
        "sigfilter_manage_services": False,
        "sigfilter_install": False,
        "sigfilter_config_dir": str(work / "etc"),
        "sigfilter_catalog_dir": str(work / "etc" / "catalog"),
        "sigfilter_catalog_src": str(catalog),
        "sigfilter_bin": str(BIN / "sigfilter"),
        "sigfilter_milter_socket": f"unix:{work / 'milter' / 'milter.sock'}",
        "sigfilter_metrics": "off",
        "sigfilter_connector_cert_name": "",
        "sigfilter_tenant_id_missing": "accept",
        "sigfilter_allow_root": True,
        "sigfilter_postfix_templates": str(REPO / "postfix"),
        "sigfilter_postfix_config_dir": str(pf / "conf"),
        "sigfilter_postfix_queue_dir": str(pf / "queue"),
        "sigfilter_postfix_data_dir": str(pf / "data"),
        "sigfilter_postfix_log_file": str(pf / "log" / "maillog"),
        "sigfilter_postfix_log_prefixes": str(pf / "log"),
        "sigfilter_postfix_hostname": "relay.sigfilter.test",
        "sigfilter_postfix_syslog_name": "postfix-sigansible",
        "sigfilter_postfix_listen": "127.0.0.1",
        "sigfilter_postfix_port": port,
        "sigfilter_postfix_dns": False,
        "sigfilter_connector_networks": ["127.0.0.1/32"],
        "sigfilter_tls_smtpd_level": "none",
        "sigfilter_tls_smtpd_chain_files": "",
        "sigfilter_tls_smtpd_req_ccert": "no",
        "sigfilter_tls_smtpd_ca_file": "",
        "sigfilter_tls_smtp_level": "may",
        "sigfilter_tls_smtp_ca_file": "",
        "sigfilter_postfix_queue_run_delay": "1s",
        "sigfilter_postfix_minimal_backoff": "1s",
        "sigfilter_postfix_maximal_backoff": "2s",
        "sigfilter_tenants": [],
        "sigfilter_prometheus_rules_file": str(work / "prometheus" / "rules" / "sigfilter.yml"),
        "sigfilter_tls_files": [
            {
                "src": str(work / "example-com.key"),
                "dest": str(work / "etc" / "tls" / "example-com.key"),
            }
        ],
    }
    (work / "example-com.key").write_text("not a real key\n")
    (work / "vars.json").write_text(json.dumps(variables))
    (work / "hosts.yml").write_text(
        "relays:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n      ansible_become: false\n"
    )
    try:
        yield work, variables, sink
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def play(work: Path) -> subprocess.CompletedProcess[str]:
    return run(
        str(BIN / "ansible-playbook"),
        "-i",
        str(work / "hosts.yml"),
        "-e",
        f"@{work / 'vars.json'}",
        str(ANSIBLE / "playbooks" / "configure.yml"),
    )


@pytest.mark.slow
def test_role_configures_a_working_relay_and_a_second_run_changes_nothing(
    applied: tuple[Path, dict[str, object], Sink],
) -> None:
    work, variables, sink = applied
    sink_port = str(sink.port)
    first = play(work)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert recap(first.stdout)["changed"] > 0 and recap(first.stdout)["failed"] == 0
    conf = work / "postfix" / "conf"
    assert f"[127.0.0.1]:{sink_port}" in (conf / "relayhost_by_sender").read_text()
    assert "127.0.0.1/32 OK" in (conf / "connector_networks.cidr").read_text()
    toml = (work / "etc" / "sigfilter.toml").read_text()
    assert f'catalog = "{work / "etc" / "catalog"}"' in toml
    assert (work / "etc" / "catalog" / "tenants" / "example.com" / "users.csv").is_file()
    key = work / "etc" / "tls" / "example-com.key"
    assert key.read_text() == "not a real key\n" and key.stat().st_mode & 0o777 == 0o600
    rules = work / "prometheus" / "rules" / "sigfilter.yml"
    shipped = REPO / "ansible/roles/sigfilter/files/prometheus/sigfilter-alerts.yml"
    assert rules.read_bytes() == shipped.read_bytes() and rules.stat().st_mode & 0o777 == 0o644

    second = play(work)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-4000:]

    # The stack the role configured: its Postfix, the milter with its config file.
    milter = MilterProcess(
        work / "milter", extra_args=["--config", str(work / "etc" / "sigfilter.toml")]
    )
    milter.start()
    postfix = RoleConfigured(
        work / "postfix", int(str(variables["sigfilter_postfix_port"])), int(sink_port), None
    )
    try:
        postfix.start()
        with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as client:
            client.sendmail("avery.quill@example.com", ["jane@customer.example"],
                            b"From: avery.quill@example.com\r\nTo: jane@customer.example\r\n"
                            b"Subject: via ansible\r\n\r\nRunning late.\r\n\r\nSent from my iPhone\r\n")  # fmt: skip
        got = sink.wait_for(1, timeout=30)[0].data
        text = decoded_leaves(got)["plain"]
        assert "Avery Quill" in text and "Sent from my iPhone" not in text
        assert b"X-Sigfilter-Processed: 1" in got
    finally:
        postfix.stop()
        milter.stop(kill=True)


def _render_sync_unit(name: str, **overrides: object) -> str:
    import jinja2  # noqa: PLC0415 - only this test renders role templates by hand

    values = {**yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()), **overrides}
    values["ansible_managed"] = "managed"
    values["sigfilter_bin"] = "/opt/sigfilter/bin/sigfilter"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((ROLE / "templates" / f"{name}.j2").read_text()).render(values)


def _directives(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_sync_timer_runs_every_15_minutes_and_the_service_syncs_every_tenant() -> None:
    timer = _directives(_render_sync_unit("sigfilter-sync.timer"))
    assert timer["OnCalendar"] == ["*:0/15"] and timer["Persistent"] == ["true"]
    fleet = _directives(_render_sync_unit(
        "sigfilter-sync.service", sigfilter_redis_url="rediss://cache:6380/0",
        sigfilter_redis_password_file="/etc/sigfilter/redis.pass"))  # fmt: skip
    (exec_start,) = fleet["ExecStart"]
    assert exec_start.split() == [
        "/opt/sigfilter/bin/sigfilter", "users", "sync", "--all",
        "--catalog", "/etc/sigfilter/catalog", "--state-dir", "/var/lib/sigfilter/sync",
        "--redis", "rediss://cache:6380/0",
    ]  # fmt: skip
    assert fleet["User"] == ["sigfilter"] and fleet["Type"] == ["oneshot"]
    assert fleet["Environment"] == ["SIGFILTER_REDIS_PASSWORD_FILE=/etc/sigfilter/redis.pass"]
    assert "ExecStartPost" not in fleet  # Redis: publishing reaches the milters
    assert fleet["ReadWritePaths"] == ["/etc/sigfilter/catalog/tenants /var/lib/sigfilter/sync"]
    embedded = _directives(_render_sync_unit("sigfilter-sync.service"))
    assert "--redis" not in embedded["ExecStart"][0]
    assert embedded["ExecStartPost"] == ["+/bin/systemctl reload sigfilter-milter.service"]
    # Every option the unit passes is one `users sync` has.
    from click.testing import CliRunner  # noqa: PLC0415

    from sigfilter.cli import main  # noqa: PLC0415

    help_text = CliRunner().invoke(main, ["users", "sync", "--help"]).output
    for option in ("--all", "--catalog", "--state-dir", "--redis"):
        assert option in help_text
