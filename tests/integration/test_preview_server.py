"""The real `sigfilter catalog preview --serve` over HTTP on loopback: the catalog
watched (a saved file reaches an open event stream and the next answer), problems as
`catalog check` prints them, a dropped message signed as `sigfilter preview` signs it,
and the guards (Host header, security headers, stop with a stream open)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.previewctl import EventStream, PreviewServer
from sigfilter.cli import main

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "catalog"
MESSAGES = ROOT / "examples" / "messages"
AVERY = "avery.quill@example.com"
TENANT = "example.com"
IN_BANNER = "2026-12-01"
RENDER = f"api/render?tenant={TENANT}&user={AVERY}&variant=reply&scope=external&date={IN_BANNER}"


@pytest.fixture
def events(server: PreviewServer) -> Iterator[EventStream]:
    stream = EventStream(server.url)
    try:
        yield stream
    finally:
        stream.close()


def saved(events: EventStream, path: Path, text: str) -> tuple[dict[str, object], float]:
    """Write ``path`` and wait for the reload's event; (event data, seconds it took)."""
    started = time.monotonic()
    path.write_text(text, encoding="utf-8")
    name, data = events.next_event()
    assert name == "catalog"
    return data, time.monotonic() - started


def test_saved_template_reaches_the_open_page(
    server: PreviewServer, events: EventStream, catalog: Path
) -> None:
    assert events.next_event() == ("catalog", {"version": 1, "problems": 0})
    before = server.get(RENDER)
    assert before["text"].startswith("-- \nAvery Quill | Head of Mail Flow")
    reply = catalog / "tenants" / TENANT / "templates" / "default" / "reply.txt"
    data, took = saved(events, reply, "-- \n{{ display_name }} (reply) | {{ phone }}\n")
    print(f"template saved -> event after {took * 1000:.0f} ms")
    assert data == {"version": 2, "problems": 0}
    after = server.get(RENDER)
    assert after["version"] == 2
    assert after["text"].startswith("-- \nAvery Quill (reply) | +1 555 0100\n\nJoin our winter")


def test_users_and_rules_changes_reach_the_page(
    server: PreviewServer, events: EventStream, catalog: Path
) -> None:
    events.next_event()
    folder = catalog / "tenants" / TENANT
    users = folder / "users.csv"
    saved(events, users, users.read_text() + "sam.new@example.com,Sam New,Intern,IT,,,\n")
    listed = [u["email"] for u in server.get("api/catalog")["tenants"][0]["users"]]
    assert "sam.new@example.com" in listed
    rules = folder / "rules.toml"
    saved(events, rules, rules.read_text().replace("2026-12-10", "2026-11-30"))
    r = server.get(RENDER)  # 2026-12-01 is now after the banner
    assert r["banner"] == {"on": False, "start": "2026-11-15", "end": "2026-11-30"}
    assert "webinar" not in r["text"]


def test_broken_template_shows_catalog_check_lines(
    server: PreviewServer, events: EventStream, catalog: Path
) -> None:
    events.next_event()
    reply = catalog / "tenants" / TENANT / "templates" / "default" / "reply.html"
    good = reply.read_text()
    data, _ = saved(events, reply, good.replace("{{ phone }}", "{% if phone %}{{ phone }}"))
    assert data["problems"] == 1
    summary = server.get("api/catalog")
    check = CliRunner().invoke(main, ["catalog", "check", str(catalog)])
    assert check.exit_code == 65
    assert summary["problems"] == [line.strip() for line in check.stderr.splitlines()[1:]]
    assert summary["problems"][0].startswith(f"{reply}:")
    assert summary["stale"] is True
    assert server.get(RENDER)["stale"] is True  # the last good version is still shown
    data, _ = saved(events, reply, good)
    assert data["problems"] == 0
    assert server.get("api/catalog")["problems"] == []


@pytest.mark.parametrize("name", ["iphone-reply.eml", "outlook-web-reply.eml", "smime-signed.eml"])
def test_dropped_message_signed_like_preview(
    server: PreviewServer, catalog: Path, tmp_path: Path, name: str
) -> None:
    raw = (MESSAGES / name).read_bytes()
    out = tmp_path / "out.eml"
    cli = CliRunner().invoke(
        main, ["preview", "--catalog", str(catalog), "--json", "-o", str(out), str(MESSAGES / name)]
    )
    assert cli.exit_code == 0
    expected = json.loads(cli.stderr)
    got = server.post("api/sign", raw)  # no date: today, like the command
    for key, value in expected.items():
        assert got["decision"][key] == value, key
    assert got["message"] == out.read_bytes().decode("utf-8", errors="replace")
    if expected["action"] == "signed":
        assert "Avery Quill" in got["text"] and "Avery Quill" in got["html"]
    else:
        assert got["message"].encode() == raw  # skipped: byte-identical


def test_dropped_message_with_chosen_sender_and_mode(server: PreviewServer) -> None:
    raw = (MESSAGES / "iphone-reply.eml").read_bytes()
    got = server.post("api/sign?mode=marker", raw)
    assert (got["decision"]["action"], got["decision"]["reason"]) == ("skipped", "no-marker")
    got = server.post("api/sign?sender=someone@elsewhere.example", raw)
    assert got["decision"]["reason"] == "unknown-sender"
    with pytest.raises(urllib.error.HTTPError) as err:
        server.post("api/sign?mode=loud", raw)
    assert err.value.code == 400
    err.value.close()  # an unclosed error response is a ResourceWarning (an error here)


def test_guards(server: PreviewServer) -> None:
    request = urllib.request.Request(server.url + "api/catalog", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 400  # DNS rebinding: another name for 127.0.0.1 is refused
    err.value.close()
    with urllib.request.urlopen(server.url, timeout=30) as response:
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert b'id="html-frame"' in response.read()
    with urllib.request.urlopen(server.url + "images/example.com/logo.png", timeout=30) as r:
        assert r.read() == (CATALOG / "tenants" / TENANT / "images" / "logo.png").read_bytes()


def test_stops_on_sigterm_with_a_stream_open(catalog: Path, tmp_path: Path) -> None:
    srv = PreviewServer(catalog, tmp_path).start()
    stream = EventStream(srv.url)
    try:
        stream.next_event()
        proc = srv.proc
        assert proc is not None
        srv.stop()
        # uvicorn shuts down, then re-raises the signal it caught (exit status -15)
        assert proc.returncode in (0, -15), srv.log()
        assert "sigfilter.admin stopped" in srv.log()
    finally:
        stream.close()
        srv.stop()


def test_render_problem_follows_as_a_second_event(
    server: PreviewServer, events: EventStream, catalog: Path
) -> None:
    """A save shows at once (loaded and checked); rendering every user follows, and what
    only a render finds arrives as the next version with catalog check's lines."""
    events.next_event()
    default = catalog / "tenants" / TENANT / "templates" / "default" / "default.html"
    data, _ = saved(events, default, default.read_text().replace("logo.png", "missing.png"))
    assert data == {"version": 2, "problems": 0}
    name, data = events.next_event()
    check = CliRunner().invoke(main, ["catalog", "check", str(catalog)])
    lines = [line.strip() for line in check.stderr.splitlines()[1:]]
    assert (name, data) == ("catalog", {"version": 3, "problems": len(lines)})
    summary = server.get("api/catalog")
    assert summary["problems"] == lines
    assert "missing.png" in summary["problems"][0]
