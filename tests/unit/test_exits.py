"""One source for exit codes (exits.py) and a command tree imported on demand."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sigfilter.cli import COMMANDS, errors, main
from sigfilter.exits import MEANING, ExitCode

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_the_one_in_exits_py() -> None:
    text = README.read_text()
    section = text[text.index("### Exit codes") :]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.M)
    assert rows == [(str(int(code)), meaning) for code, meaning in MEANING.items()]


def test_every_code_has_a_meaning_and_every_error_a_listed_code() -> None:
    assert set(MEANING) == set(ExitCode)
    raised = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, click.ClickException)
    ]
    assert len(raised) >= 9
    for cls in raised:
        assert cls.exit_code in MEANING, cls.__name__


def test_help_prints_the_exit_codes_and_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for code, meaning in MEANING.items():
        assert f"{int(code):>3}  {meaning}" in result.output
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)}\s", result.output, flags=re.M), name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_lazy_command_loads_under_its_own_name(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == ExitCode.USAGE
    assert "No such command" in result.output


HEAVY = ("sigfilter.catalog", "sigfilter.engine", "redis", "lxml", "dkim", "jinja2", "Milter")


def test_the_health_probe_imports_none_of_the_heavy_modules() -> None:
    """`sigfilter health` runs every few seconds: it must not import the catalog, Redis,
    lxml, DKIM or pymilter (0.6 s before; measured by imports, not seconds)."""
    code = (
        "import sys\n"
        "from sigfilter.cli import main\n"
        "try:\n"
        "    main(['health', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('heavy=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "--socket" in out.stdout  # the help really ran
    assert out.stdout.splitlines()[-1] == "heavy="


def test_the_full_command_tree_does_import_them() -> None:
    """The check above can fail: running a command that needs the catalog imports it."""
    code = (
        "import sys\n"
        "from sigfilter.cli import main\n"
        "try:\n"
        "    main(['catalog', 'check', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('heavy=' + str('sigfilter.catalog' in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines()[-1] == "heavy=True"
