"""`sigfilter users sync` against a fake Microsoft identity platform and Graph over
HTTPS on loopback (tests/harness/fakegraph.py), with msal itself signing in.

The fake checks the certificate assertion the way Entra does; Graph answers in the
documented shapes (tests/data/graph/docs-examples.json).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from harness.fakegraph import CLIENT_ID, TENANT_ID, FakeMicrosoft, _b64url, sample_user
from promql import exported_names, metric_names, rule_exprs
from sigfilter.catalog import load_catalog
from sigfilter.catalog.render import Renderer, content_id
from sigfilter.cli import main
from sigfilter.cli import sync_job as cli_sync_job
from sigfilter.config import MilterConfig
from sigfilter.defaults import GRAPH_MAX_RETRIES, GRAPH_RETRY_DEFAULT, GRAPH_RETRY_MAX
from sigfilter.graph.auth import TokenSource
from sigfilter.graph.client import GraphClient
from sigfilter.ops.doctor import Doctor
from sigfilter.store.redis_store import RedisPublisher

REPO = Path(__file__).resolve().parents[2]
KEY = "contoso.com"


def make_app_certificate(cn: str = "sigfilter-sync") -> tuple[bytes, bytes]:
    """(key + certificate PEM, certificate PEM): a self-signed RSA certificate, as
    Entra app registrations use (Key Vault's default policy: RSA 2048)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return key_pem + cert_pem, cert_pem


@pytest.fixture(scope="module")
def app_cert() -> tuple[bytes, bytes]:
    return make_app_certificate()


def write_tenant(root: Path, fake: FakeMicrosoft, credential: str, rules: str = "") -> Path:
    """A catalog with one tenant, contoso.com, whose [graph] points at the fake."""
    folder = root / "tenants" / KEY
    shutil.copytree(
        REPO / "examples/catalog/tenants/example.com",
        folder,
        ignore=shutil.ignore_patterns("users.csv", "rules.toml", "tenant.toml"),
    )
    (folder / "tenant.toml").write_text(
        f'name = "Contoso"\ndomains = ["contoso.com"]\ntenant_id = "{TENANT_ID}"\n'
        f'return_host = "contoso-com.mail.protection.outlook.com"\n\n'
        f'[graph]\nclient_id = "{CLIENT_ID}"\n{credential}\n'
        f'authority = "{fake.url}"\ngraph_url = "{fake.url}"\n'
    )
    if rules:
        (folder / "rules.toml").write_text(rules)
    return folder


class World:
    """The fake, a catalog pointing at it, a state directory, and a CLI runner."""

    def __init__(self, tmp: Path, fake: FakeMicrosoft, credential: str, rules: str = "") -> None:
        self.tmp = tmp
        self.fake = fake
        self.catalog = tmp / "catalog"
        self.folder = write_tenant(self.catalog, fake, credential, rules)
        self.state = tmp / "state"
        self.waits: list[float] = []

    @property
    def users_csv(self) -> Path:
        return self.folder / "users.csv"

    def rows(self) -> dict[str, dict[str, str]]:
        text = self.users_csv.read_text()
        return {r["email"]: r for r in csv.DictReader(io.StringIO(text))}

    def state_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.state / f"{KEY}.json").read_text())
        return doc

    def sync(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main,
            ["users", "sync", "--tenant", KEY, "--catalog", str(self.catalog),
             "--state-dir", str(self.state), *args],
        )  # fmt: skip


def populate(fake: FakeMicrosoft, n: int) -> None:
    for i in range(n):
        fake.directory.add_user(f"00000000-0000-4000-8000-{i:012d}", **sample_user(i))


@contextlib.contextmanager
def running_world(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, credential: tuple[str, str, bytes], **fake: Any
) -> Iterator[World]:
    """The fake Microsoft over HTTPS and a tenant whose [graph] credential is
    ``credential`` = (its setting, its file name, its content), written 0600."""
    setting, name, content = credential
    server = FakeMicrosoft(tmp / "fake", **fake).start()
    try:
        path = tmp / name
        path.write_bytes(content)
        path.chmod(0o600)
        w = World(tmp, server, f'{setting} = "{path}"')
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
        monkeypatch.setattr(cli_sync_job, "SLEEP", w.waits.append)
        yield w
    finally:
        server.stop()


@pytest.fixture
def world(
    tmp_path: Path, app_cert: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    both, cert_pem = app_cert
    credential = ("certificate_file", "graph-app.pem", both)
    with running_world(tmp_path, monkeypatch, credential, cert_pem=cert_pem) as w:
        yield w


def uid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


# -- 1. the first sync: every user, through msal with the certificate -------------------


def test_first_sync_signs_in_with_the_certificate_and_writes_every_mailbox_user(
    world: World, app_cert: tuple[bytes, bytes]
) -> None:
    fake = world.fake
    populate(fake, 250)  # 3 pages of 100
    fake.directory.change(uid(3), accountEnabled=False)
    fake.directory.change(uid(4), mail=None, proxyAddresses=[])
    fake.directory.change(uid(5), mail="guest@fabrikam.com", proxyAddresses=[])
    fake.directory.change(uid(6), mail=None)  # primary SMTP proxy address is used
    result = world.sync()
    assert result.exit_code == 0, result.output
    rows = world.rows()
    assert len(rows) == 247
    adele = rows["user00007@contoso.com"]
    assert adele["display_name"] == "User00007 Vance"
    assert adele["job_title"] == "Retail Manager"
    assert adele["phone"] == "+1 425 555 0109"
    assert adele["city"] == "Redmond" and adele["office"] == "18/2111"
    assert "user00006@contoso.com" in rows  # from "SMTP:" in proxyAddresses
    assert "user00003@contoso.com" not in rows and "guest@fabrikam.com" not in rows
    assert (
        "left out: 1 account disabled, 1 address outside the tenant's domains, "
        "1 no mailbox address" in result.output
    )
    assert "247 added, 0 changed, 0 removed" in result.output
    assert "full sync (first sync)" in result.output
    assert "page 3, 250 users received" in result.output
    # msal signed in with the certificate: PS256, x5t#S256 = the cert's SHA-256 thumbprint.
    cert = x509.load_pem_x509_certificate(app_cert[1])
    (assertion,) = fake.assertions
    assert assertion["header"]["alg"] == "PS256"
    assert assertion["header"]["x5t#S256"].rstrip("=") == _b64url(cert.fingerprint(hashes.SHA256()))
    assert assertion["claims"]["iss"] == CLIENT_ID
    # The catalog loads with the written users.csv.
    tenant = load_catalog(world.catalog).tenants[KEY]
    assert tenant.users["user00007@contoso.com"]["job_title"] == "Retail Manager"
    # Only the selected fields were asked for.
    first = next(p for m, p in fake.requests if p.startswith("/v1.0/users/delta"))
    assert "$select=id,displayName" in first and "accountEnabled" in first


# -- 2. delta: only the changes; @removed applied --------------------------------------


def test_delta_sync_applies_changes_removals_and_disabled_accounts(world: World) -> None:
    fake = world.fake
    populate(fake, 120)
    assert world.sync().exit_code == 0
    d = fake.directory
    d.change(uid(1), jobTitle="Head of Retail")
    d.remove(uid(2))
    d.change(uid(3), accountEnabled=False)
    d.add_user(uid(500), **sample_user(500))
    before = len(fake.requests)
    result = world.sync()
    assert result.exit_code == 0, result.output
    assert "delta sync" in result.output
    assert "1 added, 1 changed, 2 removed" in result.output
    assert "changed  user00001@contoso.com (job_title)" in result.output
    assert "4 received, 1 removed by delta" in result.output
    rows = world.rows()
    assert rows["user00001@contoso.com"]["job_title"] == "Head of Retail"
    assert "user00002@contoso.com" not in rows and "user00003@contoso.com" not in rows
    assert "user00500@contoso.com" in rows and len(rows) == 119
    delta_calls = [p for _, p in fake.requests[before:] if p.startswith("/v1.0/users/delta")]
    assert len(delta_calls) == 1 and "$deltatoken=" in delta_calls[0]
    prom = (world.state / f"{KEY}.prom").read_text()
    assert 'sigfilter_sync_runs_total{result="ok",tenant="contoso.com"} 2.0' in prom
    assert 'sigfilter_sync_users_changed_total{change="added",tenant="contoso.com"} 121.0' in prom
    assert 'sigfilter_sync_users_changed_total{change="removed",tenant="contoso.com"} 2.0' in prom
    assert 'sigfilter_sync_users{tenant="contoso.com"} 119.0' in prom
    # No change: users.csv is not rewritten.
    mtime = world.users_csv.stat().st_mtime_ns
    again = world.sync()
    assert "0 added, 0 changed, 0 removed" in again.output
    assert world.users_csv.stat().st_mtime_ns == mtime


def test_dry_run_prints_the_changes_and_writes_nothing(world: World) -> None:
    populate(world.fake, 10)
    assert world.sync().exit_code == 0
    csv_before = world.users_csv.read_bytes()
    state_before = (world.state / f"{KEY}.json").read_bytes()
    world.fake.directory.change(uid(1), department="Finance")
    result = world.sync("--dry-run")
    assert result.exit_code == 0, result.output
    assert "changed  user00001@contoso.com (department)" in result.output
    assert "dry run: nothing written" in result.output
    assert world.users_csv.read_bytes() == csv_before
    assert (world.state / f"{KEY}.json").read_bytes() == state_before
    # The change is still there for the real run (the delta link did not move).
    assert "1 changed" in world.sync().output
    assert world.rows()["user00001@contoso.com"]["department"] == "Finance"


def test_columns_added_by_hand_are_kept(world: World) -> None:
    populate(world.fake, 3)
    assert world.sync().exit_code == 0
    text = world.users_csv.read_text().splitlines()
    text = [text[0] + ",pronouns"] + [line + ",they/them" for line in text[1:]]
    world.users_csv.write_text("\n".join(text) + "\n")
    world.fake.directory.change(uid(1), jobTitle="Buyer")
    assert world.sync().exit_code == 0
    rows = world.rows()
    assert rows["user00001@contoso.com"]["pronouns"] == "they/them"
    assert rows["user00001@contoso.com"]["job_title"] == "Buyer"


# -- 3. full resync: expired delta link, weekly -----------------------------------------


def test_expired_delta_link_starts_a_full_resync(world: World) -> None:
    populate(world.fake, 30)
    assert world.sync().exit_code == 0
    world.fake.directory.remove(uid(0))
    world.fake.expire_delta_links()
    result = world.sync()
    assert result.exit_code == 0, result.output
    assert "full sync (the delta link expired" in result.output
    assert "0 added, 0 changed, 1 removed" in result.output
    assert len(world.rows()) == 29


def test_a_full_resync_happens_weekly(world: World) -> None:
    populate(world.fake, 5)
    assert world.sync().exit_code == 0
    path = world.state / f"{KEY}.json"
    doc = json.loads(path.read_text())
    doc["last_full"] = time.time() - 8 * 24 * 3600
    path.write_text(json.dumps(doc))
    result = world.sync()
    assert "full sync (weekly full sync)" in result.output
    assert world.state_doc()["last_full"] > time.time() - 600
    assert "delta sync" in world.sync().output


# -- 4. a good Graph client: Retry-After, bounded retries, 403 names the permission ----


def test_429_and_503_wait_as_long_as_retry_after_says(world: World) -> None:
    populate(world.fake, 10)
    world.fake.fail("/v1.0/users/delta", "too_many_requests", times=2)
    world.fake.fail("/v1.0/users/delta", "service_unavailable", times=1)
    result = world.sync()
    assert result.exit_code == 0, result.output
    assert world.waits == [10.0, 10.0, 3.0]
    assert len(world.rows()) == 10


def test_throttling_beyond_the_retries_fails_and_keeps_users_csv(world: World) -> None:
    populate(world.fake, 10)
    assert world.sync("--full").exit_code == 0
    before = world.users_csv.read_bytes()
    world.fake.directory.change(uid(1), jobTitle="Changed")
    world.fake.fail("/v1.0/users/delta", "too_many_requests", times=100)
    result = world.sync()
    assert result.exit_code == 69, result.output
    assert "still throttled after" in result.output
    assert len(world.waits) == GRAPH_MAX_RETRIES
    assert world.users_csv.read_bytes() == before
    doc = world.state_doc()
    assert doc["counters"]["failures|unavailable"] == 1
    assert "429" in doc["last_error"]


def test_failure_on_a_later_page_writes_nothing(world: World) -> None:
    populate(world.fake, 10)
    assert world.sync().exit_code == 0
    before = world.users_csv.read_bytes()
    link_before = world.state_doc()["delta_link"]
    world.fake.directory.change(uid(1), jobTitle="Changed")
    populate(world.fake, 250)  # the full read now takes three pages
    world.fake.fail("/v1.0/users/delta", "forbidden", after=2)
    result = world.sync("--full")
    assert result.exit_code == 77, result.output
    assert world.users_csv.read_bytes() == before
    assert world.state_doc()["delta_link"] == link_before


def test_403_without_consent_names_the_missing_permission(
    tmp_path: Path, app_cert: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMicrosoft(tmp_path / "fake", cert_pem=app_cert[1], roles=()).start()
    try:
        pem = tmp_path / "app.pem"
        pem.write_bytes(app_cert[0])
        pem.chmod(0o600)
        w = World(tmp_path, fake, f'certificate_file = "{pem}"')
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        populate(fake, 3)
        result = w.sync()
    finally:
        fake.stop()
    assert result.exit_code == 77, result.output
    assert "403 Authorization_RequestDenied" in result.output
    assert "application permission User.Read.All" in result.output
    assert "Grant admin consent" in result.output
    assert "the token carried these permissions: none" in result.output
    assert not w.users_csv.exists()
    prom = (w.state / f"{KEY}.prom").read_text()
    assert 'sigfilter_sync_failures_total{reason="denied",tenant="contoso.com"} 1.0' in prom
    assert 'sigfilter_sync_runs_total{result="failed",tenant="contoso.com"} 1.0' in prom


def test_an_unregistered_certificate_is_refused_with_a_hint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = make_app_certificate("someone-else")
    pem = world.tmp / "other.pem"
    pem.write_bytes(other)
    pem.chmod(0o600)
    toml = world.folder / "tenant.toml"
    toml.write_text(toml.read_text().replace(str(world.tmp / "graph-app.pem"), str(pem)))
    result = world.sync()
    assert result.exit_code == 77, result.output
    assert "AADSTS700027" in result.output
    assert "upload its public part" in result.output
    assert world.fake.calls("/v1.0/") == 0


# -- 2. credentials: the client secret, the secret-file check ---------------------------


@pytest.fixture
def secret_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    credential = ("client_secret_file", "graph-secret", b"Aa1~s3cret.value\n")
    with running_world(tmp_path, monkeypatch, credential, client_secret="Aa1~s3cret.value") as w:
        populate(w.fake, 4)
        yield w


def test_client_secret_signs_in(secret_world: World) -> None:
    result = secret_world.sync()
    assert result.exit_code == 0, result.output
    assert len(secret_world.rows()) == 4
    assert secret_world.fake.assertions == []  # no certificate assertion was sent


def test_a_secret_file_others_can_read_is_refused(secret_world: World) -> None:
    (secret_world.tmp / "graph-secret").chmod(0o644)
    result = secret_world.sync()
    assert result.exit_code == 78, result.output
    assert "client_secret_file" in result.output and "chmod 600" in result.output
    assert secret_world.fake.requests == []  # refused before anything was sent


def test_a_wrong_secret_is_explained(secret_world: World) -> None:
    (secret_world.tmp / "graph-secret").write_text("wrong\n")
    result = secret_world.sync()
    assert result.exit_code == 77, result.output
    assert "AADSTS7000215" in result.output and "create a new one" in result.output


def test_a_missing_certificate_file_is_explained(world: World) -> None:
    (world.tmp / "graph-app.pem").unlink()
    result = world.sync()
    assert result.exit_code == 78, result.output
    assert "certificate_file" in result.output and "graph-app.pem" in result.output


# -- 5. groups for rules: Entra groups by name or id, nested members ---------------------

RULES = """
[[rule]]
name = "HR"
groups = ["HR Taskforce"]
template = "default"

[[rule]]
name = "Sales by id"
groups = ["02bd9fd6-8f93-4758-87c3-1fb73740a315"]
action = "skip"

[[rule]]
name = "Nobody"
groups = ["No Such Group"]
action = "skip"
"""
SALES = "02bd9fd6-8f93-4758-87c3-1fb73740a315"


def test_rule_groups_are_resolved_in_entra_with_nested_members(world: World) -> None:
    (world.folder / "rules.toml").write_text(RULES)
    populate(world.fake, 8)
    d = world.fake.directory
    d.add_group("g-hr-nested", "HR Interns", [uid(3)])
    d.add_group("g-hr", "HR Taskforce", [uid(1), uid(2), "g-hr-nested"])
    d.add_group(SALES, "Sales", [uid(2), uid(4)])
    result = world.sync()
    assert result.exit_code == 0, result.output
    rows = world.rows()
    assert rows["user00001@contoso.com"]["groups"] == "hr taskforce"
    assert rows["user00002@contoso.com"]["groups"] == f"{SALES};hr taskforce"
    assert rows["user00003@contoso.com"]["groups"] == "hr taskforce"  # nested
    assert rows["user00005@contoso.com"]["groups"] == ""
    assert "group 'no such group' (rules.toml) is not in Entra ID" in result.output
    tenant = load_catalog(world.catalog).tenants[KEY]
    assert tenant.rules_for("user00003@contoso.com")[0].name == "HR"
    assert tenant.rules_for("user00004@contoso.com")[0].name == "Sales by id"
    # Membership changes reach users.csv on the next run, with no user change at all.
    d.groups["g-hr"]["members"].remove(uid(1))
    again = world.sync()
    assert "changed  user00001@contoso.com (groups)" in again.output
    assert world.rows()["user00001@contoso.com"]["groups"] == ""


def test_group_rules_without_groupmember_permission_name_it(
    tmp_path: Path, app_cert: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMicrosoft(tmp_path / "fake", cert_pem=app_cert[1], roles=("User.Read.All",))
    fake.start()
    try:
        pem = tmp_path / "app.pem"
        pem.write_bytes(app_cert[0])
        pem.chmod(0o600)
        w = World(tmp_path, fake, f'certificate_file = "{pem}"', RULES)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        populate(fake, 3)
        result = w.sync()
    finally:
        fake.stop()
    assert result.exit_code == 77, result.output
    assert "GroupMember.Read.All" in result.output
    assert "the token carried these permissions: User.Read.All" in result.output
    assert not w.users_csv.exists()


# -- 1. publishing when Redis is configured --------------------------------------------


def test_sync_publishes_when_redis_is_configured_and_only_on_change(
    world: World, redis_server: Any
) -> None:
    populate(world.fake, 5)
    result = world.sync("--redis", redis_server.url)
    assert result.exit_code == 0, result.output
    assert "published version" in result.output
    publisher = RedisPublisher(redis_server.client())
    first = publisher.status()["current_version"]
    quiet = world.sync("--redis", redis_server.url)
    assert "published" not in quiet.output
    assert publisher.status()["current_version"] == first
    world.fake.directory.change(uid(1), jobTitle="Director")
    changed = world.sync("--redis", redis_server.url)
    assert "published version" in changed.output
    assert publisher.status()["current_version"] != first


def test_a_failed_publish_is_retried_by_the_next_run(world: World, redis_server: Any) -> None:
    populate(world.fake, 5)
    redis_server.stop()
    result = world.sync("--redis", redis_server.url)
    assert result.exit_code == 69, result.output
    assert len(world.rows()) == 5  # users.csv was written; only publishing failed
    assert world.state_doc()["publish_pending"] is True
    redis_server.start()
    again = world.sync("--redis", redis_server.url)
    assert again.exit_code == 0, again.output
    assert "0 added, 0 changed, 0 removed" in again.output
    assert "published version" in again.output
    assert world.state_doc()["publish_pending"] is False


# -- the client on its own: Retry-After as an HTTP date, token reuse --------------------


def test_retry_after_as_http_date_and_token_reused(world: World) -> None:
    populate(world.fake, 3)
    tenant = load_catalog(world.catalog).tenants[KEY]
    assert tenant.graph is not None
    session = requests.Session()
    waits: list[float] = []
    now = dt.datetime(2027, 1, 15, 8, 0, 0, tzinfo=dt.UTC).timestamp()
    client = GraphClient(
        tenant.graph.graph_url, TokenSource(tenant.graph, TENANT_ID, session), session,
        sleep=waits.append, clock=lambda: now,
    )  # fmt: skip
    later = {"Retry-After": "Fri, 15 Jan 2027 08:00:30 GMT"}  # now + 30 s
    world.fake.fail("/v1.0/users/delta", "too_many_requests", headers=later)
    world.fake.fail("/v1.0/users/delta", "service_unavailable", headers={"Retry-After": "99999"})
    world.fake.fail("/v1.0/users/delta", "service_unavailable", headers={"X-Other": "1"})
    pages = list(client.pages("/users/delta?$select=id,mail"))
    assert waits == [30.0, GRAPH_RETRY_MAX, GRAPH_RETRY_DEFAULT]
    assert sum(len(p["value"]) for p in pages) == 3
    assert world.fake.calls(f"/{TENANT_ID}/oauth2/v2.0/token") == 1  # msal cached it


# -- 6. catalog check and doctor explain the credential and the last sync --------------


def _doctor(world: World, now: dt.datetime | None = None) -> list[Any]:
    doc = Doctor(
        MilterConfig(catalog=str(world.catalog)), "flags", resolve=None,
        sync_state_dir=str(world.state),
        now=(lambda: now) if now else (lambda: dt.datetime.now(dt.UTC)),
    )  # fmt: skip
    found = list(doc.check_catalog()) + list(doc.check_sync())
    return [f for f in found if f.area in ("sync", "catalog")]


def test_doctor_reports_the_last_successful_sync_and_its_age(world: World) -> None:
    populate(world.fake, 4)
    never = [f for f in _doctor(world) if f.area == "sync"]
    assert [f.level for f in never] == ["fail"]
    assert "no successful directory sync yet" in never[0].message
    assert world.sync().exit_code == 0
    (ok,) = [f for f in _doctor(world) if f.area == "sync"]
    assert ok.level == "ok" and "last successful sync 0 min ago" in ok.message
    assert "4 directory users" in ok.message
    world.fake.fail("/v1.0/users/delta", "forbidden")
    assert world.sync().exit_code == 77
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    (stale,) = [f for f in _doctor(world, later) if f.area == "sync"]
    assert stale.level == "warn" and "last successful sync 3 h ago" in stale.message
    assert "the last attempt failed: GET /users/delta: 403" in stale.message
    assert "sigfilter-sync.timer" in stale.fix


def test_catalog_check_and_doctor_explain_a_missing_credential(world: World) -> None:
    (world.tmp / "graph-app.pem").unlink()
    result = CliRunner().invoke(main, ["catalog", "check", str(world.catalog)])
    assert result.exit_code == 0, result.output  # it may live only on the syncing node
    assert "warning:" in result.output and "graph-app.pem is not on this host" in result.output
    (finding,) = [f for f in _doctor(world) if f.area == "sync"]
    assert finding.level == "warn" and "cannot sign in here" in finding.message


def test_catalog_check_and_doctor_refuse_an_unsafe_or_unreadable_credential(world: World) -> None:
    pem = world.tmp / "graph-app.pem"
    pem.chmod(0o644)
    result = CliRunner().invoke(main, ["catalog", "check", str(world.catalog)])
    assert result.exit_code == 65, result.output
    assert "certificate_file" in result.output and "chmod 600" in result.output
    catalog = [f for f in _doctor(world) if f.area == "catalog"]
    assert catalog[0].level == "fail" and "chmod 600" in catalog[0].message
    pem.write_bytes(b"not a certificate\n")
    pem.chmod(0o600)
    result = CliRunner().invoke(main, ["catalog", "check", str(world.catalog)])
    assert result.exit_code == 65 and "no PEM certificate in it" in result.output


# -- 7. photos: optional, size-capped, fetched only when the ETag changed ---------------


def _jpeg(n: int, size: int = 600) -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes([n % 251]) * (size - 4)


def test_photos_are_fetched_capped_and_refreshed_by_etag(world: World) -> None:
    toml = world.folder / "tenant.toml"
    toml.write_text(
        'images = "embed"\n' + toml.read_text() + "photos = true\nmax_photo_bytes = 2000\n"
    )
    html = world.folder / "templates" / "default" / "default.html"
    html.write_text(html.read_text().replace(
        "</table>", '<tr><td><img src="{{ image(photo) }}" width="96"></td></tr>\n</table>'))  # fmt: skip
    populate(world.fake, 4)
    d = world.fake.directory
    d.photos[uid(1)] = _jpeg(1)
    d.photos[uid(2)] = _jpeg(2, size=5000)  # over the cap
    result = world.sync()
    assert result.exit_code == 0, result.output
    assert "photos: 4 checked, 1 fetched, 0 removed" in result.output
    assert "over 2000 bytes (max_photo_bytes): left out" in result.output
    photo = world.folder / "images" / "photos" / f"{uid(1)}.jpg"
    assert photo.read_bytes() == _jpeg(1)
    rows = world.rows()
    assert rows["user00001@contoso.com"]["photo"] == f"photos/{uid(1)}.jpg"
    assert rows["user00002@contoso.com"]["photo"] == "" == rows["user00003@contoso.com"]["photo"]
    # The template embeds it (a CID part); for a user without one the line disappears.
    tenant = load_catalog(world.catalog).tenants[KEY]
    rendered = Renderer(tenant).render_set("default", tenant.users["user00001@contoso.com"])
    assert f"photos/{uid(1)}.jpg" in rendered.images
    assert f'src="cid:{content_id(tenant.images[f"photos/{uid(1)}.jpg"])}"' in rendered.html
    other = Renderer(tenant).render_set("default", tenant.users["user00003@contoso.com"])
    assert "photos/" not in other.html and other.images == ("logo.png",)
    # Not due yet: no photo is asked for, except a new user's.
    fetched = world.fake.photo_requests
    d.photos[uid(1)] = _jpeg(9)
    d.add_user(uid(77), **sample_user(77))
    d.photos[uid(77)] = _jpeg(77)
    second = world.sync()
    assert "photos: 1 checked, 1 fetched" in second.output
    assert world.fake.photo_requests == fetched + 1
    assert photo.read_bytes() == _jpeg(1)  # unchanged until the daily check
    # The daily check: the changed ETag is fetched, an unchanged one is not, a gone one removed.
    path = world.state / f"{KEY}.json"
    doc = json.loads(path.read_text())
    doc["photos_checked"] -= 2 * 24 * 3600
    path.write_text(json.dumps(doc))
    del d.photos[uid(77)]
    third = world.sync()
    assert "photos: 5 checked, 1 fetched, 1 removed" in third.output, third.output
    assert photo.read_bytes() == _jpeg(9)
    assert not (world.folder / "images" / "photos" / f"{uid(77)}.jpg").exists()
    assert world.rows()["user00077@contoso.com"]["photo"] == ""
    check = CliRunner().invoke(main, ["catalog", "check", str(world.catalog)])
    assert check.exit_code == 0, check.output


def test_one_sync_per_tenant_at_a_time_and_a_corrupt_state_is_named(world: World) -> None:
    populate(world.fake, 3)
    world.state.mkdir()
    fd = os.open(world.state / f"{KEY}.lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        busy = world.sync()
    finally:
        os.close(fd)
    assert busy.exit_code == 75, busy.output
    assert "another sync of contoso.com is running" in busy.output
    assert world.fake.requests == [] and not world.users_csv.exists()
    (world.state / f"{KEY}.json").write_text("[1, 2")
    broken = world.sync()
    assert broken.exit_code == 66, broken.output
    assert f"{KEY}.json: cannot read the sync state" in broken.output
    assert "move it away" in broken.output


def test_401_from_graph_says_to_check_the_cloud_settings(world: World) -> None:
    populate(world.fake, 2)
    world.fake.fail("/v1.0/users/delta", "unauthorized")
    result = world.sync()
    assert result.exit_code == 77, result.output
    assert "401 InvalidAuthenticationToken" in result.output
    assert "check that tenant_id, authority and graph_url name the same cloud" in result.output
    assert world.fake.calls("/v1.0/users/delta") == 1  # not retried


def test_sync_alert_rules_name_metrics_the_sync_writes(world: World) -> None:
    """The alert rules' sigfilter_sync_* names (issue 17) against the .prom a real run
    writes for node_exporter's textfile collector."""
    populate(world.fake, 3)
    assert world.sync().exit_code == 0
    written, _ = exported_names((world.state / f"{KEY}.prom").read_text())
    wanted = {
        name
        for expr in rule_exprs().values()
        for name in metric_names(expr)
        if name.startswith("sigfilter_sync_")
    }
    assert wanted >= {"sigfilter_sync_last_success_timestamp_seconds"}
    assert wanted <= written, sorted(wanted - written)
