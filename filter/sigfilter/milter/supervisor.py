"""SIGHUP reloads, although libmilter stops on it: a parent process owns the signals.

libmilter's own signal thread takes SIGHUP, SIGTERM and SIGINT with sigwait() and
stops the milter on each (sendmail's libmilter/signal.c); nothing in the process that
runs libmilter can keep SIGHUP from that thread. So `sigfilter milter` forks: the child
runs libmilter; the parent stays small, turns SIGHUP into SIGUSR1 (the child's reload),
passes SIGTERM on (SIGINT too, as SIGTERM: finish the messages in flight) and exits
with the child's status. Killed outright, the parent takes the child with it (SIGTERM
by PR_SET_PDEATHSIG), so no milter is ever left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable

from ..exits import ExitCode

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EX_SOFTWARE = ExitCode.SOFTWARE  # the child failed in a way it did not report

FORWARD = {
    signal.SIGHUP: signal.SIGUSR1,
    signal.SIGUSR1: signal.SIGUSR1,
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGTERM,
}


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _run_child(child: Callable[[], int], parent: int) -> None:
    code: int = EX_SOFTWARE
    try:
        _die_with_parent()
        # If the parent died before prctl took effect, there is nobody to serve.
        code = 0 if os.getppid() != parent else child()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything, then leave without unwinding
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never return into the parent's code (click, atexit handlers)


def supervise(child: Callable[[], int]) -> int:
    """Run ``child`` in a forked process, forwarding signals; return its exit code.

    Call before any thread is started: only the calling thread survives a fork.
    """
    signals = set(FORWARD)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # none may slip in before the handlers
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _run_child(child, parent)  # does not return; the child keeps them blocked

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the child is already gone
            os.kill(pid, FORWARD[signal.Signals(signum)])

    for sig in FORWARD:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    _, status = os.waitpid(pid, 0)  # retried after each forwarded signal (PEP 475)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128+N
