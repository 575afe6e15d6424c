"""Run the real `sigfilter catalog preview --serve` in a subprocess for tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0  # generous: a loaded machine starts Python slowly
_URL = re.compile(rb"signature preview on (http://\S+/)")


class PreviewServer:
    """The page on 127.0.0.1 and a free port; stopped by process group at the end."""

    def __init__(self, catalog: Path, workdir: Path, extra_args: list[str] | None = None) -> None:
        self.catalog = catalog
        self.log_path = workdir / "preview.log"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> PreviewServer:
        args = [sys.executable, "-m", "sigfilter", "catalog", "preview", "--serve"]
        args += ["--listen", "127.0.0.1:0", "--catalog", str(self.catalog), *self.extra_args]
        with self.log_path.open("wb") as log:  # a fresh log: the URL line is this run's
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"preview exited:\n{self.log()}")
            found = _URL.search(self.log_path.read_bytes())
            if found and self._answers(found.group(1).decode()):
                self.url = found.group(1).decode()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"preview did not start:\n{self.log()}")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "api/catalog", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, data: bytes) -> Any:
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data, method="POST")
        request.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@contextlib.contextmanager
def running_preview(catalog: Path, workdir: Path) -> Iterator[PreviewServer]:
    server = PreviewServer(catalog, workdir)
    try:
        yield server.start()
    finally:
        server.stop()


class EventStream:
    """Reads the page's server-sent events as a browser's EventSource would."""

    def __init__(self, url: str) -> None:
        self.response = urllib.request.urlopen(url + "events", timeout=60)

    def next_event(self) -> tuple[str, dict[str, Any]]:
        """The next event that is not a ping (the read times out after 60 s)."""
        event, data = "", ""
        for _ in range(10_000):  # bounded: pings every 15 s, one event a few lines
            line = self.response.readline().decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                return event, json.loads(data)
        raise RuntimeError("no event")

    def close(self) -> None:
        self.response.close()
