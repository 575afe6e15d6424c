"""`sigfilter cache`: inspect or empty the Redis serving layer."""

from __future__ import annotations

import click

from ..store.redis_store import RedisPublisher, redacted
from .base import _redis, redis_option


@click.group()
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
