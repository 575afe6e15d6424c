"""Delta sync of a tenant's users (and the groups its rules name) from Microsoft Graph.

``/users/delta`` gives every user on the first run and only the changes after that;
the deltaLink and a copy of the selected properties of every user (keyed by Graph id)
are kept in the tenant's state file, so each run can write a complete users.csv.
A full resync happens on the first run, weekly, and when the deltaLink has aged out
(410 / syncStateNotFound). Nothing here writes files: the caller writes users.csv
and the state only when the whole run succeeded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..catalog.importers import DirectoryImportError, graph_fields, graph_mailbox
from ..catalog.model import Tenant
from ..defaults import GRAPH_PAGE_SIZE, SYNC_FULL_EVERY, SYNC_PHOTOS_EVERY
from .client import GraphClient, GraphError, SyncStateExpired
from .photos import photo_name, refresh_photos

# Only what templates use (delta tracks only selected properties, and less is cheaper).
USER_SELECT = (
    "id", "displayName", "givenName", "surname", "jobTitle", "department", "companyName",
    "officeLocation", "businessPhones", "mobilePhone", "faxNumber", "mail", "proxyAddresses",
    "userPrincipalName", "streetAddress", "city", "state", "postalCode", "country",
    "accountEnabled",
)  # fmt: skip
DELTA_PATH = "/users/delta?$select=" + ",".join(USER_SELECT)
_GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")

# Why a directory user is not in users.csv (the summary counts each).
EXCLUDED_DISABLED = "account disabled"
EXCLUDED_NO_MAILBOX = "no mailbox address"
EXCLUDED_OTHER_DOMAIN = "address outside the tenant's domains"

Progress = Callable[[int, int], None]  # (pages fetched, user objects received)


class StateError(Exception):
    """The state file cannot be read or written."""


class SyncBusy(Exception):
    """Another run holds the tenant's lock."""


@dataclass
class SyncState:
    """What one tenant's sync remembers between runs (one JSON file)."""

    delta_link: str = ""
    last_full: float = 0.0
    last_success: float = 0.0
    last_attempt: float = 0.0
    last_error: str = ""
    publish_pending: bool = False  # users.csv changed but publishing it failed
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # Graph id -> properties
    photos: dict[str, str] = field(default_factory=dict)  # Graph id -> photo ETag
    photos_checked: float = 0.0  # when every user's photo was last checked
    counters: dict[str, float] = field(default_factory=dict)  # metric name|labels -> total

    def count(self, key: str, by: float = 1.0) -> None:
        self.counters[key] = self.counters.get(key, 0.0) + by


class StateStore:
    """``DIR/<tenant>.json``, replaced atomically, readable by its owner and group only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, tenant: str) -> Path:
        return self.directory / f"{tenant}.json"

    def load(self, tenant: str) -> SyncState:
        path = self.path(tenant)
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return SyncState()
        except (OSError, ValueError) as exc:
            raise StateError(
                f"{path}: cannot read the sync state ({exc}); move it away to start with a "
                "full sync"
            ) from exc
        if not isinstance(raw, dict):
            raise StateError(f"{path}: not a sync state (a JSON object); move it away")
        return SyncState(**{k: v for k, v in raw.items() if k in SyncState.__dataclass_fields__})

    @contextlib.contextmanager
    def locked(self, tenant: str) -> Iterator[None]:
        """One sync per tenant at a time (the timer and a manual run may meet)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{tenant}.lock", os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise StateError(f"{self.directory}: cannot create the sync lock: {exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise SyncBusy(
                    f"another sync of {tenant} is running (lock {self.directory})"
                ) from exc
            yield
        finally:
            os.close(fd)

    def save(self, tenant: str, state: SyncState) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Not asdict(): it deep-copies every user (10,000 users: 5 s of 6).
            doc = {f.name: getattr(state, f.name) for f in fields(state)}
            data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
            write_atomic(self.path(tenant), data, 0o640)
        except OSError as exc:
            raise StateError(f"{self.path(tenant)}: cannot write the sync state: {exc}") from exc


@dataclass
class SyncOutcome:
    users: dict[str, dict[str, str]]  # email -> fields, for users.csv
    state: SyncState  # to save once users.csv is written
    full_reason: str  # "" for a delta run
    pages: int = 0
    received: int = 0  # user objects in the answers (changes, on a delta run)
    removed: int = 0  # @removed entries applied
    excluded: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    photos_checked: int = 0
    photos_fetched: dict[str, bytes] = field(default_factory=dict)  # Graph id -> JPEG
    photos_removed: list[str] = field(default_factory=list)  # Graph ids whose photo went


def apply_changes(objects: dict[str, dict[str, Any]], items: Iterable[Any]) -> tuple[int, int]:
    """Merge a delta page into ``objects``: a user's properties replace the ones held
    (a delta answer may carry only some), ``@removed`` drops it. (received, removed)."""
    received = removed = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise GraphError("a /users/delta entry without an id")
        received += 1
        if "@removed" in item:
            removed += objects.pop(item["id"], None) is not None
            continue
        props = {k: v for k, v in item.items() if not k.startswith("@") and "@" not in k}
        objects[item["id"]] = {**objects.get(item["id"], {}), **props}
    return received, removed


def _mailbox(oid: str, obj: dict[str, Any], domains: tuple[str, ...]) -> tuple[str, str]:
    """(address, "") for a user who gets a users.csv row, else ("", why not)."""
    try:
        email = graph_mailbox(obj, f"user {oid}")
    except DirectoryImportError as exc:
        raise GraphError(f"an unexpected answer from Graph: {exc}") from exc
    if obj.get("accountEnabled") is False:
        return "", EXCLUDED_DISABLED
    if "@" not in email:
        return "", EXCLUDED_NO_MAILBOX
    if email.rpartition("@")[2] not in domains:
        return "", EXCLUDED_OTHER_DOMAIN
    return email, ""


def mailbox_ids(objects: dict[str, dict[str, Any]], domains: tuple[str, ...]) -> list[str]:
    """The Graph ids of the users who get a users.csv row."""
    return [oid for oid in sorted(objects) if _mailbox(oid, objects[oid], domains)[0]]


def directory_users(
    objects: dict[str, dict[str, Any]],
    domains: tuple[str, ...],
    memberships: dict[str, list[str]] | None = None,
    photos: dict[str, str] | None = None,
) -> tuple[dict[str, dict[str, str]], Counter[str], list[str]]:
    """users.csv rows from Graph objects: (email -> fields, excluded by reason, notes).
    ``memberships`` (Graph id -> rule group names) fills the ``groups`` field, ``photos``
    (Graph ids with a photo file) the ``photo`` field."""
    users: dict[str, dict[str, str]] = {}
    excluded: Counter[str] = Counter()
    notes: list[str] = []
    for oid in sorted(objects):
        email, reason = _mailbox(oid, objects[oid], domains)
        if reason:
            excluded[reason] += 1
            continue
        try:
            fields = graph_fields(objects[oid], f"user {oid}")
        except DirectoryImportError as exc:
            raise GraphError(f"an unexpected answer from Graph: {exc}") from exc
        if email in users:
            notes.append(f"{email} is the address of two directory users; {oid} wins")
        if memberships is not None:
            fields["groups"] = ";".join(sorted(memberships.get(oid, [])))
        if photos is not None:
            fields["photo"] = photo_name(oid) if oid in photos else ""
        users[email] = {"email": email, **fields}
    return users, excluded, notes


class DirectorySync:
    """One run for one tenant: delta (or full) users, then the rule groups' members."""

    def __init__(
        self,
        client: GraphClient,
        tenant: Tenant,
        state: SyncState,
        clock: Callable[[], float] = time.time,
        progress: Progress | None = None,
        page_size: int = GRAPH_PAGE_SIZE,
    ) -> None:
        self.client = client
        self.tenant = tenant
        self.old = state
        self.clock = clock
        self.progress = progress or (lambda pages, seen: None)
        self.headers = {"Prefer": f"odata.maxpagesize={page_size}"}

    def full_reason(self, force: bool) -> str:
        if force:
            return "asked for (--full)"
        if not self.old.delta_link:
            return "first sync"
        if self.clock() - self.old.last_full >= SYNC_FULL_EVERY:
            return "weekly full sync"
        return ""

    def run(self, force_full: bool = False) -> SyncOutcome:
        reason = self.full_reason(force_full)
        try:
            out = self._users(reason)
        except SyncStateExpired:
            if reason:
                raise
            out = self._users("the delta link expired (410 / syncStateNotFound)")
        groups = rule_groups(self.tenant)
        memberships = group_memberships(self.client, groups, out.notes) if groups else None
        photos = self._photos(out, force_full) if self._photo_settings() else None
        out.users, out.excluded, notes = directory_users(
            out.state.objects, self.tenant.domains, memberships, photos
        )
        out.notes += notes
        return out

    def _photo_settings(self) -> tuple[str, int] | None:
        graph = self.tenant.graph
        if graph is None or not graph.photos:
            return None
        return graph.photo_size, graph.max_photo_bytes or self.tenant.max_image_bytes

    def _photos(self, out: SyncOutcome, force: bool) -> dict[str, str]:
        """Check the photos that are due (all daily, new users at once); the new ETags."""
        settings = self._photo_settings()
        assert settings is not None
        state, now = out.state, self.clock()
        ids = mailbox_ids(state.objects, self.tenant.domains)
        due = force or now - self.old.photos_checked >= SYNC_PHOTOS_EVERY
        check = ids if due else [i for i in ids if i not in self.old.objects]
        update = refresh_photos(self.client, check, self.old.photos, *settings)
        checked = set(check)
        keep = {i: e for i, e in self.old.photos.items() if i in ids and i not in checked}
        state.photos = keep | update.etags
        state.photos_checked = now if due else self.old.photos_checked
        out.photos_checked = update.checked
        out.photos_fetched = update.fetched
        out.photos_removed = sorted(set(self.old.photos) - set(state.photos))
        out.notes += update.notes
        return state.photos

    def _users(self, reason: str) -> SyncOutcome:
        now = self.clock()
        objects = {} if reason else {k: dict(v) for k, v in self.old.objects.items()}
        state = SyncState(
            last_full=now if reason else self.old.last_full,
            objects=objects,
            photos=dict(self.old.photos),
            photos_checked=self.old.photos_checked,
            counters=dict(self.old.counters),
            publish_pending=self.old.publish_pending,
        )
        out = SyncOutcome({}, state, reason)
        start = DELTA_PATH if reason else self.old.delta_link
        for page in self.client.pages(start, self.headers):
            received, removed = apply_changes(objects, page["value"])
            out.pages += 1
            out.received += received
            out.removed += removed
            self.progress(out.pages, out.received)
            link = page.get("@odata.deltaLink")
            if isinstance(link, str):
                state.delta_link = link
        if not state.delta_link:
            raise GraphError("/users/delta ended without an @odata.deltaLink")
        return out


def rule_groups(tenant: Tenant) -> tuple[str, ...]:
    """The group names (or ids) the tenant's rules use, each once, in order."""
    return tuple(dict.fromkeys(g for rule in tenant.rules for g in rule.groups))


def _group_ids(client: GraphClient, name: str) -> list[str]:
    if _GUID.fullmatch(name):
        response = client.get(f"/groups/{name}?$select=id,displayName", ok=frozenset({404}))
        return [name] if response.status_code != 404 else []
    quoted = urllib.parse.quote(name.replace("'", "''"), safe="")
    page = client.get_json(f"/groups?$filter=displayName%20eq%20'{quoted}'&$select=id,displayName")
    return [g["id"] for g in page.get("value", []) if isinstance(g, dict) and "id" in g]


def group_memberships(
    client: GraphClient, names: tuple[str, ...], notes: list[str]
) -> dict[str, list[str]]:
    """Graph user id -> the rule group names it belongs to, nested groups included."""
    members: dict[str, list[str]] = {}
    for name in names:
        ids = _group_ids(client, name)
        if not ids:
            notes.append(f"group {name!r} (rules.toml) is not in Entra ID: its rules match nobody")
        elif len(ids) > 1:
            notes.append(f"{len(ids)} Entra groups are named {name!r}: members of all count")
        for gid in ids:
            path = f"/groups/{gid}/transitiveMembers/microsoft.graph.user?$select=id&$count=true"
            for page in client.pages(path, {"ConsistencyLevel": "eventual"}):
                for member in page["value"]:
                    if isinstance(member, dict) and isinstance(member.get("id"), str):
                        joined = members.setdefault(member["id"], [])
                        if name not in joined:
                            joined.append(name)
    return members
