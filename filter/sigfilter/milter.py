"""The pymilter glue: collect what the engine needs, decide as early as possible.

Only envfrom, envrcpt, header, eoh, body and eom are negotiated (connect, helo, data
and unknown are switched off at negotiation). Any error passes the message on
unchanged: one log line with the queue id and the reason, and a count.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import Milter  # type: ignore[import-untyped]
import milter as milter_module  # type: ignore[import-not-found]

from .defaults import (
    CONNECTOR_CERT_NAME,
    DEFAULT_MAX_SIZE,
    MESSAGE_TIME_LIMIT,
    MILTER_BACKLOG,
    PROCESSED_HEADER,
    REWRITE_WORKERS,
    TENANT_ID_HEADER,
)
from .engine import Result, rewrite, tenant_options
from .mime.headers import parse_content_type, parse_header_block
from .service import SignatureService
from .skips import Skip, check_headers, type_reason
from .store.base import StoreUnavailable

log = logging.getLogger("sigfilter.milter")

# pymilter is untyped: its return codes, typed once here.
CONTINUE: int = Milter.CONTINUE
ACCEPT: int = Milter.ACCEPT
REJECT: int = Milter.REJECT
TEMPFAIL: int = Milter.TEMPFAIL


@dataclass
class MilterSettings:
    max_size: int = DEFAULT_MAX_SIZE
    time_limit: float = MESSAGE_TIME_LIMIT  # seconds for one message's rewrite
    workers: int = REWRITE_WORKERS
    # Security policy (SECURITY.md; config.py documents the values).
    connector_cert_name: str = CONNECTOR_CERT_NAME  # "" = no client certificate check
    tenant_id_mismatch: str = "reject"
    tenant_id_missing: str = "reject"


# The rewrite runs on threads Python created: libmilter's own threads crashed lxml
# under load (segfaults at 20 concurrent sessions), and a future gives the time limit.
_POOL: ThreadPoolExecutor | None = None


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL  # noqa: PLW0603 - one pool per process, made on first use
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sigfilter-rewrite")
    return _POOL


class Counts:
    """Messages by outcome and reason (exported as metrics in a later issue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_reason: Counter[str] = Counter()

    def add(self, action: str, reason: str) -> None:
        with self._lock:
            self.by_reason[f"{action}:{reason}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_reason)


COUNTS = Counts()


class SigfilterMilter(Milter.Base):  # type: ignore[misc]
    """One SMTP connection; several messages may pass through it."""

    service: SignatureService
    settings = MilterSettings()

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.sender = ""
        self.recipients: list[str] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head = b""
        self.size = 0
        self.started = time.monotonic()

    # -- callbacks ---------------------------------------------------------------------

    def envfrom(self, mailfrom: str, *params: str) -> int:
        self._reset()
        self.sender = mailfrom.strip().strip("<>")
        refused = self._connector_check()
        if refused is not None:
            return refused
        try:
            tenant = self.service.tenant_for(self.sender) if self.sender else None
        except StoreUnavailable:
            return CONTINUE  # decided at the end, from the cache if it can
        if tenant is None:
            return self._pass("unknown-sender")
        return CONTINUE

    @Milter.noreply  # type: ignore[untyped-decorator]
    def envrcpt(self, to: str, *params: str) -> int:
        self.recipients.append(to.strip().strip("<>"))
        return CONTINUE

    # header and body need no reply: each reply would be a round trip per header line
    # and per body chunk. Decisions they prepare are taken at eoh and eom.
    @Milter.noreply  # type: ignore[untyped-decorator]
    @Milter.decode("bytes")  # type: ignore[untyped-decorator]
    def header(self, name: bytes | str, value: bytes | str) -> int:
        field = name.encode() if isinstance(name, str) else name
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        self.headers.append((field, raw))
        return CONTINUE

    def eoh(self) -> int:
        """Skip rules the top-level header block decides, with the engine's own reasons."""
        self.head = self._header_block()  # built once; eom reuses it
        refused = self._tenant_check()
        if refused is not None:
            return refused
        block = parse_header_block(self.head)
        try:
            check_headers(block)
        except Skip as skip:
            return self._pass(skip.reason)
        ctype = block.get("content-type")
        reason = type_reason(parse_content_type(ctype.value)) if ctype else None
        return self._pass(reason) if reason else CONTINUE

    @Milter.noreply  # type: ignore[untyped-decorator]
    def body(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.size <= self.settings.max_size:
            self.chunks.append(chunk)
        return CONTINUE

    def eom(self) -> int:
        try:
            return self._sign()
        except Exception as exc:
            log.exception(
                "queue_id=%s action=error reason=%s", self._queue_id(), type(exc).__name__
            )
            COUNTS.add("error", type(exc).__name__)
            return ACCEPT

    def abort(self) -> int:
        self._reset()
        return CONTINUE

    # -- the work --------------------------------------------------------------------------

    def _header_block(self) -> bytes:
        lines = (
            name + b": " + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            for name, value in self.headers
        )
        return b"".join(line + b"\r\n" for line in lines) + b"\r\n"

    def _sign(self) -> int:
        if self.size > self.settings.max_size:
            return self._pass("too-large", f"{self.size} bytes")
        found = self.service.lookup(self.sender, self.recipients)
        if found.signature is None or found.tenant is None:
            return self._pass(found.reason)
        raw = self.head + b"".join(self.chunks)
        opts = tenant_options(found.tenant, self.settings.max_size)
        job = _pool(self.settings.workers).submit(rewrite, raw, found.signature, opts)
        try:
            result = job.result(timeout=self.settings.time_limit)
        except FutureTimeout:
            job.cancel()
            return self._pass("time-limit", f"rewrite took over {self.settings.time_limit} s")
        if not result.signed or result.body is None:
            return self._pass(result.reason, result.detail)
        self._apply(result)
        self._log("signed", result.reason, placement=result.placement, rule=found.rule,
                  bytes_in=len(raw), bytes_out=len(result.body))  # fmt: skip
        return ACCEPT

    def _apply(self, result: Result) -> None:
        # Postfix applies each edit as it arrives and keeps what it has if the milter
        # dies mid-way: the body goes first and the processed header last, so that
        # header always means "signed".
        body = result.body or b""
        for start in range(0, max(len(body), 1), 65535):
            self.replacebody(body[start : start + 65535])
        for edit in result.header_edits:
            if edit.index == 0:
                self.addheader(edit.name, edit.value or "")
            else:
                self.chgheader(edit.name, edit.index, edit.value or "")
        self.addheader(PROCESSED_HEADER, "1")

    # -- who may submit, and for which tenant (SECURITY.md) -------------------------------

    def _connector_check(self) -> int | None:
        """Refuse unless the client presented the connector's certificate.

        Postfix (smtpd_tls_req_ccert) already demands a certificate that verifies; the
        {cert_subject} macro (asked for in milter_mail_macros) names whose it is, and
        any certificate from a public CA would verify.
        """
        wanted = self.settings.connector_cert_name
        if not wanted:
            return None
        subject = self._macro("{cert_subject}")
        if subject.lower() == wanted.lower():
            return None
        reason = "no-client-cert" if not subject else "wrong-client-cert"
        return self._refuse("reject", reason, "client certificate is not the connector's",
                            cert_subject=_printable(subject))  # fmt: skip

    def _tenant_check(self) -> int | None:
        """Refuse a message whose Exchange tenant stamp is not its sender domain's tenant.

        Otherwise tenant B could send as tenant A's domain through the shared EOP ranges
        and get A's signature and a relay into A.
        """
        try:
            tenant = self.service.tenant_for(self.sender) if self.sender else None
        except StoreUnavailable:
            self._log("unverified", "tenant-id-store-unavailable")
            return None
        if tenant is None:
            return None  # not ours: no signature, and Postfix refuses the sender domain
        name = TENANT_ID_HEADER.lower().encode()
        stamps = {v.strip().lower() for n, v in self.headers if n.lower() == name}
        expected = tenant.tenant_id.strip().lower()
        if not stamps or not expected:
            reason = "tenant-id-missing" if not stamps else "tenant-id-unset"
            action = self.settings.tenant_id_missing
            if action == "accept":
                self._log("unverified", reason, tenant=tenant.key)
                return None
            return self._refuse(action, reason, "message carries no verifiable tenant",
                                tenant=tenant.key)  # fmt: skip
        if stamps == {expected.encode()}:
            return None
        stamped = _printable(b",".join(sorted(stamps)).decode("latin-1"))
        text = "message is not from the sender domain's tenant"
        action = self.settings.tenant_id_mismatch
        return self._refuse(action, "tenant-id-mismatch", text, tenant=tenant.key, stamped=stamped)

    def _refuse(self, action: str, reason: str, text: str, **fields: Any) -> int:
        """550 5.7.1 (reject) or 451 4.7.1 (tempfail), logged and counted."""
        self._log("rejected" if action == "reject" else "tempfailed", reason, **fields)
        if action == "reject":
            self.setreply("550", "5.7.1", text)
            return REJECT
        self.setreply("451", "4.7.1", text)
        return TEMPFAIL

    def _macro(self, name: str) -> str:
        try:
            return str(self.getsymval(name) or "")
        except Exception:  # noqa: BLE001 - no context outside a real connection
            return ""

    # -- decisions and logging ----------------------------------------------------------

    def _pass(self, reason: str, detail: str = "") -> int:
        self._log("skipped", reason, detail=detail)
        return ACCEPT

    def _queue_id(self) -> str:
        try:
            return str(self.getsymval("i") or "-")
        except Exception:  # noqa: BLE001 - no context outside a real connection
            return "-"

    def _log(self, action: str, reason: str, **fields: Any) -> None:
        COUNTS.add(action, reason)
        domain = self.sender.rpartition("@")[2] or "-"
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
        ms = (time.monotonic() - self.started) * 1000
        log.info("queue_id=%s action=%s reason=%s sender_domain=%s ms=%.1f %s",
                 self._queue_id(), action, reason, domain, ms, extra)  # fmt: skip


def _printable(value: str, limit: int = 100) -> str:
    """A client-supplied value made safe for one log field."""
    return "".join(c if c.isprintable() and c != " " else "?" for c in value[:limit]) or "-"


def milter_socket(spec: str) -> str:
    """Postfix's spelling (``inet:HOST:PORT``, ``unix:PATH``) → pymilter's."""
    kind, _, rest = spec.partition(":")
    if kind == "inet":
        host, _, port = rest.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"not an inet socket: {spec!r} (want inet:HOST:PORT)")
        return f"inet:{port}@{host or '127.0.0.1'}"
    if kind in ("unix", "local") and rest:
        return f"unix:{rest}"
    raise ValueError(f"not a milter socket: {spec!r} (want unix:PATH or inet:HOST:PORT)")


SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}


def block_signals() -> None:
    """Block our signals in this thread and every thread started after it.

    libmilter takes SIGHUP/SIGTERM/SIGINT with sigwait in its own thread; a thread of
    ours that left them unblocked would receive SIGTERM and the process would die
    mid-message instead of stopping cleanly. Call before starting any thread.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def _reloader(reload: Callable[[], tuple[SignatureService, MilterSettings]]) -> None:
    """Swap in a freshly loaded service on every SIGUSR1 (libmilter owns SIGHUP)."""
    while True:
        signal.sigwait({signal.SIGUSR1})
        try:
            SigfilterMilter.service, SigfilterMilter.settings = reload()
            log.info("action=reload reason=ok")
        except Exception:  # a bad reload keeps what runs now
            log.exception("action=reload reason=failed")


def run(
    service: SignatureService,
    socket: str,
    settings: MilterSettings,
    timeout: int = 600,
    reload: Callable[[], tuple[SignatureService, MilterSettings]] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (libmilter finishes the messages in flight).

    SIGUSR1 reloads (``reload`` builds the new service). libmilter's own signal thread
    takes SIGHUP, SIGTERM and SIGINT and stops the milter on each.
    """
    SigfilterMilter.service = service
    SigfilterMilter.settings = settings
    block_signals()
    if reload is not None:
        name = "sigfilter-reload"
        threading.Thread(target=_reloader, args=(reload,), name=name, daemon=True).start()
    Milter.factory = SigfilterMilter
    Milter.set_flags(Milter.CHGBODY | Milter.CHGHDRS | Milter.ADDHDRS)
    # The socket file is world-writable: the directory that holds it (e.g. /run/sigfilter,
    # group postfix, mode 0750) is what keeps other users out.
    os.umask(0o000)
    # libmilter's default listen backlog refuses connections when many smtpd processes
    # connect at once (seen at 20 concurrent sessions); refused means unsigned mail.
    milter_module.setbacklog(MILTER_BACKLOG)
    Milter.runmilter("sigfilter", milter_socket(socket), timeout)


def negotiated_callbacks() -> Iterable[str]:
    """The callbacks this milter asks the MTA for (the rest are skipped)."""
    mask = SigfilterMilter.protocol_mask()
    # The mask holds the P_NO* bits *not* to skip, i.e. the callbacks we implement.
    return [name for name, (_, skip) in Milter.OPTIONAL_CALLBACKS.items() if mask & skip]
