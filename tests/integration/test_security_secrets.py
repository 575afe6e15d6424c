"""Secrets and message bodies stay out of logs and argv: through the real stack.

A Redis that requires a password, the milter reading that password from a 0600 file,
Postfix relaying to a sink; a message whose body carries a unique token. Afterwards
no log (milter at debug level, Postfix, Redis) holds the password or the token, and
neither does the milter's command line.
"""

from __future__ import annotations

import secrets
import smtplib
import uuid
from pathlib import Path

from click.testing import CliRunner

from harness.milterctl import MilterProcess
from harness.postfixctl import PostfixInstance, new_workdir
from harness.redis_server import RedisServer
from harness.sink import Sink, free_port
from sigfilter.catalog import compile_catalog, load_catalog
from sigfilter.cli import main
from sigfilter.store.redis_store import RedisPublisher, connect

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
AVERY = "avery.quill@example.com"


def test_password_and_bodies_never_reach_logs(redis_server: RedisServer) -> None:
    password = "pw-" + secrets.token_hex(16)
    token = "BODYTOKEN" + uuid.uuid4().hex
    redis_server.client().config_set("requirepass", password)
    RedisPublisher(connect(redis_server.url, 2.0, password)).publish(
        compile_catalog(load_catalog(CATALOG)), {"catalog": "examples"}
    )
    work = new_workdir("sigfilter-secrets-")
    password_file = work / "redis.password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)

    sink = Sink()
    milter = MilterProcess(
        work / "milter",
        redis_url=redis_server.url,
        config={"redis_password_file": str(password_file), "log_level": "debug"},
    )
    postfix = PostfixInstance(work / "postfix", free_port(), sink.port, milter.postfix_spec)
    body = (
        f"Hello Jane,\r\n\r\nthe code is {token}.\r\n\r\nSent from my iPhone\r\n"
        "--\r\n" + "a long line " * 20 + "\r\n"
    )
    raw = (
        f"From: Avery Quill <{AVERY}>\r\nTo: jane@customer.example\r\n"
        f"Subject: hi\r\nMessage-ID: <{uuid.uuid4()}@example.com>\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
    ).encode()
    sink.start()
    try:
        milter.start()
        assert milter.proc is not None
        cmdline = Path(f"/proc/{milter.proc.pid}/cmdline").read_bytes()
        postfix.start()
        with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as client:
            client.sendmail(AVERY, ["jane@customer.example"], raw)
        (got,) = sink.wait_for(1, timeout=30)
        # the milter did reach Redis with the password: the message is signed
        assert b"X-Sigfilter-Processed: 1" in got.data and token.encode() in got.data
        assert "action=signed" in milter.wait_log("action=signed")
    finally:
        postfix.stop()
        milter.stop()
        sink.stop()
    logs = {
        "milter": milter.log_text(),
        "postfix": postfix.log_text(),
        "redis": redis_server.log.read_text(errors="replace"),
    }
    for name, text in logs.items():
        assert password not in text, f"the Redis password is in the {name} log"
        assert token not in text, f"the message body is in the {name} log"
    assert password.encode() not in cmdline
    assert str(password_file).encode() not in cmdline  # only the config file is passed


def test_admin_commands_read_the_password_file(redis_server: RedisServer, tmp_path: Path) -> None:
    password = "pw-" + secrets.token_hex(16)
    redis_server.client().config_set("requirepass", password)
    password_file = tmp_path / "redis.password"
    password_file.write_text(password + "\n")
    runner = CliRunner()
    args = ["publish", str(CATALOG), "--redis", redis_server.url]

    password_file.chmod(0o644)  # readable by others: refused, the password not shown
    env = {"SIGFILTER_REDIS_PASSWORD_FILE": str(password_file)}
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 78 and "mode 0644" in result.output, result.output
    assert password not in result.output

    result = runner.invoke(main, args, env={"SIGFILTER_REDIS_PASSWORD_FILE": ""})
    assert result.exit_code == 69, result.output  # no password: Redis says no

    password_file.chmod(0o600)
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0 and "published version" in result.output, result.output
    assert password not in result.output


def test_doctor_uses_redis_password_file_and_never_prints_a_password(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Issue 12, point 7: doctor read no password (a healthy protected Redis failed), and
    `doctor --redis redis://:PW@…` and a failed publish printed the password."""
    password = "pw-" + secrets.token_hex(16)
    redis_server.client().config_set("requirepass", password)
    RedisPublisher(connect(redis_server.url, 2.0, password)).publish(
        compile_catalog(load_catalog(CATALOG)), {"catalog": "test"}
    )
    password_file = tmp_path / "redis.password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    config = tmp_path / "milter.toml"
    config.write_text(
        f'[milter]\nsocket = "unix:{tmp_path / "none.sock"}"\nredis = "{redis_server.url}"\n'
        f'redis_password_file = "{password_file}"\n'
    )
    runner = CliRunner()
    args = ["doctor", "--config", str(config), "--no-postfix", "--no-dns"]
    result = runner.invoke(main, args)
    assert f"ok    redis    {redis_server.url} answers; catalog version" in result.output, (
        result.output
    )
    # A password in the URL: refused as configuration, and never printed.
    with_pw = f"redis://:{password}@127.0.0.1:{redis_server.port}/0"
    result = runner.invoke(main, ["doctor", "--redis", with_pw, "--no-postfix", "--no-dns"])
    assert password not in result.output
    assert "redis://***@127.0.0.1" in result.output
    # A publish that fails (Redis down) names the server, never the password.
    redis_server.stop()
    stopped = runner.invoke(main, ["publish", str(CATALOG), "--redis", with_pw])
    assert stopped.exit_code == 69, stopped.output
    assert "redis://***@127.0.0.1" in stopped.output
    assert password not in stopped.output, stopped.output
