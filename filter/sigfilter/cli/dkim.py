"""``sigfilter dkim``: make a tenant's signing key and check its DNS record.

Loaded by the root group when it runs. DNS goes through dnspython;
tests hand in their own lookup as ``obj={"dns": fn}`` (CliRunner.invoke).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import click
import dkim as dkimpy  # type: ignore[import-untyped]
from dkim import dnsplug

from ..catalog import Tenant
from ..defaults import DKIM_DNS_TIMEOUT, DKIM_KEY_BITS
from ..dkim.keys import (
    KeyFileError,
    generate_key,
    read_key,
    record_matches,
    record_name,
    txt_record,
)
from .base import _tenant
from .base import catalog_option as _catalog_option
from .errors import CannotWrite, InputUnreadable, ServiceUnavailable, SigfilterError

DEFAULT_KEY_DIR = Path("/etc/sigfilter/dkim")
TxtLookup = Callable[..., bytes | None]


def _dns_txt(name: bytes, timeout: float = DKIM_DNS_TIMEOUT) -> bytes | None:
    answer: bytes | None = dnsplug.get_txt_dnspython(name, timeout=timeout)
    return answer


@click.group()
def dkim() -> None:
    """Signing keys for tenants whose [dkim] policy is "resign" (or with [arc] enabled).

    \b
    tenant.toml:
      [dkim]
      policy = "resign"            # keep (default) | strip | resign
      selector = "sig2026"
      key_file = "/etc/sigfilter/dkim/example.com.sig2026.key"   # mode 0600 or 0400
      [arc]
      enabled = true
      authserv_id = "sigfilter.example.net"
    """


@dkim.command("keygen")
@click.option("--tenant", "tenant_key", required=True, help="Tenant key (its catalog folder).")
@click.option("--selector", required=True, help="DKIM selector, e.g. sig2026.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_KEY_DIR,
    show_default=True,
    help="Directory for the key file (never the catalog: it lives in git).",
)
@click.option("--bits", type=click.IntRange(1024, 4096), default=DKIM_KEY_BITS, show_default=True)
@_catalog_option
def keygen(tenant_key: str, selector: str, out: Path, bits: int, catalog_dir: Path | None) -> None:
    """Write a new RSA key (mode 0600) and print the DNS TXT record to publish.

    The key file is DOMAIN.SELECTOR.key under --out; an existing file is never
    overwritten. Publish the record, wait for DNS, run `sigfilter dkim check`, then
    set selector and key_file in the tenant's [dkim] table.

    \b
    Example:
      sigfilter dkim keygen --tenant example.com --selector sig2026
    """
    tenant = _tenant(catalog_dir, tenant_key)
    if not _label(selector):
        raise click.BadParameter("letters, digits, '-' and '_' only", param_hint="--selector")
    domain = tenant.dkim_domain or tenant.domains[0]
    path = out / f"{domain}.{selector}.key"
    try:
        pem = generate_key(path, bits)
    except KeyFileError as exc:
        raise CannotWrite(str(exc)) from exc
    except OSError as exc:
        raise CannotWrite(f"{path}: {exc.strerror}") from exc
    name = record_name(selector, domain)
    click.echo(f"wrote {path} (mode 0600)", err=True)
    click.echo(f"{name}. IN TXT {zone_strings(txt_record(pem))}")
    click.echo(
        f'\nthen in {tenant.path / "tenant.toml"}:\n  [dkim]\n  policy = "resign"\n'
        f'  selector = "{selector}"\n  key_file = "{path}"',
        err=True,
    )


def zone_strings(record: str, size: int = 255) -> str:
    """A TXT value as zone-file strings: one string may hold at most 255 bytes."""
    parts = textwrap.wrap(record, size, break_on_hyphens=False, drop_whitespace=False)
    if len(parts) == 1:
        return f'"{record}"'
    return "( " + " ".join(f'"{p}"' for p in parts) + " )"


def _label(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in "-_" for c in value) and value.isascii()


@dkim.command("check")
@click.option("--tenant", "tenant_key", required=True, help="Tenant key (its catalog folder).")
@_catalog_option
@click.pass_context
def check(ctx: click.Context, tenant_key: str, catalog_dir: Path | None) -> None:
    """Check that the published DNS record holds the public half of the tenant's key.

    Checks the [dkim] key and, when [arc] is enabled with its own key, that one too.
    Exits 1 when a record is missing or holds another key, 66 when a key file cannot
    be used (mode, format), 69 when DNS does not answer.

    \b
    Example:
      sigfilter dkim check --tenant example.com
    """
    tenant = _tenant(catalog_dir, tenant_key)
    lookup: TxtLookup = (ctx.obj or {}).get("dns", _dns_txt)
    keys = _keys_of(tenant)
    if not keys:
        raise SigfilterError(
            f"tenant {tenant.key} has no signing key: set selector and key_file in [dkim] "
            "(see `sigfilter dkim keygen --help`)"
        )
    failed = [name for name in (_check_one(*k, lookup) for k in keys) if name]
    if failed:
        raise SigfilterError("DNS does not match the key for " + ", ".join(failed))


def _keys_of(tenant: Tenant) -> list[tuple[str, str, str]]:
    keys = []
    if tenant.dkim_selector and tenant.dkim_key_file:
        keys.append((tenant.dkim_selector, tenant.dkim_domain, tenant.dkim_key_file))
    arc = (tenant.arc_selector, tenant.arc_domain, tenant.arc_key_file)
    if tenant.arc and all(arc) and arc not in keys:
        keys.append(arc)
    return keys


def _check_one(selector: str, domain: str, key_file: str, lookup: TxtLookup) -> str:
    """ "" when the record matches, else the record name (after saying why)."""
    name = record_name(selector, domain)
    try:
        pem = read_key(Path(key_file))
    except KeyFileError as exc:
        raise InputUnreadable(str(exc)) from exc
    try:
        record = lookup(name.encode() + b".", timeout=DKIM_DNS_TIMEOUT)
    except dkimpy.DnsTimeoutError as exc:
        raise ServiceUnavailable(f"DNS did not answer for {name}: {exc}") from exc
    if not record:
        click.echo(f"FAIL {name}: no TXT record; publish the one `dkim keygen` printed")
        return name
    ok, why = record_matches(record, pem)
    if not ok:
        click.echo(f"FAIL {name}: {why} (key file {key_file})")
        return name
    click.echo(f"ok   {name} matches {key_file}")
    return ""
