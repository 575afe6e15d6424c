"""What `sigfilter doctor` says about directory sync: credential, last good run, its age."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..catalog.model import Tenant
from ..defaults import SYNC_STALE_AFTER
from .auth import credential_problem
from .sync import StateError, StateStore

Level = Literal["ok", "warn", "fail"]
Line = tuple[Level, str, str]  # (level, message, fix)


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def sync_status(tenant: Tenant, state_dir: Path, now: dt.datetime) -> Iterator[Line]:
    """Findings for one tenant with a [graph] table."""
    assert tenant.graph is not None
    level, why = credential_problem(tenant.graph)
    fix = (
        f"put the app's certificate (PEM: key and certificate, mode 0600, owned by the sync's "
        f"user) at {tenant.graph.credential_file}; README: Directory sync"
    )
    if level == "bad":
        yield "fail", f"tenant {tenant.key}: {why}", fix
        return
    if level == "missing":
        yield "warn", f"tenant {tenant.key}: {why}", fix
        return
    try:
        state = StateStore(state_dir).load(tenant.key)
    except StateError as exc:
        yield "fail", str(exc), f"move {state_dir / (tenant.key + '.json')} away"
        return
    run = f"sigfilter users sync --tenant {tenant.key}"
    if not state.last_success:
        error = f" (last attempt: {state.last_error})" if state.last_error else ""
        yield (
            "fail",
            f"tenant {tenant.key}: no successful directory sync yet{error}",
            (f"run `{run}` and fix what it says; then enable sigfilter-sync.timer"),
        )
        return
    age = now.timestamp() - state.last_success
    when = dt.datetime.fromtimestamp(state.last_success, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    users = f"{len(state.objects)} directory users"
    if age > SYNC_STALE_AFTER:
        error = f"; the last attempt failed: {state.last_error}" if state.last_error else ""
        yield (
            "warn",
            f"tenant {tenant.key}: last successful sync {_age(age)} ago ({when}){error}",
            (
                "check `systemctl status sigfilter-sync.timer` and "
                f"`journalctl -u sigfilter-sync`; run `{run}`"
            ),
        )
        return
    yield "ok", f"tenant {tenant.key}: last successful sync {_age(age)} ago ({when}), {users}", ""
