"""A production-like stack for the security tests, all on loopback.

Postfix with the production inbound policy (TLS required, client certificate required
and verified against the "connector" CA, only 127.0.0.1 may submit), the real milter
with the production checks (connector certificate name, Exchange tenant id: reject),
and one sink per tenant that speaks STARTTLS with a certificate from the tenants' CA,
verified by Postfix's return leg (secure, name matched through a TLS policy map).

    with SecureStack() as stack:
        stack.send(raw, cert=stack.exo_cert)
"""

from __future__ import annotations

import shutil
import smtplib
import ssl
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance, new_workdir
from harness.redis_server import RedisServer
from harness.sink import Sink, SinkMessage, free_port
from harness.tlsca import Issued, TestCA, client_context, server_context
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.store.redis_store import RedisPublisher

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "examples" / "catalog"
# The production profile's Postfix settings come from the Ansible role's defaults.
ROLE_DEFAULTS: dict[str, Any] = yaml.safe_load(
    (REPO / "ansible" / "roles" / "sigfilter" / "defaults" / "main.yml").read_text()
)
AVERY = "avery.quill@example.com"
RCPT = "jane@customer.example"
CONNECTOR_NAME = "mail.protection.outlook.com"
TENANT_A_ID = "11111111-2222-4333-8444-555555555555"  # example.com in the test catalog
TENANT_B_ID = "99999999-8888-4777-8666-555555555555"  # some other Exchange tenant
TENANT_HOST = {"example.com": "example-com.mail.test", "example.org": "example-org.mail.test"}


class TlsSink(Sink):
    """The Sink, speaking STARTTLS (required) and recording each client's certificate."""

    def __init__(self, context: ssl.SSLContext, port: int | None = None) -> None:
        super().__init__(port)
        self.context = context
        self.peer_certs: list[dict[str, Any] | None] = []

    def start(self) -> None:
        if self._controller is not None:
            return
        sink = self

        class Handler:
            async def handle_DATA(self, server: SMTP, session: Session, env: Envelope) -> str:
                extra = session.ssl or {}
                sink.peer_certs.append(extra.get("peercert"))
                raw = bytes(env.original_content or b"")
                sink._add(SinkMessage(env.mail_from or "", list(env.rcpt_tos), raw, 0.0))
                return "250 OK"

        controller = Controller(
            Handler(), hostname=self.host, port=self.port, decode_data=False,
            tls_context=self.context, require_starttls=True,
        )  # fmt: skip
        controller.start()
        self._controller = controller


def peer_cn(cert: dict[str, Any] | None) -> str:
    """The subject CN of a certificate as ssl.getpeercert() returns it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


OPS = "ops@example.org"  # the user of the second tenant


def tenant_catalog(folder: Path, return_hosts: dict[str, str] | None = None) -> Path:
    """The example catalog with example.com's Exchange tenant id set, and a second
    tenant, example.org (another Exchange tenant, TENANT_B_ID). ``return_hosts`` (tenant
    -> "127.0.0.1:PORT") replaces each tenant's return_host."""
    catalog = folder / "catalog"
    shutil.copytree(CATALOG, catalog)
    toml = catalog / "tenants" / "example.com" / "tenant.toml"
    toml.write_text(toml.read_text() + f'tenant_id = "{TENANT_A_ID}"\n')
    other = catalog / "tenants" / "example.org"
    (other / "templates" / "default").mkdir(parents=True)
    (other / "tenant.toml").write_text(
        'name = "Example Org"\ndomains = ["example.org"]\nmode = "full"\n'
        f'return_host = "example-org.mail.protection.outlook.com"\ntenant_id = "{TENANT_B_ID}"\n'
    )
    (other / "users.csv").write_text(f"email,display_name\n{OPS},Ops Desk\n")
    for name in ("default", "reply"):
        (other / "templates" / "default" / f"{name}.html").write_text(
            "<p>{{ display_name }} / Example Org</p>"
        )
        (other / "templates" / "default" / f"{name}.txt").write_text(
            "{{ display_name }} / Example Org"
        )
    for key, host in (return_hosts or {}).items():
        toml = catalog / "tenants" / key / "tenant.toml"
        lines = toml.read_text().splitlines()
        kept = [line for line in lines if not line.startswith("return_host")]
        toml.write_text("\n".join([*kept, f'return_host = "{host}"']) + "\n")
    return catalog


def message(
    body: str = "Running late.", tenant_id: str | None = TENANT_A_ID, **extra: str
) -> bytes:
    lines = [
        f"From: Avery Quill <{AVERY}>",
        f"To: {RCPT}",
        "Subject: security test",
        f"Message-ID: <{uuid.uuid4()}@example.com>",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    if tenant_id is not None:
        lines.append(f"X-MS-Exchange-CrossTenant-Id: {tenant_id}")
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + f"\r\n\r\n{body}\r\n").encode()


class SecureStack:
    def __init__(
        self,
        milter_config: dict[str, str | bool] | None = None,
        default_action: str = ROLE_DEFAULTS["sigfilter_milter_default_action"],
        redis: RedisServer | None = None,
    ) -> None:
        # With ``redis`` the milter serves what publish() wrote there (the fleet mode).
        self.redis = redis
        self.work = new_workdir("sigfilter-secure-")
        self.connector_ca = TestCA(self.work / "ca-connector", "Connector Root")
        self.tenant_ca = TestCA(self.work / "ca-tenants", "Tenant Root")
        self.rogue_ca = TestCA(self.work / "ca-rogue", "Rogue Root")
        self.relay_cert = self.connector_ca.issue("relay.sigfilter.test")
        self.exo_cert = self.connector_ca.issue(CONNECTOR_NAME, dns=("*." + CONNECTOR_NAME,))
        # the certificate each tenant's inbound connector knows us by (its own name)
        self.tenant_client = {
            d: self.tenant_ca.issue(f"{d.replace('.', '-')}.sigrelay.test") for d in TENANT_HOST
        }
        self.sinks = {
            d: TlsSink(server_context(self.tenant_ca.issue(host), client_ca=self.tenant_ca))
            for d, host in TENANT_HOST.items()
        }
        # The catalog is the one list of tenants: the milter's tenant check and Postfix's
        # sender-domain and return-host maps (sigfilter postfix-maps) both come from it.
        self.catalog = tenant_catalog(
            self.work, {d: f"127.0.0.1:{s.port}" for d, s in self.sinks.items()}
        )
        self.milter = MilterProcess(
            self.work / "milter",
            None if redis else self.catalog,
            redis_url=redis.url if redis else None,
            config={"connector_cert_name": CONNECTOR_NAME, "tenant_id_missing": "reject",
                    **(milter_config or {})},
        )  # fmt: skip
        self.postfix = PostfixInstance(
            self.work / "postfix", free_port(), self.sinks["example.com"].port,
            self.milter.postfix_spec,
            default_action=default_action,
            catalog=self.catalog,
            tenant_certs={d: (str(c.key), str(c.cert)) for d, c in self.tenant_client.items()},
            tls_policy={
                f"[127.0.0.1]:{s.port}": f"secure match={TENANT_HOST[d]}"
                for d, s in self.sinks.items()
            },
            overrides={
                "TLS_SMTPD_LEVEL": "encrypt",
                "TLS_SMTPD_CHAIN_FILES": self.relay_cert.chain_files,
                "TLS_SMTPD_REQ_CCERT": "yes",
                "TLS_SMTPD_CA_FILE": str(self.connector_ca.cert),
                "TLS_SMTP_LEVEL": "secure",
                "TLS_SMTP_CA_FILE": str(self.tenant_ca.cert),
            },
        )  # fmt: skip

    def publish(self) -> int:
        """Publish the stack's catalog to its Redis (as `sigfilter publish` does)."""
        assert self.redis is not None
        records = compile_catalog(load_catalog(self.catalog))
        return RedisPublisher(self.redis.client()).publish(records, {"catalog": "securestack"})

    def start(self) -> SecureStack:
        for sink in self.sinks.values():
            sink.start()
        if self.redis is not None:
            self.redis.start()
            self.publish()
        self.milter.start()
        self.postfix.start()
        return self

    def stop(self) -> None:
        try:
            self.postfix.stop()
        finally:
            self.milter.stop()
            for sink in self.sinks.values():
                sink.stop()
            if self.redis is not None:
                self.redis.stop()

    def __enter__(self) -> SecureStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None:
            shutil.rmtree(self.work, ignore_errors=True)

    def send(
        self,
        raw: bytes,
        cert: Issued | None = None,
        sender: str = AVERY,
        rcpts: tuple[str, ...] = (RCPT,),
        source: str = "127.0.0.1",
        version: ssl.TLSVersion | None = None,
    ) -> dict[str, tuple[int, bytes]]:
        """One SMTP session: EHLO, STARTTLS (presenting `cert`), MAIL, RCPT, DATA.

        Returns the refused recipients (smtplib raises if all are refused).
        """
        with smtplib.SMTP(
            "127.0.0.1", self.postfix.smtpd_port, timeout=30, source_address=(source, 0)
        ) as client:
            client.starttls(context=client_context(self.connector_ca, cert, version))
            return client.sendmail(sender, list(rcpts), raw)

    def wait_log(self, needle: str, count: int = 1, timeout: float = 30.0) -> str:
        """The Postfix log once `needle` stands in it `count` times (postlogd writes a
        moment later)."""
        deadline = time.monotonic() + timeout
        while (log := self.postfix.log_text()).count(needle) < count:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return log
