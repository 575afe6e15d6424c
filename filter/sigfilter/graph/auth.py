"""Sign in as the tenant's app registration with msal (client credentials).

A certificate (preferred: nothing secret crosses the wire, Entra keeps only its public
part) or a client secret, read through the secret-file check (0600/0400, ours). The
certificate file is PEM with the private key and the certificate, which is what Key
Vault's "Download in PEM format" gives. msal signs the client assertion (PS256 with
the certificate's SHA-256 thumbprint in ``x5t#S256``) and caches the token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..catalog.model import GraphSettings
from ..secrets import SecretFileError, read_secret, read_secret_bytes
from .client import GraphDenied, GraphError, GraphUnavailable


class CredentialError(GraphError):
    """The certificate or secret file is missing, unsafe or not what it should be."""

    reason = "credential"


# What the token endpoint's AADSTS codes mean for the operator, and what to do.
_AADSTS_HINTS = {
    "AADSTS700016": "no app with this client_id in the tenant: check [graph] client_id and "
    "tenant_id (the app registration must live in that tenant)",
    "AADSTS90002": "no such tenant: check tenant_id (and authority for a national cloud)",
    "AADSTS7000215": "the client secret is wrong: create a new one under Certificates & secrets",
    "AADSTS7000222": "the client secret has expired: create a new one under Certificates & secrets",
    "AADSTS700027": "Entra does not know this certificate: upload its public part (.cer/.pem) "
    "to the app registration under Certificates & secrets",
    "AADSTS700024": "the client assertion is outside its validity time: check this host's clock",
}


def client_credential(settings: GraphSettings) -> str | dict[str, str]:
    """msal's client_credential: {"private_key", "public_certificate"} or the secret."""
    key = settings.credential_key
    path = Path(settings.credential_file)
    try:
        if settings.client_secret_file:
            return read_secret(path)
        pem = read_secret_bytes(path)
    except SecretFileError as exc:
        raise CredentialError(f"[graph] {key}: {exc}") from exc
    return _certificate(pem, path)


def credential_problem(settings: GraphSettings) -> tuple[str, str]:
    """("", "") when the credential file is usable here; else ("missing", why) or
    ("bad", why). For `catalog check` and doctor: the file may live only on the node
    that runs the sync, so a missing one is reported, a bad one refused."""
    path = Path(settings.credential_file)
    if not path.exists():
        return "missing", (
            f"[graph] {settings.credential_key} {path} is not on this host: `sigfilter users "
            "sync` cannot sign in here (fine on hosts that do not run the sync)"
        )
    try:
        client_credential(settings)
    except CredentialError as exc:
        return "bad", str(exc)
    return "", ""


def _certificate(pem: bytes, path: Path) -> dict[str, str]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CredentialError(
            f"[graph] certificate_file: {path}: no PEM certificate in it (it needs the "
            "certificate and its private key; from a .pfx: openssl pkcs12 -in app.pfx -nodes)"
        ) from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialError(
            f"[graph] certificate_file: {path}: no unencrypted PEM private key in it"
        ) from exc
    if key.public_key() != cert.public_key():
        raise CredentialError(
            f"[graph] certificate_file: {path}: the private key does not belong to the certificate"
        )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "private_key": key_pem,
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


def _explain(result: dict[str, Any]) -> str:
    description = str(result.get("error_description", "")).splitlines()
    first = description[0] if description else str(result.get("error", "unknown error"))
    code = first.split(":", 1)[0]
    hint = _AADSTS_HINTS.get(code, "")
    return f"sign-in refused: {first}" + (f" — {hint}" if hint else "")


class TokenSource:
    """Callable giving a Graph access token; msal reuses it until shortly before expiry."""

    def __init__(
        self,
        settings: GraphSettings,
        tenant_id: str,
        session: requests.Session,
        credential: Callable[[GraphSettings], str | dict[str, str]] = client_credential,
    ) -> None:
        self.settings = settings
        self.tenant_id = tenant_id
        self.session = session
        self._credential = credential
        self._app: Any = None  # msal.ConfidentialClientApplication, made on first use

    def _application(self) -> Any:
        # Imported here: `catalog check` and doctor use this module without signing in.
        import msal  # noqa: PLC0415

        if self._app is None:
            try:
                # The authority comes from the operator's own tenant.toml: no instance
                # discovery (which would call the public cloud from a national one).
                self._app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self._credential(self.settings),
                    authority=f"{self.settings.authority}/{self.tenant_id}",
                    http_client=self.session,
                    instance_discovery=False,
                    token_cache=msal.TokenCache(),
                )
            except ValueError as exc:  # msal: OIDC discovery refused (unknown tenant …)
                raise GraphDenied(f"sign-in failed at {self.settings.authority}: {exc}") from exc
            except requests.RequestException as exc:
                raise GraphUnavailable(f"cannot reach {self.settings.authority}: {exc}") from exc
        return self._app

    def __call__(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[f"{self.settings.graph_url}/.default"])
        except requests.RequestException as exc:
            raise GraphUnavailable(f"cannot reach {self.settings.authority}: {exc}") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            raise GraphDenied(_explain(result if isinstance(result, dict) else {}))
        return token
