"""The [dkim]/[arc] tenant settings, key files, and `sigfilter dkim keygen/check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner, Result

from dkimtest import FakeDns, make_key
from sigfilter.catalog import CatalogError, compile_catalog, load_catalog
from sigfilter.catalog.compiled import TenantRecord
from sigfilter.cli import main
from sigfilter.cli.dkim import zone_strings
from sigfilter.dkim.keys import (
    KeyCache,
    KeyFileError,
    policy_for,
    read_key,
    record_matches,
    txt_record,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_key(tmp_path_factory.mktemp("k"), "tenant")


def catalog_with(tmp_path: Path, toml: str) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, root)
    conf = root / "tenants" / "example.com" / "tenant.toml"
    conf.write_text(conf.read_text() + "\n" + toml)
    return root


def key_file(tmp_path: Path, pem: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "example.com.sig1.key"
    path.write_bytes(pem)
    path.chmod(mode)
    return path


def problems(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    return caught.value.problems


# -- tenant.toml ------------------------------------------------------------------------


def test_default_is_keep_without_arc() -> None:
    tenant = load_catalog(EXAMPLE).tenants["example.com"]
    assert (tenant.dkim_policy, tenant.arc) == ("keep", False)


def test_resign_and_arc_settings_reach_the_served_record(tmp_path: Path, pem: bytes) -> None:
    key = key_file(tmp_path, pem)
    root = catalog_with(tmp_path, f'[dkim]\npolicy = "resign"\nselector = "Sig1"\n'
                        f'key_file = "{key}"\n[arc]\nenabled = true\n'
                        f'authserv_id = "relay.sigfilter.test"\n')  # fmt: skip
    record = TenantRecord.from_json(compile_catalog(load_catalog(root))["tenant:example.com"])
    assert (record.dkim_policy, record.dkim_selector, record.dkim_domain) == (
        "resign", "sig1", "example.com"
    )  # fmt: skip
    assert record.dkim_key_file == str(key)
    # ARC uses the [dkim] key unless [arc] names its own
    assert (record.arc, record.arc_selector, record.arc_key_file) == (True, "sig1", str(key))
    policy = policy_for(record, KeyCache())
    assert policy.key is not None and policy.key.pem == pem
    assert policy.authserv_id == "relay.sigfilter.test"


def test_relative_key_file_is_read_from_the_tenant_folder(tmp_path: Path, pem: bytes) -> None:
    root = catalog_with(tmp_path, '[dkim]\npolicy = "resign"\nselector = "s"\nkey_file = "k.pem"\n')
    folder = root / "tenants" / "example.com"
    tenant = load_catalog(root).tenants["example.com"]
    assert tenant.dkim_key_file == str(folder / "k.pem")


def test_bad_settings_are_reported_with_file_and_line(tmp_path: Path) -> None:
    root = catalog_with(tmp_path, '[dkim]\npolicy = "sign"\nselektor = "x"\n\n[arc]\n'
                        'enabled = true\nauthserv_id = "bad id; dkim=pass"\n')  # fmt: skip
    conf = root / "tenants" / "example.com" / "tenant.toml"
    base = len(conf.read_text().splitlines()) - 7
    found = problems(root)
    assert (
        f"{conf}:{base + 2}: [dkim] policy must be one of keep, strip, resign, not 'sign'" in found
    )
    assert f"{conf}:{base + 3}: unknown [dkim] setting 'selektor'" in found
    assert any(
        p.startswith(f"{conf}:{base + 7}: [arc] authserv_id must be a DNS name") for p in found
    )
    assert any(p.startswith(f"{conf}:{base + 6}: [arc] enabled needs authserv_id") for p in found)


def test_resign_needs_a_selector_and_key(tmp_path: Path) -> None:
    root = catalog_with(tmp_path, '[dkim]\npolicy = "resign"\n')
    assert any('policy = "resign" needs selector and key_file' in p for p in problems(root))


def test_a_key_others_can_read_is_refused_at_load(tmp_path: Path, pem: bytes) -> None:
    key = key_file(tmp_path, pem, 0o644)
    root = catalog_with(
        tmp_path, f'[dkim]\npolicy = "resign"\nselector = "s"\nkey_file = "{key}"\n'
    )
    found = problems(root)
    assert any(
        "DKIM key" in p and "mode 0644 lets others read it" in p and "chmod 600" in p for p in found
    )


# -- key files -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_are_accepted(tmp_path: Path, pem: bytes, mode: int) -> None:
    assert read_key(key_file(tmp_path, pem, mode)) == pem


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o700])
def test_other_modes_are_refused_without_the_key_in_the_message(
    tmp_path: Path, pem: bytes, mode: int
) -> None:
    with pytest.raises(KeyFileError) as caught:
        read_key(key_file(tmp_path, pem, mode))
    assert f"{mode:04o}" in str(caught.value)
    assert "PRIVATE" not in str(caught.value) and pem[40:60].decode() not in str(caught.value)


def test_not_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not a PEM RSA private key"):
        read_key(key_file(tmp_path, b"-----BEGIN NOTHING-----\n", 0o600))


def test_cache_rereads_a_rotated_key(tmp_path: Path, pem: bytes) -> None:
    path = key_file(tmp_path, pem)
    cache = KeyCache()
    assert cache.get(path) == pem
    other = make_key(tmp_path, "rotated")
    path.write_bytes(other + b"\n")  # a different size: the stamp changes even within one tick
    assert cache.get(path) == other + b"\n"
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        cache.get(path)


def test_published_record_matches_only_its_own_key(tmp_path: Path, pem: bytes) -> None:
    other = make_key(tmp_path, "other")
    record = txt_record(pem).encode()
    assert record_matches(record, pem) == (True, "")
    assert record_matches(record, other) == (False, "p= holds a different key")
    assert record_matches(b"v=DKIM1; k=rsa; p=", pem)[0] is False
    # dkimpy reads our record as the key that verifies signatures made with the PEM
    msg = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"
    sig = dkim.sign(msg, b"s", b"example.com", pem)
    assert dkim.verify(sig + msg, dnsfunc=lambda name, timeout=5: record)


def test_zone_strings_split_at_255_bytes(pem: bytes) -> None:
    record = txt_record(pem)
    assert len(record) > 255
    zone = zone_strings(record)
    strings = zone.strip("( )").split('" "')
    assert all(len(s.strip('"')) <= 255 for s in strings)
    assert "".join(s.strip('"') for s in strings) == record


# -- the CLI -------------------------------------------------------------------------------


def cli(*args: str, dns: FakeDns | None = None) -> Result:
    return CliRunner().invoke(main, list(args), obj={"dns": dns} if dns else None)


def test_keygen_writes_a_0600_key_and_prints_its_record(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    result = cli("dkim", "keygen", "--tenant", "example.com", "--selector", "sig9",
                 "--out", str(out), "--catalog", str(EXAMPLE))  # fmt: skip
    assert result.exit_code == 0, result.output
    key = out / "example.com.sig9.key"
    assert key.stat().st_mode & 0o777 == 0o600
    line = next(x for x in result.stdout.splitlines() if "IN TXT" in x)
    assert line.startswith("sig9._domainkey.example.com. IN TXT (")
    published = "".join(line.split("IN TXT", 1)[1].strip(" ()").split('" "')).strip('"')
    assert record_matches(published.encode(), key.read_bytes()) == (True, "")
    again = cli("dkim", "keygen", "--tenant", "example.com", "--selector", "sig9",
                "--out", str(out), "--catalog", str(EXAMPLE))  # fmt: skip
    assert again.exit_code == 73 and "exists" in again.output


def test_keygen_unknown_tenant(tmp_path: Path) -> None:
    result = cli("dkim", "keygen", "--tenant", "nope.example", "--selector", "s",
                 "--out", str(tmp_path), "--catalog", str(EXAMPLE))  # fmt: skip
    assert result.exit_code == 1 and "no tenant 'nope.example'" in result.output


def _resign_catalog(tmp_path: Path, pem: bytes, mode: int = 0o600) -> Path:
    key = key_file(tmp_path, pem, mode)
    return catalog_with(tmp_path, f'[dkim]\npolicy = "resign"\nselector = "sig1"\n'
                        f'key_file = "{key}"\n')  # fmt: skip


def test_check_passes_when_dns_holds_the_key(tmp_path: Path, pem: bytes) -> None:
    root = _resign_catalog(tmp_path, pem)
    dns = FakeDns()
    dns.publish("sig1", "example.com", pem)
    result = cli("dkim", "check", "--tenant", "example.com", "--catalog", str(root), dns=dns)
    assert result.exit_code == 0, result.output
    assert "ok   sig1._domainkey.example.com matches" in result.output
    assert dns.asked == [b"sig1._domainkey.example.com."]


def test_check_fails_on_another_key_or_no_record(tmp_path: Path, pem: bytes) -> None:
    root = _resign_catalog(tmp_path, pem)
    dns = FakeDns()
    dns.publish("sig1", "example.com", make_key(tmp_path, "other"))
    wrong = cli("dkim", "check", "--tenant", "example.com", "--catalog", str(root), dns=dns)
    assert wrong.exit_code == 1 and "p= holds a different key" in wrong.output
    missing = cli("dkim", "check", "--tenant", "example.com", "--catalog", str(root),
                  dns=FakeDns())  # fmt: skip
    assert missing.exit_code == 1 and "no TXT record" in missing.output


def test_check_without_a_configured_key(tmp_path: Path) -> None:
    result = cli("dkim", "check", "--tenant", "example.com", "--catalog", str(EXAMPLE),
                 dns=FakeDns())  # fmt: skip
    assert result.exit_code == 1 and "has no signing key" in result.output


def test_check_dns_timeout_is_exit_69(tmp_path: Path, pem: bytes) -> None:
    root = _resign_catalog(tmp_path, pem)

    class Silent(FakeDns):
        def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
            raise dkim.DnsTimeoutError("timed out")

    result = cli("dkim", "check", "--tenant", "example.com", "--catalog", str(root), dns=Silent())
    assert result.exit_code == 69 and "DNS did not answer" in result.output


def test_dkim_help_explains_the_settings() -> None:
    result = cli("dkim", "--help")
    assert result.exit_code == 0
    assert 'policy = "resign"' in result.output and "0600 or 0400" in result.output
