"""The canonical address (address.py): what Postfix decides on, as a table."""

from __future__ import annotations

import pytest

from sigfilter.address import AddressError, canonical_address, canonical_domain

# (what MAIL FROM carried, the canonical address); expected values written by hand.
CANONICAL = [
    ("<ceo@example.com>", "ceo@example.com"),
    ("ceo@example.com", "ceo@example.com"),
    ("<ceo@example.com.>", "ceo@example.com"),  # trivial-rewrite strips one trailing dot
    ("<CEO@Example.COM>", "ceo@example.com"),
    ("<Ceo@EXAMPLE.com.>", "ceo@example.com"),
    ('<"ceo"@example.com>', "ceo@example.com"),  # quoted local part, looked up unquoted
    ('<"c\\eo"@example.com>', "ceo@example.com"),  # quoted-pair
    ('<"first last"@example.com>', "first last@example.com"),
    ('<"ceo@example.com"@evil.example>', "ceo@example.com@evil.example"),  # domain is evil
    ("<ceo@exämple.com>", "ceo@xn--exmple-cua.com"),  # IDNA A-label, as Postfix looks up
    ("<ceo@EXÄMPLE.com.>", "ceo@xn--exmple-cua.com"),
    ("<ceo@xn--exmple-cua.com>", "ceo@xn--exmple-cua.com"),
    ("<josé@example.com>", "josé@example.com"),  # SMTPUTF8 local part
    ("< ceo@example.com >", "ceo@example.com"),
    ("<a.b+tag@sub.example.com>", "a.b+tag@sub.example.com"),
]

# (input, reason): refused, never guessed.
REFUSED = [
    ("<>", "null-sender"),
    ("", "null-sender"),
    ("<@relay.example:ceo@example.com>", "bad-address"),  # source route
    ("<@a,@b:ceo@example.com>", "bad-address"),
    ("<ceo@[192.0.2.1]>", "bad-domain"),  # address literal
    ("<ceo@example.com..>", "bad-domain"),  # only one trailing dot is stripped
    ("<ceo@example..com>", "bad-domain"),
    ("<ceo@.example.com>", "bad-domain"),
    ("<ceo@localhost>", "bad-domain"),  # no dot: not a tenant domain
    ("<ceo@ex_ample.com>", "bad-domain"),
    ("<ceo@-example.com>", "bad-domain"),
    ("<ceo@example.com\r\n>", "bad-address"),
    ("<ceo\x00@example.com>", "bad-address"),
    ("<@example.com>", "bad-address"),
    ("<ceo>", "bad-address"),
    ("<ceo@>", "bad-domain"),
    ("<.ceo@example.com>", "bad-address"),
    ("<ce..o@example.com>", "bad-address"),
    ('<"unterminated@example.com>', "bad-address"),
    ('<"a"b"@example.com>', "bad-address"),
    ("<ceo(comment)@example.com>", "bad-address"),
    ("<" + "a" * 65 + "@example.com>", "bad-address"),
    ("<ceo@" + "a" * 250 + ".com>", "bad-address"),
    ("<ceo@exa mple.com>", "bad-domain"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical(raw: str, expected: str) -> None:
    assert canonical_address(raw).text == expected


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_refused(raw: str, reason: str) -> None:
    with pytest.raises(AddressError) as caught:
        canonical_address(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("exämple.com", "xn--exmple-cua.com"),
        ("faß.de", "xn--fa-hia.de"),
    ],
)
def test_canonical_domain(raw: str, expected: str) -> None:
    assert canonical_domain(raw) == expected
