"""Signature lookups for one message: sender → tenant → rule → rendered signature.

The service reads compiled records from any record store: Redis behind the in-process
cache for a fleet, or the embedded store compiled straight from the catalog directory.
It never raises for a store outage: the lookup says ``store-unavailable`` and the caller
passes the message unsigned.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .catalog import TenantRecord, UserRecord, compile_catalog, load_catalog, resolve
from .defaults import CACHE_TTL, REDIS_TIMEOUT
from .signature import Signature
from .store.base import MemoryStore, RecordStore, StoreUnavailable
from .store.cache import CachedStore
from .store.redis_store import RedisStore, VersionListener, connect


@dataclass(frozen=True, slots=True)
class Lookup:
    reason: str  # ok | unknown-sender | no-signature | rule-skip | store-unavailable
    tenant: TenantRecord | None = None
    signature: Signature | None = None
    rule: str = ""
    detail: str = ""


@functools.lru_cache(maxsize=256)
def _tenant(data: bytes) -> TenantRecord:
    return TenantRecord.from_json(data)  # decoded once per version of the record


@functools.lru_cache(maxsize=1024)
def _user(data: bytes) -> UserRecord:
    # Keyed by the record's bytes, so a newly published version is decoded afresh;
    # decoding (JSON + the rendered signatures) was most of a lookup's time.
    return UserRecord.from_json(data)


class SignatureService:
    def __init__(self, store: RecordStore, today: Callable[[], dt.date] = dt.date.today) -> None:
        self.store = store
        self.today = today

    def tenant_for(self, sender: str) -> TenantRecord | None:
        """The sender's tenant (raises StoreUnavailable)."""
        domain = sender.rpartition("@")[2].strip().strip(">").lower()
        key = self.store.get(f"domain:{domain}") if domain else None
        data = self.store.get(f"tenant:{key.decode()}") if key else None
        return _tenant(data) if data else None

    def lookup(self, sender: str, recipients: Sequence[str] | None = None) -> Lookup:
        try:
            tenant = self.tenant_for(sender)
            if tenant is None:
                return Lookup(
                    "unknown-sender", detail=f"no tenant for {sender or 'an empty sender'}"
                )
            data = self.store.get(f"user:{sender.strip().lower()}")
        except StoreUnavailable as exc:
            return Lookup("store-unavailable", detail=str(exc))
        if data is None:
            return Lookup("no-signature", tenant, detail=f"no signature defined for {sender}")
        found = resolve(_user(data), tenant, recipients, self.today())
        return Lookup(found.reason, tenant, found.signature, found.rule, found.detail)


def embedded_store(catalog_dir: Path) -> MemoryStore:
    """The no-Redis mode: the catalog compiled into an in-process store."""
    store = MemoryStore()
    store.replace(compile_catalog(load_catalog(catalog_dir)))
    return store


def redis_service(
    url: str, ttl: float = CACHE_TTL, timeout: float = REDIS_TIMEOUT, password: str | None = None
) -> tuple[SignatureService, CachedStore, VersionListener]:
    """The fleet mode: Redis behind the in-process cache, dropped on each new version.

    The caller starts and stops the listener.
    """
    client = connect(url, timeout, password)
    cached = CachedStore(RedisStore(client), ttl=ttl)
    listener = VersionListener(connect(url, timeout, password), cached.invalidate)
    return SignatureService(cached), cached, listener
