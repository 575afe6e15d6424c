"""Defaults and fixed names, in one place."""

from __future__ import annotations

from typing import Literal

Mode = Literal["marker", "mobile", "full"]
MODES: tuple[Mode, ...] = ("marker", "mobile", "full")

# Our processed header: the Exchange transport rule excepts messages that carry it.
PROCESSED_HEADER = "X-Sigfilter-Processed"
DEFAULT_MARKER = "{EMAILSIGNATURE}"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024  # bytes; larger messages pass unchanged
