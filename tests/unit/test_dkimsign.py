"""DKIM and ARC after the rewrite, checked with dkimpy's own verify and arc_verify.

Keys are real RSA keys made by openssl; DNS is answered by FakeDns from the records
``txt_record`` publishes. Each signature test also shows the check failing on a
tampered copy, so a pass means something.
"""

from __future__ import annotations

import time

import dkim
import dkim.util
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from dkimtest import (
    ARC_SELECTOR,
    RELAY,
    TENANT_DOMAIN,
    TENANT_SELECTOR,
    FakeDns,
    add_hop,
    make_key,
    presign,
)
from sigfilter.dkim.sign import (
    AuthChanges,
    AuthPolicy,
    SigningError,
    SigningKey,
    auth_changes,
    relaxed_body,
    signed_message,
)
from sigfilter.engine import Options, Result, rewrite
from sigfilter.mime.headers import parse_header_block
from support import MESSAGES, SIGNATURE, to_crlf
from tnefdata import corpus_message


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("tenant", "relay", "hop")}


@pytest.fixture
def dns(keys: dict[str, bytes]) -> FakeDns:
    d = FakeDns()
    d.publish(TENANT_SELECTOR, TENANT_DOMAIN, keys["tenant"])
    d.publish(ARC_SELECTOR, RELAY, keys["relay"])
    for hop in ("hop1.test", "hop2.test"):
        d.publish(ARC_SELECTOR, hop, keys["hop"])
    return d


def policy(keys: dict[str, bytes], dkim_policy: str = "resign", arc: bool = False) -> AuthPolicy:
    return AuthPolicy(
        dkim=dkim_policy,  # type: ignore[arg-type]
        key=SigningKey(TENANT_DOMAIN, TENANT_SELECTOR, keys["tenant"]),
        arc=arc,
        arc_key=SigningKey(RELAY, ARC_SELECTOR, keys["relay"]) if arc else None,
        authserv_id=RELAY if arc else "",
    )


def original(name: str = "c01_outlook_reply-en.eml") -> bytes:
    return to_crlf((MESSAGES / name).read_bytes())


def rewritten(raw: bytes) -> Result:
    result = rewrite(raw, SIGNATURE)
    assert result.signed, result.reason
    return result


def run(raw: bytes, pol: AuthPolicy, dns: FakeDns) -> tuple[AuthChanges, bytes]:
    result = rewritten(raw)
    assert result.body is not None
    changes = auth_changes(raw, result.body, result.header_edits, pol, dns, int(time.time()))
    return changes, signed_message(raw, result.body, result.header_edits, changes)


def tamper(message: bytes, old: bytes, new: bytes) -> bytes:
    assert old in message
    return message.replace(old, new, 1)


def dkim_fields(message: bytes) -> list[bytes]:
    block = parse_header_block(message)
    return [message[f.start : f.end] for f in block.get_all("dkim-signature")]


# -- resign ---------------------------------------------------------------------------


def test_resigned_message_verifies_and_a_tampered_byte_fails(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    raw = presign(original(), keys["tenant"])
    assert dkim.verify(raw, dnsfunc=dns)  # the original signature is good …
    changes, out = run(raw, policy(keys), dns)
    assert dkim.verify(out, dnsfunc=dns)  # … ours is good on the new message …
    assert len(dkim_fields(out)) == 1  # … and the one our rewrite broke is gone
    assert changes.delete == (("DKIM-Signature", 1),)
    assert [n for n, _ in changes.insert] == ["DKIM-Signature"]
    assert not dkim.verify(tamper(out, b"Q3 numbers tomorrow", b"Q4 numbers tomorrow"), dnsfunc=dns)
    assert not dkim.verify(tamper(out, b"Subject: RE: Q3", b"Subject: RE: Q4"), dnsfunc=dns)


def test_signature_survives_postfix_received_and_does_not_sign_it(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    _, out = run(original(), policy(keys), dns)
    tags = dkim.util.parse_tag_value(dkim_fields(out)[0].split(b":", 1)[1])
    assert b"received" not in tags[b"h"].lower()
    assert b"x-sigfilter-processed" not in tags[b"h"].lower()
    received = b"Received: from relay (localhost [127.0.0.1])\r\n\tby mx.test (Postfix) with ESMTP id 4AB\r\n"
    # Postfix puts its Received between our inserted fields and the original header block.
    first = parse_header_block(out).fields[0]
    moved = out[: first.end] + received + out[first.end :]
    assert dkim.verify(moved, dnsfunc=dns)


def test_processed_header_is_where_postfix_appends_it(keys: dict[str, bytes], dns: FakeDns) -> None:
    _, out = run(original(), policy(keys), dns)
    assert parse_header_block(out).fields[-1].name == "x-sigfilter-processed"


def test_non_ascii_header_is_signed_byte_for_byte(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = original().replace(
        b"Subject: RE: Q3 numbers", "Subject: RE: Grüße zu Q3 – Zahlen".encode()
    )
    _, out = run(raw, policy(keys), dns)
    assert "Grüße".encode() in out
    assert dkim.verify(out, dnsfunc=dns)
    assert not dkim.verify(tamper(out, "Grüße".encode(), "Grüsse".encode()), dnsfunc=dns)


def test_lf_input_is_signed_as_the_crlf_postfix_sends(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = original().replace(b"\r\n", b"\n")
    result = rewritten(raw)
    assert result.body is not None
    changes = auth_changes(raw, result.body, result.header_edits, policy(keys), dns, 0)
    out = signed_message(raw, result.body, result.header_edits, changes)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert dkim.verify(out, dnsfunc=dns)


def test_single_part_message_header_edits_are_signed(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = (
        b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\n"
        b"Subject: plain\r\nMessage-ID: <p@test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nHi Jane,\r\nsee you.\r\n"
    )
    result = rewritten(raw)  # the signature's non-ASCII text needs a new charset
    assert result.header_edits, "this message needs top-level header edits"
    _, out = run(raw, policy(keys), dns)
    assert dkim.verify(out, dnsfunc=dns)
    ctype = parse_header_block(out).get("content-type")
    assert ctype is not None
    assert not dkim.verify(tamper(out, ctype.value.encode()[:20], b"text/html; charset=x"[:20]),
                           dnsfunc=dns)  # fmt: skip


def test_resign_without_a_key_is_refused(keys: dict[str, bytes], dns: FakeDns) -> None:
    result = rewritten(original())
    assert result.body is not None
    with pytest.raises(SigningError) as caught:
        auth_changes(original(), result.body, result.header_edits, AuthPolicy("resign"), dns, 0)
    assert caught.value.reason == "dkim-key"


def test_key_is_never_in_the_policy_repr(keys: dict[str, bytes]) -> None:
    assert b"PRIVATE" in keys["tenant"]
    assert "PRIVATE" not in repr(policy(keys, arc=True))


# -- keep and strip --------------------------------------------------------------------


def test_keep_changes_nothing_and_the_old_signature_now_fails(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    raw = presign(original(), keys["tenant"])
    changes, out = run(raw, policy(keys, "keep"), dns)
    assert changes.delete == () and changes.insert == ()
    assert dkim_fields(out) == dkim_fields(raw)
    # Why "keep" is only safe where the last hop signs again (Exchange Online does):
    assert not dkim.verify(out, dnsfunc=dns)


def test_strip_removes_every_broken_signature(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = presign(presign(original(), keys["tenant"]), keys["hop"], "arc1", "hop1.test")
    changes, out = run(raw, policy(keys, "strip"), dns)
    assert changes.delete == (("DKIM-Signature", 2), ("DKIM-Signature", 1))  # highest first
    assert changes.insert == ()
    assert dkim_fields(out) == []


def _signed_over_new_body(raw: bytes, pem: bytes, length: bool) -> bytes:
    """``raw`` plus a signature made over its rewritten body (so our change keeps it)."""
    result = rewritten(raw)
    assert result.body is not None
    head = raw[: parse_header_block(raw).end]
    sig = presign(head + result.body, pem, "keep1", TENANT_DOMAIN, length=length)
    return sig[: len(sig) - len(head + result.body)] + raw


def test_strip_keeps_a_signature_whose_body_hash_still_holds(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    raw = _signed_over_new_body(presign(original(), keys["tenant"]), keys["tenant"], length=False)
    changes, out = run(raw, policy(keys, "strip"), dns)
    assert changes.delete == (("DKIM-Signature", 2),)  # the EXO-style one below it
    kept = dkim_fields(out)
    assert len(kept) == 1 and b"s=keep1" in kept[0]


def test_strip_treats_l_as_broken(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = _signed_over_new_body(original(), keys["tenant"], length=True)
    assert b"l=" in dkim_fields(raw)[0]
    changes, out = run(raw, policy(keys, "strip"), dns)
    assert changes.delete == (("DKIM-Signature", 1),)
    assert dkim_fields(out) == []


# -- ARC -------------------------------------------------------------------------------


def _chain(raw: bytes, keys: dict[str, bytes], prior: int) -> bytes:
    for n in range(1, prior + 1):
        raw = add_hop(raw, keys["hop"], f"hop{n}.test", "pass" if n > 1 else "")
    return raw


@pytest.mark.parametrize("prior", [0, 1, 2])
def test_arc_chain_validates_with_our_set_as_the_next_instance(
    keys: dict[str, bytes], dns: FakeDns, prior: int
) -> None:
    raw = _chain(presign(original(), keys["tenant"]), keys, prior)
    if prior:
        assert dkim.arc_verify(raw, dnsfunc=dns)[0] == dkim.CV_Pass
    changes, out = run(raw, policy(keys, "resign", arc=True), dns)
    instance = prior + 1
    assert f"arc=i{instance}" in changes.notes
    cv, results, reason = dkim.arc_verify(out, dnsfunc=dns)
    assert cv == dkim.CV_Pass, reason
    assert [r["instance"] for r in results] == list(range(instance, 0, -1))
    ours = results[0]
    assert ours["as-domain"] == RELAY.encode() and ours["ams-valid"] and ours["as-valid"]
    assert ours["cv"] == (b"pass" if prior else b"none")
    aar = ours["aar-value"]
    assert f"i={instance}; {RELAY}".encode() in aar
    assert b"dkim=pass header.d=example.com header.s=sig1" in aar
    assert (b"arc=pass" in aar) == bool(prior)
    assert dkim.verify(out, dnsfunc=dns)
    broken = tamper(out, b"Q3 numbers tomorrow", b"Q4 numbers tomorrow")
    assert dkim.arc_verify(broken, dnsfunc=dns)[0] == dkim.CV_Fail


def test_arc_records_a_failing_original_signature(keys: dict[str, bytes], dns: FakeDns) -> None:
    raw = tamper(presign(original(), keys["tenant"]), b"Hi Jane", b"Hi June")
    _, out = run(raw, policy(keys, "keep", arc=True), dns)
    cv, results, _ = dkim.arc_verify(out, dnsfunc=dns)
    assert cv == dkim.CV_Pass
    assert b"dkim=fail header.d=example.com" in results[0]["aar-value"]


def test_arc_without_dkim_says_dkim_none(keys: dict[str, bytes], dns: FakeDns) -> None:
    _, out = run(original(), policy(keys, "keep", arc=True), dns)
    cv, results, _ = dkim.arc_verify(out, dnsfunc=dns)
    assert cv == dkim.CV_Pass
    assert b"dkim=none" in results[0]["aar-value"]


def test_forged_results_with_our_authserv_id_are_not_sealed(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    forged = f"Authentication-Results: {RELAY.upper()}; spf=pass smtp.mailfrom=ceo@example.com\r\n"
    theirs = "Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=example.com\r\n"
    raw = theirs.encode() + forged.encode() + original()
    changes, out = run(raw, policy(keys, "keep", arc=True), dns)
    cv, results, _ = dkim.arc_verify(out, dnsfunc=dns)
    assert cv == dkim.CV_Pass
    assert b"spf=pass" not in results[0]["aar-value"]
    # RFC 8601 §5: the forged field is deleted from the message, the other MTA's stays.
    assert changes.delete == (("Authentication-Results", 2),)
    assert forged.encode() not in out and theirs.encode() in out


def test_dkimpy_seals_nothing_without_our_authentication_results(keys: dict[str, bytes]) -> None:
    """The upstream behaviour the issue warns about: no AR with our id, no ARC set."""
    bare = dkim.arc_sign(original(), ARC_SELECTOR.encode(), RELAY.encode(), keys["relay"],
                         RELAY.encode())  # fmt: skip
    assert bare == []


def test_an_empty_arc_set_is_reported_and_resigning_still_happens(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    raw = original()
    result = rewritten(raw)
    assert result.body is not None

    def empty(*args: object, **kwargs: object) -> list[bytes]:
        return []

    changes = auth_changes(raw, result.body, result.header_edits, policy(keys, arc=True), dns,
                           0, arc_signer=empty)  # fmt: skip
    assert "arc=empty" in changes.notes
    assert [n for n, _ in changes.insert] == ["DKIM-Signature"]
    assert dkim.verify(signed_message(raw, result.body, result.header_edits, changes), dnsfunc=dns)


def test_mixed_case_authserv_id_still_seals(keys: dict[str, bytes], dns: FakeDns) -> None:
    pol = policy(keys, "keep", arc=True)
    shouty = AuthPolicy(pol.dkim, pol.key, True, pol.arc_key, RELAY.upper())
    changes, out = run(original(), shouty, dns)
    assert "arc=i1" in changes.notes
    assert dkim.arc_verify(out, dnsfunc=dns)[0] == dkim.CV_Pass


def test_inserted_values_fold_with_lf_for_the_milter(keys: dict[str, bytes], dns: FakeDns) -> None:
    changes, _ = run(original(), policy(keys, arc=True), dns)
    assert [n for n, _ in changes.insert] == [
        "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results", "DKIM-Signature"
    ]  # fmt: skip
    for _, value in changes.insert:
        assert "\r" not in value and not value.startswith(" ")


# -- the relaxed body canonicalisation we use for the "still holds?" check ----------------


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"b", b" ", b"\t", b"\r\n", b"\r", b"\n"]), max_size=80),
    st.integers(min_value=1, max_value=9),
)
def test_relaxed_body_is_dkimpys_byte_for_byte(parts: list[bytes], chunk: int) -> None:
    body = b"".join(parts)
    assert relaxed_body(body, chunk) == Relaxed.canonicalize_body(body)


def test_converted_tnef_message_is_resigned_with_its_new_content_type(
    keys: dict[str, bytes], dns: FakeDns
) -> None:
    raw = presign(corpus_message("teamwork-winmail.dat"), keys["tenant"])
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    assert result.signed and result.body is not None and result.tnef_class == "IPM.Note"
    changes = auth_changes(raw, result.body, result.header_edits, policy(keys), dns,
                           int(time.time()))  # fmt: skip
    out = signed_message(raw, result.body, result.header_edits, changes)
    assert b"application/ms-tnef" not in out and dkim.verify(out, dnsfunc=dns)
    assert len(dkim_fields(out)) == 1
    ctype = parse_header_block(out).get("content-type")
    assert ctype is not None and ctype.value.startswith("multipart/mixed; boundary=")
    assert not dkim.verify(tamper(out, b"multipart/mixed; boundary=", b"multipart/mixed; boundary ="),
                           dnsfunc=dns)  # fmt: skip
