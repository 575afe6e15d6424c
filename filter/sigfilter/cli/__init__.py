"""The ``sigfilter`` command: one root group, a subcommand per task.

Errors map to exit codes (sysexits.h): 2 usage, 65 catalog invalid, 66 input file
unreadable, 69 Redis unavailable, 73 cannot write an output file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..atomic import write_atomic
from ..catalog import CatalogError, RenderError
from ..catalog.check import catalog_warnings, check_catalog
from ..catalog.importers import (
    DirectoryImportError,
    diff_users,
    parse_catalog_csv,
    parse_directory,
    to_catalog_csv,
)
from ..config import ConfigError, MilterConfig, load_config
from ..defaults import LOG_FORMATS, MODES, TNEF_MODES, Mode
from ..engine import Result
from ..milter.callbacks import MilterSettings, block_signals, run
from ..milter.supervisor import supervise
from ..previewing import preview_message
from ..secrets import SecretFileError, read_secret
from ..service import SignatureService, embedded_store, redis_service
from ..store.redis_store import RedisPublisher, redacted
from . import dkim as cli_dkim
from . import m365 as cli_m365
from . import ops as cli_ops
from . import postfix as cli_postfix
from . import sync as cli_sync
from .base import (  # noqa: F401 - re-exported: tests and the command modules use them
    EXIT_CATALOG,
    CannotWrite,
    CatalogInvalid,
    F,
    InputUnreadable,
    InsecureConfig,
    RunningAsRoot,
    ServiceUnavailable,
    SigfilterError,
    _admin_redis_password,
    _default_catalog,
    _load,
    _redis,
    _tenant,
    catalog_option,
    diff_summary,
    publish_catalog,
    redis_option,
    report_user_changes,
)


def _service(catalog_dir: Path | None) -> SignatureService:
    try:
        return SignatureService(embedded_store(catalog_dir or _default_catalog()))
    except CatalogError as exc:
        raise CatalogInvalid("the catalog has problems:\n  " + "\n  ".join(exc.problems)) from exc
    except RenderError as exc:
        raise CatalogInvalid(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sigfilter")
def main() -> None:
    """sigfilter: server-side email signatures for Microsoft 365 tenants.

    Mail that Exchange Online routes to our Postfix gets each sender's signature in
    its body, byte-exact everywhere else, and goes straight back to the tenant.
    """


# -- preview ---------------------------------------------------------------------------


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


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputUnreadable(f"cannot read {path}: {exc.strerror}") from exc


@main.command()
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


def _write(output: Path | None, data: bytes) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise CannotWrite(f"cannot write {output}: {exc.strerror}") from exc


# -- catalog ---------------------------------------------------------------------------


@main.group()
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


@main.command()
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


# -- users -----------------------------------------------------------------------------


@main.group()
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


# -- signature -------------------------------------------------------------------------


@main.group()
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


# -- cache -----------------------------------------------------------------------------


@main.group()
def cache() -> None:
    """Inspect or empty the Redis serving layer."""


@cache.command("stats")
@redis_option(required=True)
def cache_stats(redis_url: str) -> None:
    """Show the published version and what it holds.

    \b
    Example:
      sigfilter cache stats --redis redis://127.0.0.1:6379/0
    """
    status = RedisPublisher(_redis(redis_url)).status()
    for key, value in sorted(status.items()):
        click.echo(f"{key}: {value}")


@cache.command("flush")
@redis_option(required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_flush(redis_url: str, yes: bool) -> None:
    """Remove every published version from Redis (milters then serve from their caches).

    \b
    Example:
      sigfilter cache flush --redis redis://127.0.0.1:6379/0 --yes
    """
    if not yes:
        click.confirm(f"Remove all sigfilter keys from {redacted(redis_url)}?", abort=True)
    removed = RedisPublisher(_redis(redis_url)).flush()
    click.echo(f"removed {removed} keys")


def _settings(conf: MilterConfig) -> MilterSettings:
    return MilterSettings(
        max_size=conf.max_size,
        log_format=conf.log_format,
        log_sender=conf.log_sender,
        connector_cert_name=conf.connector_cert_name,
        tenant_id_mismatch=conf.tenant_id_mismatch,
        tenant_id_missing=conf.tenant_id_missing,
    )


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


@main.command()
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
            return fresh, _settings(new)

        run(service, conf.socket, _settings(conf), reload=reload, metrics_listen=conf.metrics)
    finally:
        if listener is not None:
            listener.stop()


# -- registered command groups (one line each) -----------------------------------------
main.add_command(cli_ops.health)
main.add_command(cli_ops.stats)
main.add_command(cli_ops.doctor)
main.add_command(cli_dkim.dkim)
main.add_command(cli_m365.m365)
main.add_command(cli_postfix.postfix_maps)
users.add_command(cli_sync.users_sync)
