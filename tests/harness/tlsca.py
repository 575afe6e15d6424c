"""Throwaway certificate authorities for the TLS tests, made with the openssl CLI.

    ca = TestCA(folder, "Test Root A")
    server = ca.issue("tenant-a.mail.test")                    # server + client usage
    client = ca.issue("mail.protection.outlook.com")           # EXO's client name

Keys are EC P-256, certificates valid for two days. Files are mode 0644 so that
Postfix's smtp/smtpd processes (user postfix) can read them: test keys only.
"""

from __future__ import annotations

import ssl
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"
TIMEOUT = 30.0


@dataclass(frozen=True)
class Issued:
    key: Path
    cert: Path

    @property
    def chain_files(self) -> str:
        """Postfix's smtp(d)_tls_chain_files spelling: key, then certificate."""
        return f"{self.key}, {self.cert}"


def _openssl(*args: str) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=TIMEOUT)


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        slug = name.lower().replace(" ", "-")
        self.key = folder / f"{slug}.key"
        self.cert = folder / f"{slug}.crt"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "2", "-subj", f"/O=sigfilter tests/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(self.key), "-out", str(self.cert))  # fmt: skip
        self._serial = 1
        for path in (self.key, self.cert):
            path.chmod(0o644)

    def issue(
        self, cn: str, dns: tuple[str, ...] | None = None, ips: tuple[str, ...] = ()
    ) -> Issued:
        """A leaf certificate for `cn` (SAN: `dns`, default [cn], and `ips`) for servers
        and clients."""
        stem = self.folder / f"{cn.replace('*', 'star')}-{self._serial}"
        self._serial += 1
        key, csr, cert, ext = (stem.with_suffix(s) for s in (".key", ".csr", ".crt", ".ext"))
        names = ",".join(
            [f"DNS:{d}" for d in (dns if dns is not None else (cn,))] + [f"IP:{i}" for i in ips]
        )
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            + (f"subjectAltName={names}\n" if names else "")
        )
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr))  # fmt: skip
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-set_serial", str(self._serial), "-days", "2", "-extfile", str(ext),
                 "-out", str(cert))  # fmt: skip
        for path in (key, cert):
            path.chmod(0o644)
        return Issued(key, cert)


def client_context(
    ca: TestCA | None = None,
    cert: Issued | None = None,
    version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client context: verifies the server against `ca` (else not at all), presents `cert`.

    `version` pins both the lowest and highest protocol version; the security level is
    lowered to 0 so that the client itself would speak TLS 1.0/1.1 (Debian's OpenSSL
    refuses them at its default level), which makes a refusal the server's.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ctx.load_verify_locations(cafile=str(ca.cert))
        ctx.check_hostname = False  # the tests connect to 127.0.0.1
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    if version is not None:
        pin_version(ctx, version)
    return ctx


def pin_version(ctx: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    """Speak exactly `version`, old ones included (security level 0)."""
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version


def server_context(cert: Issued, client_ca: TestCA | None = None) -> ssl.SSLContext:
    """A server context presenting `cert`; asks for (but does not demand) a client cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca.cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
