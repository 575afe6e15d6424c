"""Not an open relay, and no cross-tenant mail: through real Postfix, milter and sinks.

The stack (tests/harness/securestack.py) runs the production inbound policy: only 127.0.0.1 is
a connector source, TLS with a client certificate from the connector CA is required,
the milter checks the certificate's name and the Exchange tenant stamp.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from harness.securestack import (
    AVERY,
    CONNECTOR_NAME,
    OPS,
    RCPT,
    TENANT_A_ID,
    TENANT_B_ID,
    SecureStack,
    message,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[SecureStack]:
    with SecureStack() as running:
        yield running


@pytest.fixture(autouse=True)
def empty_sinks(stack: SecureStack) -> None:
    for sink in stack.sinks.values():
        sink.clear()


def nothing_relayed(stack: SecureStack) -> None:
    stack.postfix.flush()
    assert stack.postfix.queue_size() == 0
    assert all(not sink.messages for sink in stack.sinks.values())


def test_connector_with_its_certificate_is_relayed_and_signed(stack: SecureStack) -> None:
    stack.send(message(), cert=stack.exo_cert)
    (got,) = stack.sinks["example.com"].wait_for(1, timeout=30)
    assert b"X-Sigfilter-Processed: 1" in got.data
    assert got.rcpt_tos == [RCPT]
    # Postfix's Received: line records the verified connector certificate
    verified = b'(Client CN "mail.protection.outlook.com", Issuer "Connector Root" (verified OK))'
    assert verified in got.data


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.3"])
def test_other_addresses_are_refused(stack: SecureStack, source: str) -> None:
    # the right certificate, a tenant sender, but not from a connector address
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        stack.send(message(), cert=stack.exo_cert, source=source)
    code, text = err.value.recipients[RCPT]
    assert code == 554 and b"Access denied" in text, (code, text)
    assert f"[{source}]" in stack.wait_log(f"reject: RCPT from unknown[{source}]")
    nothing_relayed(stack)


def test_plain_smtp_without_starttls_is_refused(stack: SecureStack) -> None:
    with smtplib.SMTP("127.0.0.1", stack.postfix.smtpd_port, timeout=30) as client:
        code, text = client.mail(AVERY)
    assert code == 530 and b"STARTTLS" in text, (code, text)
    nothing_relayed(stack)


def test_no_client_certificate_is_refused(stack: SecureStack) -> None:
    needle = "abort: TLS from unknown[127.0.0.1]: No client certificate presented"
    before = stack.postfix.log_text().count(needle)
    with pytest.raises(smtplib.SMTPServerDisconnected):  # smtpd ends the session
        stack.send(message(), cert=None)
    assert stack.wait_log(needle, before + 1).count(needle) == before + 1
    nothing_relayed(stack)


def test_certificate_from_another_ca_is_refused(stack: SecureStack) -> None:
    rogue = stack.rogue_ca.issue(CONNECTOR_NAME)  # the right name, an untrusted issuer
    with pytest.raises(smtplib.SMTPServerDisconnected):  # smtpd ends the session
        stack.send(message(), cert=rogue)
    log = stack.wait_log("Client certificate not trusted")
    assert "untrusted issuer /O=sigfilter tests/CN=Rogue Root" in log
    assert "abort: TLS from unknown[127.0.0.1]: Client certificate not trusted" in log
    nothing_relayed(stack)


def test_trusted_certificate_with_another_name_is_refused_by_the_milter(
    stack: SecureStack,
) -> None:
    other = stack.connector_ca.issue("smtp.evil.example")  # verifies, but is not EXO's
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        stack.send(message(), cert=other)
    assert err.value.smtp_code == 550 and b"5.7.1" in err.value.smtp_error
    log = stack.milter.wait_log("reason=wrong-client-cert")
    assert "reason=wrong-client-cert" in log and "cert_subject=smtp.evil.example" in log
    nothing_relayed(stack)


@pytest.mark.parametrize("sender", ["mallory@evil.example", "avery.quill@sub.example.com", ""])
def test_sender_domain_of_no_tenant_is_refused(stack: SecureStack, sender: str) -> None:
    with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)) as err:
        stack.send(message(), cert=stack.exo_cert, sender=sender)
    text = str(err.value)
    # The milter refuses at MAIL FROM (no tenant has the domain; the null sender has
    # none); Postfix's tenant_senders map would refuse at RCPT TO otherwise.
    assert "550" in text and "5.7.1" in text, text
    nothing_relayed(stack)


# Other spellings of a tenant's sender (issue 12, finding 1): Postfix routes the
# canonical address (one trailing dot stripped, case ignored, quotes removed), so the
# milter decides on the same address.
SPELLINGS = ["avery.quill@example.com.", "Avery.Quill@EXAMPLE.COM", '"AVERY.QUILL"@Example.Com.']


@pytest.mark.parametrize("sender", SPELLINGS)
def test_other_spellings_of_a_real_user_are_signed(stack: SecureStack, sender: str) -> None:
    stack.send(message(), cert=stack.exo_cert, sender=sender)
    (got,) = stack.sinks["example.com"].wait_for(1, timeout=30)
    body = got.data.partition(b"\r\n\r\n")[2]
    assert b"Avery Quill" in body and b"Head of Mail Flow" in body
    assert b"X-Sigfilter-Processed: 1" in got.data


@pytest.mark.parametrize("tenant_id", [TENANT_B_ID, None], ids=["foreign-stamp", "no-stamp"])
@pytest.mark.parametrize("sender", [*SPELLINGS, "ceo@example.com.", "CEO@EXAMPLE.COM."])
def test_other_spellings_with_a_foreign_or_no_stamp_are_refused(
    stack: SecureStack, sender: str, tenant_id: str | None
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as err:
        stack.send(message(tenant_id=tenant_id), cert=stack.exo_cert, sender=sender)
    assert err.value.smtp_code == 550 and b"5.7.1" in err.value.smtp_error
    nothing_relayed(stack)


@pytest.mark.parametrize(
    "sender", ["avery.quill@example.com..", "@evil.example:avery.quill@example.com"]
)
def test_addresses_without_a_canonical_form_are_refused(stack: SecureStack, sender: str) -> None:
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)) as err:
        stack.send(message(), cert=stack.exo_cert, sender=sender)
    assert "5.7.1" in str(err.value) or "5.1.7" in str(err.value), str(err.value)
    nothing_relayed(stack)


def test_recipients_never_choose_the_route(stack: SecureStack) -> None:
    """Whatever the recipients say, the message goes to the sender tenant's return host."""
    rcpts = (
        "victim@example.org",  # another tenant's domain: its own return host exists
        "victim%example.org@example.com",  # the percent hack
        "example.org!victim@example.com",  # a bang path
        "victim@relay.sigfilter.test",  # our own name
    )
    refused = stack.send(message(), cert=stack.exo_cert, rcpts=(*rcpts, "victim@[127.0.0.1]"))
    assert list(refused) == ["victim@[127.0.0.1]"]  # an address literal: refused at RCPT
    code, text = refused["victim@[127.0.0.1]"]
    assert code == 554 and b"address literals are not relayed" in text
    sink = stack.sinks["example.com"]
    sink.wait_for(1, timeout=30)
    delivered: list[str] = []
    for _ in range(200):  # Postfix may split the recipients over several deliveries
        delivered = sorted(r for m in sink.messages for r in m.rcpt_tos)
        if len(delivered) >= len(rcpts):
            break
        time.sleep(0.05)
    assert delivered == sorted(rcpts), stack.postfix.log_text()[-3000:]
    assert stack.sinks["example.org"].messages == []
    assert stack.postfix.queue_size() == 0


def test_each_tenant_returns_to_its_own_host(stack: SecureStack) -> None:
    # example.org is the second tenant (its own Exchange tenant id)
    stack.send(message(tenant_id=TENANT_B_ID), cert=stack.exo_cert, sender=OPS,
               rcpts=("someone@example.com",))  # fmt: skip
    (got,) = stack.sinks["example.org"].wait_for(1, timeout=30)
    assert got.mail_from == OPS
    assert b"Ops Desk / Example Org" in got.data
    assert stack.sinks["example.com"].messages == []


# -- tenant isolation ------------------------------------------------------------------


def test_matching_tenant_stamp_is_signed(stack: SecureStack) -> None:
    stack.send(message(tenant_id=TENANT_A_ID.upper()), cert=stack.exo_cert)
    (got,) = stack.sinks["example.com"].wait_for(1, timeout=30)
    assert b"Avery Quill" in got.data.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message(tenant_id=TENANT_B_ID), "tenant-id-mismatch"),
        (
            message(tenant_id=TENANT_A_ID, **{"X-MS-Exchange-CrossTenant-Id": TENANT_B_ID}),
            "tenant-id-mismatch",
        ),
        (message(tenant_id=None), "tenant-id-missing"),
    ],
    ids=["other-tenant", "two-stamps", "no-stamp"],
)
def test_foreign_or_missing_tenant_stamp_is_refused(
    stack: SecureStack, raw: bytes, reason: str
) -> None:
    needle = f"action=rejected reason={reason}"
    before = stack.milter.log_text().count(needle)
    with pytest.raises(smtplib.SMTPDataError) as err:
        stack.send(raw, cert=stack.exo_cert)
    assert err.value.smtp_code == 550 and b"5.7.1" in err.value.smtp_error
    log = stack.milter.wait_log(needle, before + 1)
    assert log.count(needle) == before + 1, log[-2000:]
    nothing_relayed(stack)
