"""An SMTP sink on loopback that keeps every message exactly as it was received.

It stands in for a tenant's inbound connector (the return leg of the relay).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SinkMessage(NamedTuple):
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # the DATA payload as received: CRLF line ends, dot-stuffing removed
    arrived: float = 0.0  # time.monotonic() when DATA completed (for latency benchmarks)


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink.reply
        if not reply.startswith("250"):
            return reply
        # decode_data=False: content and original_content are the same bytes.
        raw = envelope.original_content
        if raw is None:  # pragma: no cover - aiosmtpd always sets it after DATA
            content = envelope.content
            raw = content if isinstance(content, bytes) else (content or "").encode()
        self.sink._add(
            SinkMessage(
                envelope.mail_from or "", list(envelope.rcpt_tos), bytes(raw), time.monotonic()
            )
        )
        return reply


class Sink:
    """aiosmtpd on 127.0.0.1:`port` (a free port by default) storing every message.

    `reply` is the answer to DATA: set it to e.g. "451 4.3.0 try later" to make the
    sink refuse (and not store) messages, as a tenant that defers would.
    """

    def __init__(self, port: int | None = None, host: str = HOST) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.reply = "250 OK"
        self._messages: list[SinkMessage] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> None:
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {
            "decode_data": False,
            "enable_SMTPUTF8": True,
            "data_size_limit": None,  # Postfix enforces the size limit, not the sink
        }
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _add(self, message: SinkMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[SinkMessage]:
        """A snapshot of the messages received so far, in arrival order."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[SinkMessage]:
        """Wait until at least `n` messages arrived; return them all, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"sink on port {self.port} got {len(self._messages)} of {n} messages "
                        f"in {timeout:.1f}s"
                    )
                self._cond.wait(remaining)
            return list(self._messages)
