"""`sigfilter milter`: run the milter (a supervisor parent, libmilter in a child)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from ..config import ConfigError, MilterConfig, load_config
from ..defaults import LOG_FORMATS
from ..milter.callbacks import MilterSettings, block_signals, run
from ..milter.supervisor import supervise
from ..secrets import SecretFileError, read_secret
from ..service import SignatureService, redis_service
from .base import _service
from .errors import InsecureConfig, RunningAsRoot


def _refuse_root(conf: MilterConfig) -> None:
    """The milter parses hostile mail: it runs as its own unprivileged user."""
    if os.geteuid() == 0 and not conf.allow_root:
        raise RunningAsRoot(
            "refusing to run as root: run the milter as its own user (e.g. sigfilter, "
            "User= in the systemd unit); allow_root = true is for tests only"
        )


def _redis_password(conf: MilterConfig) -> str | None:
    if not conf.redis_password_file:
        return None
    try:
        return read_secret(Path(conf.redis_password_file))
    except SecretFileError as exc:
        raise InsecureConfig(f"redis_password_file: {exc}") from exc


# -- milter ----------------------------------------------------------------------------


def _setup_logging(level: str, log_format: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")
    if log_format == "json":
        # The line per message is a whole JSON object (it carries its own time).
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        message_log = logging.getLogger("sigfilter.message")
        message_log.addHandler(handler)
        message_log.propagate = False


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML configuration file (flags override it).",
)
@click.option("--socket", help="Where Postfix connects: unix:PATH or inet:HOST:PORT.")
@click.option("--catalog", "catalog_dir", type=click.Path(file_okay=False, exists=True),
              help="Serve straight from this catalog directory (no Redis).")  # fmt: skip
@click.option(
    "--redis", "redis_url", metavar="URL", help="Serve what `sigfilter publish` wrote to Redis."
)
@click.option("--max-size", type=int, help="Messages larger than this many bytes pass unchanged.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option(
    "--metrics",
    metavar="HOST:PORT",
    help="Serve /metrics, /status, /stats here (default 127.0.0.1:9464; off: none).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="The line per message: key=value (kv, default) or JSON.",
)
def milter(
    config_file: Path | None,
    socket: str | None,
    catalog_dir: str | None,
    redis_url: str | None,
    max_size: int | None,
    log_level: str | None,
    metrics: str | None,
    log_format: str | None,
) -> None:
    """Run the milter that signs mail for Postfix (until SIGTERM).

    Works with no config file at all: --socket and --catalog (or --redis) suffice.
    Point Postfix at it with smtpd_milters = the same socket. SIGTERM stops it after
    the messages in flight; SIGHUP (or SIGUSR1) reloads the config file and the catalog
    (with --redis, published versions arrive by themselves).

    \b
    Example:
      sigfilter milter --socket unix:/run/sigfilter/milter.sock --catalog /etc/sigfilter/catalog
    """
    flags = {"socket": socket, "catalog": catalog_dir, "redis": redis_url, "max_size": max_size,
             "log_level": log_level, "metrics": metrics, "log_format": log_format}  # fmt: skip
    try:
        conf = load_config(config_file).merged(**flags).validate(str(config_file or "flags"))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    _refuse_root(conf)
    password = _redis_password(conf)
    _setup_logging(conf.log_level, conf.log_format)
    code = supervise(lambda: _milter_child(conf, config_file, flags, password))
    if code:
        raise SystemExit(code)


def _milter_child(
    conf: MilterConfig, config_file: Path | None, flags: dict[str, Any], password: str | None
) -> int:
    """The forked child that runs libmilter (see supervisor.py for why there is one)."""
    block_signals()  # before any thread starts (see milter.block_signals)
    try:
        _serve(conf, config_file, flags, password)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def _serve(
    conf: MilterConfig, config_file: Path | None, flags: dict[str, Any], password: str | None
) -> None:
    listener = None
    if conf.redis:
        service, _, listener = redis_service(
            conf.redis, conf.cache_ttl, conf.redis_timeout, password, conf.hold_users
        )
        listener.start()
    else:
        service = _service(Path(conf.catalog))
    source = f"redis {conf.redis}" if conf.redis else f"catalog {conf.catalog}"
    click.echo(f"sigfilter milter on {conf.socket} ({source})", err=True)
    try:

        def reload() -> tuple[SignatureService, MilterSettings]:
            """SIGUSR1: the config file again (flags still win), and the catalog."""
            new = load_config(config_file).merged(**flags).validate(str(config_file or "flags"))
            fresh = service if new.redis else _service(Path(new.catalog))
            return fresh, MilterSettings.from_config(new)

        run(
            service,
            conf.socket,
            MilterSettings.from_config(conf),
            reload=reload,
            metrics_listen=conf.metrics,
        )
    finally:
        if listener is not None:
            listener.stop()
