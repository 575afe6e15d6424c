"""One source for the milter's settings: the config file's values, nothing mapped by hand."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from sigfilter.config import MilterConfig, load_config
from sigfilter.milter.runtime import MilterSettings


def test_every_setting_of_the_config_file_reaches_the_milter(tmp_path: Path) -> None:
    conf_file = tmp_path / "sigfilter.toml"
    conf_file.write_text(
        "[milter]\n"
        'socket = "unix:/tmp/x.sock"\n'
        f'catalog = "{tmp_path}"\n'
        "max_size = 12345\n"
        'log_format = "json"\n'
        'log_sender = "address"\n'
        'connector_cert_name = "relay.example.net"\n'
        'tenant_id_mismatch = "tempfail"\n'
        'tenant_id_missing = "accept"\n'
    )
    settings = MilterSettings.from_config(load_config(conf_file).validate())
    assert settings.max_size == 12345
    assert settings.log_format == "json"
    assert settings.log_sender == "address"
    assert settings.connector_cert_name == "relay.example.net"
    assert settings.tenant_id_mismatch == "tempfail"
    assert settings.tenant_id_missing == "accept"


def test_shared_names_have_the_same_defaults() -> None:
    """A setting's default lives in defaults.py, so the two dataclasses cannot drift."""
    conf, settings = MilterConfig(), MilterSettings()
    shared = {f.name for f in fields(MilterSettings)} & {f.name for f in fields(MilterConfig)}
    assert {"max_size", "log_format", "tenant_id_missing"} <= shared
    for name in shared:
        assert getattr(settings, name) == getattr(conf, name), name
    assert MilterSettings.from_config(conf) == settings
