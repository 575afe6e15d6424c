"""Is the milter up? Speak the first step of the milter protocol to it, as Postfix does.

A milter that accepts a connection may still be wedged; one that answers option
negotiation (SMFIC_OPTNEG) has a live libmilter behind it. The catalog version comes
from the milter's status endpoint on its metrics port. Also the stats summary's data.
"""

from __future__ import annotations

import json
import socket
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..defaults import HEALTH_TIMEOUT

SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
MILTER_VERSION = 6  # what Postfix speaks (milter_protocol = 6)
ALL_ACTIONS = 0x1FF  # SMFIF_* a version 6 MTA allows
ALL_PROTOCOL = 0x1FFFFF  # SMFIP_* steps a version 6 MTA may skip


class HealthError(Exception):
    """The milter or its status endpoint did not answer as it should."""


@dataclass(frozen=True)
class Negotiated:
    version: int
    actions: int
    protocol: int


def _connect(spec: str, timeout: float) -> socket.socket:
    kind, _, rest = spec.partition(":")
    if kind in ("unix", "local") and rest:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = rest
    elif kind == "inet":
        host, _, port = rest.rpartition(":")
        if not port.isdigit():
            raise HealthError(f"not an inet socket: {spec!r} (want inet:HOST:PORT)")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = (host or "127.0.0.1", int(port))
    else:
        raise HealthError(f"not a milter socket: {spec!r} (want unix:PATH or inet:HOST:PORT)")
    s.settimeout(timeout)
    try:
        s.connect(address)
    except OSError as exc:
        s.close()
        raise HealthError(f"cannot connect to {spec}: {exc.strerror or exc}") from exc
    return s


def _read_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise HealthError("the milter closed the connection without answering")
        data += chunk
    return data


def probe_milter(spec: str, timeout: float = HEALTH_TIMEOUT) -> Negotiated:
    """Negotiate options with the milter at ``spec`` (Postfix spelling), then quit."""
    with _connect(spec, timeout) as s:
        try:
            payload = SMFIC_OPTNEG + struct.pack(">III", MILTER_VERSION, ALL_ACTIONS, ALL_PROTOCOL)
            s.sendall(struct.pack(">I", len(payload)) + payload)
            (length,) = struct.unpack(">I", _read_exact(s, 4))
            if not 13 <= length <= 65536:
                raise HealthError(f"the milter answered a packet of {length} bytes")
            reply = _read_exact(s, length)
            s.sendall(struct.pack(">I", 1) + SMFIC_QUIT)
        except TimeoutError as exc:
            raise HealthError(f"no answer from {spec} within {timeout:g} s") from exc
        except OSError as exc:
            raise HealthError(f"{spec}: {exc.strerror or exc}") from exc
    if reply[:1] != SMFIC_OPTNEG:
        raise HealthError(f"the milter answered {reply[:1]!r}, not option negotiation")
    version, actions, protocol = struct.unpack(">III", reply[1:13])
    return Negotiated(version, actions, protocol)


def fetch_json(url: str, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any]:
    """GET ``url`` and decode its JSON object; HealthError says why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HealthError(f"{url}: {reason}") from exc
    if not isinstance(data, dict):
        raise HealthError(f"{url}: not a JSON object")
    return data


def metrics_endpoint(base: str, path: str) -> str:
    if not base.startswith(("http://", "https://")):
        raise HealthError(f"not an http URL: {base!r} (e.g. http://127.0.0.1:9464)")
    return base.rstrip("/") + path
