"""The pymilter glue: collect what the engine needs, decide as early as possible.

Only envfrom, envrcpt, header, eoh, body and eom are negotiated (connect, helo, data
and unknown are switched off at negotiation). Callbacks only collect; the pure modules
decide (identity.py: connector, sender, tenant stamp; skips.py; the engine). What the
milter works with is one runtime (runtime.py), snapshotted per message at MAIL FROM.
Any error (a bug in the engine included: it raises, eom catches) is logged with its
traceback, counted in sigfilter_errors_total{kind} and passes the message unchanged.
Every message gets exactly one log line (logline.format_line: queue id, tenant, sender
domain, action, reason, placement, sizes, time) and is counted in metrics.Metrics.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket as sock
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import Milter  # type: ignore[import-untyped]
import milter as milter_module  # type: ignore[import-not-found]

from ..address import Address
from ..catalog import TenantRecord
from ..defaults import (
    DKIM_SIGN_TIME_LIMIT,
    METRICS_LISTEN,
    MILTER_BACKLOG,
    PROCESSED_HEADER,
    TENANT_ID_HEADER,
)
from ..dkim.keys import KeyFileError, policy_for
from ..dkim.sign import AuthChanges, SigningError, auth_changes
from ..engine import Result, rewrite, tenant_options
from ..identity import connector_verdict, sender_verdict, stamp_verdict
from ..mime.headers import HeaderBlock, parse_content_type, parse_header_block
from ..ops.metrics import start_server
from ..reasons import PassReason
from ..service import SignatureService
from ..skips import Skip, check_headers, type_reason
from .alloc import trim, tune
from .budget import Hold
from .cpu import pin_to_one_cpu
from .logline import format_line
from .runtime import LineWriter, MilterSettings, Runtime, RuntimeHolder

log = logging.getLogger("sigfilter.milter")
message_log = logging.getLogger("sigfilter.message")  # the one line per message

# pymilter is untyped: its return codes, typed once here.
CONTINUE: int = Milter.CONTINUE
ACCEPT: int = Milter.ACCEPT
REJECT: int = Milter.REJECT
TEMPFAIL: int = Milter.TEMPFAIL


__all__ = ["LineWriter", "MilterSettings", "Runtime", "RuntimeHolder", "SigfilterMilter", "run"]


class SigfilterMilter(Milter.Base):  # type: ignore[misc]
    """One SMTP connection; several messages may pass through it.

    ``holder`` holds the current runtime; each message takes one snapshot of it at
    MAIL FROM (``self.rt``) and uses it to its end, whatever a reload swaps in meanwhile.
    """

    def __init__(self, holder: RuntimeHolder) -> None:
        self.holder = holder
        self.rt: Runtime = holder.current
        self.open = False  # a message between MAIL FROM and its decision (in flight)
        self.hold = Hold(self.rt.memory)  # the message's share of the memory budget
        self._clear()

    def _reset(self) -> None:
        self.hold.close()  # what an earlier message of this connection still held
        self.hold = Hold(self.rt.memory)
        self._clear()

    def _clear(self) -> None:
        self.sender = ""
        self.recipients: list[str] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] | None = []  # None: not collected (too large, over budget)
        self.head = b""
        self.block: HeaderBlock | None = None
        self.size = 0
        self.tenant = ""
        self.unverified = ""  # why the tenant stamp could not be checked, if it could not
        self.tenant_record: TenantRecord | None = None  # found at MAIL FROM
        self.address: Address | None = None  # the canonical sender (address.py)
        self.tnef_class: str | None = None  # a TNEF message: its message class, once read
        self.started = time.monotonic()

    # -- callbacks ---------------------------------------------------------------------

    def envfrom(self, mailfrom: str, *params: str) -> int:
        self.rt = self.holder.current  # the message's one snapshot (see the class)
        self._reset()
        self._begin()
        self.sender = mailfrom.strip().strip("<>")
        refused = self._connector_check()
        if refused is not None:
            return refused
        # Identity fails closed (identity.py): an address without a canonical form, a
        # domain no tenant has, or no tenant records held yet is refused here.
        verdict, address, tenant = sender_verdict(mailfrom, self.rt.service.held_identity())
        self.address = address
        if address is not None:
            self.sender = address.text  # the address Postfix routes, for every decision
        if verdict.refused or tenant is None:
            return self._refuse(verdict.action, verdict.reason, verdict.text)
        self.tenant_record = tenant  # the tenant check at end of headers uses it
        self.tenant = tenant.key
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
        self.head = self._header_block()  # built and parsed once; eom reuses both
        refused = self._tenant_check()
        if refused is not None:
            return refused
        self.block = block = parse_header_block(self.head)
        try:
            check_headers(block)
        except Skip as skip:
            return self._pass(skip.reason)
        ctype = block.get("content-type")
        reason = type_reason(parse_content_type(ctype.value)) if ctype else None
        # A whole-message TNEF goes on to the engine: it is counted with its class, and
        # converted when the tenant asks.
        if reason and reason != "tnef":
            return self._pass(reason)
        if not self.hold.take_bytes(len(self.head)):
            return self._over_budget(f"{len(self.head)} bytes of header")
        return CONTINUE

    @Milter.noreply  # type: ignore[untyped-decorator]
    def body(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.chunks is not None:  # still collecting: the budget first, then the bytes
            if self.size <= self.rt.settings.max_size and self.hold.take_bytes(len(chunk)):
                self.chunks.append(chunk)
            else:  # too large, or no room: keep nothing (eom says which)
                self.chunks = None
                self.hold.release()
        return CONTINUE

    def eom(self) -> int:
        try:
            return self._sign()
        except Exception as exc:
            log.exception("queue_id=%s traceback of the error below", self._queue_id())
            self._log("error", type(exc).__name__)
            return ACCEPT

    def abort(self) -> int:
        self._end()
        self._reset()
        return CONTINUE

    def close(self) -> int:
        self._end()  # the connection went away mid-message
        return CONTINUE

    # -- the work --------------------------------------------------------------------------

    def _header_block(self) -> bytes:
        lines = (
            name + b": " + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            for name, value in self.headers
        )
        return b"".join(line + b"\r\n" for line in lines) + b"\r\n"

    def _sign(self) -> int:
        if self.size > self.rt.settings.max_size:
            return self._pass("too-large", f"{self.size} bytes")
        if self.chunks is None:
            return self._over_budget(f"{len(self.head) + self.size} bytes")
        found = self.rt.service.lookup(self.address or self.sender, self.recipients)
        self.tenant = found.tenant.key if found.tenant else self.tenant
        if found.signature is None or found.tenant is None:
            # The lookup's other details name the sender: only the outage's is logged.
            detail = found.detail if found.reason == "store-unavailable" else ""
            return self._pass(found.reason, detail)
        raw = self._message()
        opts = tenant_options(found.tenant, self.rt.settings.max_size)
        submitted = time.perf_counter()
        job = self.rt.executor.submit(
            rewrite, raw, found.signature, opts, self.block, self.hold.take_text
        )
        try:
            result = job.result(timeout=self.rt.settings.time_limit)
        except FutureTimeout:
            job.cancel()
            return self._pass("time-limit", f"rewrite took over {self.rt.settings.time_limit} s")
        finally:
            self.rt.metrics.rewrite_seconds.observe(time.perf_counter() - submitted)
        self.tnef_class = result.tnef_class
        if result.reason == "over-budget":
            return self._over_budget(result.detail)
        if not result.signed or result.body is None:
            return self._pass(result.reason, result.detail)
        auth = self._auth(raw, result, found.tenant)
        if not isinstance(auth, AuthChanges):
            return auth  # passed unchanged (or deferred); _auth logged why
        bytes_in = len(raw)
        del raw  # the new body alone while it goes to Postfix
        self._apply(result, auth)
        if result.replaced:
            self.rt.metrics.replaced(result.replaced, found.tenant.key)
        self._log("signed", result.reason, placement=result.placement,
                  replaced=result.replaced, rule=found.rule,
                  bytes_in=bytes_in, bytes_out=len(self.head) + len(result.body),
                  auth=",".join(auth.notes))  # fmt: skip
        return ACCEPT

    def _message(self) -> bytes:
        """The whole message, joined once; the chunks go (the budget counted both)."""
        chunks, self.chunks = self.chunks or [], []
        return b"".join([self.head, *chunks])

    def _auth(self, raw: bytes, result: Result, tenant: TenantRecord) -> AuthChanges | int:
        """DKIM/ARC header changes for the new message, or the reply when it must pass
        unchanged (or be deferred: no room in the memory budget).

        Signing is CPU work (and ARC asks DNS about the original signatures), so it runs
        on the rewrite pool with its own time limit.
        """
        if tenant.dkim_policy == "keep" and not tenant.arc:
            return AuthChanges()  # the default: no key to read, no policy to build
        try:
            policy = policy_for(tenant, self.rt.keys)
        except KeyFileError as exc:
            return self._pass("dkim-key", str(exc))
        if not policy.active:
            return AuthChanges()
        spaces = raw.count(b" ") + raw.count(b"\t") if policy.arc else 0
        if not self.hold.take_auth(len(raw), spaces, policy.arc, policy.dkim != "keep"):
            return self._over_budget(f"DKIM/ARC of {len(raw)} bytes")
        now = int(time.time())
        args = (raw, result.body or b"", result.header_edits, policy, self.rt.dns, now)
        job = self.rt.executor.submit(auth_changes, *args)
        try:
            changes = job.result(timeout=DKIM_SIGN_TIME_LIMIT)
        except FutureTimeout:
            job.cancel()
            return self._pass("sign-time-limit", f"DKIM/ARC took over {DKIM_SIGN_TIME_LIMIT} s")
        except SigningError as exc:
            return self._pass(exc.reason, exc.detail)
        if "arc=empty" in changes.notes:  # dkimpy sealed nothing: signed, but without ARC
            self.rt.metrics.error("arc-empty")
            log.warning("queue_id=%s action=arc reason=empty", self._queue_id())
        return changes

    def _apply(self, result: Result, auth: AuthChanges | None = None) -> None:
        # Postfix applies each edit as it arrives and keeps what it has if the milter
        # dies mid-way: the body goes first and the processed header last, so that
        # header always means "signed".
        # 64 KB copies, one at a time: pymilter's replacebody takes bytes, not a view
        # ("s#" refuses buffers that must be released, as a memoryview must).
        body = result.body or b""
        for start in range(0, max(len(body), 1), 65535):
            self.replacebody(body[start : start + 65535])
        for edit in result.header_edits:
            if edit.index == 0:
                self.addheader(edit.name, edit.value or "")
            else:
                self.chgheader(edit.name, edit.index, edit.value or "")
        if auth is not None:
            self._apply_auth(auth)
        self.addheader(PROCESSED_HEADER, "1")

    def _apply_auth(self, auth: AuthChanges) -> None:
        # Deletions before insertions: once a field sits above Postfix's own Received,
        # Postfix stops skipping that Received when it counts fields for chgheader.
        for name, index in auth.delete:  # highest index first
            self.chgheader(name, index, None)
        for name, value in reversed(auth.insert):  # smfi_insheader(0): each lands on top
            self.addheader(name, value, 0)

    # -- who may submit, and for which tenant (SECURITY.md) -------------------------------

    def _connector_check(self) -> int | None:
        """Refuse unless the client presented the connector's certificate.

        Postfix (smtpd_tls_req_ccert) already demands a certificate that verifies; the
        {cert_subject} macro (asked for in milter_mail_macros) names whose it is, and
        identity.connector_verdict decides.
        """
        wanted = self.rt.settings.connector_cert_name
        if not wanted:
            return None  # no macro round trip when the check is off
        verdict = connector_verdict(self._macro("{cert_subject}"), wanted)
        if not verdict.refused:
            return None
        fields = {k: _printable(v) for k, v in verdict.fields.items()}
        return self._refuse(verdict.action, verdict.reason, verdict.text, **fields)

    def _tenant_check(self) -> int | None:
        """Refuse a message whose Exchange tenant stamp is not its sender domain's tenant.

        Otherwise tenant B could send as tenant A's domain through the shared EOP ranges
        and get A's signature and a relay into A.
        """
        tenant = self.tenant_record
        if tenant is None:  # envfrom refuses first; never relay what was not decided
            return self._refuse("tempfail", "identity-unavailable", "tenant not decided")
        name = TENANT_ID_HEADER.lower().encode()
        stamps = [v for n, v in self.headers if n.lower() == name]
        settings = self.rt.settings
        verdict = stamp_verdict(
            tenant, stamps, settings.tenant_id_mismatch, settings.tenant_id_missing
        )
        if verdict.refused:
            fields = {k: _printable(v) for k, v in verdict.fields.items()}
            return self._refuse(verdict.action, verdict.reason, verdict.text, **fields)
        self.unverified = verdict.reason  # accepted unverified: said in the message's line
        return None

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

    def _pass(self, reason: PassReason, detail: str = "") -> int:
        self._log("skipped", reason, detail=detail)
        return ACCEPT

    def _over_budget(self, detail: str) -> int:
        """No room in the memory budget (budget.py): the message passes unchanged, or is
        deferred when the operator chose ``over_budget = "tempfail"``."""
        if self.rt.settings.over_budget != "tempfail":
            return self._pass("over-budget", detail)
        self._log("tempfailed", "over-budget", detail=detail)
        self.setreply("452", "4.3.1", "signing relay out of memory budget, try again later")
        return TEMPFAIL

    def _queue_id(self) -> str:
        try:
            return str(self.getsymval("i") or "-")
        except Exception:  # noqa: BLE001 - no context outside a real connection
            return "-"

    def _begin(self) -> None:
        if not self.open:
            self.open = True
            self.rt.metrics.in_flight.inc()
        self.rt.metrics.seen.inc()

    def _end(self) -> None:
        """The message is decided, aborted or its connection gone: what it held goes."""
        self.chunks = None
        self.hold.close()
        if self.open:
            self.open = False
            self.rt.metrics.in_flight.dec()
            trim(len(self.head) + self.size)  # after a large message: free pages go back

    def _log(self, action: str, reason: str, **fields: Any) -> None:
        """The message's decision: counted, and its one log line."""
        self._end()
        self.rt.metrics.message(action, reason, self.tenant, self.tnef_class)
        if not message_log.isEnabledFor(logging.INFO):
            return
        settings = self.rt.settings
        who = "sender" if settings.log_sender == "address" else "sender_domain"
        line = {
            "queue_id": self._queue_id(),
            "tenant": self.tenant,
            who: _printable(self.sender if who == "sender" else self.sender.rpartition("@")[2]),
            "action": action,
            "reason": reason,
            "bytes_in": len(self.head) + self.size,
            "ms": round((time.monotonic() - self.started) * 1000, 1),
            **fields,
        }
        if self.unverified:
            line["unverified"] = self.unverified
        if self.tnef_class is not None:
            line["tnef_class"] = _printable(self.tnef_class or "unreadable", 60)
        self.rt.lines.write(message_log, "%s", _Line(line, settings.log_format))


def _printable(value: str, limit: int = 100) -> str:
    """A client-supplied value made safe for one log field."""
    value = value[:limit]
    if value.isprintable() and " " not in value:  # the usual case, without a loop per character
        return value or "-"
    return "".join(c if c.isprintable() and c != " " else "?" for c in value)


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


@dataclass(frozen=True, slots=True)
class _Line:
    """A message's log fields, formatted only when the record is written."""

    fields: dict[str, Any]
    style: str

    def __str__(self) -> str:
        return format_line(self.fields, self.style)


Reload = Callable[[], tuple[SignatureService, MilterSettings]]


def reload_once(holder: RuntimeHolder, reload: Reload) -> bool:
    """Build the next runtime from ``reload`` and swap it in; keep the current one if
    building fails (a bad catalog or config must not stop signing)."""
    try:
        service, settings = reload()
    except Exception:
        log.exception("action=reload reason=failed")
        return False
    holder.swap(holder.current.reloaded(service, settings))
    holder.current.metrics.watch_store(lambda: holder.current.service.store)
    log.info("action=reload reason=ok")
    return True


def _reloader(holder: RuntimeHolder, reload: Reload) -> None:
    """Swap in a freshly loaded runtime on every SIGUSR1 (the parent process turns
    SIGHUP into SIGUSR1: libmilter owns SIGHUP here; see supervisor.py)."""
    while True:
        signal.sigwait({signal.SIGUSR1})
        reload_once(holder, reload)


def run(
    service: SignatureService,
    socket: str,
    settings: MilterSettings,
    timeout: int = 600,
    reload: Reload | None = None,
    metrics_listen: str = METRICS_LISTEN,
) -> None:
    """Serve until SIGTERM/SIGINT (libmilter finishes the messages in flight).

    SIGUSR1 reloads (``reload`` builds the new service and settings). libmilter's own
    signal thread takes SIGHUP, SIGTERM and SIGINT and stops the milter on each. Metrics
    are served on ``metrics_listen`` (HOST:PORT; "" or "off": none). Once the socket
    listens, systemd is told READY=1 when it started us with Type=notify.
    """
    block_signals()  # every thread below inherits the blocked mask
    tune()  # glibc's malloc for large short-lived buffers, before the threads (alloc.py)
    if settings.single_cpu:
        log.info("action=cpu reason=single cpu=%s", pin_to_one_cpu())
    holder = RuntimeHolder(Runtime(service, settings))
    runtime = holder.current
    runtime.metrics.watch_store(lambda: holder.current.service.store)
    if reload is not None:
        name = "sigfilter-reload"
        threading.Thread(target=_reloader, args=(holder, reload), name=name, daemon=True).start()
    start_server(runtime.metrics, metrics_listen)
    Milter.factory = functools.partial(SigfilterMilter, holder)
    Milter.set_flags(Milter.CHGBODY | Milter.CHGHDRS | Milter.ADDHDRS)
    # The socket file is world-writable: the directory that holds it (e.g. /run/sigfilter,
    # group postfix, mode 0750) is what keeps other users out.
    os.umask(0o000)
    # libmilter's default listen backlog refuses connections when many smtpd processes
    # connect at once (seen at 20 concurrent sessions); refused means unsigned mail.
    milter_module.setbacklog(MILTER_BACKLOG)
    # Open the socket ourselves (runmilter's own opensocket is then a no-op, measured)
    # so that systemd hears READY=1 only once Postfix can connect.
    milter_module.setconn(milter_socket(socket))
    milter_module.register("sigfilter")
    milter_module.opensocket(True)
    runtime.lines.start()
    sd_notify("READY=1\nSTATUS=listening on " + socket)
    try:
        Milter.runmilter("sigfilter", milter_socket(socket), timeout)
    finally:
        runtime.lines.stop()


def sd_notify(state: str) -> bool:
    """Tell systemd ``state`` (Type=notify); a no-op without $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with sock.socket(sock.AF_UNIX, sock.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError as exc:
        log.warning("action=notify reason=failed detail=%s", exc)
        return False
    return True


def negotiated_callbacks() -> Iterable[str]:
    """The callbacks this milter asks the MTA for (the rest are skipped)."""
    mask = SigfilterMilter.protocol_mask()
    # The mask holds the P_NO* bits *not* to skip, i.e. the callbacks we implement.
    return [name for name, (_, skip) in Milter.OPTIONAL_CALLBACKS.items() if mask & skip]
