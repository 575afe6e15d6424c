"""The errors every ``sigfilter`` command raises on purpose, each with its exit code
(from exits.py, the one table). Anything else is a bug and exits 1 with a traceback."""

from __future__ import annotations

import click

from ..exits import ExitCode


class SigfilterError(click.ClickException):
    exit_code = ExitCode.FAILED


class CatalogInvalid(SigfilterError):
    exit_code = ExitCode.DATAERR


class InputUnreadable(SigfilterError):
    exit_code = ExitCode.NOINPUT


class ServiceUnavailable(SigfilterError):
    exit_code = ExitCode.UNAVAILABLE


class CannotWrite(SigfilterError):
    exit_code = ExitCode.CANTCREAT


class Busy(SigfilterError):
    exit_code = ExitCode.TEMPFAIL


class RunningAsRoot(SigfilterError):
    exit_code = ExitCode.NOPERM


class PermissionRefused(SigfilterError):
    exit_code = ExitCode.NOPERM


class InsecureConfig(SigfilterError):
    exit_code = ExitCode.CONFIG


EXIT_CATALOG = CatalogInvalid.exit_code
