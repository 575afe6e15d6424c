"""`sigfilter preview` through click's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.cli import EXIT_CATALOG, main

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "catalog"

IPHONE = (
    b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\nSubject: late\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    b"Running late, be there in 10.\r\n\r\nSent from my iPhone\r\n"
)


@pytest.fixture
def eml(tmp_path: Path) -> Path:
    path = tmp_path / "m.eml"
    path.write_bytes(IPHONE)
    return path


def run(*args: str, input: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_preview_signs_and_reports(eml: Path) -> None:
    result = run("preview", "--catalog", str(CATALOG), str(eml))
    assert result.exit_code == 0
    out = result.stdout_bytes
    assert b"Sent from my iPhone" not in out
    assert b"Avery Quill\r\nHead of Mail Flow\r\nIT\r\nExample Corp | T +1 555 0100" in out
    assert result.stderr.startswith("action=signed reason=ok placement=footer")


def test_preview_json(eml: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.eml"
    result = run("preview", "--catalog", str(CATALOG), "--json", "-o", str(target), str(eml))
    assert result.exit_code == 0
    assert result.stdout_bytes == b""
    decision = json.loads(result.stderr)
    assert decision["action"] == "signed"
    assert decision["placement"] == "footer"
    assert decision["sender"] == "avery.quill@example.com"
    assert decision["bytes_out"] == len(target.read_bytes()) > len(IPHONE)


def test_preview_mode_override(eml: Path) -> None:
    result = run("preview", "--catalog", str(CATALOG), "--mode", "marker", "--json", str(eml))
    decision = json.loads(result.stderr)
    assert (decision["action"], decision["reason"]) == ("skipped", "no-marker")
    assert result.stdout_bytes == IPHONE


def test_preview_unknown_sender(eml: Path) -> None:
    result = run(
        "preview", "--catalog", str(CATALOG), "--sender", "x@elsewhere.example", "--json", str(eml)
    )
    assert result.exit_code == 0
    assert json.loads(result.stderr)["reason"] == "unknown-sender"
    assert result.stdout_bytes == IPHONE


def test_preview_unknown_user(eml: Path) -> None:
    result = run(
        "preview", "--catalog", str(CATALOG), "--sender", "nobody@example.com", "--json", str(eml)
    )
    assert json.loads(result.stderr)["reason"] == "no-signature"


def test_preview_garbage_exits_zero_and_passes_through(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 10
    path = tmp_path / "junk.eml"
    path.write_bytes(junk)
    result = run(
        "preview",
        "--catalog",
        str(CATALOG),
        "--sender",
        "avery.quill@example.com",
        "--json",
        str(path),
    )
    assert result.exit_code == 0
    assert result.stdout_bytes == junk
    assert json.loads(result.stderr)["action"] == "skipped"


def test_preview_stdin() -> None:
    result = run("preview", "--catalog", str(CATALOG), "-", input=IPHONE)
    assert result.exit_code == 0 and b"Avery Quill" in result.stdout_bytes


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["preview", "--catalog", str(CATALOG), str(tmp_path / "nope.eml")]
    )
    assert result.exit_code != 0 and result.exit_code != EXIT_CATALOG
    assert "nope.eml" in result.output


def test_bad_mode_is_a_usage_error(eml: Path) -> None:
    result = CliRunner().invoke(main, ["preview", "--mode", "loud", str(eml)])
    assert result.exit_code == 2


def test_unreadable_catalog(tmp_path: Path, eml: Path) -> None:
    (tmp_path / "cat").mkdir()
    result = CliRunner().invoke(main, ["preview", "--catalog", str(tmp_path / "cat"), str(eml)])
    assert result.exit_code == EXIT_CATALOG == 65
    assert "not a catalog" in result.output


def test_bad_tenant_file(tmp_path: Path, eml: Path) -> None:
    tenant = tmp_path / "cat" / "tenants" / "example.com"
    tenant.mkdir(parents=True)
    (tenant / "tenant.toml").write_text('mode = "sometimes"\n')
    result = CliRunner().invoke(main, ["preview", "--catalog", str(tmp_path / "cat"), str(eml)])
    assert result.exit_code == EXIT_CATALOG
    assert "tenant.toml" in result.output and "mode must be one of" in result.output


def test_help_explains() -> None:
    result = run("preview", "--help")
    assert "Exits 0 for any message" in result.output and "Example" in result.output


# -- catalog check, users, signature show ---------------------------------------------------


def copy_catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG, target)
    return target


def test_catalog_check_ok() -> None:
    result = run("catalog", "check", str(CATALOG))
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 1 tenants, 2 users")


def test_catalog_check_warns_about_a_tenant_without_tenant_id(tmp_path: Path) -> None:
    # The example tenant has no tenant_id: allowed, but production refuses its mail.
    result = run("catalog", "check", str(CATALOG))
    assert result.exit_code == 0
    assert "warning: " in result.stderr and "example.com/tenant.toml: no tenant_id" in result.stderr
    cat = copy_catalog(tmp_path)
    toml = cat / "tenants" / "example.com" / "tenant.toml"
    toml.write_text('tenant_id = "3f2b9a51-7c1d-4e0a-9b57-2d8c6e4f1a90"\n' + toml.read_text())
    fixed = run("catalog", "check", str(cat))
    assert fixed.exit_code == 0 and "warning" not in fixed.stderr


def test_catalog_check_reports_problems(tmp_path: Path) -> None:
    cat = copy_catalog(tmp_path)
    tpl = cat / "tenants" / "example.com" / "templates" / "default" / "default.txt"
    tpl.write_text("-- \n{{ display_name }}\n{{ jobtitle }}\n{{ ''.__class__ }}\n")
    result = CliRunner().invoke(main, ["catalog", "check", str(cat)])
    assert result.exit_code == 65
    assert f"{tpl}:3: unknown field 'jobtitle'" in result.output
    assert f"{tpl}:4: not allowed in a template" in result.output


def test_signature_show(tmp_path: Path) -> None:
    html = tmp_path / "sig.html"
    result = run(
        "signature",
        "show",
        "--catalog",
        str(CATALOG),
        "--sender",
        "avery.quill@example.com",
        "--reply",
        "--html-out",
        str(html),
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        "-- ",
        "Avery Quill | Head of Mail Flow | +1 555 0100",
    ]
    assert "<b>Avery Quill</b>" in html.read_text()


def test_signature_show_unknown_sender() -> None:
    result = CliRunner().invoke(
        main, ["signature", "show", "--catalog", str(CATALOG), "--sender", "x@nowhere.example"]
    )
    assert result.exit_code == 1
    assert "unknown-sender" in result.output


def test_signature_show_rule_skip() -> None:
    result = CliRunner().invoke(
        main, ["signature", "show", "--catalog", str(CATALOG), "--sender", "noreply@example.com"]
    )
    assert result.exit_code == 1
    assert "rule-skip" in result.output and "Never sign the shared mailbox" in result.output


def test_users_list() -> None:
    result = run("users", "list", "--catalog", str(CATALOG), "--tenant", "example.com")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["email", "display_name", "job_title", "department"]
    assert lines[1].startswith("avery.quill@example.com  Avery Quill")


def test_users_list_unknown_tenant() -> None:
    result = CliRunner().invoke(
        main, ["users", "list", "--catalog", str(CATALOG), "--tenant", "nope"]
    )
    assert result.exit_code == 2 and "no tenant 'nope'" in result.output


def test_users_import_reports_and_writes(tmp_path: Path) -> None:
    cat = copy_catalog(tmp_path)
    export = tmp_path / "graph.json"
    export.write_text(
        json.dumps(
            {
                "value": [
                    {
                        "displayName": "Avery Quill",
                        "jobTitle": "Chief Mail Officer",
                        "mail": "avery.quill@example.com",
                        "userPrincipalName": "avery.quill@example.com",
                        "businessPhones": ["+1 555 0100"],
                        "department": "IT",
                    },
                    {
                        "displayName": "Blake New",
                        "mail": "blake@example.com",
                        "userPrincipalName": "blake@example.com",
                        "businessPhones": [],
                    },
                ]
            }
        )
    )
    result = run("users", "import", str(export), "--tenant", "example.com", "--catalog", str(cat))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "added    blake@example.com" in out
    assert "changed  avery.quill@example.com (" in out and "job_title" in out
    assert "removed  noreply@example.com" in out
    assert "1 added, 1 changed, 1 removed" in out
    users = (cat / "tenants" / "example.com" / "users.csv").read_text()
    assert "Chief Mail Officer" in users and "noreply@example.com" not in users


def test_users_import_dry_run_writes_nothing(tmp_path: Path) -> None:
    cat = copy_catalog(tmp_path)
    before = (cat / "tenants" / "example.com" / "users.csv").read_bytes()
    export = tmp_path / "graph.json"
    export.write_text(
        json.dumps({"value": [{"displayName": "Blake", "mail": "blake@example.com"}]})
    )
    result = run(
        "users",
        "import",
        str(export),
        "--tenant",
        "example.com",
        "--catalog",
        str(cat),
        "--dry-run",
    )
    assert (
        result.exit_code == 0
        and "dry run" in result.stdout
        and "added    blake@example.com" in result.stdout
    )
    assert (cat / "tenants" / "example.com" / "users.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"value": []}, "refusing to remove every user"),
        (
            {"value": [{"mail": "a@example.com"}], "@odata.nextLink": "https://graph.example/next"},
            "one page",
        ),
    ],
)
def test_users_import_refuses_partial_or_empty(tmp_path: Path, doc: dict, words: str) -> None:  # type: ignore[type-arg]
    cat = copy_catalog(tmp_path)
    before = (cat / "tenants" / "example.com" / "users.csv").read_bytes()
    export = tmp_path / "graph.json"
    export.write_text(json.dumps(doc))
    result = CliRunner().invoke(
        main, ["users", "import", str(export), "--tenant", "example.com", "--catalog", str(cat)]
    )
    assert result.exit_code == 66 and words in result.output
    assert (cat / "tenants" / "example.com" / "users.csv").read_bytes() == before


def test_users_import_refuses_unreadable(tmp_path: Path) -> None:
    cat = copy_catalog(tmp_path)
    junk = tmp_path / "picture.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    result = CliRunner().invoke(
        main, ["users", "import", str(junk), "--tenant", "example.com", "--catalog", str(cat)]
    )
    assert result.exit_code == 66
    assert "picture.png" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["catalog", "check"],
        ["publish"],
        ["users", "import"],
        ["users", "list"],
        ["signature", "show"],
        ["cache", "stats"],
        ["cache", "flush"],
        ["preview"],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


OWA = (
    b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@example.net\r\nSubject: hi\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body><div>Hello</div><div id="Signature">Avery Quill<br>Old Title</div></body></html>\r\n'
)


def test_preview_says_what_was_replaced(tmp_path: Path) -> None:
    path = tmp_path / "owa.eml"
    path.write_bytes(OWA)
    result = run("preview", "--catalog", str(CATALOG), "--json", "--mode", "full", str(path))
    decision = json.loads(result.stderr)
    assert (decision["placement"], decision["replaced"]) == ("client", "outlook-web")
    assert b"Old Title" not in result.stdout_bytes
    line = run("preview", "--catalog", str(CATALOG), "--mode", "full", str(path)).stderr
    assert "placement=client replaced=outlook-web " in line


def test_catalog_check_names_the_bad_replace_settings(tmp_path: Path) -> None:
    cat = copy_catalog(tmp_path)
    toml = cat / "tenants" / "example.com" / "tenant.toml"
    body = toml.read_text().replace('client_signature = "replace"\n', "")
    toml.write_text('client_signature = "sometimes"\nreplace_patterns = ["(x"]\n' + body)
    result = CliRunner().invoke(main, ["catalog", "check", str(cat)])
    assert result.exit_code == EXIT_CATALOG
    assert f"{toml}: client_signature must be 'replace' or 'keep', not 'sometimes'" in result.output
    assert f"{toml}: replace_patterns: '(x': not a regular expression" in result.output
