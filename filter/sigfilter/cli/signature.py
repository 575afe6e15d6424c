"""`sigfilter signature show`: the signature a sender would get."""

from __future__ import annotations

from pathlib import Path

import click

from .base import _service, _write, catalog_option
from .errors import SigfilterError


@click.group()
def signature() -> None:
    """Show the signature a sender would get."""


@signature.command("show")
@click.option("--sender", required=True, help="The sender's address.")
@click.option("--reply", is_flag=True, help="Show the reply variant.")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="A recipient (repeat), for rules scoped to internal/external mail.",
)
@click.option(
    "--html-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML (default: ./SENDER.signature.html).",
)
@catalog_option
def signature_show(
    sender: str,
    reply: bool,
    recipients: tuple[str, ...],
    html_out: Path | None,
    catalog_dir: Path | None,
) -> None:
    """Render what SENDER would get: HTML to a file, text to stdout.

    \b
    Example:
      sigfilter signature show --sender avery.quill@example.com --reply
    """
    found = _service(catalog_dir).lookup(sender, list(recipients) or None)
    if found.signature is None:
        raise SigfilterError(f"{sender}: no signature ({found.reason}: {found.detail})")
    html, text = found.signature.pick(reply)
    target = html_out or Path(f"{sender}.signature.html")
    _write(target, f'<!doctype html><meta charset="utf-8">\n{html}\n'.encode())
    click.echo(text)
    click.echo(f"rule: {found.rule}; HTML written to {target}", err=True)
