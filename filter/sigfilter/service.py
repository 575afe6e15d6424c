"""Signature lookups for one message: sender → tenant → rule → rendered signature.

The service reads compiled records from any record store: Redis behind the in-process
cache for a fleet, or the embedded store compiled straight from the catalog directory.
It never raises for a store outage: the lookup says ``store-unavailable`` and the caller
passes the message unsigned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .address import Address, AddressError, canonical_address
from .catalog import TenantRecord, UserRecord, compile_catalog, load_catalog, resolve
from .defaults import CACHE_RETRY_AFTER, CACHE_TTL, HOLD_USERS, REDIS_TIMEOUT
from .identity import IdentityTable
from .reasons import LookupReason
from .signature import Signature
from .store.base import MemoryStore, RecordStore, StoreUnavailable
from .store.cache import CachedStore
from .store.redis_store import RedisStore, VersionListener, connect

log = logging.getLogger("sigfilter.service")


@dataclass(frozen=True, slots=True)
class Lookup:
    reason: LookupReason
    tenant: TenantRecord | None = None
    signature: Signature | None = None
    rule: str = ""
    detail: str = ""


@functools.lru_cache(maxsize=1024)
def _user(data: bytes) -> UserRecord:
    # Keyed by the record's bytes, so a newly published version is decoded afresh;
    # decoding (JSON + the rendered signatures) was most of a lookup's time.
    return UserRecord.from_json(data)


class SignatureService:
    """Lookups for one message. Tenants come from the held :class:`IdentityTable` (never
    from Redis on the message's path); users from the record store."""

    def __init__(
        self,
        store: RecordStore,
        today: Callable[[], dt.date] = dt.date.today,
        identity: IdentityTable | None = None,
        clock: Callable[[], float] = time.monotonic,
        hold_users: bool = False,
    ) -> None:
        self.store = store
        self.today = today
        self.clock = clock
        self.hold_users = hold_users
        # What is held, swapped as one: the tenants, and (hold_users) every user record
        # of the same version, so neither the tenant check nor a known sender's
        # signature waits on Redis (tests/bench/bench_identity.py: ~1.5 KB a user).
        self._held: tuple[IdentityTable, Mapping[str, bytes] | None] | None = (
            (identity, None) if identity is not None else None
        )
        self._next_try = float("-inf")
        self._loading = threading.Lock()
        if identity is None:
            with contextlib.suppress(StoreUnavailable):
                self.load_identity()

    def load_identity(self) -> IdentityTable:
        """Read every tenant and domain of the store's current version and hold them.

        Called at start and on every announced version. Raises StoreUnavailable (then
        the table held so far stays).
        """
        with self._loading:
            table = read_identity(self.store)
            users = read_users(self.store, table.version) if self.hold_users else None
            self._held = (table, users)
            return table

    @property
    def identity(self) -> IdentityTable | None:
        held = self._held
        return held[0] if held is not None else None

    def held_identity(self) -> IdentityTable | None:
        """The held table; with none, one load attempt at most every CACHE_RETRY_AFTER s."""
        table = self.identity
        if table is None and self.clock() >= self._next_try:
            self._next_try = self.clock() + CACHE_RETRY_AFTER
            with contextlib.suppress(StoreUnavailable):
                table = self.load_identity()
        return table

    def tenant_for(self, sender: str | Address) -> TenantRecord | None:
        """The tenant of a sender's canonical domain (raises StoreUnavailable when no
        tenant records are held, AddressError when the address has no canonical form)."""
        table = self.held_identity()
        if table is None:
            raise StoreUnavailable("no tenant records held (nothing loaded yet)")
        address = sender if isinstance(sender, Address) else canonical_address(sender)
        return table.tenant(address.domain)

    def lookup(self, sender: str | Address, recipients: Sequence[str] | None = None) -> Lookup:
        try:
            address = sender if isinstance(sender, Address) else canonical_address(sender)
        except AddressError as exc:
            return Lookup("unknown-sender", detail=exc.detail)
        try:
            tenant = self.tenant_for(address)
            if tenant is None:
                return Lookup("unknown-sender", detail=f"no tenant for {address.domain}")
            data = self._user_record(f"user:{address.text}")
        except StoreUnavailable as exc:
            return Lookup("store-unavailable", detail=str(exc))
        if data is None:
            return Lookup("no-signature", tenant, detail=f"no signature defined for {sender}")
        found = resolve(_user(data), tenant, recipients, self.today())
        return Lookup(found.reason, tenant, found.signature, found.rule, found.detail)

    def _user_record(self, key: str) -> bytes | None:
        held = self._held
        if held is not None and held[1] is not None:
            return held[1].get(key)  # every user of the held version: authoritative
        return self.store.get(key)


def read_users(store: RecordStore, version: int | None) -> Mapping[str, bytes] | None:
    """Every user record of ``version`` from Redis (None for other stores, which are in
    memory already); raises StoreUnavailable."""
    backend = getattr(store, "backend", store)
    if not isinstance(backend, RedisStore):
        return None
    _, records = backend.records(("user",), version)
    return records


def read_identity(store: RecordStore) -> IdentityTable:
    """Every tenant and domain of the store's current version (raises StoreUnavailable)."""
    backend = getattr(store, "backend", store)  # a CachedStore: ask what is behind it
    if isinstance(backend, MemoryStore):
        version, records = backend.snapshot()
        if version is None:
            raise StoreUnavailable("nothing loaded")
        return IdentityTable.from_records(records, version)
    if isinstance(backend, RedisStore):
        version, records = backend.identity_records()
        return IdentityTable.from_records(records, version)
    raise StoreUnavailable(f"{type(backend).__name__} cannot list its tenants")


def embedded_store(catalog_dir: Path) -> MemoryStore:
    """The no-Redis mode: the catalog compiled into an in-process store."""
    store = MemoryStore()
    store.replace(compile_catalog(load_catalog(catalog_dir)))
    return store


def redis_service(
    url: str,
    ttl: float = CACHE_TTL,
    timeout: float = REDIS_TIMEOUT,
    password: str | None = None,
    hold_users: bool = HOLD_USERS,
) -> tuple[SignatureService, CachedStore, VersionListener]:
    """The fleet mode: Redis behind the in-process cache, dropped on each new version.

    The caller starts and stops the listener.
    """
    client = connect(url, timeout, password)
    cached = CachedStore(RedisStore(client), ttl=ttl)
    service = SignatureService(cached, hold_users=hold_users)

    def on_version(version: int) -> None:
        cached.invalidate(version)
        held = service.identity
        if held is not None and held.version == version:
            return  # repeated after a reconnect: what is held is that version
        try:
            service.load_identity()
        except StoreUnavailable as exc:  # the table held so far stays
            log.warning("action=identity reason=load-failed version=%s detail=%s", version, exc)

    listener = VersionListener(connect(url, timeout, password), on_version)
    return service, cached, listener
