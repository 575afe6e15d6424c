"""Every TNEF message is counted per tenant with its message class: metrics, the log line
and `sigfilter stats` (the milter's callbacks driven directly, the real engine behind)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sigfilter.milter.callbacks import ACCEPT, MilterSettings, SigfilterMilter
from sigfilter.milter.logline import parse_kv
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.ops.metrics import Metrics
from sigfilter.ops.stats import render, summarise
from sigfilter.service import SignatureService, embedded_store
from support import milter_runtime
from tnefdata import corpus_message

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"


class Recorder(SigfilterMilter):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(RuntimeHolder(runtime))
        self._protocol = 0
        self.body_out = b""

    def replacebody(self, body: bytes) -> None:
        self.body_out += body

    def chgheader(self, name: str, idx: int, value: str) -> None:
        pass

    def addheader(self, name: str, value: str, idx: int = -1) -> None:
        pass

    def getsymval(self, sym: str) -> str:
        return "4QID" if sym == "i" else ""


def _catalog(tmp_path: Path, tnef: str) -> Path:
    root = tmp_path / f"catalog-{tnef}"
    shutil.copytree(EXAMPLE, root)
    toml = root / "tenants" / "example.com" / "tenant.toml"
    text = toml.read_text("utf-8").replace('tnef = "pass"', f'tnef = "{tnef}"')
    assert f'tnef = "{tnef}"' in text
    toml.write_text(text, "utf-8")
    return root


SETTINGS = MilterSettings(connector_cert_name="", tenant_id_missing="accept")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as runtimes:
        yield runtimes


def _use(stack: ExitStack, metrics: Metrics, catalog: Path) -> Runtime:
    service = SignatureService(embedded_store(catalog))
    return stack.enter_context(milter_runtime(service, SETTINGS, metrics=metrics))


def feed(m: Recorder, raw: bytes, sender: str = "avery.quill@example.com") -> int:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert m.envfrom(f"<{sender}>") == 0
    m.envrcpt("<colleague@example.com>")
    fields = head.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ").split(b"\r\n")
    for line in fields:
        name, _, value = line.partition(b":")
        m.header(name, value.strip())
    if m.eoh() != 0:
        return ACCEPT
    m.body(body)
    return int(m.eom())


def tnef_samples(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.labels["tenant"], s.labels["message_class"], s.labels["action"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "sigfilter_tnef_messages_total"
    }


def test_passed_tnef_is_counted_with_its_class_and_logged(
    metrics: Metrics, stack: ExitStack, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="sigfilter.message")
    m = Recorder(_use(stack, metrics, _catalog(tmp_path, "pass")))
    for name in ("body.tnef", "teamwork-winmail.dat", "triples.tnef", "panic.tnef"):
        assert feed(m, corpus_message(name)) == ACCEPT
    assert m.body_out == b""  # nothing rewritten
    assert tnef_samples(metrics) == {
        ("example.com", "IPM.Note", "skipped"): 2,
        ("example.com", "IPM.Appointment", "skipped"): 1,
        ("example.com", "unknown", "skipped"): 1,
    }
    lines = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert [(x["reason"], x["tnef_class"]) for x in lines] == [
        ("tnef", "IPM.Note"), ("tnef", "IPM.Note"), ("tnef", "IPM.Appointment"),
        ("tnef", "unreadable"),
    ]  # fmt: skip
    assert all(x["tenant"] == "example.com" for x in lines)


def test_converted_tnef_is_counted_as_signed(
    metrics: Metrics, stack: ExitStack, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="sigfilter.message")
    m = Recorder(_use(stack, metrics, _catalog(tmp_path, "convert")))
    assert feed(m, corpus_message("body.tnef")) == ACCEPT
    assert b"multipart/alternative" in m.body_out and b"Avery Quill" in m.body_out
    m.body_out = b""
    assert feed(m, corpus_message("triples.tnef")) == ACCEPT
    assert m.body_out == b""
    assert tnef_samples(metrics) == {
        ("example.com", "IPM.Note", "signed"): 1,
        ("example.com", "IPM.Appointment", "skipped"): 1,
    }
    lines = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert [(x["action"], x["reason"]) for x in lines] == [
        ("signed", "ok"), ("skipped", "tnef-calendar")]  # fmt: skip
    stats = summarise(metrics.history.snapshot(), 60)
    assert stats["total"] == 2 and stats["by_action"] == {"signed": 1, "skipped": 1}
    assert sorted(stats["tnef"], key=lambda r: r["message_class"]) == [
        {"tenant": "example.com", "message_class": "IPM.Appointment", "signed": 0, "passed": 1},
        {"tenant": "example.com", "message_class": "IPM.Note", "signed": 1, "passed": 0},
    ]


def test_stats_shows_tnef_per_tenant_and_class() -> None:
    data = {"now": 7200.0, "catalog_version": 3, "in_flight": 0, "uptime_seconds": 60,
            "buckets": [{"start": 7140, "counts": {
                "signed:ok": 3, "skipped:tnef": 5,
                "tnef\tcontoso\tIPM.Note\tsigned": 2, "tnef\tcontoso\tIPM.Note\tskipped": 4,
                "tnef\tcontoso\tIPM.Schedule.Meeting.*\tskipped": 1}}]}  # fmt: skip
    summary = summarise(data, 60)
    assert summary["total"] == 8  # TNEF rows are not extra messages
    lines = render(summary, "http://127.0.0.1:9464").splitlines()
    assert lines[-3:] == [
        "TNEF (winmail.dat) messages: 7, 5 passed unsigned",
        "  contoso IPM.Note                     2 signed       4 passed",
        "  contoso IPM.Schedule.Meeting.*       0 signed       1 passed",
    ]
