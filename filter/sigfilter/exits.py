"""Every exit code the ``sigfilter`` command uses, in one place (sysexits.h numbers).

The README's "Exit codes" table is this table (tests/unit/test_exits.py compares
them), and ``sigfilter --help`` prints it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # something is wrong; what and how to fix it is printed
    USAGE = 2  # a bad option or argument (click)
    DATAERR = 65  # the catalog is invalid
    NOINPUT = 66  # an input file is unreadable or unusable
    UNAVAILABLE = 69  # a service is unavailable: Redis, Microsoft Graph, a port
    SOFTWARE = 70  # the milter's child process failed without saying why
    CANTCREAT = 73  # an output file cannot be written
    TEMPFAIL = 75  # another `users sync` of the tenant is running: try later
    NOPERM = 77  # running as root; Entra ID sign-in refused or a Graph permission missing
    CONFIG = 78  # an insecure configuration (a secret file others can read, ...)


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "done; every check passed (warnings may be printed)",
    ExitCode.FAILED: "something is wrong (e.g. no signature for that sender); what is printed",
    ExitCode.USAGE: "a bad option or argument",
    ExitCode.DATAERR: "the catalog is invalid (each problem as FILE:LINE: MESSAGE)",
    ExitCode.NOINPUT: "an input file is unreadable or unusable",
    ExitCode.UNAVAILABLE: "Redis or Microsoft Graph unreachable, or a port cannot be bound",
    ExitCode.SOFTWARE: "the milter's child process failed without saying why",
    ExitCode.CANTCREAT: "an output file cannot be written",
    ExitCode.TEMPFAIL: "another `users sync` of the tenant is running: try later",
    ExitCode.NOPERM: "running as root, or Entra ID refused the sign-in or a Graph permission",
    ExitCode.CONFIG: "unsafe: a secret file missing or readable by others, a page not on loopback",
}
