"""`sigfilter doctor` against a healthy private stack, then with each piece broken.

The stack: a real redis-server with the example catalog published, the real milter
serving it, a private Postfix with a TLS certificate the test makes. DNS is the one
thing faked (no public DNS here): cli_ops.RESOLVER is a table lookup.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance
from harness.redis_server import RedisServer
from harness.sink import Sink, free_port
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.cli import main
from sigfilter.cli import ops as cli_ops
from sigfilter.store.redis_store import RedisPublisher

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
RETURN_HOST = "example-com.mail.protection.outlook.com"  # examples/catalog's tenant
DNS = {(RETURN_HOST, "A"): ["198.51.100.25"]}  # no MX: the A record must do


def fake_dns(name: str, rdtype: str) -> list[str]:
    return DNS.get((name, rdtype), [])


def make_cert(directory: Path, name: str, not_after: dt.datetime) -> tuple[Path, Path]:
    """A self-signed certificate for relay.sigfilter.test ending at ``not_after``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.sigfilter.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.chmod(0o644)  # Postfix reads it as root; the test dir is private anyway
    return key_path, cert_path


@dataclass
class Relay:
    redis: RedisServer
    milter: MilterProcess
    postfix: PostfixInstance
    config: Path
    tls: Path
    version: int = 0  # the published catalog version

    def doctor(self, *extra: str) -> Result:
        args = ["doctor", "--config", str(self.config),
                "--postfix-config", str(self.postfix.conf_dir), *extra]  # fmt: skip
        return CliRunner().invoke(main, args)

    def publish(self) -> int:
        records = compile_catalog(load_catalog(CATALOG))
        return RedisPublisher(self.redis.client()).publish(records, {"catalog": str(CATALOG)})


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    work = Path(tempfile.mkdtemp(prefix="sigfilter-doctor-"))
    work.chmod(0o755)
    tls = work / "tls"
    tls.mkdir(mode=0o755)
    key, cert = make_cert(tls, "relay", dt.datetime.now(dt.UTC) + dt.timedelta(days=365))
    redis = RedisServer()
    sink = Sink()
    metrics_port = free_port()
    milter = MilterProcess(work / "milter", redis_url=redis.url, metrics_port=metrics_port)
    postfix = PostfixInstance(
        work / "postfix",
        smtpd_port=free_port(),
        sink_port=0,
        milter=milter.postfix_spec,
        default_action="tempfail",  # the shipped default (doctor warns about accept)
        overrides={"TLS_SMTPD_LEVEL": "may", "TLS_SMTPD_CHAIN_FILES": f"{key}, {cert}"},
        catalog=CATALOG,  # the tenant maps as `sigfilter postfix-maps` writes them
    )
    config = work / "milter.toml"
    config.write_text(
        f'[milter]\nsocket = "{milter.postfix_spec}"\ncatalog = "{CATALOG}"\n'
        f'redis = "{redis.url}"\nmetrics = "127.0.0.1:{metrics_port}"\n'
    )
    try:
        redis.start()
        sink.start()
        postfix.sink_port = sink.port
        relay = Relay(redis, milter, postfix, config, tls)
        relay.version = relay.publish()
        milter.start()
        postfix.start()
        yield relay
    finally:
        postfix.stop()
        milter.stop(kill=True)
        sink.stop()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)


def reported(result: Result, problem: str, fix: str) -> None:
    """``problem`` is printed, with ``fix`` on the next line, and doctor exits 1."""
    lines = result.output.splitlines()
    assert result.exit_code == 1, result.output
    assert problem in lines, result.output
    assert lines[lines.index(problem) + 1] == "      fix: " + fix


@pytest.fixture(autouse=True)
def no_public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_ops, "RESOLVER", fake_dns)


def test_healthy_relay(relay: Relay) -> None:
    result = relay.doctor()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    cert = relay.tls / "relay.crt"
    for expected in (
        f"ok    config   {relay.config}: socket {relay.milter.postfix_spec}, redis {relay.redis.url}",
        f"ok    redis    {relay.redis.url} answers; catalog version {relay.version} published",
        f"ok    milter   answers on {relay.milter.postfix_spec} (milter protocol 6)",
        f"ok    milter   serves catalog version {relay.version}",
        f"ok    postfix  smtpd_milters = {relay.milter.postfix_spec}",
        "ok    postfix  3 map file(s) present",
        f"ok    dns      return host {RETURN_HOST} of tenant example.com: 198.51.100.25",
    ):
        assert expected in lines, result.output
    assert any(line.startswith(f"ok    tls      certificate {cert} (CN=relay.sigfilter.test) valid until ")
               for line in lines)  # fmt: skip
    # The test relay returns to a sink without STARTTLS: the one thing a real relay
    # would do differently, and doctor says so without failing.
    assert lines[-1] == "0 failure(s), 1 warning(s)"
    assert (
        "WARN  tls      smtp_tls_security_level = may: the return leg to Exchange Online "
        "is not verified"
    ) in lines


def test_expired_certificate(relay: Relay) -> None:
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    key, cert = make_cert(relay.tls, "expired", ended)
    relay.postfix.overrides["TLS_SMTPD_CHAIN_FILES"] = f"{key}, {cert}"
    relay.postfix.write_config()
    try:
        result = relay.doctor("--no-dns", "-q")
    finally:
        relay.postfix.overrides["TLS_SMTPD_CHAIN_FILES"] = (
            f"{relay.tls / 'relay.key'}, {relay.tls / 'relay.crt'}"
        )
        relay.postfix.write_config()
    day = ended.strftime("%Y-%m-%d")
    reported(
        result,
        f"FAIL  tls      certificate {cert} (CN=relay.sigfilter.test) expired on {day}",
        f"renew it, install it at {cert} and run postfix reload",
    )


def test_missing_map_file(relay: Relay) -> None:
    missing = relay.postfix.conf_dir / "relayhost_by_sender"
    missing.unlink()
    try:
        result = relay.doctor("--no-dns", "-q")
    finally:
        relay.postfix.write_config()
    reported(
        result,
        f"FAIL  postfix  map file {missing} (sender_dependent_relayhost_maps) is missing",
        "create it (postfix/README.md lists its lines), then postfix reload",
    )


def test_tenant_maps_that_drifted_from_the_catalog(relay: Relay) -> None:
    senders = relay.postfix.conf_dir / "tenant_senders"
    with senders.open("a") as f:
        f.write("stranger.example OK\n")
    try:
        result = relay.doctor("--no-dns", "-q")
    finally:
        relay.postfix.write_config()
    reported(
        result,
        f"FAIL  postfix  {senders} (smtpd_sender_restrictions) differs from the catalog: "
        "stranger.example is not in the catalog",
        f"sigfilter postfix-maps --catalog {CATALOG} --out DIR (the maps' directory) "
        "&& postfix reload",
    )


def test_return_host_without_dns_records(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_ops, "RESOLVER", lambda name, rdtype: [])
    result = relay.doctor("--no-postfix", "--tenant", "example.com", "-q")
    reported(
        result,
        f"FAIL  dns      return host {RETURN_HOST} of tenant example.com has no MX or A record",
        "correct return_host in tenants/example.com/tenant.toml (Exchange Online: "
        "DOMAIN-TLD.mail.protection.outlook.com)",
    )


def test_unknown_tenant(relay: Relay) -> None:
    result = relay.doctor("--no-postfix", "--no-dns", "--tenant", "nope.example", "-q")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"FAIL  catalog  no tenant nope.example in {CATALOG} (have: example.com)"
    )


def test_redis_down(relay: Relay) -> None:
    relay.redis.stop()
    try:
        result = relay.doctor("--no-dns", "-q")
    finally:
        relay.redis.start()
        relay.publish()
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"FAIL  redis    {relay.redis.url} does not answer PING",
        f"      fix: start Redis (systemctl start redis-server) or correct milter.redis in "
        f"{relay.config}; the milter serves from its cache meanwhile",
        "WARN  tls      smtp_tls_security_level = may: the return leg to Exchange Online "
        "is not verified",
        "      fix: set it to secure with smtp_tls_CAfile",
        "1 failure(s), 1 warning(s)",
    ]


def test_milter_down(relay: Relay) -> None:
    relay.milter.stop()
    try:
        result = relay.doctor("--no-dns", "--no-postfix", "-q")
    finally:
        relay.milter.start()
    assert result.exit_code == 1
    spec = relay.milter.postfix_spec
    reported(
        result,
        f"FAIL  milter   the milter does not answer on {spec}: cannot connect to {spec}: "
        "Connection refused",
        "start it (systemctl start sigfilter) and see its log (journalctl -u sigfilter)",
    )
