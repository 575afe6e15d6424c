"""`sigfilter users`: import, list, and sync from Entra ID (sync.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..atomic import write_atomic
from ..catalog.importers import (
    DirectoryImportError,
    diff_users,
    parse_catalog_csv,
    parse_directory,
    to_catalog_csv,
)
from .base import _default_catalog, _load, _read, catalog_option, diff_summary, report_user_changes
from .errors import CannotWrite, InputUnreadable
from .sync import users_sync


@click.group()
def users() -> None:
    """Import and list a tenant's users and their directory fields."""


@users.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="Tenant key (its folder name under tenants/).")
@catalog_option
@click.option("--dry-run", is_flag=True, help="Report the changes without writing users.csv.")
def users_import(file: Path, tenant: str, catalog_dir: Path | None, dry_run: bool) -> None:
    """Import users from a Microsoft 365 export (CSV) or Microsoft Graph /users JSON.

    Replaces the tenant's users.csv and reports users added, changed and removed.

    \b
    Example:
      sigfilter users import ~/Downloads/users.csv --tenant example.com
    """
    root = catalog_dir or _default_catalog()
    folder = root / "tenants" / tenant
    if not folder.is_dir():
        raise click.BadParameter(f"no tenant folder {folder}", param_hint="--tenant")
    try:
        imported = parse_directory(_read(file), file.name)
        target = folder / "users.csv"
        old = parse_catalog_csv(target.read_bytes(), str(target)).users if target.exists() else {}
    except DirectoryImportError as exc:
        raise InputUnreadable(str(exc)) from exc
    if imported.next_page:
        raise InputUnreadable(
            f"{file}: one page of a longer Graph listing (@odata.nextLink is set); importing it "
            "would remove the users on the other pages. Fetch all pages into one file first."
        )
    if not imported.users:
        raise InputUnreadable(f"{file}: no users in it; refusing to remove every user of {tenant}")
    diff = diff_users(old, imported.users)
    for note in imported.skipped:
        click.echo(f"skipped: {note}", err=True)
    click.echo(report_user_changes(diff, f"{len(imported.users)} users from {imported.source}"
                                   + f": {diff_summary(diff)}"
                                   + (" (dry run: nothing written)" if dry_run
                                      else f"; wrote {target}")))  # fmt: skip
    if not dry_run:
        try:  # atomically: a milter reloading meanwhile sees the old file or the new one
            write_atomic(target, to_catalog_csv(imported.users), 0o644)
        except OSError as exc:
            raise CannotWrite(f"cannot write {target}: {exc.strerror or exc}") from exc


@users.command("list")
@click.option("--tenant", required=True, help="Tenant key (its folder name under tenants/).")
@catalog_option
def users_list(tenant: str, catalog_dir: Path | None) -> None:
    """List a tenant's users with their main fields.

    \b
    Example:
      sigfilter users list --tenant example.com
    """
    cat = _load(catalog_dir)
    t = cat.tenants.get(tenant)
    if t is None:
        raise click.BadParameter(
            f"no tenant {tenant!r} (have: {', '.join(cat.tenants)})", param_hint="--tenant"
        )
    cols = ("email", "display_name", "job_title", "department")
    rows = [[u.get(c, "") for c in cols] for _, u in sorted(t.users.items())]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} users", err=True)


users.add_command(users_sync)
