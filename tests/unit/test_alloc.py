"""glibc's malloc settings for the milter (alloc.py)."""

from __future__ import annotations

import ctypes

import pytest

from sigfilter.milter import alloc


def test_tune_sets_glibcs_options_here() -> None:
    # Debian's glibc (the supported platform) takes both options; a refusal is reported.
    assert alloc.tune() is True


def test_trim_only_after_a_large_message(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class Libc:
        def malloc_trim(self, pad: int) -> int:
            calls.append(pad)
            return 1

    monkeypatch.setattr(alloc, "_LIBC", Libc())
    alloc.trim(alloc.TRIM_AFTER - 1)
    assert calls == []
    alloc.trim(alloc.TRIM_AFTER)
    assert calls == [0]


def test_without_glibc_both_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alloc, "_LIBC", None)
    assert alloc.tune() is False
    alloc.trim(10**12)  # nothing to call, nothing raised


def test_the_libc_found_is_the_one_this_process_runs() -> None:
    assert alloc._LIBC is not None
    assert (
        ctypes.cast(alloc._LIBC.malloc_trim, ctypes.c_void_p).value
        == ctypes.cast(ctypes.CDLL(None).malloc_trim, ctypes.c_void_p).value
    )
