"""What the preview page shows, without HTTP: the catalog compiled as the milter serves
it, one user's signature for a chosen variant, recipient scope and date, and a dropped
message signed as the relay would sign it.

A catalog with problems keeps the last version that compiled (shown as stale) beside
the problems, which are the FILE:LINE lines ``sigfilter catalog check`` prints.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..catalog import (
    Catalog,
    CatalogError,
    RenderError,
    Tenant,
    UserRecord,
    compile_catalog,
    load_catalog,
)
from ..catalog.check import catalog_warnings, check_catalog
from ..catalog.compiled import identity_record, tenant_record, user_record
from ..catalog.render import Renderer, content_id
from ..defaults import IDENTITY_KEY, MODES, Mode
from ..identity import IdentityTable
from ..previewing import decision_fields, preview_message
from ..service import SignatureService
from ..store.base import MemoryStore, RecordStore

# A recipient outside every tenant: .invalid is reserved (RFC 2606), never a real domain.
EXTERNAL_RECIPIENT = "someone@recipient.invalid"
USER_COLUMNS = ("email", "display_name", "job_title", "department")


class PreviewError(Exception):
    """A request the page cannot answer (unknown tenant or user, bad parameter)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One load of the catalog directory."""

    version: int
    loaded_at: float
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    catalog: Catalog | None = None
    store: RecordStore | None = field(default=None, repr=False)
    verified: bool = False  # every user's signatures rendered (as catalog check does)

    @property
    def ok(self) -> bool:
        return not self.problems and self.store is not None


class LazyRecords:
    """The records ``compile_catalog`` writes, each built when first asked for by the
    same functions (``tenant_record``, ``user_record``): a saved file shows on the page
    before every user is rendered (10,000 users take about 2 s to compile here)."""

    def __init__(self, cat: Catalog) -> None:
        self.cat = cat
        self._owner = {email: t for t in cat.tenants.values() for email in t.users}
        self._renderers: dict[str, Renderer] = {}
        self._built: dict[str, bytes] = {}
        self._lock = threading.Lock()  # the page's requests run on a thread pool

    def version(self) -> int | None:
        return 1

    def identity(self) -> IdentityTable:
        """The tenants and domains, as the service holds them (built from the catalog)."""
        return IdentityTable.from_records({IDENTITY_KEY: identity_record(self.cat)}, 1)

    def get(self, key: str) -> bytes | None:
        if key == IDENTITY_KEY:
            return identity_record(self.cat)
        kind, _, name = key.partition(":")
        if kind == "domain":
            tenant = self.cat.tenant_for_domain(name)
            return tenant.key.encode() if tenant else None
        with self._lock:
            if key not in self._built:
                built = self._build(kind, name)
                if built is None:
                    return None
                self._built[key] = built
            return self._built[key]

    def _build(self, kind: str, name: str) -> bytes | None:
        """Raises RenderError for a template that fails for this user."""
        if kind == "tenant":
            found = self.cat.tenants.get(name)
            return tenant_record(found).to_json() if found else None
        tenant = self._owner.get(name) if kind == "user" else None
        if tenant is None:
            return None
        renderer = self._renderers.setdefault(tenant.key, Renderer(tenant))
        return user_record(tenant, renderer, name).to_json()


def quick_snapshot(root: Path, version: int, clock: Callable[[], float] = time.time) -> Snapshot:
    """Load and check ``root`` without rendering every user (``verify_snapshot`` does)."""
    now = clock()
    try:
        cat = load_catalog(root)
    except CatalogError as exc:
        return Snapshot(version, now, tuple(exc.problems), verified=True)
    problems, _ = check_catalog(cat, render=False)
    if problems:
        return Snapshot(version, now, tuple(problems), catalog=cat, verified=True)
    return Snapshot(version, now, (), tuple(catalog_warnings(cat)), cat, LazyRecords(cat))


def verify_snapshot(snap: Snapshot) -> Snapshot:
    """Render every user as ``compile_catalog`` does; a failure gives catalog check's lines."""
    if snap.verified or snap.catalog is None:
        return snap
    try:
        records = compile_catalog(snap.catalog)
    except RenderError as exc:
        # catalog check's wording (with the user it rendered for), else the error itself
        problems = check_catalog(snap.catalog)[0] or [str(exc)]
        return replace(snap, problems=tuple(problems), store=None, verified=True)
    store = MemoryStore()
    store.replace(records)
    return replace(snap, store=store, verified=True)


def load_snapshot(root: Path, version: int, clock: Callable[[], float] = time.time) -> Snapshot:
    """Load, check and compile ``root``; problems are what ``catalog check`` reports."""
    return verify_snapshot(quick_snapshot(root, version, clock))


class PreviewState:
    """The current snapshot and the last one that compiled; reloaded by the watcher."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock
        self._lock = threading.RLock()  # reload and verify run on different threads
        self.current = load_snapshot(root, 1, clock)
        self.good: Snapshot | None = self.current if self.current.ok else None

    def reload(self) -> Snapshot:
        """The quick part of a reload: load and check (what the page needs at once)."""
        return self._set(quick_snapshot(self.root, self.current.version + 1, self.clock))

    def verify(self) -> Snapshot | None:
        """Render every user of the current snapshot; a new snapshot (with the problems
        found) when that fails, else None. Nothing if a newer reload came meanwhile."""
        snap = self.current
        done = verify_snapshot(snap)  # seconds for many users: outside the lock
        if done is snap:
            return None
        if done.problems:
            done = replace(done, version=snap.version + 1, loaded_at=self.clock())
        with self._lock:  # a reload may have come meanwhile: then this is old news
            if self.current is not snap:
                return None
            self._set(done)
        return done if done.problems else None

    def _set(self, snap: Snapshot) -> Snapshot:
        with self._lock:
            self.current = snap
            if snap.ok:
                self.good = snap
        return snap

    # -- what the page asks for -----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Version, problems and the tenants with their users (from the last good load)."""
        cur, good = self.current, self.good
        tenants = [] if good is None or good.catalog is None else _tenants(good.catalog)
        return {
            "version": cur.version,
            "loaded_at": cur.loaded_at,
            "catalog": str(self.root),
            "problems": list(cur.problems),
            "warnings": list(cur.warnings),
            "stale": not cur.ok and good is not None,
            "shown_version": good.version if good else None,
            "tenants": tenants,
        }

    def render(self, tenant: str, user: str, variant: str, scope: str, day: str) -> dict[str, Any]:
        """One user's signature as a message of ``variant`` to ``scope`` on ``day`` gets it."""
        snap, ten = self._tenant(tenant)
        if variant not in ("new", "reply") or scope not in ("internal", "external"):
            raise PreviewError("variant must be new or reply; scope internal or external")
        recipient = _recipient(ten, scope)
        service = self._service(snap, _date(day))
        try:
            found = service.lookup(user, [recipient])
        except RenderError as exc:  # a template that fails for this user (lazy records)
            raise PreviewError(str(exc)) from exc
        out: dict[str, Any] = {
            "version": snap.version,
            "stale": snap is not self.current,
            "rule": found.rule,
            "reason": found.reason,
            "detail": found.detail,
            "recipient": recipient,
            "banner": _banner(snap, user, found.rule, _date(day)),
            "html": "",
            "text": "",
        }
        if found.signature is not None:
            html, text = found.signature.pick(variant == "reply")
            out.update(html=_local_images(html, ten), text=text)
        return out

    def sign(self, raw: bytes, sender: str, mode: str, day: str) -> dict[str, Any]:
        """``raw`` through the lookup and engine ``sigfilter preview`` uses."""
        snap = self._snapshot()
        if mode and mode not in MODES:
            raise PreviewError(f"mode must be one of {', '.join(MODES)}")
        chosen: Mode | None = next((m for m in MODES if m == mode), None)
        try:
            done = preview_message(self._service(snap, _date(day)), raw, sender or None, (), chosen)
        except RenderError as exc:
            raise PreviewError(str(exc)) from exc
        decision = {**decision_fields(done.result), "rule": done.found.rule}
        decision.update(sender=done.sender, bytes_in=len(raw), bytes_out=len(done.message))
        tenant = _tenant_for(snap, done.sender)
        html, text = _bodies(done.message)
        return {
            "version": snap.version,
            "stale": snap is not self.current,
            "decision": decision,
            "html": _local_images(html, tenant) if tenant else html,
            "text": text,
            "message": done.message.decode("utf-8", errors="replace"),
        }

    def image(self, tenant: str, name: str) -> tuple[bytes, str]:
        _, ten = self._tenant(tenant)
        img = ten.images.get(name)
        if img is None:
            raise PreviewError(f"no image {name!r} in tenant {tenant!r}")
        return img.data, img.content_type

    # -- helpers -------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        if self.good is None:
            raise PreviewError("the catalog has not compiled yet: see its problems")
        return self.good

    def _tenant(self, key: str) -> tuple[Snapshot, Tenant]:
        snap = self._snapshot()
        assert snap.catalog is not None  # a good snapshot has its catalog
        ten = snap.catalog.tenants.get(key)
        if ten is None:
            raise PreviewError(f"no tenant {key!r}")
        return snap, ten

    @staticmethod
    def _service(snap: Snapshot, day: dt.date) -> SignatureService:
        store = snap.store
        assert store is not None
        identity = store.identity() if isinstance(store, LazyRecords) else None
        return SignatureService(store, today=lambda: day, identity=identity)


def _tenants(cat: Catalog) -> list[dict[str, Any]]:
    return [
        {
            "key": t.key,
            "name": t.name,
            "mode": t.mode,
            "domains": list(t.domains),
            "images": t.images_mode,
            "users": [
                {c: row.get(c, "") for c in USER_COLUMNS} for _, row in sorted(t.users.items())
            ],
        }
        for t in cat.tenants.values()
    ]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else dt.date.today()
    except ValueError as exc:
        raise PreviewError(f"not a date like 2026-12-31: {text!r}") from exc


def _recipient(tenant: Tenant, scope: str) -> str:
    if scope == "external":
        return EXTERNAL_RECIPIENT
    domains = tenant.internal_domains or tenant.domains
    if not domains:
        raise PreviewError(f"tenant {tenant.key!r} has no internal domains")
    return f"colleague@{domains[0]}"


def _banner(snap: Snapshot, user: str, rule: str, day: dt.date) -> dict[str, Any] | None:
    """The chosen rule's banner: its dates and whether it shows on ``day``."""
    assert snap.store is not None
    data = snap.store.get(f"user:{user.strip().lower()}")
    if data is None:
        return None
    for entry in UserRecord.from_json(data).entries:
        if entry.rule == rule and (entry.banner_html or entry.banner_text):
            on = entry.banner_on(day)
            return {"on": on, "start": entry.banner_start, "end": entry.banner_end}
    return None


def _tenant_for(snap: Snapshot, sender: str) -> Tenant | None:
    assert snap.catalog is not None
    return snap.catalog.tenant_for_domain(sender.rpartition("@")[2].strip(">"))


def _local_images(html: str, tenant: Tenant) -> str:
    """Point the tenant's image references at the page's copy of the catalog's file.

    The page's Content-Security-Policy lets nothing else load: a link-mode URL on a
    web server the admin may not reach, or a cid: reference, would show as broken.
    """
    for img in tenant.images.values():
        local = f'"/images/{quote(tenant.key)}/{quote(img.name)}"'
        base = tenant.image_base_url
        for ref in (f"{base}/{img.name}" if base else img.name, "cid:" + content_id(img)):
            html = html.replace(f'"{ref}"', local)
    return html


def _bodies(message: bytes) -> tuple[str, str]:
    """The HTML and text bodies, decoded for display only (never re-serialised)."""
    msg = email.message_from_bytes(message, policy=email.policy.default)
    out = []
    for kind in ("html", "plain"):
        part = msg.get_body(preferencelist=(kind,))
        try:
            out.append(part.get_content() if isinstance(part, EmailMessage) else "")
        except (LookupError, ValueError) as exc:  # unknown charset, broken encoding
            out.append(f"(cannot show this part: {exc})")
    return out[0], out[1]
