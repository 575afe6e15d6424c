"""Operations commands: `sigfilter stats` and `sigfilter doctor` (`health` is in
health.py: a probe run every few seconds imports nothing it does not need). Exit
codes: 0 fine, 1 something is wrong (what and how to fix it is printed), 2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import ConfigError, MilterConfig, load_config
from ..defaults import DEFAULT_CONFIG, HISTORY_MINUTES, METRICS_URL, SYNC_STATE_DIR
from ..ops.doctor import Doctor, Resolve, dns_resolve
from ..ops.findings import Finding, report
from ..ops.health import HealthError, fetch_json, metrics_endpoint
from ..ops.stats import render, summarise
from ..store.redis_store import redacted


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


# The DNS lookup doctor uses; tests put a resolver of their own here (no public DNS).
RESOLVER: Resolve = dns_resolve


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The milter's TOML configuration (default: /etc/sigfilter/sigfilter.toml "
                   "if it exists).")  # fmt: skip
@click.option("--tenant", help="Check this tenant only (its key in the catalog).")
@click.option("--catalog", "catalog_dir", help="Catalog directory (overrides the config).")
@click.option("--redis", "redis_url", metavar="URL", help="Redis URL (overrides the config).")
@click.option("--socket", metavar="SPEC", help="Milter socket (overrides the config).")
@click.option("--postfix-config", metavar="DIR",
              help="Postfix config dir (postconf -c DIR; default: the system's).")  # fmt: skip
@click.option("--no-postfix", is_flag=True, help="Skip the Postfix and certificate checks.")
@click.option("--no-dns", is_flag=True, help="Skip the DNS checks.")
@click.option("--sync-state", metavar="DIR", envvar="SIGFILTER_SYNC_STATE", default=SYNC_STATE_DIR,
              help="`users sync` state directory (or $SIGFILTER_SYNC_STATE).")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="Print only what is wrong.")
def doctor(
    config_file: Path | None,
    tenant: str | None,
    catalog_dir: str | None,
    redis_url: str | None,
    socket: str | None,
    postfix_config: str | None,
    no_postfix: bool,
    no_dns: bool,
    sync_state: str,
    quiet: bool,
) -> None:
    """Check the configuration, catalog, Redis, milter, Postfix, certificates and DNS.

    Prints one line per check (ok, WARN, FAIL) and, for each problem, how to fix it.
    Exits 1 if anything failed, 0 otherwise (warnings included).

    \b
    Checks:
      config    the milter's TOML file (every setting valid)
      catalog   the catalog directory (as sigfilter catalog check)
      redis     answers PING and holds a published catalog
      milter    answers option negotiation on its socket
      postfix   smtpd_milters, milter_default_action, milter timeouts,
                message_size_limit, relay restrictions, map files (postconf)
      tls       TLS levels and protocols; expiry of every certificate Postfix uses
      dns       MX/A of each tenant's return host; DKIM TXT when configured
      sync      tenants with [graph]: the credential file, the last successful
                `users sync` and its age

    \b
    Example:
      sigfilter doctor --config /etc/sigfilter/sigfilter.toml --tenant example.com
    """
    conf, found = _doctor_config(config_file, catalog_dir, redis_url, socket)
    where = str(config_file or "flags")
    doc = Doctor(conf, where, tenant=tenant, postfix_dir=postfix_config,
                 resolve=None if no_dns else RESOLVER, sync_state_dir=sync_state)  # fmt: skip
    found += doc.check_catalog()
    found += doc.check_redis()
    found += doc.check_milter()
    if not no_postfix:
        found += doc.check_postfix()
    found += doc.check_dns()
    found += doc.check_sync()
    text, code = report(found, verbose=not quiet)
    click.echo(text)
    raise SystemExit(code)


def _doctor_config(
    path: Path | None, catalog: str | None, redis: str | None, socket: str | None
) -> tuple[MilterConfig, list[Finding]]:
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
    where = str(path or "flags")
    try:
        conf = load_config(path).merged(catalog=catalog, redis=redis, socket=socket)
    except ConfigError as exc:
        fix = f"correct {path}" if path else "pass --config FILE"
        return MilterConfig(), [Finding("fail", "config", str(exc), fix)]
    try:
        conf.validate(where)
    except ConfigError as exc:
        return conf, [Finding("fail", "config", str(exc), f"correct the setting in {where}")]
    source = f"redis {redacted(conf.redis)}" if conf.redis else f"catalog {conf.catalog}"
    return conf, [Finding("ok", "config", f"{where}: socket {conf.socket}, {source}")]
