"""The catalog compiled for serving: per-user records of pre-rendered signatures.

``compile_catalog`` renders every user's signatures for every rule that can apply to
them and returns opaque records (JSON bytes) keyed ``tenant:<key>``, ``domain:<d>`` and
``user:<email>``: the same records feed Redis (``sigfilter publish``) and the embedded
in-process store. ``resolve`` then picks, per message, the first rule whose recipient
scope and banner dates fit — pure, with the date passed in.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..address import domain_of
from ..defaults import DEFAULT_CLIENT_SIGNATURE, DEFAULT_TNEF, IDENTITY_KEY, ClientPolicy
from ..reasons import LookupReason
from ..signature import InlineImage, SenderCard, Signature
from .model import Catalog, Rule, Tenant
from .render import Rendered, Renderer, content_id


@dataclass(frozen=True, slots=True)
class Entry:
    """What one rule gives one user."""

    rule: str
    recipients: str
    action: str
    html: str = ""
    text: str = ""
    reply_html: str = ""
    reply_text: str = ""
    images: tuple[str, ...] = ()  # Content-IDs of embedded images
    banner_html: str = ""
    banner_text: str = ""
    banner_start: str = ""  # ISO dates; "" = open-ended
    banner_end: str = ""

    def banner_on(self, today: dt.date) -> bool:
        if not (self.banner_html or self.banner_text):
            return False
        start = dt.date.fromisoformat(self.banner_start) if self.banner_start else dt.date.min
        end = dt.date.fromisoformat(self.banner_end) if self.banner_end else dt.date.max
        return start <= today <= end


@dataclass(frozen=True, slots=True)
class UserRecord:
    tenant: str
    email: str
    entries: tuple[Entry, ...]
    card: tuple[str, ...] = ()  # display name, then the fields a signature shows (SenderCard)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UserRecord:
        raw = json.loads(data)
        entries = tuple(Entry(**{**e, "images": tuple(e["images"])}) for e in raw["entries"])
        return cls(raw["tenant"], raw["email"], entries, tuple(raw.get("card", ())))


@dataclass(frozen=True, slots=True)
class TenantRecord:
    key: str
    name: str
    domains: tuple[str, ...]
    mode: str
    marker: str
    plain_to_html: bool
    return_host: str
    tenant_id: str
    internal_domains: tuple[str, ...]
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # cid -> type, name, b64
    dkim_policy: str = "keep"  # DKIM/ARC after the rewrite; key files live on each milter host
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    arc: bool = False
    arc_authserv_id: str = ""
    arc_selector: str = ""
    arc_domain: str = ""
    arc_key_file: str = ""
    tnef: str = DEFAULT_TNEF  # pass | convert (a record published before it existed: pass)
    client_signature: ClientPolicy = DEFAULT_CLIENT_SIGNATURE
    replace_texts: tuple[str, ...] = ()  # regex sources (literal texts already escaped)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TenantRecord:
        raw: dict[str, Any] = json.loads(data)
        raw["domains"] = tuple(raw["domains"])
        raw["internal_domains"] = tuple(raw["internal_domains"])
        raw["replace_texts"] = tuple(raw.get("replace_texts", ()))
        return cls(**raw)

    def inline_images(self, cids: Iterable[str]) -> tuple[InlineImage, ...]:
        out = []
        for cid in cids:
            img = self.images.get(cid)
            if img:
                data = base64.b64decode(img["data"])
                out.append(InlineImage(cid, img["content_type"], img["name"], data))
        return tuple(out)


AUTH_FIELDS = (
    "client_signature", "replace_texts",
    "dkim_policy", "dkim_selector", "dkim_domain", "dkim_key_file", "arc", "arc_authserv_id",
    "arc_selector", "arc_domain", "arc_key_file",
)  # fmt: skip


def tenant_record(tenant: Tenant) -> TenantRecord:
    images = {}
    if tenant.images_mode == "embed":
        for img in tenant.images.values():
            images[content_id(img)] = {
                "content_type": img.content_type,
                "name": img.name,
                "data": base64.b64encode(img.data).decode("ascii"),
            }
    return TenantRecord(
        key=tenant.key,
        name=tenant.name,
        domains=tenant.domains,
        mode=tenant.mode,
        marker=tenant.marker,
        plain_to_html=tenant.plain_to_html,
        return_host=tenant.return_host,
        tenant_id=tenant.tenant_id,
        internal_domains=tenant.internal_domains,
        images=images,
        tnef=tenant.tnef,
        **{name: getattr(tenant, name) for name in AUTH_FIELDS},
    )


def user_record(tenant: Tenant, renderer: Renderer, email: str) -> UserRecord:
    fields = tenant.users[email]
    renders: dict[str, Rendered] = {}
    entries = []
    for rule in tenant.rules_for(email):
        entries.append(_entry(tenant, renderer, rule, fields, renders))
    return UserRecord(tenant.key, email, tuple(entries), _card(fields))


# Directory fields a typed signature shows under the name (Outlook classic, point 2).
_CARD_FIELDS = (
    "job_title", "company", "department", "phone", "mobile", "fax", "street", "city",
    "postal_code", "office", "email",
)  # fmt: skip


def _card(fields: dict[str, str]) -> tuple[str, ...]:
    name = fields.get("display_name", "").strip()
    if not name:
        return ()
    return (name, *(v for k in _CARD_FIELDS if (v := fields.get(k, "").strip())))


def _entry(
    tenant: Tenant,
    renderer: Renderer,
    rule: Rule,
    fields: dict[str, str],
    renders: dict[str, Rendered],
) -> Entry:
    if rule.action == "skip":
        return Entry(rule.name, rule.recipients, "skip")
    if rule.template not in renders:
        renders[rule.template] = renderer.render_set(rule.template, fields)
    r = renders[rule.template]
    images = [content_id(tenant.images[n]) for n in r.images]
    banner_html = banner_text = ""
    if rule.banner:
        banner_html, banner_text, banner_images = renderer.render_banner(rule.banner, fields)
        images += [content_id(tenant.images[n]) for n in banner_images]
    return Entry(
        rule=rule.name,
        recipients=rule.recipients,
        action="sign",
        html=r.html,
        text=r.text,
        reply_html=r.reply_html,
        reply_text=r.reply_text,
        images=tuple(dict.fromkeys(images)),
        banner_html=banner_html,
        banner_text=banner_text,
        banner_start=rule.banner_start.isoformat() if rule.banner_start else "",
        banner_end=rule.banner_end.isoformat() if rule.banner_end else "",
    )


def compile_catalog(
    catalog: Catalog, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, bytes]:
    """Every record of the catalog; raises RenderError on the first template problem."""
    records: dict[str, bytes] = {IDENTITY_KEY: identity_record(catalog)}
    for tenant in catalog.tenants.values():
        records[f"tenant:{tenant.key}"] = tenant_record(tenant).to_json()
        for domain in tenant.domains:
            records[f"domain:{domain}"] = tenant.key.encode()
        renderer = Renderer(tenant)
        total = len(tenant.users)
        for n, email in enumerate(sorted(tenant.users), 1):
            records[f"user:{email}"] = user_record(tenant, renderer, email).to_json()
            if progress and (n % 1000 == 0 or n == total):
                progress(tenant.key, n, total)
    return records


def identity_record(catalog: Catalog) -> bytes:
    """Every tenant and its domains in one record (identity.IdentityTable reads it)."""
    out: dict[str, dict[str, Any]] = {"domains": {}, "tenants": {}}
    for tenant in catalog.tenants.values():
        out["tenants"][tenant.key] = json.loads(tenant_record(tenant).to_json())
        for domain in tenant.domains:
            out["domains"][domain] = tenant.key
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


# -- per message ----------------------------------------------------------------------


def is_internal(recipients: Sequence[str] | None, tenant: TenantRecord) -> bool:
    """All recipients in the tenant's own domains. Unknown recipients count as external."""
    if not recipients:
        return False
    internal = set(tenant.internal_domains)
    return all(domain_of(r) in internal for r in recipients)


@dataclass(frozen=True, slots=True)
class Resolution:
    signature: Signature | None
    rule: str
    reason: LookupReason  # "ok" or why there is no signature
    detail: str = ""


def resolve(
    user: UserRecord, tenant: TenantRecord, recipients: Sequence[str] | None, today: dt.date
) -> Resolution:
    internal = is_internal(recipients, tenant)
    for entry in user.entries:
        if entry.recipients == "external" and internal:
            continue
        if entry.recipients == "internal" and not internal:
            continue
        if entry.action == "skip":
            return Resolution(None, entry.rule, "rule-skip", f"rule {entry.rule!r}: never signed")
        return Resolution(_signature(entry, tenant, today, user.card), entry.rule, "ok")
    return Resolution(None, "", "no-rule", "no rule applies to these recipients")


def _signature(
    entry: Entry, tenant: TenantRecord, today: dt.date, card: tuple[str, ...] = ()
) -> Signature:
    html, text = entry.html, entry.text
    reply_html, reply_text = entry.reply_html, entry.reply_text
    if entry.banner_on(today):
        html, reply_html = (_join(h, entry.banner_html, "\n") for h in (html, reply_html or html))
        text, reply_text = (_join(t, entry.banner_text, "\n\n") for t in (text, reply_text or text))
    sender = SenderCard(card[0], card[1:]) if card else None
    images = tenant.inline_images(entry.images)
    return Signature(html, text, reply_html, reply_text, images, sender)


def _join(a: str, b: str, sep: str) -> str:
    return a + sep + b if a and b else a or b
