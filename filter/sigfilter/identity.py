"""Does this message belong to the tenant it claims? Pure decisions, no I/O.

Every Exchange Online tenant reaches the relay from the same addresses with the same
certificate; only the sender's canonical domain (address.py) and Exchange's tenant stamp
tell one tenant's mail from another's. These decisions fail closed (DESIGN.md): what
cannot be verified is refused — with a temporary error when a retry may succeed (the
tenant records are not loaded yet), permanently when it cannot (no tenant has the
domain, the address has no canonical form, a stamp names another tenant).

The milter holds every tenant and domain record (:class:`IdentityTable`) in memory,
loaded at start and on every publish, so none of this waits on Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .address import Address, AddressError, canonical_address
from .catalog import TenantRecord
from .defaults import IDENTITY_KEY

Action = Literal["continue", "reject", "tempfail"]


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str = ""
    text: str = ""  # the SMTP reply text when refused
    fields: Mapping[str, str] = field(default_factory=dict)  # extra log fields

    @property
    def refused(self) -> bool:
        return self.action != "continue"


CONTINUE = Verdict("continue")


@dataclass(frozen=True, slots=True)
class IdentityTable:
    """Every tenant of one published version, by canonical sender domain."""

    version: int | None
    domains: Mapping[str, TenantRecord]

    def tenant(self, domain: str) -> TenantRecord | None:
        return self.domains.get(domain)

    @classmethod
    def from_records(cls, records: Mapping[str, bytes], version: int | None) -> IdentityTable:
        """From a version's records: its ``identity`` record, else its tenant/domain ones."""
        held = records.get(IDENTITY_KEY)
        if held is not None:
            return cls.from_json(held, version)
        tenants = {
            k.partition(":")[2]: TenantRecord.from_json(v)
            for k, v in records.items()
            if k.startswith("tenant:")
        }
        domains = {}
        for key, value in records.items():
            if key.startswith("domain:") and value.decode() in tenants:
                domains[key.partition(":")[2]] = tenants[value.decode()]
        return cls(version, domains)

    @classmethod
    def from_json(cls, data: bytes, version: int | None) -> IdentityTable:
        raw = json.loads(data)
        tenants = {
            key: TenantRecord.from_json(json.dumps(value).encode())
            for key, value in raw["tenants"].items()
        }
        return cls(version, {d: tenants[k] for d, k in raw["domains"].items() if k in tenants})


def connector_verdict(subject: str, wanted: str) -> Verdict:
    """At MAIL FROM: did the client present the connector's certificate?

    ``subject`` is Postfix's {cert_subject} macro ("" without a certificate), ``wanted``
    the configured name ("" = no check). Postfix has verified the certificate already;
    any certificate from a public CA would verify, so the name is what tells.
    """
    if not wanted or subject.lower() == wanted.lower():
        return CONTINUE
    reason = "no-client-cert" if not subject else "wrong-client-cert"
    text = "client certificate is not the connector's"
    return Verdict("reject", reason, text, {"cert_subject": subject})


def sender_verdict(
    mailfrom: str, table: IdentityTable | None
) -> tuple[Verdict, Address | None, TenantRecord | None]:
    """At MAIL FROM: the sender's canonical address and tenant, or why it is refused."""
    try:
        address = canonical_address(mailfrom)
    except AddressError as exc:
        text = "sender address cannot be mapped to a tenant"
        return Verdict("reject", exc.reason, text), None, None
    if table is None:
        text = "tenant records are not loaded yet, try again later"
        return Verdict("tempfail", "identity-unavailable", text), address, None
    tenant = table.tenant(address.domain)
    if tenant is None:
        text = "sender domain belongs to no tenant of this relay"
        return Verdict("reject", "unknown-sender", text), address, None
    return CONTINUE, address, tenant


def stamp_verdict(
    tenant: TenantRecord, stamps: Iterable[bytes], mismatch: str, missing: str
) -> Verdict:
    """At end of headers: do Exchange's tenant stamps name the sender domain's tenant?

    ``mismatch`` is reject|tempfail, ``missing`` reject|tempfail|accept (config.py).
    An ``accept`` verdict for a missing stamp continues with ``reason`` set, so the
    message's log line says it was not verified.
    """
    found = {s.strip().lower() for s in stamps}
    expected = tenant.tenant_id.strip().lower()
    if not found or not expected:
        reason = "tenant-id-missing" if not found else "tenant-id-unset"
        if missing == "accept":
            return Verdict("continue", reason)
        text = "message carries no verifiable tenant"
        return Verdict(_action(missing), reason, text, {"tenant": tenant.key})
    if found == {expected.encode()}:
        return CONTINUE
    stamped = b",".join(sorted(found)).decode("latin-1")
    text = "message is not from the sender domain's tenant"
    fields = {"tenant": tenant.key, "stamped": stamped}
    return Verdict(_action(mismatch), "tenant-id-mismatch", text, fields)


def _action(name: str) -> Action:
    return "tempfail" if name == "tempfail" else "reject"  # anything unknown refuses
