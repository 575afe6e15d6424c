"""The whole stack on loopback for tests: smtplib → Postfix → milter → Postfix → sink.

`running_stack()` starts a sink, the real milter and a private Postfix, and stops all
three (by process id) when the block ends.
"""

from __future__ import annotations

import smtplib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance
from harness.sink import Sink, free_port

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "examples" / "catalog"
AVERY = "avery.quill@example.com"
RCPT = "jane@customer.example"
OTHER = "someone@not-in-catalog.example"  # a domain Postfix relays but no tenant has


@dataclass
class Stack:
    postfix: PostfixInstance
    milter: MilterProcess
    sink: Sink

    def send(self, raw: bytes, sender: str = AVERY, rcpt: str = RCPT, timeout: float = 30) -> bytes:
        """Send one message and return the bytes the sink received."""
        before = len(self.sink.messages)
        with smtplib.SMTP("127.0.0.1", self.postfix.smtpd_port, timeout=timeout) as client:
            client.sendmail(sender, [rcpt], raw)
        assert self.sink.wait_for(before + 1, timeout=timeout), self.postfix.log_text()[-3000:]
        return self.sink.messages[before].data


@contextmanager
def running_stack(
    prefix: str, milter: dict[str, Any] | None = None, catalog: Path = CATALOG, **postfix: Any
) -> Iterator[Stack]:
    """A started stack; ``milter`` and ``postfix`` are extra MilterProcess and
    PostfixInstance arguments. Senders at example.com and not-in-catalog.example are
    relayed to the sink unless ``tenant_domains`` says otherwise. ``catalog``: the milter's
    catalog directory (examples/catalog by default)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    sink = Sink()
    sink.start()
    process = MilterProcess(work / "milter", catalog, **(milter or {}))
    instance: PostfixInstance | None = None
    try:
        process.start()
        returns = f"127.0.0.1:{sink.port}"
        postfix.setdefault(
            "tenant_domains", {"example.com": returns, "not-in-catalog.example": returns}
        )
        instance = PostfixInstance(
            work / "postfix", free_port(), sink.port, process.postfix_spec, **postfix
        )
        instance.start()
        yield Stack(instance, process, sink)
    finally:
        if instance is not None:
            instance.stop()
        process.stop(kill=True)
        sink.stop()
