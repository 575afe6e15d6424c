"""The milter's configuration: one TOML file, defaults in defaults.py, flags override.

[milter]
socket = "unix:/run/sigfilter/milter.sock"   # or inet:127.0.0.1:8894
catalog = "/etc/sigfilter/catalog"           # the embedded mode (no Redis)
redis = "redis://127.0.0.1:6379/0"           # optional: serve what `publish` wrote
max_size = 52428800                          # bytes; larger messages pass unchanged
cache_ttl = 1200                             # seconds
redis_timeout = 0.2                          # seconds
hold_users = true                            # every user record in memory (Redis outages)
log_level = "info"
metrics = "127.0.0.1:9464"                   # /metrics, /status, /stats; "" switches off
log_format = "kv"                            # the line per message: kv (key=value) or json
log_sender = "domain"                        # or "address": the full sender in each line
memory_budget = 1073741824                   # bytes all messages in flight may reserve; 0: none
over_budget = "pass"                         # a message that does not fit: pass, or "tempfail"
single_cpu = true                            # run on one CPU (the last one allowed); false: any
# Security (SECURITY.md). The test/dev profile (tests/harness/milterctl.py) sets
# connector_cert_name = "", tenant_id_missing = "accept" and allow_root = true.
connector_cert_name = "mail.protection.outlook.com"  # "" = no client certificate check
tenant_id_mismatch = "reject"                # or "tempfail"
tenant_id_missing = "reject"                 # or "tempfail", "accept"
redis_password_file = "/etc/sigfilter/redis.password"  # mode 0600/0400, owned by us
allow_root = false                           # true only for tests
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .defaults import (
    CACHE_TTL,
    CONNECTOR_CERT_NAME,
    DEFAULT_MAX_SIZE,
    DEFAULT_MEMORY_BUDGET,
    HOLD_USERS,
    LOG_FORMAT,
    LOG_FORMATS,
    LOG_SENDER,
    LOG_SENDERS,
    METRICS_LISTEN,
    OVER_BUDGET,
    OVER_BUDGET_ACTIONS,
    REDIS_TIMEOUT,
    SINGLE_CPU,
    TENANT_ID_MISMATCH,
    TENANT_ID_MISSING,
    TENANT_MISMATCH_ACTIONS,
    TENANT_MISSING_ACTIONS,
)
from .ops.metrics import parse_listen

LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """The configuration is wrong; the message names the file and the setting."""


@dataclass(frozen=True)
class MilterConfig:
    socket: str = ""
    catalog: str = ""
    redis: str = ""
    max_size: int = DEFAULT_MAX_SIZE
    cache_ttl: float = CACHE_TTL
    redis_timeout: float = REDIS_TIMEOUT
    log_level: str = "info"
    metrics: str = METRICS_LISTEN
    log_format: str = LOG_FORMAT
    log_sender: str = LOG_SENDER
    connector_cert_name: str = CONNECTOR_CERT_NAME
    tenant_id_mismatch: str = TENANT_ID_MISMATCH
    tenant_id_missing: str = TENANT_ID_MISSING
    redis_password_file: str = ""
    allow_root: bool = False
    hold_users: bool = HOLD_USERS
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    over_budget: str = OVER_BUDGET
    single_cpu: bool = SINGLE_CPU

    def merged(self, **overrides: Any) -> MilterConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v not in (None, "")})

    def validate(self, where: str = "configuration") -> MilterConfig:
        if not self.socket:
            raise ConfigError(f"{where}: no socket (set milter.socket or pass --socket)")
        if not (self.catalog or self.redis):
            raise ConfigError(f"{where}: set a catalog directory or a Redis URL")
        if self.catalog and not Path(self.catalog).is_dir():
            raise ConfigError(f"{where}: catalog {self.catalog} is not a directory")
        if self.max_size <= 0 or self.cache_ttl <= 0 or self.redis_timeout <= 0:
            raise ConfigError(f"{where}: max_size, cache_ttl and redis_timeout must be positive")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"{where}: log_level must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"{where}: log_format must be one of {', '.join(LOG_FORMATS)}")
        if self.log_sender not in LOG_SENDERS:
            raise ConfigError(f"{where}: log_sender must be one of {', '.join(LOG_SENDERS)}")
        if self.metrics not in ("", "off"):
            try:
                parse_listen(self.metrics)
            except ValueError as exc:
                raise ConfigError(f'{where}: metrics: {exc}; "" switches it off') from exc
        self._validate_memory(where)
        self._validate_security(where)
        return self

    def _validate_memory(self, where: str) -> None:
        if self.memory_budget < 0:
            raise ConfigError(
                f"{where}: memory_budget must be a number of bytes (0: no budget), "
                f"not {self.memory_budget}"
            )
        if self.over_budget not in OVER_BUDGET_ACTIONS:
            choices = ", ".join(OVER_BUDGET_ACTIONS)
            raise ConfigError(f"{where}: over_budget must be one of {choices}")

    def _validate_security(self, where: str) -> None:
        if self.tenant_id_mismatch not in TENANT_MISMATCH_ACTIONS:
            choices = ", ".join(TENANT_MISMATCH_ACTIONS)
            raise ConfigError(f"{where}: tenant_id_mismatch must be one of {choices}")
        if self.tenant_id_missing not in TENANT_MISSING_ACTIONS:
            choices = ", ".join(TENANT_MISSING_ACTIONS)
            raise ConfigError(f"{where}: tenant_id_missing must be one of {choices}")
        if self.redis and "@" in self.redis.partition("://")[2].partition("/")[0]:
            # A password in the URL would sit in argv or a readable config and in logs.
            raise ConfigError(
                f"{where}: the Redis URL must not carry credentials; "
                "put the password in redis_password_file"
            )


def load_config(path: Path | None) -> MilterConfig:
    if path is None:
        return MilterConfig()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    section = data.get("milter", {})
    known = {f.name: f.type for f in fields(MilterConfig)}
    unknown = sorted(set(section) - set(known)) + sorted(set(data) - {"milter"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    defaults = MilterConfig()
    values: dict[str, Any] = {}
    for key, given in section.items():
        expected = type(getattr(defaults, key))
        value = float(given) if expected is float and isinstance(given, int) else given
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: milter.{key} must be a {expected.__name__}")
        values[key] = value
    return MilterConfig(**values)
