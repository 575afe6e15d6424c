"""One tenant's `sigfilter users sync` run: fetch, write users.csv and photos, save the
state and metrics, publish. Imported by the command only when it runs (it brings
requests, msal and cryptography, which no other command needs at start).

Exit codes as everywhere (exits.py): 1 Graph error, 65 catalog invalid, 69 Graph or
Redis unreachable, 73 cannot write, 75 another sync of the tenant is running, 77
sign-in or permission refused, 78 credential file missing or unsafe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import requests

from ..atomic import write_atomic
from ..catalog.fields import FIELD_NAMES
from ..catalog.importers import DirectoryImportError, diff_users, to_catalog_csv
from ..catalog.load import PHOTOS_DIR
from ..catalog.model import Tenant
from ..graph.auth import CredentialError, TokenSource
from ..graph.client import GraphClient, GraphDenied, GraphError, GraphUnavailable
from ..graph.photos import photo_name
from ..graph.sync import (
    DirectorySync,
    StateError,
    StateStore,
    SyncBusy,
    SyncOutcome,
    SyncState,
)
from ..ops.metrics import sync_metrics_text
from .base import diff_summary, publish_catalog, report_user_changes
from .errors import (
    Busy,
    CannotWrite,
    InputUnreadable,
    InsecureConfig,
    PermissionRefused,
    ServiceUnavailable,
    SigfilterError,
)

# How the Graph client waits on Retry-After; tests put a recorder here (no real waits).
SLEEP: Callable[[float], None] = time.sleep


@dataclass
class SyncJob:
    """One tenant's run: what the command was asked, and where things go."""

    tenant: Tenant
    store: StateStore
    dry_run: bool
    full: bool
    redis_url: str | None
    catalog_dir: Path
    clock: Callable[[], float] = time.time

    @property
    def users_csv(self) -> Path:
        return self.tenant.path / "users.csv"

    def run(self) -> str:
        """Sync, write users.csv and the state, publish; the summary line."""
        try:
            with self.store.locked(self.tenant.key):
                return self._run()
        except SyncBusy as exc:
            raise Busy(str(exc)) from exc
        except StateError as exc:
            raise CannotWrite(str(exc)) from exc

    def _run(self) -> str:
        state = self._load_state()
        started = self.clock()
        try:
            outcome = self._fetch(state)
            summary = self._apply(outcome, started)
        except (GraphError, StateError, DirectoryImportError) as exc:
            if not self.dry_run:
                self._record_failure(state, exc, started)
            raise _as_click(exc) from exc
        return summary

    def _load_state(self) -> SyncState:
        try:
            return self.store.load(self.tenant.key)
        except StateError as exc:
            raise InputUnreadable(str(exc)) from exc

    def _fetch(self, state: SyncState) -> SyncOutcome:
        settings = self.tenant.graph
        assert settings is not None  # checked by the command
        session = requests.Session()
        session.headers["User-Agent"] = "sigfilter-users-sync"
        tokens = TokenSource(settings, self.tenant.tenant_id, session)
        client = GraphClient(settings.graph_url, tokens, session, sleep=SLEEP)

        def progress(pages: int, seen: int) -> None:
            click.echo(f"  {self.tenant.key}: page {pages}, {seen} users received", err=True)

        return DirectorySync(client, self.tenant, state, self.clock, progress).run(self.full)

    def _apply(self, out: SyncOutcome, started: float) -> str:
        old = self._old_users()
        users = _keep_local_columns(out.users, old)
        diff = diff_users(old, users)
        excluded = ", ".join(f"{n} {why}" for why, n in sorted(out.excluded.items()))
        for note in out.notes:
            click.echo(f"note: {note}", err=True)
        kind = f"full sync ({out.full_reason})" if out.full_reason else "delta sync"
        summary = (
            f"{len(users)} users from Microsoft Graph, {kind}: {diff_summary(diff)}; "
            f"left out: {excluded or 'none'}; {out.pages} pages, {out.received} received"
            + (f", {out.removed} removed by delta" if out.removed else "")
            + (
                f"; photos: {out.photos_checked} checked, {len(out.photos_fetched)} fetched, "
                f"{len(out.photos_removed)} removed"
                if self.tenant.graph and self.tenant.graph.photos
                else ""
            )
        )
        if self.dry_run:
            return report_user_changes(diff, summary + " (dry run: nothing written)")
        if not users and old:
            raise GraphError(
                f"the directory gave no users with a mailbox in {', '.join(self.tenant.domains)}; "
                f"refusing to remove every user of {self.tenant.key} (users.csv kept)"
            )
        photos = self._write_photos(out)
        changed = bool(diff.added or diff.changed or diff.removed or photos)
        if changed or not self.users_csv.exists():
            _write_users(self.users_csv, to_catalog_csv(users))
        state = out.state
        state.last_success = state.last_attempt = self.clock()
        state.last_error = ""
        state.publish_pending = state.publish_pending or changed
        state.count("runs|ok")
        for label, emails in (("added", diff.added), ("changed", diff.changed),
                              ("removed", diff.removed)):  # fmt: skip
            state.count(f"users|{label}", len(emails))
        self._save(state, len(users), out, self.clock() - started)
        published = self._publish(state, len(users), out, started)
        return report_user_changes(diff, f"{summary}; wrote {self.users_csv}" + published)

    def _write_photos(self, out: SyncOutcome) -> int:
        """images/photos/<id>.jpg for new and changed photos; gone ones removed."""
        folder = self.tenant.path / "images" / PHOTOS_DIR
        try:
            if out.photos_fetched:
                folder.mkdir(parents=True, exist_ok=True)
            for oid, data in out.photos_fetched.items():
                write_atomic(self.tenant.path / "images" / photo_name(oid), data, 0o644)
            for oid in out.photos_removed:
                (self.tenant.path / "images" / photo_name(oid)).unlink(missing_ok=True)
        except OSError as exc:
            raise CannotWrite(f"cannot write the photos in {folder}: {exc}") from exc
        return len(out.photos_fetched) + len(out.photos_removed)

    def _old_users(self) -> dict[str, dict[str, str]]:
        # The catalog loader read users.csv already (same cleaning as the importer's;
        # keyed by the canonical address, so re-keyed by the file's own address); the
        # tenant's lock keeps other syncs from changing it since.
        return {fields["email"]: fields for fields in self.tenant.users.values()}

    def _publish(self, state: SyncState, users: int, out: SyncOutcome, started: float) -> str:
        if not self.redis_url or not state.publish_pending:
            return ""
        try:
            line = publish_catalog(self.catalog_dir, self.redis_url)
        except click.ClickException:
            state.count("failures|publish")
            self._save(state, users, out, self.clock() - started)
            raise  # publish_pending stays set: the next run publishes again
        state.publish_pending = False
        self._save(state, users, out, self.clock() - started)
        return f"; {line}"

    def _save(self, state: SyncState, users: int, out: SyncOutcome | None, took: float) -> None:
        self.store.save(self.tenant.key, state)
        gauges = {
            "sigfilter_sync_last_success_timestamp_seconds": state.last_success,
            "sigfilter_sync_last_run_timestamp_seconds": state.last_attempt,
            "sigfilter_sync_last_run_seconds": took,
        }
        if out is not None:
            gauges["sigfilter_sync_users"] = users
            gauges["sigfilter_sync_excluded_users"] = sum(out.excluded.values())
        text = sync_metrics_text(self.tenant.key, state.counters, gauges)
        try:
            write_atomic(self.store.directory / f"{self.tenant.key}.prom", text, 0o644)
        except OSError as exc:
            raise StateError(f"cannot write the sync metrics: {exc}") from exc

    def _record_failure(self, state: SyncState, exc: Exception, started: float) -> None:
        state.last_attempt = self.clock()
        state.last_error = str(exc).splitlines()[0][:500]
        reason = getattr(exc, "reason", "state" if isinstance(exc, StateError) else "data")
        state.count("runs|failed")
        state.count(f"failures|{reason}")
        try:
            self._save(state, 0, None, self.clock() - started)
        except StateError as save_error:
            click.echo(f"warning: {save_error}", err=True)


def _keep_local_columns(
    users: dict[str, dict[str, str]], old: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Columns the directory does not have (added to users.csv by hand, e.g. pronouns)
    are kept for the users who are still there."""
    out = {}
    for email, fields in users.items():
        local = {k: v for k, v in old.get(email, {}).items() if k not in FIELD_NAMES}
        out[email] = {**fields, **local}
    return out


def _write_users(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data, 0o644)
    except OSError as exc:
        raise CannotWrite(f"cannot write {path}: {exc.strerror or exc}") from exc


def _as_click(exc: Exception) -> click.ClickException:
    if isinstance(exc, CredentialError):
        return InsecureConfig(str(exc))
    if isinstance(exc, GraphDenied):
        return PermissionRefused(str(exc))
    if isinstance(exc, GraphUnavailable):
        return ServiceUnavailable(str(exc))
    if isinstance(exc, StateError):
        return CannotWrite(str(exc))
    return SigfilterError(str(exc))
