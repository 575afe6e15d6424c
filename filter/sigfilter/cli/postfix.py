"""`sigfilter postfix-maps`: Postfix's tenant maps written from the catalog (postfix_maps.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from ..catalog.compiled import tenant_record
from ..postfix_maps import MAP_FILES, MapError, Maps, differences, render_maps
from .base import _load, catalog_option
from .errors import CannotWrite, CatalogInvalid, SigfilterError


def _transports(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, name = value.partition("=")
        if not sep or not key or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise click.BadParameter(f"{value!r}: want TENANT=TRANSPORT", param_hint="--transport")
        out[key] = name
    return out


def _write(path: Path, text: str) -> bool:
    """Write atomically (0644); False when the file already holds exactly this."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CannotWrite(f"cannot read {path}: {exc}") from exc
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise CannotWrite(f"cannot write {path}: {exc}") from exc
    return True


@click.command("postfix-maps")
@catalog_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Postfix's map directory (CONFIG_DIR in postfix/README.md, e.g. /etc/postfix).",
)
@click.option(
    "--transport",
    "transports",
    multiple=True,
    metavar="TENANT=NAME",
    help="A tenant (catalog key) that returns through its own smtp transport in master.cf "
    "(its own client certificate). Repeat per tenant.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a map differs.")
def postfix_maps(
    catalog_dir: Path | None, out_dir: Path, transports: tuple[str, ...], check: bool
) -> None:
    """Write Postfix's tenant maps from the catalog: one list of tenant domains.

    tenant_senders (the sender domains Postfix accepts), relayhost_by_sender (each
    domain's return host, from the tenant's return_host) and transport_by_sender come
    from the same catalog the milter's tenant check uses, so they cannot drift apart.
    Run `postfix reload` after a change (texthash maps), or `postmap` each file (hash).

    \b
    Examples:
      sigfilter postfix-maps --catalog /etc/sigfilter/catalog --out /etc/postfix
      sigfilter postfix-maps --catalog /etc/sigfilter/catalog --out /etc/postfix --check
    """
    cat = _load(catalog_dir)
    try:
        maps = render_maps(
            (tenant_record(t) for t in cat.tenants.values()),
            _transports(transports),
            source=str(cat.root),
        )
    except MapError as exc:
        raise CatalogInvalid(str(exc)) from exc
    if check:
        _check(maps, out_dir)
        return
    changed = [name for name in MAP_FILES if _write(out_dir / name, maps.files[name])]
    domains = len(maps.entries("tenant_senders"))
    if changed:
        click.echo(f"wrote {', '.join(changed)} ({domains} sender domains): run postfix reload")
    else:
        click.echo(f"unchanged ({domains} sender domains)")


def _check(maps: Maps, out_dir: Path) -> None:
    problems = []
    for name in MAP_FILES:
        try:
            text = (out_dir / name).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{name}: {exc.strerror or exc}")
            continue
        problems += [f"{name}: {p}" for p in differences(maps, name, text)]
    if problems:
        raise SigfilterError("the maps differ from the catalog:\n  " + "\n  ".join(problems))
    click.echo("OK: the maps agree with the catalog")
