"""The catalog as data: tenants, their template sets, banners, images, users and rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..address import domain_of
from ..defaults import (
    DEFAULT_CLIENT_SIGNATURE,
    DEFAULT_TNEF,
    GRAPH_AUTHORITY,
    GRAPH_URL,
    ClientPolicy,
    Mode,
)

Scope = Literal["all", "external", "internal"]
SCOPES: tuple[Scope, ...] = ("all", "external", "internal")
ImageMode = Literal["link", "embed"]
TEMPLATE_FILES = ("default.html", "default.txt", "reply.html", "reply.txt")


@dataclass(frozen=True, slots=True)
class Source:
    """A template's text and where it came from (for error messages)."""

    path: Path
    text: str


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """One named signature design: default and reply variants, HTML and text."""

    name: str
    files: dict[str, Source]  # keys from TEMPLATE_FILES; default.html and default.txt exist


@dataclass(frozen=True, slots=True)
class Banner:
    name: str
    html: Source | None
    text: Source | None


@dataclass(frozen=True, slots=True)
class Image:
    name: str
    path: Path
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Rule:
    """First match wins. Criteria of different kinds must all hold; a list matches any."""

    name: str
    line: int
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    recipients: Scope = "all"
    template: str = "default"
    banner: str | None = None
    banner_start: dt.date | None = None
    banner_end: dt.date | None = None
    action: Literal["sign", "skip"] = "sign"

    def matches(self, email: str, fields: dict[str, str]) -> bool:
        """The rule's static criteria (who the sender is); scope and dates come later."""
        groups = {g.strip().lower() for g in fields.get("groups", "").split(";") if g.strip()}
        department = fields.get("department", "").lower()
        domain = email.rpartition("@")[2]
        return (
            (not self.users or email in self.users)
            and (not self.groups or bool(groups & set(self.groups)))
            and (not self.departments or department in self.departments)
            and (not self.domains or domain in self.domains)
        )


DEFAULT_RULE = Rule(name="(default)", line=0)


@dataclass(frozen=True, slots=True)
class GraphSettings:
    """[graph] in tenant.toml: how `sigfilter users sync` reads the tenant's directory.

    The Entra tenant is the tenant's ``tenant_id``; exactly one of ``certificate_file``
    (PEM: private key and certificate, preferred) and ``client_secret_file`` is set.
    Paths are absolute (relative ones are resolved against the tenant folder).
    """

    client_id: str
    certificate_file: str = ""
    client_secret_file: str = ""
    authority: str = GRAPH_AUTHORITY  # national clouds: their login host
    graph_url: str = GRAPH_URL  # national clouds: their Graph host
    photos: bool = False  # fetch users' photos into images/photos/
    photo_size: str = "96x96"
    max_photo_bytes: int = 0  # 0: the tenant's max_image_bytes

    @property
    def credential_file(self) -> str:
        return self.certificate_file or self.client_secret_file

    @property
    def credential_key(self) -> str:
        return "certificate_file" if self.certificate_file else "client_secret_file"


@dataclass(frozen=True, slots=True)
class Tenant:
    key: str
    name: str
    domains: tuple[str, ...]
    mode: Mode
    marker: str
    plain_to_html: bool
    return_host: str
    tenant_id: str
    images_mode: ImageMode
    image_base_url: str
    max_image_bytes: int
    internal_domains: tuple[str, ...]
    path: Path
    templates: dict[str, TemplateSet] = field(default_factory=dict)
    banners: dict[str, Banner] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    user_columns: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    # [dkim] and [arc] in tenant.toml (see dkim/sign.py): keep is the safe default.
    dkim_policy: str = "keep"  # keep | strip | resign
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""  # absolute; relative paths are resolved against the tenant folder
    arc: bool = False
    arc_authserv_id: str = ""
    arc_selector: str = ""  # the ARC key: [arc]'s own, else [dkim]'s
    arc_domain: str = ""
    arc_key_file: str = ""
    tnef: str = DEFAULT_TNEF  # pass | convert: what happens to Outlook's TNEF (winmail.dat) mail
    graph: GraphSettings | None = None  # [graph]: directory sync from Microsoft Entra ID
    # The signature the sender's mail client inserted: "replace" (ours takes its place)
    # or "keep"; and the admin's own texts/patterns (regex sources) replaced likewise.
    client_signature: ClientPolicy = DEFAULT_CLIENT_SIGNATURE
    replace_texts: tuple[str, ...] = ()

    def rules_for(self, email: str) -> list[Rule]:
        """The rules that can apply to this sender, in order, ending with the default."""
        fields = self.users.get(email, {})
        return [r for r in self.rules if r.matches(email, fields)] + [DEFAULT_RULE]


@dataclass(frozen=True, slots=True)
class Catalog:
    root: Path
    tenants: dict[str, Tenant]

    def tenant_for_domain(self, domain: str) -> Tenant | None:
        domain = domain_of("x@" + domain) or domain.lower()
        for tenant in self.tenants.values():
            if domain in tenant.domains:
                return tenant
        return None
