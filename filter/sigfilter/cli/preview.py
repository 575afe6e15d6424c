"""`sigfilter preview`: what the filter would do to one message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..defaults import MODES, TNEF_MODES, Mode
from ..engine import Result
from ..previewing import preview_message
from .base import _read, _service, _write, catalog_option


def _decision(
    result: Result, sender: str, rule: str, size_in: int, size_out: int
) -> dict[str, Any]:
    return {
        "action": result.action,
        "reason": result.reason,
        "detail": result.detail,
        "placement": result.placement,
        "replaced": result.replaced,
        "variant": result.variant,
        "parts": list(result.parts),
        "rule": rule,
        "sender": sender,
        "bytes_in": size_in,
        "bytes_out": size_out,
        "tnef_class": result.tnef_class,
    }


def _decision_line(d: dict[str, Any]) -> str:
    keys = (
        "action", "reason", "placement", "replaced", "variant", "rule", "sender", "tnef_class",
        "bytes_in", "bytes_out",
    )  # fmt: skip
    words = [f"{k}={d[k]}" for k in keys if d.get(k) not in (None, "")]
    if d["parts"]:
        words.append("parts=" + ",".join(d["parts"]))
    if d["detail"]:
        words.append(f"detail={json.dumps(d['detail'])}")
    return " ".join(words)


@click.command()
@click.argument("message", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@catalog_option
@click.option("--sender", help="Envelope sender (default: the message's Sender/From address).")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="Envelope recipient (repeat; default: To and Cc).",
)
@click.option("--mode", type=click.Choice(MODES), help="Override the tenant's mode.")
@click.option(
    "--tnef",
    type=click.Choice(TNEF_MODES),
    help="Override the tenant's tnef setting: convert shows the TNEF message rebuilt as MIME.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as one JSON object.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rewritten message here instead of stdout.",
)
def preview(
    message: Path,
    catalog_dir: Path | None,
    sender: str | None,
    recipients: tuple[str, ...],
    mode: Mode | None,
    tnef: str | None,
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
    raw = _read(message)
    done = preview_message(_service(catalog_dir), raw, sender, recipients, mode, tnef)
    _write(output, done.message)
    d = _decision(done.result, done.sender, done.found.rule, len(raw), len(done.message))
    click.echo(json.dumps(d) if as_json else _decision_line(d), err=True)
