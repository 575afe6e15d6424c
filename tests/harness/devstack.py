"""The local stack behind `make run`: Postfix + milter + a sink standing in for the tenant.

    python tests/harness/devstack.py up      # start everything, print how to use it, wait
    python tests/harness/devstack.py down    # stop a stack started by `up` (by process id)

All on 127.0.0.1: Postfix listens on 2525, the sink (the tenant's return host) on 2526.
Signed mail is written to run/inbox/. Ctrl-C, `make stop` or SIGTERM stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for harness

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import Sink

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "run"
PIDFILE = RUN / "devstack.pid"
SMTPD_PORT = 2525
SINK_PORT = 2526


def up(catalog: Path) -> None:
    RUN.mkdir(exist_ok=True)
    inbox = RUN / "inbox"
    inbox.mkdir(exist_ok=True)
    PIDFILE.write_text(str(os.getpid()))
    work = new_workdir("sigfilter-devstack-")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sink = Sink(port=SINK_PORT)
    milter = MilterProcess(work / "milter", catalog)
    postfix = PostfixInstance(work / "postfix", SMTPD_PORT, SINK_PORT, milter.postfix_spec)
    try:
        sink.start()
        milter.start()  # before Postfix accepts mail
        postfix.start()
        print(_banner(inbox, work), flush=True)
        written = 0
        while not stop.wait(0.2):
            for message in sink.messages[written:]:
                written += 1
                (inbox / f"{written:04d}.eml").write_bytes(message.data)
                print(
                    f"received {inbox / f'{written:04d}.eml'} from {message.mail_from}", flush=True
                )
    finally:
        print("stopping…", flush=True)
        postfix.stop()
        milter.stop(kill=True)
        sink.stop()
        PIDFILE.unlink(missing_ok=True)


def _banner(inbox: Path, work: Path) -> str:
    return f"""
sigfilter is running on 127.0.0.1 (example catalog: tenant example.com).
  Postfix (relay):        127.0.0.1:{SMTPD_PORT}   log: {work}/postfix/log/maillog
  milter:                 {work}/milter/milter.sock   log: {work}/milter/milter.log
  tenant return host:     127.0.0.1:{SINK_PORT} (a sink) -> {inbox}/

Send a test message:
  swaks --server 127.0.0.1:{SMTPD_PORT} --from avery.quill@example.com --to jane@customer.example \\
        --header "Subject: test" --body $'Running late.\\n\\nSent from my iPhone'
or one of the examples:
  swaks --server 127.0.0.1:{SMTPD_PORT} --from avery.quill@example.com --to jane@customer.example \\
        --data examples/messages/outlook-web-reply.eml

Signed messages land in {inbox}/. Stop with Ctrl-C or `make stop`.
"""


def down() -> None:
    if not PIDFILE.exists():
        print("no stack is running (no run/devstack.pid)")
        return
    pid = int(PIDFILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        print(f"asked the stack (pid {pid}) to stop")
    except ProcessLookupError:
        print(f"stack pid {pid} is gone; removing the stale pid file")
        PIDFILE.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["up", "down"])
    ap.add_argument("--catalog", type=Path, default=ROOT / "examples" / "catalog")
    args = ap.parse_args()
    if args.command == "up":
        up(args.catalog)
    else:
        down()


if __name__ == "__main__":
    main()
