"""Postfix's tenant maps from the catalog (postfix_maps.py, `sigfilter postfix-maps`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.catalog import TenantRecord
from sigfilter.cli import main
from sigfilter.postfix_maps import MapError, parse_map, render_maps, return_host

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def tenant(key: str, host: str, *domains: str) -> TenantRecord:
    return TenantRecord(
        key=key, name=key, domains=domains, mode="full", marker="", plain_to_html=False,
        return_host=host, tenant_id="", internal_domains=domains,
    )  # fmt: skip


def test_maps_list_every_domain_of_every_tenant() -> None:
    maps = render_maps(
        [tenant("b", "b.mail.protection.outlook.com", "example.org"),
         tenant("a", "127.0.0.1:2526", "example.com", "xn--exmple-cua.com")],
        {"b": "tenant1"},
    )  # fmt: skip
    assert parse_map(maps.files["tenant_senders"]) == {
        "example.com": "OK", "xn--exmple-cua.com": "OK", "example.org": "OK"}  # fmt: skip
    assert parse_map(maps.files["relayhost_by_sender"]) == {
        "@example.com": "[127.0.0.1]:2526",
        "@xn--exmple-cua.com": "[127.0.0.1]:2526",
        "@example.org": "[b.mail.protection.outlook.com]:25",
    }
    assert parse_map(maps.files["transport_by_sender"]) == {
        "@example.org": "tenant1:[b.mail.protection.outlook.com]:25"
    }


@pytest.mark.parametrize(
    ("tenants", "transports", "message"),
    [
        ([tenant("a", "", "example.com")], {}, "tenant a: no return_host in its tenant.toml"),
        ([tenant("a", "h.example", "example.com")], {"zz": "t1"},
         "--transport names tenants the catalog does not have: zz"),
    ],
)  # fmt: skip
def test_unroutable_tenants_are_refused(
    tenants: list[TenantRecord], transports: dict[str, str], message: str
) -> None:
    with pytest.raises(MapError, match=message):
        render_maps(tenants, transports)


@pytest.mark.parametrize(
    ("spec", "hop"),
    [("h.example", "[h.example]:25"), ("h.example:2525", "[h.example]:2525"),
     ("127.0.0.1:2526", "[127.0.0.1]:2526"), ("[h.example]:26", "[h.example]:26")],
)  # fmt: skip
def test_return_host(spec: str, hop: str) -> None:
    assert return_host(spec) == hop


def test_cli_writes_checks_and_finds_drift(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    toml = catalog / "tenants" / "example.com" / "tenant.toml"
    toml.write_text(
        toml.read_text().replace('domains = ["example.com"]', 'domains = ["Example.COM."]')
    )
    out = tmp_path / "postfix"
    out.mkdir()
    runner = CliRunner()
    args = ["postfix-maps", "--catalog", str(catalog), "--out", str(out)]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "wrote tenant_senders, relayhost_by_sender, transport_by_sender" in first.output
    # the catalog's domain in its canonical form, as Postfix and the milter look it up
    assert parse_map((out / "tenant_senders").read_text()) == {"example.com": "OK"}
    assert runner.invoke(main, args).output.startswith("unchanged")
    assert runner.invoke(main, [*args, "--check"]).exit_code == 0
    with (out / "tenant_senders").open("a") as f:
        f.write("stranger.example OK\n")
    drift = runner.invoke(main, [*args, "--check"])
    assert drift.exit_code == 1
    assert "tenant_senders: stranger.example is not in the catalog" in drift.output
    bad = runner.invoke(main, [*args, "--transport", "nosuch=tenant1"])
    assert bad.exit_code == 65 and "nosuch" in bad.output
