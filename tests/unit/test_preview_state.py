"""The preview page's answers without HTTP (admin/state.py): the catalog code renders,
the page only chooses user, variant, recipient scope and date."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.admin.server import NotLoopback, allowed_hosts, check_listen, is_loopback
from sigfilter.admin.state import PreviewError, PreviewState
from sigfilter.cli import main

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "catalog"
AVERY = "avery.quill@example.com"
TENANT = "example.com"
IN_BANNER = "2026-12-01"  # the example's webinar banner runs 2026-11-15 to 2026-12-10
AFTER_BANNER = "2026-12-11"
BANNER_TEXT = "Join our winter webinar on mail flow, 10 December: https://www.example.com/webinar"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG, target)
    return target


@pytest.fixture(scope="module")
def state() -> PreviewState:
    return PreviewState(CATALOG)


def test_summary_lists_the_example_users(state: PreviewState) -> None:
    summary = state.summary()
    assert summary["problems"] == []
    [tenant] = summary["tenants"]
    assert tenant["key"] == TENANT
    emails = [u["email"] for u in tenant["users"]]
    assert emails == [AVERY, "noreply@example.com"]
    assert tenant["users"][0]["display_name"] == "Avery Quill"


@pytest.mark.parametrize(
    ("variant", "scope", "day", "text", "rule", "banner_on"),
    [
        ("reply", "external", IN_BANNER, "-- \nAvery Quill | Head of Mail Flow | +1 555 0100\n\n"
         + BANNER_TEXT, "Webinar banner on external mail", True),
        ("reply", "external", AFTER_BANNER, "-- \nAvery Quill | Head of Mail Flow | +1 555 0100",
         "Webinar banner on external mail", False),
        ("reply", "internal", IN_BANNER, "-- \nAvery Quill | Head of Mail Flow | +1 555 0100",
         "(default)", None),
        ("new", "internal", IN_BANNER,
         "-- \nAvery Quill\nHead of Mail Flow\nIT\nExample Corp | T +1 555 0100", "(default)",
         None),
    ],
)  # fmt: skip
def test_render_by_variant_scope_and_date(
    state: PreviewState, variant: str, scope: str, day: str, text: str, rule: str,
    banner_on: bool | None,
) -> None:  # fmt: skip
    r = state.render(TENANT, AVERY, variant, scope, day)
    assert (r["reason"], r["rule"], r["text"]) == ("ok", rule, text)
    assert (r["banner"] or {}).get("on") == banner_on
    assert ("register here" in r["html"]) is bool(banner_on)
    # reply template: one line; default template: a table row per field
    assert ("&middot;" in r["html"] or "·" in r["html"]) is (variant == "reply")
    assert "Avery Quill" in r["html"]


def test_render_points_images_at_the_catalog_copy(state: PreviewState) -> None:
    r = state.render(TENANT, AVERY, "new", "external", IN_BANNER)
    assert 'src="/images/example.com/logo.png"' in r["html"]
    assert "https://www.example.com/signature/logo.png" not in r["html"]
    data, ctype = state.image(TENANT, "logo.png")
    assert data == (CATALOG / "tenants" / TENANT / "images" / "logo.png").read_bytes()
    assert ctype == "image/png"


def test_render_skip_rule_and_unknown_requests(state: PreviewState) -> None:
    r = state.render(TENANT, "noreply@example.com", "new", "external", IN_BANNER)
    assert (r["reason"], r["html"], r["text"]) == ("rule-skip", "", "")
    with pytest.raises(PreviewError, match="no tenant"):
        state.render("nope.example", AVERY, "new", "external", IN_BANNER)
    with pytest.raises(PreviewError, match="variant"):
        state.render(TENANT, AVERY, "draft", "external", IN_BANNER)
    with pytest.raises(PreviewError, match="date"):
        state.render(TENANT, AVERY, "new", "external", "01/12/2026")


def _check_problems(catalog: Path) -> list[str]:
    result = CliRunner().invoke(main, ["catalog", "check", str(catalog)])
    assert result.exit_code == 65
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: the catalog has problems:"
    return [line.strip() for line in lines[1:]]


def test_template_error_is_what_catalog_check_says(catalog: Path) -> None:
    state = PreviewState(catalog)
    reply = catalog / "tenants" / TENANT / "templates" / "default" / "reply.html"
    lines = reply.read_text().splitlines()
    lines[1] = lines[1].replace("{{ job_title }}", "{{ job_title ")
    reply.write_text("\n".join(lines) + "\n")
    snap = state.reload()
    assert list(snap.problems) == _check_problems(catalog)
    assert snap.problems[0].startswith(f"{reply}:2: ")
    # the last version that compiled stays visible, marked stale
    summary = state.summary()
    assert summary["stale"] is True and summary["shown_version"] == 1
    assert state.render(TENANT, AVERY, "reply", "external", IN_BANNER)["stale"] is True


def test_render_time_error_is_what_catalog_check_says(catalog: Path) -> None:
    # an unknown image only fails when rendered: catalog check names the user too
    default = catalog / "tenants" / TENANT / "templates" / "default" / "default.html"
    default.write_text(default.read_text().replace("logo.png", "missing.png"))
    snap = PreviewState(catalog).current
    assert snap.store is None
    assert list(snap.problems) == _check_problems(catalog)
    assert "missing.png" in snap.problems[0] and f"(rendering for {AVERY})" in snap.problems[0]


def test_broken_users_csv_shows_loader_problem(catalog: Path) -> None:
    users = catalog / "tenants" / TENANT / "users.csv"
    users.write_text(users.read_text() + "not-an-address,Nobody,,,,,\n")
    state = PreviewState(catalog)
    assert list(state.current.problems) == _check_problems(catalog)
    assert state.summary()["tenants"] == []  # nothing compiled yet: no stale view either
    with pytest.raises(PreviewError, match="not compiled"):
        state.render(TENANT, AVERY, "new", "external", IN_BANNER)


@pytest.mark.parametrize(
    ("listen", "ok"),
    [("127.0.0.1:8025", True), ("127.0.0.2:0", True), ("[::1]:8025", True),
     ("localhost:8025", True), ("0.0.0.0:8025", False), ("[::]:8025", False),
     ("192.0.2.10:8025", False), ("relay1.example.net:8025", False)],
)  # fmt: skip
def test_listen_loopback_only_unless_allowed(listen: str, ok: bool) -> None:
    if ok:
        host, _ = check_listen(listen, allow_remote=False)
        assert is_loopback(host) and "*" not in allowed_hosts(host)
    else:
        with pytest.raises(NotLoopback, match="directory fields"):
            check_listen(listen, allow_remote=False)
        host, _ = check_listen(listen, allow_remote=True)
        assert allowed_hosts(host) == ["*"]


def test_cli_refuses_remote_listen_and_says_why(catalog: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["catalog", "preview", "--serve", "--listen", "0.0.0.0:8025", "--catalog", str(catalog)],
    )
    assert result.exit_code == 78
    assert "directory fields" in result.stderr and "ssh -L 8025:127.0.0.1:8025" in result.stderr
    result = CliRunner().invoke(main, ["catalog", "preview", "--catalog", str(catalog)])
    assert result.exit_code == 2 and "--serve" in result.stderr
    result = CliRunner().invoke(main, ["catalog", "preview", "--serve", "--listen", "8025"])
    assert result.exit_code == 2 and "HOST:PORT" in result.stderr


def test_other_commands_do_not_import_the_page() -> None:
    code = (
        "import sys, sigfilter.cli; heavy = ('starlette', 'uvicorn', 'watchfiles', "
        "'sse_starlette', 'sigfilter.admin'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reload_shows_first_then_verify_finds_render_problems(catalog: Path) -> None:
    state = PreviewState(catalog)
    assert state.current.verified and state.current.version == 1
    default = catalog / "tenants" / TENANT / "templates" / "default" / "default.html"
    default.write_text(default.read_text().replace("logo.png", "missing.png"))
    quick = state.reload()  # loads and checks; users are rendered when asked for
    assert (quick.version, quick.problems, quick.verified) == (2, (), False)
    with pytest.raises(PreviewError, match=r"missing\.png"):
        state.render(TENANT, AVERY, "new", "external", IN_BANNER)
    failed = state.verify()  # every user, as catalog check renders them
    assert failed is not None and failed.version == 3
    assert list(failed.problems) == _check_problems(catalog)
    assert state.summary()["stale"] is True and state.summary()["shown_version"] == 2


def test_quick_reload_answers_like_the_compiled_catalog(catalog: Path) -> None:
    state = PreviewState(catalog)
    compiled = state.render(TENANT, AVERY, "reply", "external", IN_BANNER)
    quick = state.reload()
    assert not quick.verified
    assert state.render(TENANT, AVERY, "reply", "external", IN_BANNER) == {**compiled, "version": 2}
    assert state.verify() is None and state.current.verified  # no problem: nothing to say
    assert state.render(TENANT, AVERY, "reply", "external", IN_BANNER)["version"] == 2
