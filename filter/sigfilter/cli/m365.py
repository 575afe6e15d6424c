"""``sigfilter m365``: print the Exchange Online PowerShell that wires a tenant to us.

Printed, never run: an Exchange admin reviews it and runs it in their own session.
Loaded by the root group (cli/__init__.py) when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..defaults import RULE_SIZE_LIMIT
from ..m365 import ScriptError, TenantSetup, remove_script, setup_script
from .base import _tenant
from .base import catalog_option as _catalog_option
from .errors import SigfilterError


@click.group()
def m365() -> None:
    """Exchange Online PowerShell that routes a tenant's mail through the relay."""


def _setup(
    catalog_dir: Path | None,
    tenant: str,
    smart_host: str,
    certificate_name: str | None,
    size_limit: int = RULE_SIZE_LIMIT,
    pilot_group: str = "",
    external_only: bool = False,
) -> TenantSetup:
    found = _tenant(catalog_dir, tenant)
    cert = certificate_name or f"{found.key.replace('.', '-')}.{smart_host}"
    return TenantSetup(
        tenant=found.key,
        smart_host=smart_host,
        certificate_name=cert,
        display_name=found.name,
        size_limit=size_limit,
        pilot_group=pilot_group,
        external_only=external_only,
    )


_tenant_option = click.option(
    "--tenant", required=True, help="Tenant key (its folder name under tenants/)."
)
_smart_host_option = click.option(
    "--smart-host",
    envvar="SIGFILTER_SMART_HOST",
    required=True,
    metavar="HOST",
    help="This region's relay name, e.g. weu.sigfilter.example.net (or $SIGFILTER_SMART_HOST).",
)


@m365.command("script")
@_tenant_option
@_smart_host_option
@click.option(
    "--certificate-name",
    metavar="NAME",
    help="The tenant's own certificate name on the return leg "
    "(default: TENANT-KEY-WITH-DASHES.SMART-HOST, e.g. example-com.weu.sigfilter.example.net).",
)
@click.option(
    "--size-limit",
    type=click.IntRange(min=1),
    default=RULE_SIZE_LIMIT,
    show_default=True,
    help="Bytes; larger messages are never routed to the relay.",
)
@click.option("--pilot-group", metavar="GROUP", help="Only mail from this group's members.")
@click.option("--external-only", is_flag=True, help="Only mail to recipients outside the tenant.")
@_catalog_option
def m365_script(
    tenant: str,
    smart_host: str,
    certificate_name: str | None,
    size_limit: int,
    pilot_group: str | None,
    external_only: bool,
    catalog_dir: Path | None,
) -> None:
    """Print the setup: two connectors and the routing rule (created disabled).

    \b
    Example:
      sigfilter m365 script --tenant example.com --smart-host weu.sigfilter.example.net > setup.ps1
    """
    try:
        setup = _setup(catalog_dir, tenant, smart_host, certificate_name, size_limit=size_limit,
                       pilot_group=pilot_group or "", external_only=external_only)  # fmt: skip
        click.echo(setup_script(setup, __version__), nl=False)
    except ScriptError as exc:
        raise SigfilterError(str(exc)) from exc


@m365.command("remove")
@_tenant_option
@_smart_host_option
@_catalog_option
def m365_remove(tenant: str, smart_host: str, catalog_dir: Path | None) -> None:
    """Print the script that removes what `sigfilter m365 script` created.

    \b
    Example:
      sigfilter m365 remove --tenant example.com --smart-host weu.sigfilter.example.net > remove.ps1
    """
    try:
        click.echo(
            remove_script(_setup(catalog_dir, tenant, smart_host, None), __version__), nl=False
        )
    except ScriptError as exc:
        raise SigfilterError(str(exc)) from exc
