"""Operations pieces on their own: log line, metrics, minute history, stats, config, doctor."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sigfilter.cli import main
from sigfilter.cli import ops as cli_ops
from sigfilter.config import ConfigError, MilterConfig, load_config
from sigfilter.milter.callbacks import ACCEPT, MilterSettings, SigfilterMilter, sd_notify
from sigfilter.milter.logline import format_line, parse_kv
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.ops.doctor import Doctor, PostconfFailed
from sigfilter.ops.findings import Finding, report
from sigfilter.ops.health import HealthError, Negotiated
from sigfilter.ops.metrics import Metrics, MetricsServer, MinuteHistory, start_server
from sigfilter.ops.stats import render, summarise
from sigfilter.service import SignatureService, embedded_store
from sigfilter.store.base import StoreUnavailable
from sigfilter.store.cache import CachedStore
from support import POSTCONF_GOOD, milter_runtime

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"

# -- the log line -----------------------------------------------------------------------


def test_kv_line_orders_fields_and_quotes_what_needs_it() -> None:
    line = format_line(
        {
            "ms": 1.5,
            "action": "skipped",
            "queue_id": "4AB",
            "detail": 'Auto-Submitted: "x"',
            "reason": "auto-reply",
            "placement": None,
            "tenant": "",
        }
    )
    assert (
        line
        == 'queue_id=4AB action=skipped reason=auto-reply ms=1.5 detail="Auto-Submitted: \\"x\\""'
    )
    assert parse_kv("2026-01-01 10:00:00 sigfilter.message " + line) == {
        "queue_id": "4AB", "action": "skipped", "reason": "auto-reply", "ms": "1.5",
        "detail": 'Auto-Submitted: "x"',
    }  # fmt: skip


def test_json_line_is_one_object_with_a_time() -> None:
    data = json.loads(format_line({"queue_id": "4AB", "tenant": "", "bytes_in": 10}, "json"))
    assert set(data) == {"ts", "queue_id", "bytes_in"} and data["bytes_in"] == 10
    assert data["ts"].endswith("Z")


# -- the milter's counts and its line ----------------------------------------------------


class Recorder(SigfilterMilter):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(RuntimeHolder(runtime))
        self._protocol = 0

    def replacebody(self, body: bytes) -> None:
        pass

    def chgheader(self, name: str, idx: int, value: str) -> None:
        pass

    def addheader(self, name: str, value: str, idx: int = -1) -> None:
        pass

    def setreply(self, rcode: str, xcode: str, msg: str) -> None:
        pass

    def getsymval(self, sym: str) -> str:
        return "4QID" if sym == "i" else ""


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with milter_runtime(SignatureService(embedded_store(CATALOG))) as made:
        made.metrics.watch_store(lambda: made.service.store)
        yield made


@pytest.fixture
def metrics(runtime: Runtime) -> Metrics:
    return runtime.metrics


HEADERS = [(b"From", b"Avery Quill <avery.quill@example.com>"), (b"To", b"jane@customer.example"),
           (b"Subject", b"late"), (b"Content-Type", b"text/plain; charset=us-ascii")]  # fmt: skip
BODY = b"Running late.\r\n\r\nSent from my iPhone\r\n"


def feed(m: Recorder, sender: str, body: bytes = BODY) -> int:
    if m.envfrom(f"<{sender}>") != 0:  # CONTINUE is 0
        return ACCEPT
    m.envrcpt("<jane@customer.example>")
    for name, value in HEADERS:
        m.header(name, value)
    if m.eoh() != 0:
        return ACCEPT
    m.body(body)
    return int(m.eom())


def values(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as the scrape shows it: (name, sorted labels) -> value."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_messages_are_counted_by_action_reason_and_tenant(
    runtime: Runtime, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sigfilter.message")
    m = Recorder(runtime)
    assert feed(m, "avery.quill@example.com") == ACCEPT
    assert feed(m, "someone@elsewhere.example") == ACCEPT
    got = values(metrics)
    signed = (("action", "signed"), ("reason", "ok"), ("tenant", "example.com"))
    unknown = (("action", "rejected"), ("reason", "unknown-sender"), ("tenant", ""))
    assert got[("sigfilter_messages_total", signed)] == 1
    assert got[("sigfilter_messages_total", unknown)] == 1
    assert got[("sigfilter_messages_seen_total", ())] == 2
    assert got[("sigfilter_messages_in_flight", ())] == 0
    assert got[("sigfilter_rewrite_seconds_count", ())] == 1
    assert got[("sigfilter_catalog_version", ())] == 1
    lines = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert [(x["queue_id"], x["action"], x.get("tenant")) for x in lines] == [
        ("4QID", "signed", "example.com"), ("4QID", "rejected", None)]  # fmt: skip
    assert lines[0]["sender_domain"] == "example.com" and lines[0]["placement"] == "footer"
    head = b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS) + b"\r\n"
    assert int(lines[0]["bytes_in"]) == len(head) + len(BODY)


def test_full_sender_only_when_configured_and_json_lines(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sigfilter.message")
    settings = MilterSettings(
        max_size=10_000,
        log_format="json",
        log_sender="address",
        connector_cert_name="",
        tenant_id_missing="accept",
    )
    feed(Recorder(runtime.reloaded(runtime.service, settings)), "avery.quill@example.com")
    (record,) = [r for r in caplog.records if r.name == "sigfilter.message"]
    data = json.loads(record.getMessage())
    assert data["sender"] == "avery.quill@example.com" and "sender_domain" not in data
    assert data["action"] == "signed" and data["tenant"] == "example.com"


def test_an_engine_crash_is_an_error_by_kind(
    runtime: Runtime, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(SigfilterMilter, "_apply", boom)
    assert feed(Recorder(runtime), "avery.quill@example.com") == ACCEPT
    got = values(metrics)
    assert got[("sigfilter_errors_total", (("kind", "MemoryError"),))] == 1
    assert got[("sigfilter_messages_in_flight", ())] == 0


def test_in_flight_rises_at_mail_from_and_falls_on_abort(
    runtime: Runtime, metrics: Metrics
) -> None:
    m = Recorder(runtime)
    m.envfrom("<avery.quill@example.com>")
    assert values(metrics)[("sigfilter_messages_in_flight", ())] == 1
    m.abort()
    m.close()  # a second end of the same message must not count twice
    assert values(metrics)[("sigfilter_messages_in_flight", ())] == 0


def test_cache_and_redis_counts_come_from_the_store(metrics: Metrics) -> None:
    class Store:
        def version(self) -> int:
            return 7

        def get(self, key: str) -> bytes | None:
            return None

        def stats(self) -> dict[str, int]:
            return {"hits": 5, "misses": 2, "stale_served": 1, "unavailable": 3,
                    "invalidations": 4, "backend_errors": 6, "entries": 9}  # fmt: skip

    store = Store()
    metrics.watch_store(lambda: store)
    got = values(metrics)
    assert got[("sigfilter_catalog_version", ())] == 7
    assert got[("sigfilter_cache_lookups_total", (("result", "hit"),))] == 5
    assert got[("sigfilter_cache_lookups_total", (("result", "stale"),))] == 1
    assert got[("sigfilter_redis_errors_total", ())] == 6
    assert got[("sigfilter_cache_entries", ())] == 9


def test_cache_counts_each_failed_backend_request_once() -> None:
    """A failed request counts one Redis error; lookups while resting do not ask again."""

    class Down:
        def version(self) -> int:
            raise StoreUnavailable("connection refused")

        def get(self, key: str) -> bytes | None:
            raise StoreUnavailable("connection refused")

    clock = Clock(0.0)
    cache = CachedStore(Down(), ttl=10, clock=clock, retry_after=1.0)
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            cache.get("user:a")
    assert cache.stats()["backend_errors"] == 1 and cache.stats()["unavailable"] == 3
    clock.now = 2.0  # past retry_after: asked again, failed again
    with pytest.raises(StoreUnavailable):
        cache.get("user:a")
    assert cache.stats()["backend_errors"] == 2


# -- the minute history and stats ------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_history_keeps_the_last_hour_per_minute() -> None:
    clock = Clock(1_000_000 * 60 + 5)
    history = MinuteHistory(minutes=60, clock=clock)
    history.add("signed:ok")
    clock.now += 30 * 60
    history.add("skipped:loop")
    history.add("skipped:loop")
    data = history.snapshot()
    assert [b["counts"] for b in data["buckets"]] == [{"signed:ok": 1}, {"skipped:loop": 2}]
    clock.now += 45 * 60  # the first minute is now 75 minutes old
    assert [b["counts"] for b in history.snapshot()["buckets"]] == [{"skipped:loop": 2}]
    summary = summarise({**history.snapshot(), "catalog_version": 3}, minutes=60)
    assert summary["total"] == 2 and summary["by_action"] == {"skipped": 2}
    assert summarise(history.snapshot(), minutes=10)["total"] == 0


def test_stats_render() -> None:
    data = {"now": 7200.0, "catalog_version": 3, "in_flight": 1, "uptime_seconds": 3720,
            "buckets": [{"start": 7140, "counts": {"signed:ok": 3, "skipped:loop": 1}}]}  # fmt: skip
    text = render(summarise(data, 60), "http://127.0.0.1:9464")
    assert text.splitlines() == [
        "sigfilter at http://127.0.0.1:9464: catalog version 3, up 1h 02m, 1 in flight",
        "last 60 min: 4 messages, 3 signed (75.0%), 1 skipped, 0 refused, 0 errors",
        "  signed   ok           3  75.0%",
        "  skipped  loop         1  25.0%",
    ]


# -- the metrics server ---------------------------------------------------------------------


def test_server_serves_metrics_status_and_stats() -> None:
    metrics = Metrics()
    metrics.message("skipped", "time-limit", "example.com")
    server = MetricsServer(metrics, "127.0.0.1:0").start()
    base = f"http://{server.address}"

    def get(path: str) -> bytes:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return bytes(response.read())

    try:
        text = get("/metrics").decode()
        assert 'sigfilter_errors_total{kind="time-limit"} 1.0' in text
        status = json.loads(get("/status"))
        assert status["catalog_version"] is None and status["in_flight"] == 0
        stats = json.loads(get("/stats"))
        assert stats["buckets"][0]["counts"] == {"skipped:time-limit": 1}
        with pytest.raises(urllib.error.HTTPError) as err:
            get("/nope")
        assert err.value.code == 404
        err.value.close()
    finally:
        server.stop()


def test_a_busy_metrics_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert start_server(Metrics(), f"127.0.0.1:{port}") is None
    assert "action=metrics reason=failed" in caplog.text
    assert start_server(Metrics(), "off") is None


def test_sd_notify_sends_to_the_notify_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(tmp_path / "n"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n"))
        assert sd_notify("READY=1")
        assert s.recv(100) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('log_format = "xml"', "log_format must be one of kv, json"),
        ('log_sender = "name"', "log_sender must be one of domain, address"),
        ('metrics = "9464"', "metrics: not HOST:PORT: '9464' (e.g. 127.0.0.1:9464)"),
        ('single_cpu = "yes"', "milter.single_cpu must be a bool"),
    ],
)
def test_bad_ops_settings(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f'[milter]\nsocket = "unix:/x"\ncatalog = "{CATALOG}"\n{text}\n')
    with pytest.raises(ConfigError, match="^" + str(path) + ": " + message.replace("(", r"\(")
                       .replace(")", r"\)")):  # fmt: skip
        load_config(path).validate(str(path))


def test_ops_settings_defaults_and_off(tmp_path: Path) -> None:
    assert MilterConfig().metrics == "127.0.0.1:9464" and MilterConfig().log_format == "kv"
    path = tmp_path / "m.toml"
    path.write_text(f'[milter]\nsocket = "unix:/x"\ncatalog = "{CATALOG}"\nmetrics = ""\n')
    assert load_config(path).validate().metrics == ""


# -- doctor with a postconf of the test's own -------------------------------------------------

GOOD = POSTCONF_GOOD


def postconf_of(values: dict[str, str], explicit: Sequence[str] = ("milter_default_action",)):  # type: ignore[no-untyped-def]
    def postconf(args: Sequence[str]) -> str:
        if "-n" in args:
            return "".join(f"{k} = {values.get(k, '')}\n" for k in explicit)
        if "-P" in args:
            return ""
        return "".join(f"{k} = {values.get(k, '')}\n" for k in args if not k.startswith("-"))

    return postconf


def postfix_findings(values: dict[str, str], **kw: object) -> list[Finding]:
    conf = MilterConfig(socket="unix:/run/sigfilter/milter.sock", catalog=str(CATALOG))
    doc = Doctor(conf, "milter.toml", postconf=postconf_of(values, **kw))  # type: ignore[arg-type]
    return [f for f in doc.check_postfix() if f.level != "ok"]


def test_doctor_finds_nothing_wrong_in_a_good_postfix() -> None:
    assert postfix_findings(GOOD) == []


@pytest.mark.parametrize(
    ("change", "level", "message"),
    [
        ({"smtpd_milters": ""}, "fail", "smtpd_milters is empty: no mail is signed"),
        ({"smtpd_milters": "inet:127.0.0.1:8894"}, "fail",
         "smtpd_milters = inet:127.0.0.1:8894 does not name the milter's socket "
         "unix:/run/sigfilter/milter.sock"),
        ({"milter_content_timeout": "300s"}, "warn",
         "milter_content_timeout = 300s: a hung milter holds SMTP sessions that long"),
        ({"message_size_limit": "0"}, "warn",
         "message_size_limit = 0 exceeds the milter's max_size 52428800: mail in between "
         "passes unsigned"),
        ({"smtpd_tls_protocols": "!SSLv2, !SSLv3"}, "warn",
         "smtpd_tls_protocols = !SSLv2, !SSLv3 allows TLS older than 1.2"),
        ({"smtp_tls_security_level": "may"}, "warn",
         "smtp_tls_security_level = may: the return leg to Exchange Online is not verified"),
        ({"mynetworks": "0.0.0.0/0"}, "fail",
         "open relay risk: smtpd_relay_restrictions = permit_mynetworks reject, "
         "mynetworks = 0.0.0.0/0"),
        ({"smtpd_sender_restrictions": "permit"}, "fail",
         "smtpd_sender_restrictions does not end with reject: mail of any sender domain "
         "is relayed"),
        ({"smtpd_sender_restrictions": "check_sender_access hash:/nonexistent/senders, reject"},
         "fail", "map file /nonexistent/senders (smtpd_sender_restrictions) is missing"),
    ],
)  # fmt: skip
def test_doctor_postfix_problems(change: dict[str, str], level: str, message: str) -> None:
    assert [(f.level, f.message) for f in postfix_findings({**GOOD, **change})] == [
        (level, message)
    ]


def test_doctor_wants_the_default_action_set_explicitly() -> None:
    (finding,) = postfix_findings({**GOOD, "milter_default_action": "accept"}, explicit=())
    assert finding.message == "milter_default_action is not set explicitly (now accept)"
    assert finding.fix.startswith("postconf -e milter_default_action=tempfail")


def test_doctor_warns_about_accept() -> None:
    (finding,) = postfix_findings({**GOOD, "milter_default_action": "accept"})
    assert finding.level == "warn"
    assert finding.message.startswith(
        "milter_default_action = accept: while the milter is down nothing checks"
    )


def test_doctor_when_postconf_fails() -> None:
    def broken(args: Sequence[str]) -> str:
        raise PostconfFailed("postconf: fatal: open /etc/postfix/main.cf: No such file")

    doc = Doctor(MilterConfig(), "flags", postconf=broken)
    (finding,) = doc.check_postfix()
    assert finding.message == (
        "postconf failed for the default instance: postconf: fatal: open "
        "/etc/postfix/main.cf: No such file"
    )


def test_doctor_dkim_key_when_a_tenant_has_a_selector() -> None:
    class Tenant:
        return_host = "[192.0.2.1]:25"  # an address: no lookup
        dkim_selector = "sig1"
        domains = ("example.com",)

    answers = {("sig1._domainkey.example.com", "TXT"): ['"v=DKIM1; k=rsa; " "p=MIIB"']}
    doc = Doctor(MilterConfig(), "flags", resolve=lambda n, t: answers.get((n, t), []))
    doc.catalog = type("Cat", (), {"tenants": {"example.com": Tenant()}})()  # type: ignore[assignment]
    assert [f.message for f in doc.check_dns()] == [
        "DKIM key published at sig1._domainkey.example.com"
    ]
    answers.clear()
    assert [f.level for f in doc.check_dns()] == ["fail"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"catalog_version": 7}, ("ok", "serves catalog version 7")),
        ({"catalog_version": 6}, ("warn", "the milter serves catalog version 6, Redis holds 7")),
        (None, ("warn", "its metrics port does not answer: http://127.0.0.1:9464/status: "
                        "refused")),
    ],
)  # fmt: skip
def test_doctor_compares_the_served_version_with_redis(
    status: dict[str, int] | None, expected: tuple[str, str]
) -> None:
    def fetch(url: str) -> dict[str, int]:
        if status is None:
            raise HealthError(f"{url}: refused")
        return status

    conf = MilterConfig(socket="unix:/run/sigfilter/milter.sock")
    doc = Doctor(conf, "flags", probe=lambda spec: Negotiated(6, 0, 0), fetch=fetch)
    doc.published = "7"
    found = list(doc.check_milter())
    assert (found[0].level, found[0].message) == (
        "ok", "answers on unix:/run/sigfilter/milter.sock (milter protocol 6)")  # fmt: skip
    assert (found[1].level, found[1].message) == expected


def test_report_exit_codes() -> None:
    text, code = report([Finding("ok", "a", "fine"), Finding("warn", "b", "meh", "do x")])
    assert code == 0 and text.splitlines() == [
        "ok    a        fine", "WARN  b        meh", "      fix: do x",
        "0 failure(s), 1 warning(s)"]  # fmt: skip
    assert report([Finding("fail", "c", "broken", "fix it")], verbose=False)[1] == 1


# -- the commands without a stack --------------------------------------------------------------


def test_doctor_without_any_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_ops, "DEFAULT_CONFIG", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(main, ["doctor", "--no-postfix", "--no-dns"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "FAIL  config   flags: no socket (set milter.socket or pass --socket)",
        "      fix: correct the setting in flags",
        "1 failure(s), 0 warning(s)",
    ]


def test_doctor_reports_a_broken_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    (catalog / "tenants" / "example.com" / "tenant.toml").write_text('mode = "sometimes"\n')
    args = ["doctor", "--socket", "unix:/nonexistent/s", "--catalog", str(catalog),
            "--no-postfix", "--no-dns", "-q"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"FAIL  catalog  {catalog} has ")
    assert lines[1] == (
        f"      fix: sigfilter catalog check {catalog} lists them; fix, then reload the "
        "milter (kill -USR1 its pid)"
    )
    assert lines[2] == (
        "FAIL  milter   the milter does not answer on unix:/nonexistent/s: cannot connect "
        "to unix:/nonexistent/s: No such file or directory"
    )


@pytest.mark.parametrize("command", ["health", "stats", "doctor"])
def test_ops_commands_explain_themselves(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_doctor_compares_the_tenant_maps_with_the_catalog(tmp_path: Path) -> None:
    """One list of tenant domains (issue 12): a domain Postfix accepts but the catalog
    does not have, or a return host the catalog does not say, is a failure."""
    senders, relays = tmp_path / "tenant_senders", tmp_path / "relayhost_by_sender"
    senders.write_text("# by hand\nexample.com OK\nexample.org OK\n")
    relays.write_text("@example.com [example-com.mail.protection.outlook.com]:25\n")
    values = {
        **GOOD,
        "smtpd_sender_restrictions": f"check_sender_access texthash:{senders}, reject",
        "sender_dependent_relayhost_maps": f"texthash:{relays}",
    }
    conf = MilterConfig(socket="unix:/run/sigfilter/milter.sock", catalog=str(CATALOG))
    doc = Doctor(conf, "milter.toml", postconf=postconf_of(values))  # type: ignore[arg-type]
    assert [f.level for f in doc.check_catalog()] == ["ok"]
    findings = list(doc.check_postfix())
    assert [(f.level, f.message) for f in findings if f.level != "ok"] == [
        ("fail", f"{senders} (smtpd_sender_restrictions) differs from the catalog: "
                 "example.org is not in the catalog"),
    ]  # fmt: skip
    assert f"{relays} (sender_dependent_relayhost_maps) agrees with the catalog" in [
        f.message for f in findings
    ]
    relays.write_text("@example.com [127.0.0.1]:2526\n")
    senders.write_text("example.com OK\n")
    bad = [f.message for f in doc.check_postfix() if f.level == "fail"]
    assert bad == [
        f"{relays} (sender_dependent_relayhost_maps) differs from the catalog: @example.com "
        "is [127.0.0.1]:2526, the catalog says [example-com.mail.protection.outlook.com]:25"
    ]


def test_doctor_warns_when_the_memory_budget_cannot_hold_the_largest_message() -> None:
    values = {**POSTCONF_GOOD, "message_size_limit": "36700160"}
    conf = MilterConfig(socket="unix:/run/sigfilter/milter.sock", catalog=str(CATALOG))
    for budget, warned in ((0, False), (2 * 36700160, False), (2 * 36700160 - 1, True)):
        doc = Doctor(replace(conf, memory_budget=budget), "milter.toml",
                     postconf=postconf_of(values))  # type: ignore[arg-type]  # fmt: skip
        found = [f.message for f in doc.check_postfix() if f.level != "ok"]
        expected = [
            f"memory_budget {budget} cannot hold a message of 36700160 bytes (2 copies): "
            "messages that large always pass unsigned"
        ]
        assert found == (expected if warned else []), budget
