"""Secret files (sigfilter.secrets), the milter's security settings and its root refusal."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.cli import main
from sigfilter.config import ConfigError, MilterConfig, load_config
from sigfilter.secrets import SecretFileError, check_secret_file, read_secret

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
PASSWORD = "s3cret-Pa55word-7c1e"


def secret_file(tmp_path: Path, mode: int, text: str = PASSWORD + "\n") -> Path:
    path = tmp_path / "redis.password"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_file_is_read_without_its_newline(tmp_path: Path, mode: int) -> None:
    assert read_secret(secret_file(tmp_path, mode)) == PASSWORD


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o620, 0o602, 0o660, 0o666])
def test_group_or_world_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, mode)
    with pytest.raises(SecretFileError) as err:
        read_secret(path)
    message = str(err.value)
    assert f"mode {mode:04o}" in message and "chmod 600" in message
    assert PASSWORD not in message


def test_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    path = secret_file(tmp_path, 0o600)
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(SecretFileError, match="owned by uid"):
        check_secret_file(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty"), ("\n", "empty"), ("one\ntwo\n", "one line"), ("\udcff", "")],
)
def test_empty_or_multiline_secret_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "pw"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match=problem or "UTF-8"):
        read_secret(path)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="cannot read"):
        read_secret(tmp_path / "absent")
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretFileError):
        read_secret(folder)


# -- configuration -----------------------------------------------------------------------


def test_redis_url_with_credentials_is_refused() -> None:
    for url in (f"redis://:{PASSWORD}@127.0.0.1:6379/0", f"redis://u:{PASSWORD}@h/0"):
        with pytest.raises(ConfigError) as err:
            MilterConfig(socket="unix:/x", redis=url).validate()
        assert "redis_password_file" in str(err.value) and PASSWORD not in str(err.value)


def test_production_defaults_are_strict() -> None:
    conf = MilterConfig()
    assert conf.connector_cert_name == "mail.protection.outlook.com"
    assert (conf.tenant_id_mismatch, conf.tenant_id_missing) == ("reject", "reject")
    assert conf.allow_root is False


def test_bad_policy_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "milter.toml"
    path.write_text('[milter]\nsocket = "unix:/x"\ncatalog = "."\ntenant_id_mismatch = "pass"\n')
    with pytest.raises(ConfigError, match="tenant_id_mismatch must be one of reject, tempfail"):
        load_config(path).validate(str(path))
    path.write_text('[milter]\nsocket = "unix:/x"\ncatalog = "."\ntenant_id_missing = "sign"\n')
    with pytest.raises(ConfigError, match="tenant_id_missing must be one of"):
        load_config(path).validate(str(path))


# -- the command ---------------------------------------------------------------------------


def test_milter_refuses_root_without_allow_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the refusal is for root")
    args = ["milter", "--socket", f"unix:{tmp_path}/m.sock", "--catalog", str(CATALOG)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 77, result.output
    assert "refusing to run as root" in result.output
    assert not (tmp_path / "m.sock").exists()


def test_milter_refuses_a_readable_password_file_without_printing_it(tmp_path: Path) -> None:
    path = secret_file(tmp_path, 0o644)
    conf = tmp_path / "milter.toml"
    conf.write_text(
        f'[milter]\nallow_root = true\nredis = "redis://127.0.0.1:1/0"\n'
        f'redis_password_file = "{path}"\n'
    )
    args = ["milter", "--config", str(conf), "--socket", f"unix:{tmp_path}/m.sock"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 78, result.output
    assert "redis_password_file" in result.output and "mode 0644" in result.output
    assert PASSWORD not in result.output


def test_milter_refuses_a_password_in_the_redis_flag(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    args = ["milter", "--socket", f"unix:{tmp_path}/m.sock", "--redis", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "redis_password_file" in result.output and PASSWORD not in result.output
