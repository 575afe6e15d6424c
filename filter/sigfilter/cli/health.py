"""`sigfilter health`: the load balancer's and systemd's probe.

Run every few seconds, so it imports only click, the probe and the defaults (about
0.1 s to start; the whole command tree takes 0.6 s). Exits 0 when the milter answers,
1 when it does not.
"""

from __future__ import annotations

import click

from ..defaults import HEALTH_TIMEOUT, METRICS_URL
from ..ops.health import HealthError, fetch_json, metrics_endpoint, probe_milter


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
