"""The milter's DKIM/ARC step driven directly: the actions it asks Postfix for, in order.

The real Postfix's handling of those actions is tested end to end in
tests/integration/test_dkim_stack.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import dkim
import pytest

from dkimtest import ARC_SELECTOR, RELAY, FakeDns, make_key, presign
from sigfilter.milter.callbacks import ACCEPT, MilterSettings, SigfilterMilter
from sigfilter.milter.runtime import Runtime, RuntimeHolder
from sigfilter.mime.headers import parse_header_block
from sigfilter.service import SignatureService, embedded_store
from support import milter_runtime

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"
HEAD = (b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@customer.example\r\n"
        b"Subject: late\r\nMessage-ID: <m1@test>\r\nContent-Type: text/plain; charset=us-ascii\r\n")  # fmt: skip
BODY = b"Running late.\r\n\r\nSent from my iPhone\r\n"


class Recorder(SigfilterMilter):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(RuntimeHolder(runtime))
        self._protocol = 0
        self.actions: list[tuple[object, ...]] = []

    def replacebody(self, body: bytes) -> None:
        self.actions.append(("replacebody", body))

    def chgheader(self, name: str, idx: int, value: str | None) -> None:
        self.actions.append(("chgheader", name, idx, value))

    def addheader(self, name: str, value: str, idx: int = -1) -> None:
        self.actions.append(("addheader", name, value, idx))

    def getsymval(self, sym: str) -> str:
        return "4DKIM" if sym == "i" else ""


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_key(tmp_path_factory.mktemp("k"), "tenant")


def serve(tmp_path: Path, pem: bytes, mode: int = 0o600, arc: bool = True) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, root)
    key = tmp_path / "tenant.key"
    key.write_bytes(pem)
    key.chmod(mode)
    conf = root / "tenants" / "example.com" / "tenant.toml"
    extra = f'\n[dkim]\npolicy = "resign"\nselector = "sig1"\nkey_file = "{key}"\n'
    if arc:
        extra += f'[arc]\nenabled = true\nauthserv_id = "{RELAY}"\nselector = "{ARC_SELECTOR}"\n'
    conf.write_text(conf.read_text() + extra)
    return key


SETTINGS = MilterSettings(max_size=100_000, connector_cert_name="", tenant_id_missing="accept")
Make = Callable[[Path], Runtime]


@pytest.fixture
def dns(pem: bytes) -> FakeDns:
    fake = FakeDns()
    fake.publish("sig1", "example.com", pem)
    fake.publish(ARC_SELECTOR, "example.com", pem)
    return fake


@pytest.fixture
def make(dns: FakeDns) -> Iterator[Make]:
    """Runtimes serving a catalog with the fake DNS (each with fresh keys and metrics)."""
    with ExitStack() as stack:

        def runtime(catalog: Path) -> Runtime:
            service = SignatureService(embedded_store(catalog))
            return stack.enter_context(milter_runtime(service, SETTINGS, dns=dns))

        yield runtime


def feed(m: Recorder, raw: bytes) -> int:
    m.envfrom("<avery.quill@example.com>")
    m.envrcpt("<jane@customer.example>")
    block = parse_header_block(raw)
    for f in block.fields:  # as Postfix passes them: name, value (folded lines kept)
        name, _, value = raw[f.start : f.end].partition(b":")
        m.header(name, value.lstrip(b" ").rstrip(b"\r\n"))
    m.eoh()
    m.body(raw[block.end :])
    code: int = m.eom()
    return code


def test_resign_deletes_then_inserts_on_top_then_marks_processed(
    tmp_path: Path, pem: bytes, dns: FakeDns, make: Make
) -> None:
    serve(tmp_path, pem)
    m = Recorder(make(tmp_path / "catalog"))
    raw = presign(HEAD + b"\r\n" + BODY, pem)
    assert feed(m, raw) == ACCEPT
    kinds = [(a[0], a[1]) for a in m.actions if a[0] != "replacebody"]
    assert kinds == [
        ("chgheader", "DKIM-Signature"),  # the signature our rewrite broke …
        ("addheader", "DKIM-Signature"),  # … then ours, inserted first so it ends lowest
        ("addheader", "ARC-Authentication-Results"),
        ("addheader", "ARC-Message-Signature"),
        ("addheader", "ARC-Seal"),  # inserted last: on top
        ("addheader", "X-Sigfilter-Processed"),  # appended, and last of all
    ]
    edits = [a for a in m.actions if a[0] != "replacebody"]
    assert edits[0] == ("chgheader", "DKIM-Signature", 1, None)  # None: delete
    assert all(a[3] == 0 for a in edits[1:5]) and edits[5][3] == -1
    # What Postfix will hold: the inserted fields on top, in reverse order of insertion.
    body = b"".join(a[1] for a in m.actions if a[0] == "replacebody")  # type: ignore[misc]
    top = b"".join(f"{a[1]}: {a[2]}\n".replace("\n", "\r\n").encode() for a in reversed(edits[1:5]))
    sent = top + HEAD + b"X-Sigfilter-Processed: 1\r\n\r\n" + body
    assert dkim.verify(sent, dnsfunc=dns)
    assert dkim.arc_verify(sent, dnsfunc=dns)[0] == dkim.CV_Pass


def test_unusable_key_passes_the_message_unchanged(tmp_path: Path, pem: bytes, make: Make) -> None:
    key = serve(tmp_path, pem, arc=False)
    runtime = make(tmp_path / "catalog")  # a fresh key cache: nothing read yet
    key.chmod(0o644)  # after the catalog was loaded: the milter checks again
    m = Recorder(runtime)
    labels = {"action": "skipped", "reason": "dkim-key", "tenant": "example.com"}
    registry = runtime.metrics.registry
    before = registry.get_sample_value("sigfilter_messages_total", labels) or 0
    assert feed(m, HEAD + b"\r\n" + BODY) == ACCEPT
    assert m.actions == []
    assert registry.get_sample_value("sigfilter_messages_total", labels) == before + 1


def test_keep_policy_adds_nothing(make: Make) -> None:
    m = Recorder(make(EXAMPLE))
    assert feed(m, HEAD + b"\r\n" + BODY) == ACCEPT
    assert [a[1] for a in m.actions if a[0] == "addheader"] == ["X-Sigfilter-Processed"]
