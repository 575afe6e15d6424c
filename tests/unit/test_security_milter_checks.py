"""The milter's connector and tenant checks driven directly: every policy, reply and count.

The same checks run through the real stack in tests/integration/test_security_relay.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sigfilter.milter.callbacks import (
    ACCEPT,
    CONTINUE,
    REJECT,
    TEMPFAIL,
    MilterSettings,
    SigfilterMilter,
)
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.ops.metrics import Metrics
from sigfilter.service import SignatureService, embedded_store
from support import milter_runtime

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
TENANT_A = "11111111-2222-4333-8444-555555555555"
TENANT_B = "99999999-8888-4777-8666-555555555555"
EXO = "mail.protection.outlook.com"
METRICS = Metrics()  # this module's counts, over all its tests (they compare before/after)


class Recorder(SigfilterMilter):
    """Records replies; `macros` stands in for what Postfix sends."""

    def __init__(self, runtime: Runtime, macros: dict[str, str]) -> None:
        super().__init__(RuntimeHolder(runtime))
        self._protocol = 0
        self.macros = macros
        self.replies: list[tuple[str, str, str]] = []
        self.edits = 0

    def getsymval(self, sym: str) -> str | None:
        return self.macros.get(sym)

    def setreply(self, rcode: str, xcode: str, msg: str) -> None:
        self.replies.append((rcode, xcode, msg))

    def replacebody(self, body: bytes) -> None:
        self.edits += 1

    def addheader(self, name: str, value: str, idx: int = -1) -> None:
        self.edits += 1

    def chgheader(self, name: str, idx: int, value: str) -> None:
        self.edits += 1


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> SignatureService:
    catalog = tmp_path_factory.mktemp("cat") / "catalog"
    shutil.copytree(CATALOG, catalog)
    toml = catalog / "tenants" / "example.com" / "tenant.toml"
    toml.write_text(toml.read_text() + f'tenant_id = "{TENANT_A}"\n')
    return SignatureService(embedded_store(catalog))


def run(
    service: SignatureService,
    stamps: list[str],
    cert: str | None = EXO,
    sender: str = "avery.quill@example.com",
    **settings: str,
) -> tuple[Recorder, int]:
    policy = MilterSettings(**settings)  # type: ignore[arg-type]
    with milter_runtime(service, policy, metrics=METRICS) as runtime:
        return _drive(runtime, stamps, cert, sender)


def _drive(
    runtime: Runtime, stamps: list[str], cert: str | None, sender: str
) -> tuple[Recorder, int]:
    m = Recorder(runtime, {"i": "QID1", **({"{cert_subject}": cert} if cert is not None else {})})
    code = m.envfrom(f"<{sender}>")
    if code != CONTINUE:
        return m, code
    m.envrcpt("<jane@customer.example>")
    headers = [("From", sender), ("Content-Type", "text/plain; charset=us-ascii")]
    headers += [("X-MS-Exchange-CrossTenant-Id", s) for s in stamps]
    for name, value in headers:
        m.header(name.encode(), value.encode())
    code = m.eoh()
    if code != CONTINUE:
        return m, code
    m.body(b"Hello.\r\n\r\nSent from my iPhone\r\n")
    return m, m.eom()


def count(key: str) -> float:
    """Messages decided as ``action:reason`` so far, over all tenants (from the metrics)."""
    action, reason = key.split(":", 1)
    return sum(
        sample.value
        for metric in METRICS.registry.collect()
        for sample in metric.samples
        if sample.name == "sigfilter_messages_total"
        and sample.labels.get("action") == action
        and sample.labels.get("reason") == reason
    )


def test_own_tenant_with_connector_certificate_is_signed(service: SignatureService) -> None:
    m, code = run(service, [TENANT_A.upper()])
    assert code == ACCEPT and m.replies == [] and m.edits > 0


@pytest.mark.parametrize(("cert", "reason"), [(None, "no-client-cert"), ("", "no-client-cert"),
                                              ("evil.example", "wrong-client-cert")])  # fmt: skip
def test_other_client_certificates_are_refused_at_mail_from(
    service: SignatureService, cert: str | None, reason: str
) -> None:
    before = count(f"rejected:{reason}")
    m, code = run(service, [TENANT_A], cert=cert)
    assert code == REJECT and m.replies == [
        ("550", "5.7.1", "client certificate is not the connector's")
    ]
    assert count(f"rejected:{reason}") == before + 1
    assert m.edits == 0


def test_certificate_check_can_be_switched_off(service: SignatureService) -> None:
    _, code = run(service, [TENANT_A], cert=None, connector_cert_name="")
    assert code == ACCEPT


@pytest.mark.parametrize("stamps", [[TENANT_B], [TENANT_A, TENANT_B], ["not-a-guid\x00"]])
@pytest.mark.parametrize(("policy", "want", "reply"), [("reject", REJECT, "550"), ("tempfail", TEMPFAIL, "451")])  # fmt: skip
def test_foreign_stamp_follows_the_mismatch_policy(
    service: SignatureService, stamps: list[str], policy: str, want: int, reply: str
) -> None:
    action = "rejected" if policy == "reject" else "tempfailed"
    key = f"{action}:tenant-id-mismatch"
    before = count(key)
    m, code = run(service, stamps, tenant_id_mismatch=policy)
    assert code == want and m.replies[0][0] == reply and m.edits == 0
    assert count(key) == before + 1


@pytest.mark.parametrize(("policy", "want"), [("reject", REJECT), ("tempfail", TEMPFAIL), ("accept", ACCEPT)])  # fmt: skip
def test_missing_stamp_follows_the_missing_policy(
    service: SignatureService, policy: str, want: int
) -> None:
    m, code = run(service, [], tenant_id_missing=policy)
    assert code == want
    assert (m.edits > 0) == (policy == "accept")  # accept: signed as before


def test_tenant_without_id_in_catalog_counts_as_missing() -> None:
    plain = SignatureService(embedded_store(CATALOG))  # example.com has no tenant_id
    before = count("rejected:tenant-id-unset")
    _, code = run(plain, [TENANT_A])
    assert code == REJECT
    assert count("rejected:tenant-id-unset") == before + 1


def test_unknown_sender_domain_is_refused(service: SignatureService) -> None:
    # Not ours: refused by the milter too, so a domain Postfix relays but the catalog
    # does not know never passes unchecked (issue 12).
    m, code = run(service, [TENANT_B], sender="x@elsewhere.example")
    assert code == REJECT
    assert m.replies == [("550", "5.7.1", "sender domain belongs to no tenant of this relay")]


@pytest.mark.parametrize("sender", ["avery.quill@example.com.", "AVERY.QUILL@Example.COM."])
def test_other_spellings_get_the_stamp_check(service: SignatureService, sender: str) -> None:
    # The trailing-dot bypass of issue 12: the foreign stamp is refused, no stamp too.
    _, code = run(service, [TENANT_B], sender=sender)
    assert code == REJECT
    _, code = run(service, [], sender=sender)
    assert code == REJECT
    m, code = run(service, [TENANT_A], sender=sender)
    assert code == ACCEPT and m.edits > 0  # the real user is signed
