"""Run the real `sigfilter milter` in a subprocess for tests and the local stack."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT = 60.0  # generous: a loaded CI machine starts Python slowly

# The test/dev profile: the test stacks send over plain SMTP from loopback (no
# connector certificate) and their messages carry no Exchange tenant stamp, and the
# tests run as root. Security tests pass their own settings (`config`).
TEST_PROFILE: dict[str, str | bool] = {
    "connector_cert_name": "",
    "tenant_id_missing": "accept",
    "allow_root": True,
}


class MilterProcess:
    def __init__(
        self,
        workdir: Path,
        catalog: Path | None = None,
        redis_url: str | None = None,
        metrics_port: int | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        config: dict[str, str | bool | int] | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)  # smtpd (user postfix) must reach the socket
        self.socket_path = workdir / "milter.sock"
        self.catalog = catalog
        self.redis_url = redis_url
        # No metrics port unless asked: the default 9464 would clash between test runs.
        self.metrics_port = metrics_port
        self.extra_args = list(extra_args or [])
        self.env = env
        self.log_path = workdir / "milter.log"
        self.config_path = workdir / "milter.toml"
        self.config = {**TEST_PROFILE, **(config or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def postfix_spec(self) -> str:
        return f"unix:{self.socket_path}"

    def start(self) -> None:
        args = [sys.executable, "-m", "sigfilter", "milter", "--socket", self.postfix_spec]
        args += ["--config", str(self._write_config())]
        args += ["--catalog", str(self.catalog)] if self.catalog else []
        args += ["--redis", self.redis_url] if self.redis_url else []
        metrics = f"127.0.0.1:{self.metrics_port}" if self.metrics_port else "off"
        args += ["--metrics", metrics, *self.extra_args]
        self.socket_path.unlink(missing_ok=True)
        env = {**os.environ, **self.env} if self.env else None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=log, start_new_session=True, env=env
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milter exited:\n{self.log_path.read_text()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"milter did not listen on {self.socket_path}:\n{self.log_path.read_text()}"
        )

    def _write_config(self) -> Path:
        lines = ["[milter]"] + [f"{k} = {_toml(v)}" for k, v in self.config.items()]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket_path))
            except OSError:
                return False
            return True

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    @property
    def metrics_url(self) -> str:
        if not self.metrics_port:
            raise RuntimeError("started without a metrics port")
        return f"http://127.0.0.1:{self.metrics_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle: str, count: int = 1, timeout: float = 30.0) -> str:
        """The log once ``needle`` stands in it ``count`` times (or the deadline passed).

        The milter writes its per-message lines from a thread of its own, after it has
        answered Postfix: a test that reads the log right after the SMTP reply can be
        ahead of the line on a busy machine.
        """
        deadline = time.monotonic() + timeout
        while (log := self.log_text()).count(needle) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return log


def _toml(value: str | bool | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
