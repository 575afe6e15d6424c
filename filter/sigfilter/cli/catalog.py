"""`sigfilter catalog` (check, the preview page) and `sigfilter publish`."""

from __future__ import annotations

from pathlib import Path

import click

from ..catalog.check import catalog_warnings, check_catalog
from .base import _default_catalog, _load, catalog_option, publish_catalog, redis_option
from .errors import CatalogInvalid, InsecureConfig, ServiceUnavailable


@click.group()
def catalog() -> None:
    """Check the catalog directory (tenants, templates, users, rules)."""


@catalog.command("check")
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
def catalog_check(directory: Path | None) -> None:
    """Validate a catalog: settings, templates (rendered for every user), rules, images.

    Prints every problem as FILE:LINE: MESSAGE and exits 65 if there is any.

    \b
    Example:
      sigfilter catalog check examples/catalog
    """
    cat = _load(directory)
    problems, summary = check_catalog(cat)
    if problems:
        raise CatalogInvalid("the catalog has problems:\n  " + "\n  ".join(problems))
    for warning in catalog_warnings(cat):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"OK: {summary}")


@catalog.command("preview")
@click.option("--serve", is_flag=True, help="Serve the live preview page (required).")
@click.option(
    "--listen",
    default="127.0.0.1:8025",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the page listens (port 0: any free port).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --listen address other machines can reach (the page has no login).",
)
@catalog_option
def catalog_preview(serve: bool, listen: str, allow_remote: bool, catalog_dir: Path | None) -> None:
    """Serve a live page that shows every user's signatures as the milter renders them.

    Per tenant: every user (searchable), new and reply, internal and external
    recipients, on a chosen date (banners), at Outlook reading-pane and phone width,
    HTML beside text. Saving a template, users.csv or rules.toml updates the page at
    once; a problem shows as the FILE:LINE lines `catalog check` prints. Drop an .eml
    on the page to see it signed as `sigfilter preview` would sign it.

    The page shows directory data and has no login: it listens on loopback only
    unless --allow-remote. On a server, forward the port over SSH.

    \b
    Example:
      sigfilter catalog preview --serve --catalog /etc/sigfilter/catalog
      # from your desktop: ssh -L 8025:127.0.0.1:8025 relay1, then open
      # http://127.0.0.1:8025/
    """
    if not serve:
        raise click.UsageError(
            "catalog preview needs --serve (a live page); one signature as a file: "
            "sigfilter signature show --sender ADDR"
        )
    # Imported here: the other commands do not pay for Starlette and uvicorn.
    from ..admin.server import NotLoopback, serve_preview  # noqa: PLC0415

    root = catalog_dir or _default_catalog()
    try:
        serve_preview(root, listen, allow_remote, lambda line: click.echo(line, err=True))
    except NotLoopback as exc:
        raise InsecureConfig(str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    except OSError as exc:
        raise ServiceUnavailable(f"cannot listen on {listen}: {exc.strerror}") from exc


# -- publish ---------------------------------------------------------------------------


@click.command()
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@redis_option(required=True)
def publish(directory: Path | None, redis_url: str) -> None:
    """Validate the catalog, render every signature and publish it to Redis.

    The new version is written beside the current one and switched to atomically,
    then announced: every milter drops its cache and serves it at once.

    \b
    Example:
      sigfilter publish /etc/sigfilter/catalog --redis redis://127.0.0.1:6379/0
    """
    click.echo(publish_catalog(directory, redis_url))
