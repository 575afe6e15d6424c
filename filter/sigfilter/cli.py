"""The ``sigfilter`` command."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import click

from . import __version__
from .catalog import Catalog, CatalogError
from .defaults import MODES, Mode
from .engine import Result, rewrite, rewritten_message
from .mime.headers import parse_header_block

EXIT_CATALOG = 3  # the catalog cannot be read or rendered


class CatalogFailure(click.ClickException):
    exit_code = EXIT_CATALOG


@dataclass
class AppContext:
    verbose: bool


def _default_catalog() -> Path | None:
    env = os.environ.get("SIGFILTER_CATALOG")
    if env:
        return Path(env)
    local = Path("examples/catalog")
    return local if local.is_dir() else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sigfilter")
@click.option("-v", "--verbose", is_flag=True, help="Say more about what happens.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """sigfilter: server-side email signatures for Microsoft 365 tenants.

    Mail that Exchange Online routes to our Postfix gets each sender's signature in
    its body, byte-exact everywhere else, and goes straight back to the tenant.
    """
    ctx.obj = AppContext(verbose=verbose)


def _sender_of(raw: bytes) -> str:
    headers = parse_header_block(raw)
    for name in ("sender", "from"):
        f = headers.get(name)
        if f:
            addrs = getaddresses([f.value])
            if addrs and addrs[0][1]:
                return addrs[0][1]
    return ""


def _decision(result: Result, sender: str, size_in: int, size_out: int) -> dict[str, Any]:
    return {
        "action": result.action,
        "reason": result.reason,
        "detail": result.detail,
        "placement": result.placement,
        "variant": result.variant,
        "parts": list(result.parts),
        "sender": sender,
        "bytes_in": size_in,
        "bytes_out": size_out,
    }


def _decision_line(d: dict[str, Any]) -> str:
    keys = ("action", "reason", "placement", "variant", "sender", "bytes_in", "bytes_out")
    words = [f"{k}={d[k]}" for k in keys if d.get(k) not in (None, "")]
    if d["parts"]:
        words.append("parts=" + ",".join(d["parts"]))
    if d["detail"]:
        words.append(f"detail={json.dumps(d['detail'])}")
    return " ".join(words)


@main.command()
@click.argument("message", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Catalog directory (default: $SIGFILTER_CATALOG, else ./examples/catalog).",
)
@click.option("--sender", help="Envelope sender (default: the message's Sender/From address).")
@click.option("--mode", type=click.Choice(MODES), help="Override the tenant's mode.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as one JSON object.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rewritten message here instead of stdout.",
)
def preview(
    message: Path,
    catalog_dir: Path | None,
    sender: str | None,
    mode: Mode | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """Show what the filter would do to MESSAGE.eml ('-' reads stdin).

    Writes the rewritten message (byte-identical when skipped) to stdout or -o, and a
    one-line decision to stderr. Exits 0 for any message, however broken.

    \b
    Example:
      sigfilter preview --catalog examples/catalog --sender avery.quill@example.com \\
          --json examples/messages/iphone-reply.eml -o /tmp/out.eml
    """
    raw = sys.stdin.buffer.read() if str(message) == "-" else _read(message)
    root = catalog_dir or _default_catalog()
    if root is None:
        raise click.UsageError("no catalog: pass --catalog DIR or set SIGFILTER_CATALOG")
    try:
        catalog = Catalog(root)
    except CatalogError as exc:
        raise CatalogFailure(str(exc)) from exc
    sender = sender or _sender_of(raw)
    result = _preview_result(catalog, raw, sender, mode)
    out = rewritten_message(raw, result)
    if output is None:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(out)
    d = _decision(result, sender, len(raw), len(out))
    click.echo(json.dumps(d) if as_json else _decision_line(d), err=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror) from exc


def _preview_result(catalog: Catalog, raw: bytes, sender: str, mode: Mode | None) -> Result:
    tenant = catalog.tenant_for(sender)
    if tenant is None:
        return Result("skipped", "unknown-sender", f"no tenant for {sender or 'an empty sender'}")
    try:
        signature = catalog.signature_for(sender)
    except CatalogError as exc:
        raise CatalogFailure(str(exc)) from exc
    if signature is None:
        return Result("skipped", "no-signature", f"no signature defined for {sender}")
    return rewrite(raw, signature, tenant.options(mode))
