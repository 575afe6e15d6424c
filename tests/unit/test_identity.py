"""The identity decisions (identity.py) as tables: every case fails closed."""

from __future__ import annotations

import pytest

from sigfilter.catalog import TenantRecord
from sigfilter.identity import IdentityTable, connector_verdict, sender_verdict, stamp_verdict

A_ID = "11111111-2222-4333-8444-555555555555"
B_ID = "99999999-8888-4777-8666-555555555555"


def tenant(key: str, tenant_id: str, *domains: str) -> TenantRecord:
    return TenantRecord(
        key=key, name=key, domains=domains, mode="full", marker="{EMAILSIGNATURE}",
        plain_to_html=False, return_host="", tenant_id=tenant_id, internal_domains=domains,
    )  # fmt: skip


A = tenant("a", A_ID, "example.com", "xn--exmple-cua.com")
B = tenant("b", B_ID, "example.org")
TABLE = IdentityTable(7, {d: t for t in (A, B) for d in t.domains})

# (MAIL FROM, action, reason, tenant key)
SENDERS = [
    ("<ceo@example.com>", "continue", "", "a"),
    ("<ceo@example.com.>", "continue", "", "a"),
    ("<CEO@EXAMPLE.COM.>", "continue", "", "a"),
    ('<"ceo"@Example.Com>', "continue", "", "a"),
    ("<ceo@exämple.com>", "continue", "", "a"),
    ("<x@example.org>", "continue", "", "b"),
    ("<ceo@sub.example.com>", "reject", "unknown-sender", None),  # subdomains are not ours
    ("<ceo@example.net>", "reject", "unknown-sender", None),
    ("<>", "reject", "null-sender", None),
    ("<ceo@example.com..>", "reject", "bad-domain", None),
    ("<@evil.example:ceo@example.com>", "reject", "bad-address", None),
    ("<ceo@[127.0.0.1]>", "reject", "bad-domain", None),
]


@pytest.mark.parametrize(("mailfrom", "action", "reason", "key"), SENDERS)
def test_sender(mailfrom: str, action: str, reason: str, key: str | None) -> None:
    verdict, _, found = sender_verdict(mailfrom, TABLE)
    assert (verdict.action, verdict.reason) == (action, reason)
    assert (found.key if found else None) == key


def test_nothing_held_is_a_temporary_refusal() -> None:
    verdict, address, found = sender_verdict("<ceo@example.com>", None)
    assert (verdict.action, verdict.reason, found) == ("tempfail", "identity-unavailable", None)
    assert address is not None and address.text == "ceo@example.com"
    # A malformed address is refused permanently even then.
    assert sender_verdict("<ceo@[1.2.3.4]>", None)[0].action == "reject"


# (stamps, mismatch, missing, action, reason)
STAMPS = [
    ([A_ID.encode()], "reject", "reject", "continue", ""),
    ([A_ID.upper().encode() + b" "], "reject", "reject", "continue", ""),
    ([A_ID.encode(), A_ID.encode()], "reject", "reject", "continue", ""),
    ([B_ID.encode()], "reject", "reject", "reject", "tenant-id-mismatch"),
    ([B_ID.encode()], "tempfail", "reject", "tempfail", "tenant-id-mismatch"),
    ([A_ID.encode(), B_ID.encode()], "reject", "accept", "reject", "tenant-id-mismatch"),
    ([b""], "reject", "reject", "reject", "tenant-id-mismatch"),
    ([], "reject", "reject", "reject", "tenant-id-missing"),
    ([], "reject", "tempfail", "tempfail", "tenant-id-missing"),
    ([], "reject", "accept", "continue", "tenant-id-missing"),  # the dev profile
    ([B_ID.encode()], "reject", "accept", "reject", "tenant-id-mismatch"),
    ([A_ID.encode()], "bogus", "bogus", "continue", ""),
    ([B_ID.encode()], "bogus", "bogus", "reject", "tenant-id-mismatch"),  # unknown = refuse
]


@pytest.mark.parametrize(("stamps", "mismatch", "missing", "action", "reason"), STAMPS)
def test_stamps(stamps: list[bytes], mismatch: str, missing: str, action: str, reason: str) -> None:
    verdict = stamp_verdict(A, stamps, mismatch, missing)
    assert (verdict.action, verdict.reason) == (action, reason)


def test_tenant_without_id_is_unverifiable() -> None:
    unset = tenant("c", "", "example.net")
    assert stamp_verdict(unset, [A_ID.encode()], "reject", "reject").reason == "tenant-id-unset"
    assert stamp_verdict(unset, [A_ID.encode()], "reject", "reject").action == "reject"


def test_table_from_records_with_and_without_the_identity_record() -> None:
    records = {
        "tenant:a": A.to_json(), "tenant:b": B.to_json(),
        "domain:example.com": b"a", "domain:example.org": b"b", "domain:orphan.example": b"zz",
    }  # fmt: skip
    old = IdentityTable.from_records(records, 3)
    assert {d: t.key for d, t in old.domains.items()} == {"example.com": "a", "example.org": "b"}


CONNECTOR = "mail.protection.outlook.com"

# ({cert_subject}, wanted name, action, reason)
CONNECTORS = [
    ("mail.protection.outlook.com", CONNECTOR, "continue", ""),
    ("MAIL.Protection.Outlook.COM", CONNECTOR, "continue", ""),  # names are case-blind
    ("", CONNECTOR, "reject", "no-client-cert"),
    ("mx.evil.example", CONNECTOR, "reject", "wrong-client-cert"),
    ("mail.protection.outlook.com.evil.example", CONNECTOR, "reject", "wrong-client-cert"),
    ("evil.mail.protection.outlook.com", CONNECTOR, "reject", "wrong-client-cert"),
    ("", "", "continue", ""),  # the check switched off (the dev profile)
    ("anyone.example", "", "continue", ""),
]


@pytest.mark.parametrize(("subject", "wanted", "action", "reason"), CONNECTORS)
def test_connector_verdicts(subject: str, wanted: str, action: str, reason: str) -> None:
    verdict = connector_verdict(subject, wanted)
    assert (verdict.action, verdict.reason) == (action, reason)
    if verdict.refused:  # the log line names whose certificate it was
        assert verdict.fields == {"cert_subject": subject} and verdict.text
