"""glibc's malloc, set for a process that holds large, short-lived buffers per message.

The memory budget (budget.py) counts the bytes messages hold; RSS also counts what the
allocator keeps after they are freed. With glibc's defaults that was a lot (50
concurrent 25 MiB messages, tests/bench/bench_memory.py, 1 GiB budget): peak RSS 1236
MiB, over baseline + budget; 802 MiB still held after the burst. Two settings fix most
of it (peak 910 MiB, 414 MiB after):

- M_ARENA_MAX 2: every libmilter thread otherwise gets an arena of its own (up to 8 per
  core), and a buffer freed in one is no use to a message on another thread. Python
  allocates under the GIL, so more arenas buy nothing here.
- M_MMAP_THRESHOLD 128 KiB, fixed: glibc raises it up to 32 MiB after the first large
  free, and then a joined message or a new body comes from an arena and stays there.
  Fixed, each of them is its own mapping, returned to the system when freed.

After a large message, trim() gives the free pages of the arenas back as well.
Elsewhere than glibc (no mallopt) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("sigfilter.milter.alloc")

M_MMAP_THRESHOLD = -3  # <malloc.h>
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD = 128 * 1024
TRIM_AFTER = 8 * 1024 * 1024  # bytes of a message after which to trim, when it ends


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def tune() -> bool:
    """Set the two options (call before the threads start); False where there is no
    glibc or it refused."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(M_ARENA_MAX, ARENA_MAX)) and bool(
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )
    if not ok:
        log.warning("action=mallopt reason=refused")
    return ok


def trim(size: int) -> None:
    """After a message of ``size`` bytes: give free arena pages back if it was large."""
    if _LIBC is not None and size >= TRIM_AFTER:
        _LIBC.malloc_trim(0)
