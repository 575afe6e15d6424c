"""Start the preview page: check where it listens, bind, run uvicorn until stopped."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from ..ops.metrics import parse_listen
from .app import create_app
from .state import PreviewState

PREVIEW_LISTEN = "127.0.0.1:8025"
_LOOPBACK_NAMES = ("localhost",)


class NotLoopback(ValueError):
    """--listen names an address other machines can reach."""


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_listen(listen: str, allow_remote: bool) -> tuple[str, int]:
    """(host, port); raises ValueError for a bad spelling and NotLoopback when refused."""
    host, port = parse_listen(listen)
    if not is_loopback(host) and not allow_remote:
        raise NotLoopback(
            f"refusing to listen on {listen}: the preview page shows every user's directory "
            "fields (names, titles, phone numbers) and has no login. Keep it on loopback and "
            f"reach it through SSH (ssh -L {port}:127.0.0.1:{port} THIS-HOST), or pass "
            "--allow-remote if everyone who can reach that address may see the directory."
        )
    return host, port


def allowed_hosts(host: str) -> list[str]:
    """Host headers accepted (the DNS-rebinding guard): loopback names, else anything."""
    if not is_loopback(host):
        return ["*"]
    return ["127.0.0.1", "localhost", "::1", host]


def serve_preview(
    catalog: Path, listen: str, allow_remote: bool, announce: Callable[[str], None]
) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets one line with the page's URL."""
    host, port = check_listen(listen, allow_remote)
    state = PreviewState(catalog)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: any free port (the announced URL has the real one)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        create_app(state, allowed_hosts(host)),
        log_level="warning",
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    problems = len(state.current.problems)
    announce(
        f"signature preview on http://{shown}:{bound}/ (catalog {catalog}"
        + (f"; {problems} problem(s): see the page" if problems else "")
        + "); Ctrl-C stops it"
    )
    uvicorn.Server(config).run(sockets=[sock])
