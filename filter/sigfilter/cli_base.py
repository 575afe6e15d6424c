"""What every ``sigfilter`` command module shares: the errors and their exit codes,
the --catalog and --redis options, and reading the catalog.

Exit codes (sysexits.h): 1 general, 2 usage (click), 65 catalog invalid, 66 input
unreadable, 69 service unavailable, 73 cannot write, 77 running as root, 78 insecure
configuration.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .catalog import CatalogError, Tenant, load_catalog

F = TypeVar("F", bound=Callable[..., Any])


class SigfilterError(click.ClickException):
    exit_code = 1


class CatalogInvalid(SigfilterError):
    exit_code = 65


class InputUnreadable(SigfilterError):
    exit_code = 66


class ServiceUnavailable(SigfilterError):
    exit_code = 69


class CannotWrite(SigfilterError):
    exit_code = 73


class RunningAsRoot(SigfilterError):
    exit_code = 77  # EX_NOPERM


class InsecureConfig(SigfilterError):
    exit_code = 78  # EX_CONFIG


EXIT_CATALOG = CatalogInvalid.exit_code


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
