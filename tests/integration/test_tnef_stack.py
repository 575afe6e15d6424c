"""End to end: a TNEF message between a tenant's own users, through the real Postfix and
the real milter. With ``tnef = "convert"`` it arrives signed as MIME; with ``"pass"``
(the default) its body arrives byte-identical."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import AVERY, CATALOG, Stack, running_stack
from sigfilter.mime.headers import parse_header_block
from support import SIG_TOKEN, parse, to_crlf
from tnefdata import corpus_message, held_attachments, tnef_in

INTERNAL = "colleague@example.com"  # the sender's own tenant


def catalog_with(tmp: Path, tnef: str) -> Path:
    root = tmp / "catalog"
    shutil.copytree(CATALOG, root)
    toml = root / "tenants" / "example.com" / "tenant.toml"
    text = toml.read_text("utf-8").replace('tnef = "pass"', f'tnef = "{tnef}"')
    assert f'tnef = "{tnef}"' in text
    toml.write_text(text, "utf-8")
    return root


@pytest.fixture(scope="module", params=["convert", "pass"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Stack]]:
    catalog = catalog_with(tmp_path_factory.mktemp(f"tnef-{request.param}"), request.param)
    with running_stack(f"sigfilter-tnef-{request.param}-", catalog=catalog) as running:
        yield request.param, running


def body_of(raw: bytes) -> bytes:
    return raw[parse_header_block(raw).end :]


@pytest.mark.parametrize("name", ["teamwork-winmail.dat", "mimekit-ukr.eml"])
def test_internal_tnef_mail(stack: tuple[str, Stack], name: str) -> None:
    mode, running = stack
    raw = to_crlf(corpus_message(name))  # as SMTP carries it (ukr.eml is stored with LF)
    got = running.send(raw, sender=AVERY, rcpt=INTERNAL)
    if mode == "pass":
        assert body_of(got) == body_of(raw)
        assert b"X-Sigfilter-Processed" not in got
        return
    msg = parse(got)
    assert msg["X-Sigfilter-Processed"] == "1"
    assert not any(p.get_content_type() == "application/ms-tnef" for p in msg.walk())
    texts = [str(p.get_content()) for p in msg.walk()
             if p.get_content_maintype() == "text" and p.get_filename() is None]  # fmt: skip
    assert len(texts) == 2 and all(t.count(SIG_TOKEN) == 1 for t in texts)
    attached = sorted(
        (str(p.get_filename()), bytes(p.get_payload(decode=True)))  # type: ignore[arg-type]
        for p in msg.walk()
        if p.get_filename() is not None
    )
    assert attached == held_attachments(tnef_in(raw))


def test_a_calendar_item_in_tnef_passes_unchanged(stack: tuple[str, Stack]) -> None:
    _, running = stack
    raw = corpus_message("triples.tnef")
    got = running.send(raw, sender=AVERY, rcpt=INTERNAL)
    assert body_of(got) == body_of(raw)
    assert b"X-Sigfilter-Processed" not in got
