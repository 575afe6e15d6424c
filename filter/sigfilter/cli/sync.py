"""``sigfilter users sync``: keep a tenant's users.csv current from Microsoft Entra ID.

Added to the ``users`` group in users.py; the work is in
sync_job.py, imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..catalog.model import Tenant
from ..defaults import SYNC_STATE_DIR
from .base import _default_catalog, _load, catalog_option, redis_option
from .errors import SigfilterError


@click.command("sync")
@click.option("--tenant", "tenants", multiple=True, metavar="KEY",
              help="Tenant key (its folder name; repeatable).")  # fmt: skip
@click.option("--all", "all_tenants", is_flag=True, help="Every tenant that has a [graph] table.")
@catalog_option
@click.option("--dry-run", is_flag=True, help="Print the changes; write nothing, keep the state.")
@click.option("--full", is_flag=True, help="Read every user again instead of the changes.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SIGFILTER_SYNC_STATE", default=SYNC_STATE_DIR, show_default=True,
              help="Where the delta links, the directory copy and the .prom metrics live "
                   "(or $SIGFILTER_SYNC_STATE).")  # fmt: skip
@redis_option(required=False)
def users_sync(
    tenants: tuple[str, ...],
    all_tenants: bool,
    catalog_dir: Path | None,
    dry_run: bool,
    full: bool,
    state_dir: Path,
    redis_url: str | None,
) -> None:
    """Sync users from Microsoft Entra ID (Microsoft Graph) into users.csv.

    Reads the users that changed since the last run (/users/delta), writes the tenant's
    users.csv atomically when something changed, and publishes the catalog when Redis
    is configured. The first run, one run a week and a run after an expired delta link
    read every user. Disabled accounts and users without a mailbox address in the
    tenant's domains are left out (counted in the summary). The tenant's [graph] table
    names the app registration (README: "Directory sync").

    \b
    Examples:
      sigfilter users sync --tenant example.com --dry-run
      sigfilter users sync --all --redis redis://127.0.0.1:6379/0
    """
    from ..graph.sync import StateStore  # noqa: PLC0415
    from .sync_job import SyncJob  # noqa: PLC0415 - see the module doc

    root = catalog_dir or _default_catalog()
    chosen = _chosen(root, tenants, all_tenants)
    failed = []
    for tenant in chosen:
        job = SyncJob(tenant, StateStore(state_dir), dry_run, full, redis_url, root)
        try:
            click.echo(job.run())
        except click.ClickException as exc:
            if len(chosen) == 1:
                raise
            failed.append(exc)
            click.echo(f"error: {tenant.key}: {exc.format_message()}", err=True)
    if failed:
        raise SigfilterError(f"{len(failed)} of {len(chosen)} tenants failed to sync")


def _chosen(root: Path, keys: tuple[str, ...], all_tenants: bool) -> list[Tenant]:
    cat = _load(root)
    if not keys and not all_tenants:
        raise click.UsageError("name a tenant (--tenant KEY) or use --all")
    if not keys:
        found = [t for t in cat.tenants.values() if t.graph is not None]
        if not found:
            raise SigfilterError("no tenant has a [graph] table: nothing to sync")
        return found
    chosen = []
    for key in keys:
        tenant = cat.tenants.get(key)
        if tenant is None:
            have = ", ".join(sorted(cat.tenants)) or "none"
            raise click.BadParameter(f"no tenant {key!r} (have: {have})", param_hint="--tenant")
        if tenant.graph is None:
            raise SigfilterError(
                f"{tenant.path / 'tenant.toml'}: no [graph] table: add client_id and "
                "certificate_file (README: Directory sync)"
            )
        chosen.append(tenant)
    return chosen
