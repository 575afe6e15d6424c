"""The whole stack on loopback for tests: smtplib → Postfix → milter → Postfix → sink.

`running_stack()` starts a sink, the real milter and a private Postfix (and, with
``redis=True``, a real redis-server holding the published catalog), and stops them all
(by process id) when the block ends.
"""

from __future__ import annotations

import smtplib
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance
from harness.redis_server import RedisServer
from harness.sink import Sink, free_port
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.store.redis_store import RedisPublisher

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
    redis: RedisServer | None = None  # with running_stack(..., redis=True)

    def send(self, raw: bytes, sender: str = AVERY, rcpt: str = RCPT, timeout: float = 30) -> bytes:
        """Send one message and return the bytes the sink received."""
        before = len(self.sink.messages)
        with smtplib.SMTP("127.0.0.1", self.postfix.smtpd_port, timeout=timeout) as client:
            client.sendmail(sender, [rcpt], raw)
        assert self.sink.wait_for(before + 1, timeout=timeout), self.postfix.log_text()[-3000:]
        return self.sink.messages[before].data

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The milter's /metrics samples: (name, sorted labels) -> value (needs a
        ``metrics_port``)."""
        with urllib.request.urlopen(self.milter.metrics_url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@contextmanager
def running_stack(
    prefix: str,
    milter: dict[str, Any] | None = None,
    catalog: Path = CATALOG,
    redis: bool = False,
    **postfix: Any,
) -> Iterator[Stack]:
    """A started stack; ``milter`` and ``postfix`` are extra MilterProcess and
    PostfixInstance arguments. Senders at example.com and not-in-catalog.example are
    relayed to the sink unless ``tenant_domains`` says otherwise. ``catalog``: the milter's
    catalog directory (examples/catalog by default); with ``redis`` it is published to a
    real redis-server and the milter serves it from there (fleet mode)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    server = RedisServer() if redis else None
    sink = Sink()
    instance: PostfixInstance | None = None
    process: MilterProcess | None = None
    try:
        milter = dict(milter or {})
        if server is not None:
            server.start()
            records = compile_catalog(load_catalog(catalog))
            RedisPublisher(server.client()).publish(records, {"catalog": str(catalog)})
            milter["redis_url"] = server.url
        sink.start()
        process = MilterProcess(work / "milter", None if redis else catalog, **milter)
        process.start()
        returns = f"127.0.0.1:{sink.port}"
        postfix.setdefault(
            "tenant_domains", {"example.com": returns, "not-in-catalog.example": returns}
        )
        instance = PostfixInstance(
            work / "postfix", free_port(), sink.port, process.postfix_spec, **postfix
        )
        instance.start()
        yield Stack(instance, process, sink, server)
    finally:
        if instance is not None:
            instance.stop()
        if process is not None:
            process.stop(kill=True)
        sink.stop()
        if server is not None:
            server.close()
