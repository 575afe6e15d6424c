"""The catalog directory: tenants, their templates and users (minimal reader).

Layout (one folder per tenant, named after its primary domain)::

    CATALOG/tenants/<domain>/tenant.toml          name, domains, mode, marker, options
    CATALOG/tenants/<domain>/users.csv            email + directory fields, one row a user
    CATALOG/tenants/<domain>/templates/default.html, default.txt, reply.html, reply.txt

Templates are rendered in Jinja2's sandbox; HTML templates autoescape every field.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .defaults import DEFAULT_MARKER, MODES, Mode
from .engine import Options
from .signature import Signature

TEMPLATE_NAMES = ("default.html", "default.txt", "reply.html", "reply.txt")


class CatalogError(Exception):
    """The catalog cannot be read; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Tenant:
    key: str
    name: str
    domains: tuple[str, ...]
    mode: Mode
    marker: str
    plain_to_html: bool
    path: Path
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)

    def options(self, mode: Mode | None = None) -> Options:
        return Options(mode=mode or self.mode, marker=self.marker, plain_to_html=self.plain_to_html)


def _load_tenant(folder: Path) -> Tenant:
    conf_path = folder / "tenant.toml"
    try:
        conf: dict[str, Any] = tomllib.loads(conf_path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{conf_path}: {exc}") from exc
    mode = conf.get("mode", "full")
    if mode not in MODES:
        raise CatalogError(f"{conf_path}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    domains = tuple(str(d).lower() for d in conf.get("domains", [folder.name]))
    return Tenant(
        key=folder.name,
        name=str(conf.get("name", folder.name)),
        domains=domains,
        mode=mode,
        marker=str(conf.get("marker", DEFAULT_MARKER)),
        plain_to_html=bool(conf.get("plain_to_html", False)),
        path=folder,
        users=_load_users(folder / "users.csv"),
        templates=_load_templates(folder / "templates"),
    )


def _load_users(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    users: dict[str, dict[str, str]] = {}
    for n, row in enumerate(rows, start=2):
        email = (row.get("email") or "").strip().lower()
        if not email:
            raise CatalogError(f"{path}:{n}: row has no email")
        users[email] = {k: (v or "").strip() for k, v in row.items() if k}
    return users


def _load_templates(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in TEMPLATE_NAMES:
        p = folder / name
        if p.exists():
            out[name] = p.read_text("utf-8")
    return out


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        tenants_dir = root / "tenants"
        if not tenants_dir.is_dir():
            raise CatalogError(f"{root}: not a catalog (no tenants/ folder)")
        self.tenants = [_load_tenant(d) for d in sorted(tenants_dir.iterdir()) if d.is_dir()]
        self._by_domain = {dom: t for t in self.tenants for dom in t.domains}
        self._html = SandboxedEnvironment(autoescape=True, keep_trailing_newline=True)
        self._text = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)

    def tenant_for(self, sender: str) -> Tenant | None:
        domain = sender.rpartition("@")[2].lower().strip(">").strip()
        return self._by_domain.get(domain)

    def signature_for(self, sender: str) -> Signature | None:
        tenant = self.tenant_for(sender)
        if tenant is None:
            return None
        fields = tenant.users.get(sender.lower())
        if fields is None:
            return None
        rendered = {name: self._render(tenant, name, fields) for name in tenant.templates}
        return Signature(
            html=rendered.get("default.html", ""),
            text=rendered.get("default.txt", ""),
            reply_html=rendered.get("reply.html", ""),
            reply_text=rendered.get("reply.txt", ""),
        )

    def _render(self, tenant: Tenant, name: str, fields: dict[str, str]) -> str:
        env = self._html if name.endswith(".html") else self._text
        try:
            return env.from_string(tenant.templates[name]).render(**fields).strip("\n")
        except TemplateError as exc:
            raise CatalogError(f"{tenant.path / 'templates' / name}: {exc}") from exc
