"""Hypothesis over mutated TNEF: the reader and the whole engine never raise, never hang
(the profile's deadline, and the work budget in mime/tnef.py), and stay in bounded memory.

Mutations start from the corpus streams: flipped bytes, 32-bit counts and lengths set
to hostile values, cuts, insertions. Most mutations would only meet the framing check
(a checksum no longer adds up), so half the examples have their checksums made right
again: those reach tnefparse, compressed_rtf and RTFDE themselves.
"""

from __future__ import annotations

import os
import struct
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigfilter.engine import Options, rewrite, rewritten_message
from sigfilter.mime.tnef import TnefContent, TnefRefused, read_tnef
from support import SIGNATURE, SKIP_REASONS, parse
from tnefdata import FILES, corpus_message, exchange_message, tnef_in

settings.register_profile(
    "tnef-ci",
    max_examples=150,
    deadline=20_000,  # a hang shows as a deadline failure; the budget keeps each run short
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "tnef-long",
    max_examples=5_000,
    deadline=20_000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(
    "tnef-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "tnef-ci"
)

# Streams under 120 KB (the 1.1 MB RTF sample would make each example slow).
STREAMS = [s for s in (tnef_in(corpus_message(n)) for n in FILES) if len(s) < 120_000]
HOSTILE_U32 = [0, 1, 2, 0x7F, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
MEMORY_PER_INPUT_BYTE = 60  # peak traced bytes allowed per input byte …
MEMORY_BASE = 64 * 1024 * 1024  # … plus this much (RTFDE's parser tables, lxml)


def fix_checksums(data: bytes) -> bytes:
    """Recompute each attribute's checksum where the framing still reads."""
    out = bytearray(data)
    pos = 6
    while pos + 11 <= len(out):
        length = struct.unpack_from("<I", out, pos + 5)[0]
        end = pos + 9 + length
        if end + 2 > len(out):
            break
        struct.pack_into("<H", out, end, sum(out[pos + 9 : end]) & 0xFFFF)
        pos = end + 2
    return bytes(out)


def data_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each attribute's data, where the framing reads."""
    spans, pos = [], 6
    while pos + 11 <= len(data):
        end = pos + 9 + struct.unpack_from("<I", data, pos + 5)[0]
        if end + 2 > len(data):
            break
        spans.append((pos + 9, end))
        pos = end + 2
    return spans


@st.composite
def inside_attributes(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Mutations inside attributes' data: the framing holds, the content is hostile."""
    spans = [s for s in data_spans(bytes(data)) if s[1] - s[0] >= 4]
    for _ in range(draw(st.integers(1, 4))):
        if not spans:
            break
        start, end = draw(st.sampled_from(spans))
        pos = draw(st.integers(start, end - 4))
        if draw(st.booleans()):
            struct.pack_into("<I", data, pos, draw(st.sampled_from(HOSTILE_U32)))
        else:
            data[pos] ^= draw(st.integers(1, 255))
    return data


@st.composite
def anywhere(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Mutations anywhere after the signature: framing, lengths, cuts, junk."""
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(min(6, len(data)), max(len(data) - 1, 6)))
        op = draw(st.sampled_from(["flip", "u32", "cut", "insert", "truncate"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "u32" and len(data) >= pos + 4:
            struct.pack_into("<I", data, pos, draw(st.sampled_from(HOSTILE_U32)))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "truncate":
            del data[pos:]
    return data


@st.composite
def mutated_tnef(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(STREAMS)))
    if draw(st.integers(0, 3)):  # three in four: inside the attributes, checksums made right
        return fix_checksums(bytes(draw(inside_attributes(data))))
    raw = bytes(draw(anywhere(data)))
    return fix_checksums(raw) if draw(st.booleans()) else raw


@PROFILE
@given(mutated_tnef())
def test_reader_refuses_or_reads(data: bytes) -> None:
    tracemalloc.start()
    try:
        content = read_tnef(data)
    except TnefRefused as refused:
        assert refused.reason.startswith("tnef-")
        content = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BASE + MEMORY_PER_INPUT_BYTE * len(data), peak
    assert content is None or isinstance(content, TnefContent)


@PROFILE
@given(mutated_tnef(), st.sampled_from(["pass", "convert"]))
def test_engine_passes_or_signs_mutated_tnef(data: bytes, mode: str) -> None:
    raw = exchange_message(data)
    result = rewrite(raw, SIGNATURE, Options(tnef=mode))
    # A bug raises (engine.py); a TNEF that cannot be read is tnef-damaged, not malformed.
    assert result.signed or result.reason in SKIP_REASONS - {"malformed"}, result.detail
    out = rewritten_message(raw, result)
    if not result.signed:
        assert out == raw and result.reason != "ok"
        return
    assert mode == "convert" and result.tnef_class == "IPM.Note"
    msg = parse(out)
    assert not any(p.get_content_type() == "application/ms-tnef" for p in msg.walk())
    assert out.count(b"Avery Quill") >= 1
