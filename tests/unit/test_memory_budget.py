"""The memory budget (budget.py): its arithmetic, and that every path of a message
through the milter's callbacks gives back all it reserved."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_milter_glue import BODY, CATALOG, PLAIN, Recorder, _samples, feed

from sigfilter.config import ConfigError, MilterConfig, load_config
from sigfilter.defaults import COPY_FACTOR, TEXT_FACTOR
from sigfilter.engine import Options, rewrite
from sigfilter.milter.budget import Hold, MemoryBudget
from sigfilter.milter.callbacks import ACCEPT, CONTINUE, TEMPFAIL, reload_once
from sigfilter.milter.logline import parse_kv
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.service import SignatureService, embedded_store
from support import SIGNATURE, TEST_SETTINGS, milter_runtime

SENDER = "avery.quill@example.com"
HEAD_BYTES = sum(len(n) + 2 + len(v) + 2 for n, v in PLAIN) + 2  # as the milter joins it


# -- the budget and a message's hold --------------------------------------------------------


def test_takes_what_fits_and_refuses_the_rest() -> None:
    budget = MemoryBudget(100)
    assert budget.take(60) and budget.take(40)
    assert not budget.take(1)
    assert (budget.used, budget.peak) == (100, 100)
    budget.give(70)
    assert budget.used == 30 and budget.take(70) and not budget.take(1)


def test_no_budget_takes_everything_and_counts_nothing() -> None:
    budget = MemoryBudget(0)
    hold = Hold(budget)
    assert hold.take(10**15) and budget.take(10**15)
    assert (budget.used, hold.held) == (0, 0)


def test_a_negative_budget_is_an_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        MemoryBudget(-1)
    with pytest.raises(ValueError, match="negative"):
        MemoryBudget(5).resize(-1)


def test_resize_keeps_what_is_held() -> None:
    budget = MemoryBudget(100)
    hold = Hold(budget)
    assert hold.take(80)
    budget.resize(50)  # a reload with a smaller budget: nothing more fits until it frees
    assert budget.used == 80 and not Hold(budget).take(1)
    hold.release()
    assert budget.used == 0 and Hold(budget).take(50)


def test_a_refused_hold_gives_back_everything_and_stays_refused() -> None:
    budget = MemoryBudget(100)
    other = Hold(budget)
    assert other.take(30)
    hold = Hold(budget)
    assert hold.take(50) and hold.take(20)
    assert not hold.take(1)  # 101 > 100
    assert hold.refused and hold.held == 0 and budget.used == 30
    assert not hold.take(1)  # no second chance mid-message: it holds nothing
    hold.release()
    hold.release()  # idempotent
    assert budget.used == 30


def test_a_closed_hold_takes_nothing_more() -> None:
    # A rewrite that outlived its time limit reserves after its message ended.
    budget = MemoryBudget(100)
    hold = Hold(budget)
    assert hold.take(40)
    assert hold.close() == 40 and budget.used == 0
    assert not hold.take(10) and budget.used == 0


def test_a_rewrite_that_asks_after_its_message_ended_is_refused(runtime: Runtime) -> None:
    m = Recorder(runtime)
    m.envfrom(f"<{SENDER}>")
    take_text = m.hold.take_text  # what the pool was handed
    m.close()
    assert not take_text(1000) and runtime.memory.used == 0


def test_what_a_message_reserves() -> None:
    budget = MemoryBudget(10**9)
    hold = Hold(budget)
    assert hold.take_bytes(1000) and budget.used == 1000 * COPY_FACTOR
    assert hold.take_text(100) and budget.used == 1000 * COPY_FACTOR + 100 * TEXT_FACTOR
    before = budget.used
    assert hold.take_auth(1000, 0, arc=False, dkim=False) and budget.used == before
    assert hold.take_auth(1000, 10, arc=True, dkim=True) and budget.used > before + 1000


def test_concurrent_messages_never_exceed_the_budget_and_end_at_zero() -> None:
    budget = MemoryBudget(10_000)
    together = threading.Barrier(32, timeout=60)  # every message holds its share at once
    refused: list[int] = []

    def message(n: int) -> None:
        hold = Hold(budget)
        if not all(hold.take(97 + n) for _ in range(5)):
            refused.append(n)
        together.wait()
        hold.release()

    threads = [threading.Thread(target=message, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert budget.used == 0 and 0 < budget.peak <= 10_000
    assert 10 <= len(refused) < 32  # ~600 bytes each: about 16 of 32 fit into 10,000


# -- every path through the callbacks ends at zero ---------------------------------------------


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with milter_runtime(SignatureService(embedded_store(CATALOG))) as made:
        yield made


def budgeted(limit: int, over: str = "pass") -> Iterator[Runtime]:
    settings = replace(TEST_SETTINGS, memory_budget=limit, over_budget=over)
    with milter_runtime(SignatureService(embedded_store(CATALOG)), settings) as made:
        yield made


@pytest.fixture
def small() -> Iterator[Runtime]:
    """Room for the header and body bytes of PLAIN+BODY, not for the text work."""
    yield from budgeted((HEAD_BYTES + len(BODY)) * COPY_FACTOR + 10)


def test_a_signed_message_gives_everything_back(runtime: Runtime) -> None:
    m = Recorder(runtime)
    seen = []
    m.replacebody = lambda body: seen.append(runtime.memory.used)  # type: ignore[method-assign]
    assert feed(m, SENDER, PLAIN, BODY)[-1] == ACCEPT
    assert seen and seen[0] >= (HEAD_BYTES + len(BODY)) * COPY_FACTOR  # held while sending
    assert runtime.memory.used == 0 and runtime.memory.peak > 0


def test_a_message_decided_at_the_header_gives_everything_back(runtime: Runtime) -> None:
    m = Recorder(runtime)
    assert feed(m, SENDER, [*PLAIN, ("Auto-Submitted", "auto-replied")], BODY)[-1] == ACCEPT
    assert runtime.memory.used == 0


def test_a_too_large_message_keeps_nothing(runtime: Runtime) -> None:
    m = Recorder(runtime)
    m.envfrom(f"<{SENDER}>")
    for name, value in PLAIN:
        m.header(name.encode(), value.encode())
    m.eoh()
    m.body(b"x" * 9_000)
    assert runtime.memory.used > 0 and m.chunks
    m.body(b"x" * 2_000)  # over max_size (10,000): dropped at once, not at eom
    assert runtime.memory.used == 0 and m.chunks is None
    assert m.eom() == ACCEPT and m.actions == []


@pytest.mark.parametrize("end", ["abort", "close"])
def test_a_message_cut_off_mid_body_gives_everything_back(runtime: Runtime, end: str) -> None:
    m = Recorder(runtime)
    m.envfrom(f"<{SENDER}>")
    for name, value in PLAIN:
        m.header(name.encode(), value.encode())
    m.eoh()
    m.body(b"half a body\r\n")
    assert runtime.memory.used > 0
    assert getattr(m, end)() == CONTINUE
    assert runtime.memory.used == 0


def test_an_engine_error_gives_everything_back(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("sigfilter.milter.callbacks.rewrite", broken)
    assert feed(Recorder(runtime), SENDER, PLAIN, BODY)[-1] == ACCEPT
    assert runtime.memory.used == 0


def test_a_new_message_on_the_same_connection_starts_from_zero(runtime: Runtime) -> None:
    m = Recorder(runtime)
    m.envfrom(f"<{SENDER}>")
    for name, value in PLAIN:
        m.header(name.encode(), value.encode())
    m.eoh()
    m.body(b"no end of message follows")
    m.envfrom(f"<{SENDER}>")  # libmilter aborts first; even without it nothing leaks
    assert runtime.memory.used == 0


def test_over_budget_passes_unchanged_logged_and_counted(
    small: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    m = Recorder(small)
    assert feed(m, SENDER, PLAIN, BODY)[-1] == ACCEPT
    assert m.actions == []  # no body, no header: byte-identical
    assert small.memory.used == 0
    decided = _samples(small, "sigfilter_messages_total")
    assert decided == {
        (("action", "skipped"), ("reason", "over-budget"), ("tenant", "example.com")): 1
    }
    (line,) = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert (line["action"], line["reason"]) == ("skipped", "over-budget")
    assert "text" in line["detail"]  # refused by the engine, for its text work


def test_over_budget_body_stops_collecting() -> None:
    for rt in budgeted(HEAD_BYTES * COPY_FACTOR + 10):
        m = Recorder(rt)
        codes = feed(m, SENDER, PLAIN, BODY)
        assert codes[-1] == ACCEPT and m.actions == []
        assert m.chunks is None and rt.memory.used == 0


def test_over_budget_at_the_header() -> None:
    for rt in budgeted(HEAD_BYTES):  # not even the header fits: decided before the body
        m = Recorder(rt)
        codes = feed(m, SENDER, PLAIN, BODY)
        assert codes[-1] == ACCEPT and len(codes) == 2 + len(PLAIN) + 1
        assert rt.memory.used == 0


def test_over_budget_tempfails_when_the_operator_chose_it() -> None:
    for rt in budgeted(HEAD_BYTES * COPY_FACTOR + 10, "tempfail"):
        m = Recorder(rt)
        assert feed(m, SENDER, PLAIN, BODY)[-1] == TEMPFAIL
        assert m.actions == [("setreply", "452", "4.3.1")]
        assert rt.memory.used == 0
        decided = _samples(rt, "sigfilter_messages_total")
        key = (("action", "tempfailed"), ("reason", "over-budget"), ("tenant", "example.com"))
        assert decided == {key: 1}


def test_the_budget_is_in_the_metrics(small: Runtime) -> None:
    limit = (HEAD_BYTES + len(BODY)) * COPY_FACTOR + 10
    assert _samples(small, "sigfilter_memory_budget_bytes") == {(): limit}
    m = Recorder(small)
    m.envfrom(f"<{SENDER}>")
    for name, value in PLAIN:
        m.header(name.encode(), value.encode())
    m.eoh()
    assert _samples(small, "sigfilter_memory_budget_used_bytes") == {(): HEAD_BYTES * COPY_FACTOR}
    m.close()
    assert _samples(small, "sigfilter_memory_budget_used_bytes") == {(): 0}


def test_a_reload_keeps_the_budget_and_sets_its_new_limit(runtime: Runtime) -> None:
    holder = RuntimeHolder(runtime)
    m = Recorder(holder)
    m.envfrom(f"<{SENDER}>")
    for name, value in PLAIN:
        m.header(name.encode(), value.encode())
    m.eoh()
    held = runtime.memory.used
    settings = replace(runtime.settings, memory_budget=12345)
    assert reload_once(holder, lambda: (runtime.service, settings))
    assert holder.current.memory is runtime.memory and runtime.memory.limit == 12345
    assert runtime.memory.used == held  # the message in flight still holds its share
    m.body(BODY)
    assert m.eom() == ACCEPT and runtime.memory.used == 0


# -- the engine asks before it decodes text ------------------------------------------------


def test_the_engine_reserves_its_text_work_before_it_does_it() -> None:
    raw = b"".join(f"{n}: {v}\r\n".encode() for n, v in PLAIN) + b"\r\n" + BODY
    asked: list[int] = []

    def refuse(n: int) -> bool:
        asked.append(n)
        return False

    result = rewrite(raw, SIGNATURE, Options(), reserve=refuse)
    assert (result.action, result.reason) == ("skipped", "over-budget")
    assert asked == [len(BODY)]
    assert rewrite(raw, SIGNATURE, Options(), reserve=lambda n: True).signed


# -- the settings -------------------------------------------------------------------------


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = MilterConfig(socket="unix:/x", catalog=str(tmp_path))
    with pytest.raises(ConfigError, match="memory_budget must be a number of bytes"):
        replace(base, memory_budget=-1).validate()
    with pytest.raises(ConfigError, match="over_budget must be one of pass, tempfail"):
        replace(base, over_budget="reject").validate()
    path = tmp_path / "m.toml"
    path.write_text('[milter]\nmemory_budget = "1G"\n')
    with pytest.raises(ConfigError, match=r"milter.memory_budget must be a int"):
        load_config(path)
    path.write_text('[milter]\nmemory_budget = 0\nover_budget = "tempfail"\n')
    conf = load_config(path)
    assert (conf.memory_budget, conf.over_budget) == (0, "tempfail")
