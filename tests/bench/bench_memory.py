"""Benchmark: the milter's memory with many large messages at once, through the real stack.

    .venv/bin/python tests/bench/bench_memory.py [--messages 50] [--size-mb 25]

Starts, on 127.0.0.1 and under one temp dir (deleted at the end): Postfix's C smtp-sink
(the tenant's side: it discards what it gets), a private Postfix relay and the real
`sigfilter milter`. Sends ``--messages`` messages of ``--size-mb`` MiB (25 MiB: the size
the Exchange transport rule lets through) all at once, one SMTP session each, and
samples the RSS of the milter's libmilter process every 0.1 s. Two runs, one after the
other, each with a fresh milter: without a memory budget (``memory_budget = 0``: every
message is signed, nothing bounds the memory) and with the budget (the shipped default
unless ``--budget-mb``: what does not fit passes unchanged). Prints for each the idle
milter's RSS (the baseline), the bound the budget promises (baseline + budget), the
peak RSS (VmHWM from /proc), the RSS over time and after, and what became of the
messages (signed, passed, delivered).
"""

from __future__ import annotations

import argparse
import binascii
import contextlib
import os
import random
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import free_port
from sigfilter.defaults import DEFAULT_MEMORY_BUDGET
from sigfilter.milter.logline import parse_kv

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
SMTP_SINK = "/usr/sbin/smtp-sink"
MIB = 1024 * 1024
SENDER = "avery.quill@example.com"
RCPT = "jane@customer.example"
SAMPLE_EVERY = 0.1  # seconds between RSS samples
DELIVERY_TIMEOUT = 900.0  # seconds for every message to reach the sink (a loaded machine)
BOUNDARY = b"=_mem_mixed_7d3c"


def big_message(size: int, seed: int = 25) -> bytes:
    """A ``size``-byte message (CRLF, no line starts with a dot): a short HTML+text
    reply and one base64 attachment that fills the rest, as Outlook sends a report."""
    rng = random.Random(seed)
    text = b"Hello Jane,\r\n\r\nthe quarterly figures are attached.\r\n\r\nSent from my iPhone\r\n"
    html = b"<html><body><p>Hello Jane,</p><p>the quarterly figures are attached.</p></body></html>"
    head = (
        b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@customer.example\r\n"
        b"Subject: Q3 figures\r\nMessage-ID: <mem@test.sigfilter>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="' + BOUNDARY + b'"\r\n\r\n'
    )
    alt = (
        b"--" + BOUNDARY + b'\r\nContent-Type: multipart/alternative; boundary="=_alt"\r\n\r\n'
        b"--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + b"\r\n"
        b"--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + b"\r\n--=_alt--\r\n"
    )
    attach = (
        b"--" + BOUNDARY + b'\r\nContent-Type: application/pdf; name="q3.pdf"\r\n'
        b'Content-Disposition: attachment; filename="q3.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"
    room = size - len(head) - len(alt) - len(attach) - len(tail)
    raw_len = room * 57 // 78  # 57 bytes make one 76-character line and its CRLF
    while True:
        b64 = binascii.b2a_base64(rng.randbytes(raw_len), newline=False)
        lines = b"\r\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
        if len(lines) <= room:
            break
        raw_len -= 57
    pad = b" " * (room - len(lines))  # spaces before </body>: the size exactly
    alt = alt.replace(b"</body>", pad + b"</body>")
    return head + alt + attach + lines + tail


def milter_child(milter: MilterProcess) -> int:
    """The libmilter process: `sigfilter milter` forks it from a small supervisor."""
    assert milter.proc is not None
    pid = milter.proc.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("the milter's child process did not appear")


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Sampler:
    """RSS of ``pid`` every SAMPLE_EVERY seconds, from a thread of its own."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, KiB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        started = time.monotonic()

        def run() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(OSError, KeyError):
                    self.samples.append((time.monotonic() - started, status_kb(self.pid, "VmRSS")))
                self._stop.wait(SAMPLE_EVERY)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def timeline(self, step: float = 2.0) -> str:
        """The highest RSS in each ``step`` seconds, MiB."""
        buckets: dict[int, int] = {}
        for t, kb in self.samples:
            slot = int(t // step)
            buckets[slot] = max(buckets.get(slot, 0), kb)
        return " ".join(f"{kb / 1024:.0f}" for _, kb in sorted(buckets.items()))


def send_one(port: int, head: bytes, body: memoryview, results: list[str]) -> None:
    """One session: DATA streamed from the shared body (no per-thread copy of 25 MB)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=600) as client:
            client.ehlo()
            client.mail(SENDER, [f"SIZE={len(head) + len(body)}"])
            client.rcpt(RCPT)
            code, msg = client.docmd("DATA")
            if code != 354:
                results.append(f"{code} {msg.decode(errors='replace')}")
                return
            assert client.sock is not None
            client.sock.sendall(head)
            client.sock.sendall(body)
            client.sock.sendall(b".\r\n")
            code, msg = client.getreply()
            results.append(f"{code} {msg.decode(errors='replace')}")
    except (OSError, smtplib.SMTPException) as exc:
        results.append(f"error {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def smtp_sink(port: int) -> Iterator[None]:
    """Postfix's C smtp-sink on 127.0.0.1:port; it accepts and discards every message."""
    proc = subprocess.Popen(
        [SMTP_SINK, "-u", "postfix", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@dataclass
class Run:
    name: str
    baseline_kb: int
    peak_kb: int
    after_kb: int
    replies: list[str]
    actions: dict[str, int]
    delivered: int
    seconds: float
    timeline: str


def count_actions(log: str) -> dict[str, int]:
    """``action:reason`` → messages, from the milter's line per message."""
    out: dict[str, int] = {}
    for line in log.splitlines():
        if "sigfilter.message " in line:
            fields = parse_kv(line)
            key = f"{fields.get('action')}:{fields.get('reason')}"
            out[key] = out.get(key, 0) + 1
    return out


def one_run(
    name: str, work: Path, message: bytes, count: int, config: dict[str, str | bool | int]
) -> Run:
    sink_port = free_port()
    slug = name.replace(" ", "-")
    milter = MilterProcess(work / f"milter-{slug}", CATALOG, config=config)
    postfix = PostfixInstance(
        work / f"postfix-{slug}",
        free_port(),
        sink_port,
        milter.postfix_spec,
        size_limit=len(message) + 10 * MIB,
    )
    with smtp_sink(sink_port):
        milter.start()
        try:
            postfix.start()
            child = milter_child(milter)
            # warm up: one small message (lazy imports, the rewrite pool's threads)
            with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=60) as client:
                client.sendmail(SENDER, [RCPT], big_message(20_000, seed=1))
            time.sleep(1.0)
            baseline = status_kb(child, "VmRSS")
            sampler = Sampler(child)
            sampler.start()
            started = time.monotonic()
            replies: list[str] = []
            head, _, rest = message.partition(b"Message-ID: <mem@test.sigfilter>\r\n")
            body = memoryview(rest)
            heads = [head + b"Message-ID: <mem-%d@test>\r\n" % i for i in range(count)]
            threads = [
                threading.Thread(target=send_one, args=(postfix.smtpd_port, h, body, replies))
                for h in heads
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DELIVERY_TIMEOUT)
            accepted = sum(r.startswith("250") for r in replies)
            delivered = wait_delivered(postfix, accepted + 1)  # + the warm-up message
            elapsed = time.monotonic() - started
            sampler.stop()
            peak = status_kb(child, "VmHWM")
            after = status_kb(child, "VmRSS")
            log = milter.wait_log("action=", count + 1, timeout=30)
        finally:
            postfix.stop()
            milter.stop()
    return Run(name, baseline, peak, after, replies, count_actions(log), delivered - 1, elapsed,
               sampler.timeline())  # fmt: skip


def wait_delivered(postfix: PostfixInstance, n: int) -> int:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        sent = postfix.log_text().count("status=sent")
        if sent >= n or time.monotonic() > deadline:
            return sent
        time.sleep(0.5)


def report(run: Run, count: int, budget: int) -> None:
    codes: dict[str, int] = {}
    for r in run.replies:
        codes[r[:3]] = codes.get(r[:3], 0) + 1
    print(f"\n[{run.name}]")
    print(f"  idle milter RSS (baseline)   {run.baseline_kb / 1024:8.0f} MiB")
    if budget:
        bound = run.baseline_kb / 1024 + budget / MIB
        print(f"  bound: baseline + budget     {bound:8.0f} MiB")
    print(f"  peak RSS (VmHWM)             {run.peak_kb / 1024:8.0f} MiB")
    print(f"  peak - baseline              {(run.peak_kb - run.baseline_kb) / 1024:8.0f} MiB")
    print(f"  RSS after the run            {run.after_kb / 1024:8.0f} MiB")
    print(f"  SMTP replies                 {codes}")
    print(f"  milter decisions             {run.actions}")
    print(f"  delivered to the sink        {run.delivered} of {count}  ({run.seconds:.0f} s)")
    print(f"  RSS over time, MiB (max per 2 s): {run.timeline}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--size-mb", type=float, default=25.0, help="MiB per message")
    ap.add_argument(
        "--budget-mb",
        type=int,
        default=DEFAULT_MEMORY_BUDGET // MIB,
        help="the budget run's memory_budget, MiB (default: the shipped default)",
    )
    ap.add_argument("--only-budget", action="store_true", help="skip the run without a budget")
    args = ap.parse_args()
    size = int(args.size_mb * MIB)
    message = big_message(size)
    assert len(message) == size and b"\r\n." not in message
    print(f"{args.messages} concurrent messages of {size} bytes ({args.size_mb:g} MiB), "
          f"real Postfix + sigfilter milter + C smtp-sink on 127.0.0.1")  # fmt: skip
    budget = args.budget_mb * MIB
    runs = [] if args.only_budget else [("no budget (memory_budget = 0)", 0)]
    runs.append((f"memory_budget = {args.budget_mb} MiB", budget))
    work = new_workdir("sigfilter-bench-mem-")
    try:
        for name, limit in runs:  # one after the other: never two large runs at once
            run = one_run(name, work, message, args.messages, {"memory_budget": limit})
            report(run, args.messages, limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
