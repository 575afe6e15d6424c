"""One canonical form of a mail address, for every decision that depends on a sender.

Postfix decides on the canonical address, not on what the client typed: trivial-rewrite
strips one trailing dot from the domain, table lookups ignore case, a quoted local part
is looked up unquoted, and with SMTPUTF8 a UTF-8 domain is looked up as its A-label
(UTS #46 through libicu). The milter must decide on the same address Postfix routes, or
``ceo@example.com.`` is "no tenant" to us and example.com's mail to Postfix (issue 12).
So the tenant lookup, the user lookup, the catalog's domains and the Postfix maps all
use :func:`canonical_address` / :func:`canonical_domain`.

An address that does not reduce cleanly (a route, an address literal, an empty local
part, a domain that is not a DNS name, control characters, ...) raises
:class:`AddressError`: callers refuse it rather than guess. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna

MAX_ADDRESS = 254  # RFC 5321 path limit, without the angle brackets
MAX_LOCAL = 64
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Unquoted local parts: RFC 5322 atext and dots, and UTF-8 (RFC 6531, SMTPUTF8).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\u0080-\U0010ffff-]+")


class AddressError(ValueError):
    """The address has no single canonical form; ``reason`` is a short log token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Address:
    local: str  # unquoted, lower case
    domain: str  # lower case A-labels, no trailing dot

    @property
    def text(self) -> str:
        return f"{self.local}@{self.domain}"


def canonical_domain(raw: str) -> str:
    """``Example.COM.`` → ``example.com``; ``exämple.com`` → ``xn--exmple-cua.com``."""
    name = raw.strip()
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]  # one trailing dot, as trivial-rewrite strips it
    if not name or name.startswith("["):
        raise AddressError("bad-domain", f"not a domain name: {raw!r}")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise AddressError("bad-domain", f"not an IDNA domain name: {raw!r}") from exc
    name = name.lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        raise AddressError("bad-domain", f"not a domain name: {raw!r}")
    return name


def canonical_address(raw: str) -> Address:
    """The address as Postfix decides on it (see the module docstring); raises AddressError.

    ``raw`` is what MAIL FROM carried, with or without the angle brackets.
    """
    text = raw.strip(" ")
    if any(not c.isprintable() for c in text):
        raise AddressError("bad-address", "control characters in the address")
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip(" ")
    if not text:
        raise AddressError("null-sender", "the null sender has no tenant")
    if len(text) > MAX_ADDRESS:
        raise AddressError("bad-address", "address too long")
    if text.startswith("@"):
        raise AddressError("bad-address", "source routes are not accepted")
    local, domain = _split(text)
    return Address(_local_part(local), canonical_domain(domain))


def _split(text: str) -> tuple[str, str]:
    """Local part and domain at the last ``@`` outside a quoted string."""
    quoted = escaped = False
    at = -1
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "@" and not quoted:
            at = i
    if quoted or at <= 0:
        raise AddressError("bad-address", "no local part and domain")
    return text[:at], text[at + 1 :]


def _local_part(local: str) -> str:
    if local.startswith('"'):
        if not local.endswith('"') or len(local) < 3:
            raise AddressError("bad-address", "a quoted local part must be one quoted string")
        inner = re.sub(r"\\(.)", r"\1", local[1:-1])
        if '"' in local[1:-1].replace('\\"', ""):
            raise AddressError("bad-address", "a quoted local part must be one quoted string")
        local = inner
    elif not _ATEXT.fullmatch(local) or ".." in local or local[0] == "." or local[-1] == ".":
        raise AddressError("bad-address", "the local part is not a dot-atom")
    if not local or len(local) > MAX_LOCAL:
        raise AddressError("bad-address", "empty or too long local part")
    return local.lower()


def domain_of(raw: str) -> str | None:
    """The canonical domain of an address, or None (for lenient uses: recipients)."""
    try:
        return canonical_address(raw).domain
    except AddressError:
        return None
