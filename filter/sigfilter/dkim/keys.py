"""DKIM keys and DNS for the milter and the CLI: the I/O half of dkim/sign.py.

Key files must be readable by their owner only (mode 0600 or 0400): a key others can
read is refused with a message that says how to fix it. Key bytes are never logged
and never put into an exception message.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import dkim.crypto  # type: ignore[import-untyped]
import dkim.dnsplug  # type: ignore[import-untyped]

from ..defaults import DKIM_DNS_CACHE_TTL, DKIM_DNS_TIMEOUT, DKIM_KEY_BITS
from ..secrets import SecretFileError, check_secret_file, read_secret_bytes
from .sign import DKIM_POLICIES, AuthPolicy, DnsFunc, SigningKey


class KeyFileError(Exception):
    """A key file that cannot be used; the message names the file and the fix."""


def check_key_mode(path: Path) -> None:
    """The checks of every secret file (secrets.py): 0600/0400, ours, a regular file."""
    try:
        check_secret_file(path)
    except SecretFileError as exc:
        raise KeyFileError(f"DKIM key {exc}") from exc


def read_key(path: Path) -> bytes:
    """The PEM private key at ``path``, after the mode check and a parse."""
    try:
        pem = read_secret_bytes(path)  # checked on the open file: no race with a chmod
    except SecretFileError as exc:
        raise KeyFileError(f"DKIM key {exc}") from exc
    try:
        dkim.crypto.parse_pem_private_key(pem)
    except Exception as exc:  # any parse failure means "not a key"; no key bytes in the message
        raise KeyFileError(f"{path}: not a PEM RSA private key") from exc
    return pem


class KeyCache:
    """Keys by path, read again when the file changes (rotation needs no restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[Path, tuple[tuple[int, int, int], bytes]] = {}

    def get(self, path: Path) -> bytes:
        try:
            st = path.stat()
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the DKIM key: {exc.strerror}") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_mode)
        with self._lock:
            hit = self._keys.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        pem = read_key(path)
        with self._lock:
            self._keys[path] = (stamp, pem)
        return pem


# -- public keys and the DNS record ------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    return _der(0x02, raw)


_RSA_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")


def public_key_b64(pem: bytes) -> str:
    """The p= value: base64 of the DER SubjectPublicKeyInfo of the key's public half."""
    key = dkim.crypto.parse_pem_private_key(pem)
    rsa = _der(0x30, _der_int(key["modulus"]) + _der_int(key["publicExponent"]))
    spki = _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\x00" + rsa))
    return base64.b64encode(spki).decode("ascii")


def txt_record(pem: bytes) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_b64(pem)}"


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def record_matches(record: bytes, pem: bytes) -> tuple[bool, str]:
    """Does a published TXT record hold the public half of ``pem``? (ok, why not)."""
    tags: dict[str, str] = {}
    for part in record.decode("ascii", "replace").split(";"):
        name, _, value = part.partition("=")
        tags[name.strip()] = "".join(value.split())
    if tags.get("v", "DKIM1") != "DKIM1":
        return False, f"v={tags['v']} is not DKIM1"
    if tags.get("k", "rsa") != "rsa":
        return False, f"k={tags['k']}: the key is RSA"
    if not tags.get("p"):
        return False, "p= is empty (the key is revoked)"
    try:
        published = dkim.crypto.parse_public_key(base64.b64decode(tags["p"]))
    except Exception:  # noqa: BLE001 - any decode failure means the record is broken
        return False, "p= is not a valid RSA public key"
    ours = dkim.crypto.parse_pem_private_key(pem)
    same = (published["modulus"], published["publicExponent"]) == (
        ours["modulus"], ours["publicExponent"]
    )  # fmt: skip
    return same, "" if same else "p= holds a different key"


def generate_key(path: Path, bits: int = DKIM_KEY_BITS, openssl: str = "openssl") -> bytes:
    """Write a new RSA key to ``path`` (mode 0600, never overwriting) and return it."""
    if path.exists():
        raise KeyFileError(f"{path}: exists; remove it first or pick another --out")
    done = subprocess.run(
        [openssl, "genrsa", str(bits)], capture_output=True, check=False, timeout=120
    )
    if done.returncode != 0 or b"PRIVATE KEY" not in done.stdout:
        raise KeyFileError(f"openssl genrsa failed: {done.stderr.decode(errors='replace')}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite; mode 0600 from the first byte (chmod again: umask)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(done.stdout)
    path.chmod(0o600)
    return done.stdout


# -- DNS ------------------------------------------------------------------------------------


class _Lookup(Protocol):
    def __call__(self, name: bytes, timeout: float = ...) -> bytes | None: ...


def _dnspython_txt(name: bytes, timeout: float = DKIM_DNS_TIMEOUT) -> bytes | None:
    result: bytes | None = dkim.dnsplug.get_txt_dnspython(name, timeout=timeout)
    return result


def cached_dns(
    lookup: _Lookup | Callable[..., Any] = _dnspython_txt,
    ttl: float = DKIM_DNS_CACHE_TTL,
    clock: Callable[[], float] = time.monotonic,
) -> DnsFunc:
    """A dkimpy ``dnsfunc`` that remembers answers (and absences) for ``ttl`` seconds."""
    lock = threading.Lock()
    seen: dict[bytes, tuple[float, bytes | None]] = {}

    def txt(name: bytes, timeout: float = DKIM_DNS_TIMEOUT) -> bytes | None:
        now = clock()
        with lock:
            hit = seen.get(name)
        if hit and now - hit[0] < ttl:
            return hit[1]
        answer: bytes | None = lookup(name, timeout=min(timeout, DKIM_DNS_TIMEOUT))
        with lock:
            if len(seen) > 10_000:
                seen.clear()
            seen[name] = (now, answer)
        return answer

    return txt


# -- a tenant's policy ------------------------------------------------------------------


class TenantAuth(Protocol):
    """The TenantRecord fields this module reads."""

    @property
    def dkim_policy(self) -> str: ...
    @property
    def dkim_selector(self) -> str: ...
    @property
    def dkim_domain(self) -> str: ...
    @property
    def dkim_key_file(self) -> str: ...
    @property
    def arc(self) -> bool: ...
    @property
    def arc_authserv_id(self) -> str: ...
    @property
    def arc_selector(self) -> str: ...
    @property
    def arc_domain(self) -> str: ...
    @property
    def arc_key_file(self) -> str: ...


def policy_for(tenant: TenantAuth, keys: KeyCache) -> AuthPolicy:
    """The tenant's policy with its keys loaded (raises KeyFileError)."""
    if tenant.dkim_policy not in DKIM_POLICIES:
        raise KeyFileError(f"unknown DKIM policy {tenant.dkim_policy!r}")
    key = arc_key = None
    if tenant.dkim_policy == "resign":
        key = _key(tenant.dkim_selector, tenant.dkim_domain, tenant.dkim_key_file, keys)
    if tenant.arc:
        arc_key = _key(tenant.arc_selector, tenant.arc_domain, tenant.arc_key_file, keys)
    return AuthPolicy(
        dkim=tenant.dkim_policy,  # narrowed by the check above
        key=key,
        arc=tenant.arc,
        arc_key=arc_key,
        authserv_id=tenant.arc_authserv_id,
    )


def _key(selector: str, domain: str, key_file: str, keys: KeyCache) -> SigningKey:
    if not (selector and domain and key_file):
        raise KeyFileError("signing needs a selector, a domain and a key_file")
    return SigningKey(domain, selector, keys.get(Path(key_file)))
