"""The milter callbacks driven directly (no MTA): decisions and the actions they take."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import Milter  # type: ignore[import-untyped]
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sigfilter.milter.callbacks import (
    ACCEPT,
    CONTINUE,
    REJECT,
    TEMPFAIL,
    MilterSettings,
    SigfilterMilter,
    milter_socket,
    negotiated_callbacks,
    reload_once,
)
from sigfilter.milter.logline import parse_kv
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.mime import codec
from sigfilter.service import SignatureService, embedded_store
from sigfilter.store.base import StoreUnavailable
from support import milter_runtime

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


class Recorder(SigfilterMilter):
    """Records the actions the milter asks the MTA for."""

    def __init__(self, runtime: Runtime | RuntimeHolder) -> None:
        super().__init__(runtime if isinstance(runtime, RuntimeHolder) else RuntimeHolder(runtime))
        self._protocol = 0  # what negotiation would set; @noreply callbacks read it
        self.actions: list[tuple[str, object, ...]] = []  # type: ignore[misc]

    def replacebody(self, body: bytes) -> None:
        self.actions.append(("replacebody", body))

    def chgheader(self, name: str, idx: int, value: str) -> None:
        self.actions.append(("chgheader", name, idx, value))

    def addheader(self, name: str, value: str, idx: int = -1) -> None:
        self.actions.append(("addheader", name, value))

    def getsymval(self, sym: str) -> str:
        return "4ABCDEF" if sym == "i" else ""

    def setreply(self, rcode: str, xcode: str, msg: str) -> None:
        self.actions.append(("setreply", rcode, xcode))


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with milter_runtime(SignatureService(embedded_store(CATALOG))) as made:
        yield made


def feed(m: Recorder, sender: str, headers: list[tuple[str, str]], body: bytes) -> list[int]:
    codes = [m.envfrom(f"<{sender}>"), m.envrcpt("<jane@customer.example>")]
    for name, value in headers:
        codes.append(m.header(name.encode(), value.encode()))
        if codes[-1] != CONTINUE:
            return codes
    codes.append(m.eoh())
    if codes[-1] != CONTINUE:
        return codes
    for start in range(0, len(body), 7):  # odd chunking on purpose
        codes.append(m.body(body[start : start + 7]))
        if codes[-1] != CONTINUE:
            return codes
    codes.append(m.eom())
    return codes


PLAIN = [("From", "Avery Quill <avery.quill@example.com>"), ("To", "jane@customer.example"),
         ("Subject", "late"), ("Content-Type", "text/plain; charset=us-ascii")]  # fmt: skip
BODY = b"Running late.\r\n\r\nSent from my iPhone\r\n"


def test_signs_and_marks_processed(runtime: Runtime) -> None:
    m = Recorder(runtime)
    codes = feed(m, "avery.quill@example.com", PLAIN, BODY)
    assert codes[-1] == ACCEPT and all(c == CONTINUE for c in codes[:-1])
    body = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    assert b"Sent from my iPhone" not in body and b"Avery Quill" in body
    assert ("addheader", "X-Sigfilter-Processed", "1") in m.actions


def test_unknown_sender_is_refused_at_mail_from(runtime: Runtime) -> None:
    # Fail closed (issue 12): a domain no tenant has is not relayed unchecked.
    m = Recorder(runtime)
    assert m.envfrom("<someone@elsewhere.example>") == REJECT
    assert m.actions == [("setreply", "550", "5.7.1")]


@pytest.mark.parametrize(
    "sender", ["avery.quill@example.com.", "Avery.Quill@EXAMPLE.COM", '"avery.quill"@Example.com.']
)
def test_other_spellings_of_a_user_are_signed(runtime: Runtime, sender: str) -> None:
    m = Recorder(runtime)
    codes = feed(m, sender, PLAIN, BODY)
    assert codes[-1] == ACCEPT and all(c == CONTINUE for c in codes[:-1])
    body = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    assert b"Avery Quill" in body and b"Head of Mail Flow" in body


@pytest.mark.parametrize(
    ("sender", "code"),
    [
        ("", REJECT),
        ("avery.quill@example.com..", REJECT),
        ("@x.example:avery.quill@example.com", REJECT),
    ],
)
def test_addresses_without_a_canonical_form_are_refused(
    runtime: Runtime, sender: str, code: int
) -> None:
    m = Recorder(runtime)
    assert m.envfrom(f"<{sender}>") == code
    assert m.actions == [("setreply", "550", "5.7.1")]


def test_nothing_held_is_tempfailed(runtime: Runtime) -> None:
    # A store that cannot name its tenants (Redis down at start, nothing loaded).
    runtime = runtime.reloaded(SignatureService(EmptyStore()), runtime.settings)
    m = Recorder(runtime)
    assert m.envfrom("<avery.quill@example.com>") == TEMPFAIL
    assert m.actions == [("setreply", "451", "4.7.1")]


class EmptyStore:
    def version(self) -> int | None:
        return None

    def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("down")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Sigfilter-Processed", "1"),
        ("Content-Type", 'multipart/signed; protocol="application/pkcs7-signature"; boundary=x'),
        ("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data"),
    ],
)
def test_decided_at_the_header(runtime: Runtime, header: str, value: str) -> None:
    m = Recorder(runtime)
    codes = feed(m, "avery.quill@example.com", [*PLAIN[:3], (header, value)], BODY)
    assert codes[-1] == ACCEPT and len(codes) == 7  # envfrom, envrcpt, 4 headers, eoh; no body
    assert m.actions == []


def test_auto_reply_decided_at_end_of_headers(runtime: Runtime) -> None:
    m = Recorder(runtime)
    codes = feed(m, "avery.quill@example.com", [*PLAIN, ("Auto-Submitted", "auto-replied")], BODY)
    assert codes[-1] == ACCEPT and m.actions == []
    assert len(codes) == 2 + 5 + 1  # ended at eoh


def test_too_large_passes_unchanged(runtime: Runtime) -> None:
    m = Recorder(runtime)
    codes = feed(m, "avery.quill@example.com", PLAIN, b"x" * 20_000)
    assert codes[-1] == ACCEPT and m.actions == []


def test_engine_error_passes_unchanged(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("sigfilter.milter.callbacks.rewrite", broken)
    m = Recorder(runtime)
    assert feed(m, "avery.quill@example.com", PLAIN, BODY)[-1] == ACCEPT
    assert m.actions == []


def test_only_needed_callbacks_are_negotiated() -> None:
    assert sorted(negotiated_callbacks()) == ["body", "envfrom", "envrcpt", "eoh", "header"]


@pytest.mark.parametrize(
    "offered",
    [
        [0x1FF, 0x1FFFFF, 0, 0],  # Postfix 3.7: every action and protocol step
        [0x3F, 0x7F, 0, 0],  # an old MTA that can skip few steps
        [0x1FF, 0x1FFFFF, 7, 9],  # reserved words are answered with 0
        [0x1FF, 0x1FFFFF],  # unreadable: pymilter answers ALL_OPTS
    ],
)
def test_negotiation_answers_what_pymilter_answers(runtime: Runtime, offered: list[int]) -> None:
    ours, theirs = Recorder(runtime), Recorder(runtime)
    mine, reference = list(offered), list(offered)
    code = ours.negotiate(mine)
    assert code == Milter.Base.negotiate(theirs, reference)
    assert mine == reference
    if len(offered) == 4:
        assert (ours._protocol, ours._actions) == (theirs._protocol, theirs._actions)
    if offered[1:] == [0x1FFFFF, 0, 0]:  # headers without replies, no connect callback
        assert ours._protocol & Milter.P_NR_HDR and ours._protocol & Milter.P_NOCONNECT


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("unix:/run/s.sock", "unix:/run/s.sock"), ("inet:127.0.0.1:8894", "inet:8894@127.0.0.1")],
)
def test_socket_spelling(spec: str, expected: str) -> None:
    assert milter_socket(spec) == expected


def test_bad_socket_spelling() -> None:
    with pytest.raises(ValueError, match="want unix:PATH or inet:HOST:PORT"):
        milter_socket("tcp:1234")


def test_single_part_charset_change_uses_chgheader(runtime: Runtime, tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    shutil.copytree(CATALOG, cat)
    tpl = cat / "tenants" / "example.com" / "templates" / "default" / "default.txt"
    tpl.write_text("-- \n{{ display_name }} \u00b7 {{ job_title }}\n")
    runtime = runtime.reloaded(SignatureService(embedded_store(cat)), runtime.settings)
    m = Recorder(runtime)
    headers = [
        *PLAIN[:3],
        ("Content-Type", "text/plain; charset=us-ascii"),
        ("Content-Transfer-Encoding", "7bit"),
    ]
    assert feed(m, "avery.quill@example.com", headers, b"Hello\r\n")[-1] == ACCEPT
    assert ("chgheader", "Content-Type", 1, "text/plain; charset=utf-8") in m.actions
    assert ("chgheader", "Content-Transfer-Encoding", 1, "quoted-printable") in m.actions
    body = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    assert body.startswith(b"Hello\r\n") and b"Avery Quill =C2=B7 Head of Mail Flow" in body


def test_replaced_client_signature_is_logged_and_counted(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    m = Recorder(runtime)
    headers = [*PLAIN[:3], ("Content-Type", "text/html; charset=utf-8")]
    body = b'<div>Hi</div><div id="Signature">Avery Quill<br>Old Title</div>\r\n'
    with caplog.at_level("INFO", logger="sigfilter.message"):
        codes = feed(m, "avery.quill@example.com", headers, body)
    assert codes[-1] == ACCEPT
    fields = parse_kv(caplog.records[-1].getMessage())
    assert (fields["placement"], fields["replaced"]) == ("client", "outlook-web")
    value = runtime.metrics.registry.get_sample_value(
        "sigfilter_client_signatures_replaced_total",
        {"client": "outlook-web", "tenant": "example.com"},
    )
    assert value == 1.0


# -- one runtime per message: a reload never mixes catalogs and settings ------------------


def _catalog_b(tmp_path: Path) -> Path:
    """The example catalog with another text signature (tells which catalog signed)."""
    cat = tmp_path / "catalog-b"
    shutil.copytree(CATALOG, cat)
    tpl = cat / "tenants" / "example.com" / "templates" / "default" / "default.txt"
    tpl.write_text("-- \nCatalog B for {{ display_name }}\n")
    return cat


STAGES = ["envfrom", "envrcpt", "header", "eoh", "body"]


def _drive(m: Recorder, swap_after: str, swap: Callable[[], None]) -> int:
    """One message, with ``swap`` (a reload) run right after callback ``swap_after``."""
    steps: list[tuple[str, Callable[[], int]]] = [
        ("envfrom", lambda: m.envfrom("<avery.quill@example.com>")),
        ("envrcpt", lambda: m.envrcpt("<jane@customer.example>")),
        *[("header", lambda n=n, v=v: m.header(n.encode(), v.encode())) for n, v in PLAIN],
        ("eoh", m.eoh),
        ("body", lambda: m.body(BODY)),
    ]
    for name, step in steps:
        assert step() == CONTINUE
        if name == swap_after:
            swap()
            swap_after = ""  # once (header is called once per field)
    code: int = m.eom()
    return code


@pytest.mark.parametrize("swap_after", STAGES)
def test_a_reload_mid_message_cannot_mix_catalogs_and_settings(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture, swap_after: str
) -> None:
    caplog.set_level(logging.INFO, logger="sigfilter.message")
    # B differs from A in both halves: its catalog signs "Catalog B", its settings put the
    # whole sender address in the log line and refuse anything over 50 bytes.
    settings_b = replace(runtime.settings, log_sender="address", max_size=50)
    b = runtime.reloaded(SignatureService(embedded_store(_catalog_b(tmp_path))), settings_b)
    holder = RuntimeHolder(runtime)
    m = Recorder(holder)

    assert _drive(m, swap_after, lambda: holder.swap(b)) == ACCEPT
    first = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    assert b"Head of Mail Flow" in first and b"Catalog B" not in first  # A's catalog
    m.actions.clear()
    assert _drive(m, "", lambda: None) == ACCEPT  # the next message: B, whole
    assert m.actions == []  # B's 50-byte limit: passed unchanged

    lines = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert [(x["action"], x["reason"]) for x in lines] == [
        ("signed", "ok"),
        ("skipped", "too-large"),
    ]
    assert lines[0]["sender_domain"] == "example.com" and "sender" not in lines[0]  # A's settings
    assert lines[1]["sender"] == "avery.quill@example.com"  # B's settings
    assert b.pool is runtime.pool and b.metrics is runtime.metrics and b.keys is runtime.keys


def test_the_next_message_signs_with_the_new_catalog(runtime: Runtime, tmp_path: Path) -> None:
    holder = RuntimeHolder(runtime)
    m = Recorder(holder)
    b = runtime.reloaded(SignatureService(embedded_store(_catalog_b(tmp_path))), runtime.settings)
    assert _drive(m, "body", lambda: holder.swap(b)) == ACCEPT
    m.actions.clear()
    assert _drive(m, "", lambda: None) == ACCEPT
    body = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    assert b"Catalog B for Avery Quill" in body and b"Head of Mail Flow" not in body


def test_reload_swaps_whole_or_keeps_what_runs(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = RuntimeHolder(runtime)
    service_b = SignatureService(embedded_store(_catalog_b(tmp_path)))
    settings_b = replace(runtime.settings, max_size=77)

    def broken() -> tuple[SignatureService, MilterSettings]:
        raise ValueError("catalog: tenants/example.com/tenant.toml: bad mode")

    assert not reload_once(holder, broken)
    assert holder.current is runtime and "action=reload reason=failed" in caplog.text
    assert reload_once(holder, lambda: (service_b, settings_b))
    new = holder.current
    assert (new.service, new.settings) == (service_b, settings_b)
    same = ("pool", "metrics", "keys", "dns", "lines")
    assert all(getattr(new, name) is getattr(runtime, name) for name in same)
    assert runtime.service is not service_b  # the old runtime is untouched (frozen)


# -- honest errors: a bug in the engine is an error, never "malformed" ---------------------


def _samples(runtime: Runtime, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(runtime.metrics.registry).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


# ValueError and LookupError were read as bad mail before (issue 14): a bug of either
# kind was counted as reason=malformed and never reached sigfilter_errors_total.
@pytest.mark.parametrize(
    "bug",
    [IndexError("list index out of range"), KeyError("part"), ValueError("x"), LookupError("y")],
)
def test_an_unexpected_exception_in_the_engine_is_an_error_not_malformed(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    bug: Exception,
) -> None:
    caplog.set_level(logging.INFO)

    def broken(body: bytes, cte: str) -> bytes:  # deep inside the engine, on the pool
        raise bug

    monkeypatch.setattr(codec, "transfer_decode", broken)
    m = Recorder(runtime)
    assert feed(m, "avery.quill@example.com", PLAIN, BODY)[-1] == ACCEPT
    assert m.actions == []  # passed unchanged: no body, no header edit, no processed mark
    kind = type(bug).__name__
    assert _samples(runtime, "sigfilter_errors_total") == {(("kind", kind),): 1}
    decided = _samples(runtime, "sigfilter_messages_total")
    assert decided == {(("action", "error"), ("reason", kind), ("tenant", "example.com")): 1}
    (line,) = [parse_kv(r.getMessage()) for r in caplog.records if r.name == "sigfilter.message"]
    assert (line["action"], line["reason"]) == ("error", kind)
    traced = [r for r in caplog.records if r.name == "sigfilter.milter" and r.exc_info]
    assert traced and traced[0].exc_info[0] is type(bug)  # type: ignore[index]
    assert "in broken" in caplog.text  # the traceback reaches the frame that raised


def test_bad_mail_is_still_a_skip_and_not_an_error(runtime: Runtime) -> None:
    m = Recorder(runtime)
    head = [*PLAIN[:3], ("Content-Type", "text/plain; charset=idna")]  # a codec, no charset
    assert feed(m, "avery.quill@example.com", head, BODY)[-1] == ACCEPT
    assert m.actions == []
    assert _samples(runtime, "sigfilter_errors_total") == {}
    decided = _samples(runtime, "sigfilter_messages_total")
    assert decided == {(("action", "skipped"), ("reason", "charset"), ("tenant", "example.com")): 1}
