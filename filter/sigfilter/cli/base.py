"""What the ``sigfilter`` command modules share: the --catalog and --redis options,
reading the catalog and the input, writing the output. The errors and their exit codes
are in errors.py (the codes in exits.py)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..catalog import CatalogError, RenderError, Tenant, compile_catalog, load_catalog
from ..catalog.check import check_catalog
from ..catalog.importers import UserDiff
from ..secrets import SecretFileError, read_secret
from ..service import SignatureService, embedded_store
from ..store.redis_store import RedisPublisher, connect, redacted
from .errors import (
    CannotWrite,
    CatalogInvalid,
    InputUnreadable,
    InsecureConfig,
    ServiceUnavailable,
    SigfilterError,
)

F = TypeVar("F", bound=Callable[..., Any])


def _default_catalog() -> Path:
    env = os.environ.get("SIGFILTER_CATALOG")
    if env:
        return Path(env)
    local = Path("examples/catalog")
    if local.is_dir():
        return local
    raise click.UsageError("no catalog: pass --catalog DIR or set SIGFILTER_CATALOG")


def catalog_option(fn: F) -> F:
    return click.option(
        "--catalog",
        "catalog_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Catalog directory (default: $SIGFILTER_CATALOG, else ./examples/catalog).",
    )(fn)


def redis_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "--redis",
        "redis_url",
        envvar="SIGFILTER_REDIS",
        required=required,
        metavar="URL",
        help="Redis URL, e.g. redis://127.0.0.1:6379/0 (or $SIGFILTER_REDIS). A password "
        "goes in a 0600 file named by $SIGFILTER_REDIS_PASSWORD_FILE, not in the URL.",
    )


def _load(catalog_dir: Path | None) -> Any:
    try:
        return load_catalog(catalog_dir or _default_catalog())
    except CatalogError as exc:
        raise CatalogInvalid("the catalog has problems:\n  " + "\n  ".join(exc.problems)) from exc


def _tenant(catalog_dir: Path | None, key: str) -> Tenant:
    """The catalog's tenant ``key``, or an error that lists the tenants there are."""
    cat = _load(catalog_dir)
    tenant: Tenant | None = cat.tenants.get(key)
    if tenant is None:
        known = ", ".join(sorted(cat.tenants)) or "none"
        raise SigfilterError(f"no tenant {key!r} in the catalog (tenants: {known})")
    return tenant


# -- Redis and publishing (`publish`, `users sync`) -------------------------------------


def _admin_redis_password() -> str | None:
    """The admin commands' Redis password: from $SIGFILTER_REDIS_PASSWORD_FILE, never argv."""
    path = os.environ.get("SIGFILTER_REDIS_PASSWORD_FILE")
    if not path:
        return None
    try:
        return read_secret(Path(path))
    except SecretFileError as exc:
        raise InsecureConfig(f"SIGFILTER_REDIS_PASSWORD_FILE: {exc}") from exc


def _redis(url: str) -> Any:
    client = connect(url, password=_admin_redis_password())
    try:
        client.ping()
    except Exception as exc:
        raise ServiceUnavailable(f"Redis at {redacted(url)} is unreachable: {exc}") from exc
    return client


def publish_catalog(directory: Path | None, redis_url: str) -> str:
    """Check, render and publish the catalog; the one-line result."""
    cat = _load(directory)
    problems, summary = check_catalog(cat, render=False)
    if problems:
        raise CatalogInvalid("the catalog has problems:\n  " + "\n  ".join(problems))
    client = _redis(redis_url)
    started = time.monotonic()

    def progress(tenant: str, done: int, total: int) -> None:
        click.echo(f"  {tenant}: rendered {done}/{total} users", err=True)

    try:
        records = compile_catalog(cat, progress)
    except RenderError as exc:
        raise CatalogInvalid(str(exc)) from exc
    rendered = time.monotonic()
    try:
        version = RedisPublisher(client).publish(records, {"catalog": str(cat.root)})
    except Exception as exc:
        raise ServiceUnavailable(f"publishing to {redacted(redis_url)} failed: {exc}") from exc
    done = time.monotonic()
    return (
        f"published version {version}: {len(records)} records ({summary}); "
        f"rendered in {rendered - started:.2f} s, written in {done - rendered:.2f} s"
    )


# -- users.csv changes (`users import`, `users sync`) -----------------------------------


def diff_summary(diff: UserDiff) -> str:
    return f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"


def report_user_changes(diff: UserDiff, summary: str) -> str:
    """One line per user added, changed (with the fields) or removed, then ``summary``."""
    lines = []
    for label, emails in (("added", diff.added), ("changed", diff.changed),
                          ("removed", diff.removed)):  # fmt: skip
        for email in emails:
            fields = ", ".join(sorted(diff.changes.get(email, {})))
            lines.append(f"{label:8} {email}" + (f" ({fields})" if fields else ""))
    return "\n".join([*lines, summary])


def _service(catalog_dir: Path | None) -> SignatureService:
    try:
        return SignatureService(embedded_store(catalog_dir or _default_catalog()))
    except CatalogError as exc:
        raise CatalogInvalid("the catalog has problems:\n  " + "\n  ".join(exc.problems)) from exc
    except RenderError as exc:
        raise CatalogInvalid(str(exc)) from exc


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputUnreadable(f"cannot read {path}: {exc.strerror}") from exc


def _write(output: Path | None, data: bytes) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise CannotWrite(f"cannot write {output}: {exc.strerror}") from exc
