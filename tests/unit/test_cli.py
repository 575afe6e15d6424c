"""`sigfilter preview` through click's CliRunner."""

from __future__ import annotations

import json
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
    assert b"Avery Quill\r\nHead of Mail Flow\r\nExample Corp | +1 555 0100" in out
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
    assert result.exit_code == EXIT_CATALOG
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
