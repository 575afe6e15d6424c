"""Operations commands: `sigfilter health`, `sigfilter stats`, `sigfilter doctor`.

Registered at the bottom of cli.py. Exit codes: 0 fine, 1 something is wrong (what and
how to fix it is printed), 2 usage.
"""

from __future__ import annotations

import json

import click

from .defaults import HEALTH_TIMEOUT, HISTORY_MINUTES, METRICS_URL
from .health import HealthError, fetch_json, metrics_endpoint, probe_milter
from .stats import render, summarise


@click.command()
@click.option(
    "--socket",
    "spec",
    required=True,
    metavar="SPEC",
    help="The milter's socket as Postfix spells it: unix:PATH or inet:HOST:PORT.",
)
@click.option(
    "--url",
    default=METRICS_URL,
    show_default=True,
    help="The milter's metrics port, for the catalog version ('' skips it).",
)
@click.option("--timeout", type=float, default=HEALTH_TIMEOUT, show_default=True,
              help="Seconds to wait for each answer.")  # fmt: skip
def health(spec: str, url: str, timeout: float) -> None:
    """Check that the milter answers, for load-balancer probes and systemd.

    Speaks the milter protocol's option negotiation (what Postfix does first on every
    connection) and reports the catalog version from the metrics port. Exits 0 when
    the milter answers (an unreachable metrics port only makes the version unknown),
    1 when it does not.

    \b
    Example:
      sigfilter health --socket unix:/run/sigfilter/milter.sock
    """
    try:
        got = probe_milter(spec, timeout)
    except HealthError as exc:
        raise click.ClickException(f"FAIL milter {spec}: {exc}") from exc
    version = "unknown"
    note = ""
    if url:
        try:
            status = fetch_json(metrics_endpoint(url, "/status"), timeout)
            version = str(status.get("catalog_version"))
        except HealthError as exc:
            note = f" (status: {exc})"
    click.echo(
        f"OK milter {spec} answers (protocol {got.version}); catalog version {version}{note}"
    )


@click.command()
@click.option("--url", default=METRICS_URL, show_default=True, help="The milter's metrics port.")
@click.option(
    "--minutes",
    type=click.IntRange(1, HISTORY_MINUTES),
    default=HISTORY_MINUTES,
    show_default=True,
    help="How far back to add up.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def stats(url: str, minutes: int, as_json: bool) -> None:
    """Signed versus skipped (by reason) over the last hour, from a running milter.

    For people without a Prometheus server: the milter keeps per-minute counts of
    the last hour and serves them on its metrics port (/stats); this adds them up.
    The counts start afresh when the milter restarts.

    \b
    Example:
      sigfilter stats --url http://127.0.0.1:9464 --minutes 15
    """
    try:
        data = fetch_json(metrics_endpoint(url, "/stats"))
    except HealthError as exc:
        raise click.ClickException(f"cannot read the milter's stats: {exc}") from exc
    summary = summarise(data, minutes)
    click.echo(json.dumps(summary) if as_json else render(summary, url))
