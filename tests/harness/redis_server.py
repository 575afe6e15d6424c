"""A real redis-server for tests and benchmarks, controlled by process id.

It listens on 127.0.0.1 only, on a free port found by binding to port 0, keeps its files
in its own temporary directory, persists nothing, and can be stopped and started again
on the same port (outage tests)::

    server = RedisServer()
    server.start()
    ...
    server.stop()   # an outage: clients now get "connection refused"
    server.start()  # back, same port, empty
    server.close()  # stopped for good, directory removed
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

START_TIMEOUT = 30.0  # seconds to wait for the first PING answer
STOP_TIMEOUT = 5.0  # seconds to wait after SIGTERM before SIGKILL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; run `make test`, which installs it "
                "(the Debian package redis-server)"
            )
        self.binary = binary
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sigfilter-redis-"))
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 1.0) -> redis.Redis:
        """A plain client for test set-up and inspection."""
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def start(self) -> None:
        """Start the server (again) and wait until it answers PING."""
        if self.running():
            return
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", self.host, "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = self.client(timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:  # TimeoutError is one too
                    time.sleep(0.02)
        finally:
            client.close()
        exited = self.proc.poll()
        self.stop()
        log = self.log.read_text(errors="replace") if self.log.exists() else "(no log written)"
        state = f"exited with status {exited}" if exited is not None else "did not answer PING"
        raise RuntimeError(
            f"redis-server on {self.host}:{self.port} {state} within {START_TIMEOUT:g} s; "
            f"its log ({self.log}):\n{log}"
        )

    def stop(self) -> None:
        """Stop the server by its process id: SIGTERM, then SIGKILL after a timeout."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)

    def close(self) -> None:
        """Stop for good and remove the temporary directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            self.start()
        except (RuntimeError, OSError):
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
