"""Operations through the real stack: metrics, the log line, health and stats.

smtplib → private Postfix → the real milter (with a metrics port) → Postfix → sink;
then the metrics endpoint, the milter's log, `sigfilter health` and `sigfilter stats`
are read back and their counts and fields checked against what was sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from harness.milterctl import MilterProcess
from harness.redis_server import RedisServer
from harness.sink import free_port
from harness.stack import Stack, running_stack
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.cli import main
from sigfilter.milter.logline import parse_kv
from sigfilter.ops.health import probe_milter
from sigfilter.store.redis_store import RedisPublisher, connect
from support import MESSAGES, to_crlf

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
AVERY = "avery.quill@example.com"
OTHER = "someone@not-in-catalog.example"
RCPT = "jane@customer.example"


def message(name: str) -> bytes:
    return to_crlf((MESSAGES / name).read_bytes())


# What the module sends: (message file, envelope sender, action, reason)
TRAFFIC = [
    ("c24_generic_html-base64.eml", AVERY, "signed", "ok"),
    ("c12_iphone_new-plain-footer.eml", AVERY, "signed", "ok"),
    ("c24_generic_html-base64.eml", OTHER, "rejected", "unknown-sender"),
    ("c32_gmail_skip-loop-header.eml", AVERY, "skipped", "loop"),
    ("c36_applemail_skip-smime-signed.eml", AVERY, "skipped", "signed-smime"),
]


@pytest.fixture(scope="module")
def ops() -> Iterator[Stack]:
    with running_stack("sigfilter-ops-", milter={"metrics_port": free_port()}) as stack:
        for name, sender, action, _ in TRAFFIC:
            if action == "rejected":  # refused at MAIL FROM (no tenant has the domain)
                with pytest.raises(smtplib.SMTPSenderRefused):
                    stack.send(message(name), sender)
            else:
                stack.send(message(name), sender)
        yield stack


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def samples(ops: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = get(ops.milter.metrics_url + "/metrics")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(
    got: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return got.get((name, frozenset(labels.items())), 0.0)


def message_lines(ops: Stack) -> list[dict[str, str]]:
    """The milter's per-message log lines, parsed (the log's time prefix skipped)."""
    deadline = time.monotonic() + 30
    while True:
        lines = [
            parse_kv(line) for line in ops.milter.log_text().splitlines()
            if " sigfilter.message " in line
        ]  # fmt: skip
        if len(lines) >= len(TRAFFIC) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_metrics_count_each_message_by_action_reason_and_tenant(ops: Stack) -> None:
    got = samples(ops)
    assert sample(got, "sigfilter_messages_seen_total") == len(TRAFFIC)
    expected: dict[tuple[str, str, str], int] = {}
    for _, sender, action, reason in TRAFFIC:
        tenant = "example.com" if sender == AVERY else ""
        key = (action, reason, tenant)
        expected[key] = expected.get(key, 0) + 1
    for (action, reason, tenant), n in expected.items():
        labels = {"action": action, "reason": reason, "tenant": tenant}
        assert sample(got, "sigfilter_messages_total", **labels) == n, (labels, got)
    total = sum(v for (name, _), v in got.items() if name == "sigfilter_messages_total")
    assert total == len(TRAFFIC)
    # Two rewrites ran (the skips above are decided before the body is read).
    assert sample(got, "sigfilter_rewrite_seconds_count") == 2
    assert sample(got, "sigfilter_messages_in_flight") == 0
    assert sample(got, "sigfilter_catalog_version") == 1  # the embedded catalog, loaded once
    assert not [k for k in got if k[0] == "sigfilter_errors_total"]


def test_one_log_line_per_message_with_its_fields(ops: Stack) -> None:
    lines = message_lines(ops)
    assert len(lines) == len(TRAFFIC)
    # Postfix's queue ids, except for the message decided at MAIL FROM: Postfix makes
    # the queue file (and its id) only after the first accepted RCPT TO.
    early = [line["queue_id"] for line in lines if line["reason"] == "unknown-sender"]
    assert early == ["-"]
    queue_ids = {line["queue_id"] for line in lines} - {"-"}
    assert len(queue_ids) == len(TRAFFIC) - 1
    deadline = time.monotonic() + 30  # postlogd writes a moment later
    while not all(f"{qid}: " in (logged := ops.postfix.log_text()) for qid in queue_ids):
        assert time.monotonic() < deadline, logged[-3000:]  # the same ids Postfix logs
        time.sleep(0.05)
    for line, (name, sender, action, reason) in zip(lines, TRAFFIC, strict=True):
        assert line["action"] == action and line["reason"] == reason, line
        assert line["sender_domain"] == sender.rpartition("@")[2]
        assert "sender" not in line  # the full address only when configured
        assert float(line["ms"]) >= 0
        if action == "signed":
            size = len(message(name))
            assert line["tenant"] == "example.com" and line["placement"]
            assert int(line["bytes_in"]) == size  # header block + body as the milter saw it
            # The signature only adds: what leaves is larger than what came in.
            assert int(line["bytes_out"]) > size
    log = ops.milter.log_text()
    assert "Avery" not in log and "avery.quill" not in log  # no body content, no address


def test_health_negotiates_and_reports_the_catalog_version(ops: Stack) -> None:
    result = CliRunner().invoke(
        main, ["health", "--socket", ops.milter.postfix_spec, "--url", ops.milter.metrics_url]
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"OK milter {ops.milter.postfix_spec} answers (protocol 6); catalog version 1\n"
    )


def test_health_fails_for_a_dead_socket(tmp_path: Path) -> None:
    dead = tmp_path / "nobody.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))  # a socket file nobody listens on
    result = CliRunner().invoke(main, ["health", "--socket", f"unix:{dead}", "--url", ""])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: FAIL milter unix:{dead}: cannot connect to unix:{dead}: Connection refused\n"
    )


def test_health_fails_for_a_listener_that_is_not_a_milter() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        spec = f"inet:127.0.0.1:{port}"
        result = CliRunner().invoke(
            main, ["health", "--socket", spec, "--url", "", "--timeout", "0.3"]
        )
    assert result.exit_code == 1
    assert result.output == f"Error: FAIL milter {spec}: no answer from {spec} within 0.3 s\n"


def test_stats_summarises_the_last_hour(ops: Stack) -> None:
    url = ops.milter.metrics_url
    result = CliRunner().invoke(main, ["stats", "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["total"] == len(TRAFFIC)
    assert summary["by_action"] == {"signed": 2, "skipped": 2, "rejected": 1}
    assert summary["by_reason"] == {
        "signed:ok": 2,
        "rejected:unknown-sender": 1,
        "skipped:loop": 1,
        "skipped:signed-smime": 1,
    }
    text = CliRunner().invoke(main, ["stats", "--url", url]).output
    assert "last 60 min: 5 messages, 2 signed (40.0%), 2 skipped, 1 refused, 0 errors" in text
    assert "  rejected unknown-sender       1  20.0%" in text


def test_stats_without_a_milter_says_so() -> None:
    port = free_port()
    result = CliRunner().invoke(main, ["stats", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: cannot read the milter's stats: http://127.0.0.1:{port}/stats: "
    )
    assert "Connection refused" in result.output


def test_systemd_hears_ready_once_the_socket_answers() -> None:
    """Type=notify: READY=1 arrives on $NOTIFY_SOCKET, and by then the milter negotiates."""
    work = Path(tempfile.mkdtemp(prefix="sigfilter-notify-"))
    work.chmod(0o755)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(work / "notify"))
    notify.settimeout(20)
    milter = MilterProcess(work / "milter", CATALOG, env={"NOTIFY_SOCKET": str(work / "notify")})
    starter = threading.Thread(target=milter.start)
    try:
        starter.start()
        message = notify.recv(4096)
        got = probe_milter(milter.postfix_spec)  # at once: READY means it listens
        assert message == f"READY=1\nSTATUS=listening on {milter.postfix_spec}".encode()
        assert got.version == 6
    finally:
        starter.join(20)
        milter.stop(kill=True)
        notify.close()


@pytest.mark.slow  # libmilter takes a few seconds to stop on SIGTERM
def test_signals_still_reach_libmilter_with_the_metrics_server_running() -> None:
    """The metrics thread starts after the signal mask: SIGUSR1 reloads, SIGTERM stops."""
    work = Path(tempfile.mkdtemp(prefix="sigfilter-signals-"))
    work.chmod(0o755)
    milter = MilterProcess(work / "milter", CATALOG, metrics_port=free_port())
    milter.start()
    try:
        assert milter.proc is not None
        proc = milter.proc
        loaded = [v for k, v in scrape(milter).items()
                  if k[0] == "sigfilter_catalog_loaded_timestamp_seconds"]  # fmt: skip
        time.sleep(0.05)  # the clock moves on before the reload
        os.kill(proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while "action=reload reason=ok" not in milter.log_text():
            assert time.monotonic() < deadline, milter.log_text()
            time.sleep(0.05)
        again = [v for k, v in scrape(milter).items()
                 if k[0] == "sigfilter_catalog_loaded_timestamp_seconds"]  # fmt: skip
        assert len(loaded) == len(again) == 1 and again[0] > loaded[0]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0  # libmilter's graceful stop, not a signal death
    finally:
        milter.stop(kill=True)


def scrape(milter: MilterProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = get(milter.metrics_url + "/metrics")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _child_of(pid: int) -> int:
    """The milter process the supervisor forked (supervisor.py)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{entry}/status").read_text()
                if f"\nPPid:\t{pid}\n" in status:
                    return int(entry)
    raise AssertionError(f"no child of {pid}")


def _allowed_cpus(pid: int) -> dict[int, str]:
    """Each thread's Cpus_allowed_list (threads that end meanwhile are left out)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            out[int(tid)] = status.partition("Cpus_allowed_list:")[2].split()[0]
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to choose")
@pytest.mark.parametrize(("single", "redis"), [(True, False), (False, False), (True, True)])
def test_the_milter_runs_on_one_cpu_unless_told_not_to(single: bool, redis: bool) -> None:
    """single_cpu (the default): every thread of the serving process on the last CPU
    this process may use, the Redis listener's too (started before the move); false:
    where the process started may run."""
    work = Path(tempfile.mkdtemp(prefix="sigfilter-cpu-"))
    work.chmod(0o755)
    with contextlib.ExitStack() as stack:
        url = None
        if redis:
            server = RedisServer()
            server.start()
            stack.callback(server.close)
            RedisPublisher(connect(server.url)).publish(compile_catalog(load_catalog(CATALOG)), {})
            url = server.url
        milter = MilterProcess(
            work / "milter", None if redis else CATALOG, redis_url=url,
            metrics_port=free_port(), config={"single_cpu": single},
        )  # fmt: skip
        milter.start()
        stack.callback(milter.stop, kill=True)
        assert milter.proc is not None
        threads = _allowed_cpus(_child_of(milter.proc.pid))
        # libmilter's, the log writer's, the metrics server's (and the Redis listener's)
        assert len(threads) >= (4 if redis else 3)
        mine = Path("/proc/self/status").read_text().partition("Cpus_allowed_list:")[2]
        want = str(max(os.sched_getaffinity(0))) if single else mine.split()[0]
        assert set(threads.values()) == {want}
        assert ("action=cpu reason=single" in milter.log_text()) is single
