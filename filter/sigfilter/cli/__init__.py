"""The ``sigfilter`` command: one root group, a module per command group.

Commands are imported when they run (click's lazy-loading pattern): ``sigfilter
health``, which a load balancer runs every few seconds, does not pay for the catalog,
Redis, lxml and DKIM imports the other commands need. Exit codes: exits.py, the table
``sigfilter --help`` prints and the README's "Exit codes" section repeats.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from ..exits import MEANING
from .errors import EXIT_CATALOG  # noqa: F401 - re-exported for tests and scripts

# name -> "module:attribute" under sigfilter.cli, in the order --help lists them.
COMMANDS: dict[str, str] = {
    "preview": "preview:preview",
    "signature": "signature:signature",
    "catalog": "catalog:catalog",
    "publish": "catalog:publish",
    "users": "users:users",
    "milter": "milter:milter",
    "health": "health:health",
    "stats": "ops:stats",
    "doctor": "ops:doctor",
    "cache": "cache:cache",
    "dkim": "dkim:dkim",
    "m365": "m365:m365",
    "postfix-maps": "postfix:postfix_maps",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see the module docstring)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy) + [n for n in super().list_commands(ctx) if n not in self.lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attr = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}:{attr} is not a click command")
        return command


def _exit_codes() -> str:
    lines = [f"  {int(code):>3}  {text}" for code, text in MEANING.items()]
    return "\b\nExit codes:\n" + "\n".join(lines)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_exit_codes(),
)
@click.version_option(__version__, prog_name="sigfilter")
def main() -> None:
    """sigfilter: server-side email signatures for Microsoft 365 tenants.

    Mail that Exchange Online routes to our Postfix gets each sender's signature in
    its body, byte-exact everywhere else, and goes straight back to the tenant.
    """
