"""A milter that dies after it replaced the body and before its reply, under each
milter_default_action, through the shipped templates and real Postfix.

With ``tempfail`` (the production default) the client is told 4xx and nothing is
queued: it sends again, nothing is lost. With ``accept``, Postfix before 3.12-20260821
(Debian 12 ships 3.7) tells the client 250, commits the half-edited queue file, and
delivery finds it unreadable and sets it aside in queue/corrupt: the message is lost.
Postfix 3.12-20260821 refuses such a message with 4xx ("don't accept", its HISTORY);
the test accepts either answer, and nothing else.
This is why doctor warns about ``accept`` and why test_faults.py runs with tempfail.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import Sink, free_port

DYING = Path(__file__).resolve().parents[1] / "harness" / "dying_milter.py"
MESSAGE = (
    b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@customer.example\r\n"
    b"Subject: dies mid-edit\r\nMessage-ID: <dies-mid-edit@test.sigfilter>\r\n\r\n"
    + b"Original line of the body.\r\n"
    * 200
)


@dataclass
class Outcome:
    reply: int  # the client's last reply code for the message
    delivered: list[bytes]
    corrupt: list[str]
    queued: int
    log: str


@pytest.fixture
def send_through_dying_milter() -> Iterator[Callable[[str], Outcome]]:
    started: list[tuple[subprocess.Popen[bytes], PostfixInstance, Sink]] = []

    def run(default_action: str) -> Outcome:
        work = new_workdir(f"sigfilter-dies-{default_action}-")
        (work / "milter").mkdir(mode=0o755)
        (work / "milter").chmod(0o755)
        sock = work / "milter" / "dying.sock"
        with (work / "milter.log").open("ab") as log:
            milter = subprocess.Popen(
                [sys.executable, str(DYING), f"unix:{sock}"],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        sink = Sink()
        postfix = PostfixInstance(
            work / "postfix", free_port(), sink.port, f"unix:{sock}", default_action=default_action
        )
        started.append((milter, postfix, sink))
        for _ in range(100):  # the socket within 10 s
            if sock.exists():
                break
            time.sleep(0.1)
        sink.start()
        postfix.start()
        client = smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30)
        try:  # no QUIT: after a 421 Postfix has closed the session
            client.sendmail("avery.quill@example.com", ["jane@customer.example"], MESSAGE)
            reply = 250
        except smtplib.SMTPDataError as exc:
            reply = exc.smtp_code
        finally:
            client.close()
        # A taken message ends delivered or set aside as corrupt (qmgr does that after
        # the failed delivery and bounce): wait for either, 20 s at most.
        for _ in range(200 if reply == 250 else 0):
            if sink.messages or postfix.corrupt_files():
                break
            postfix.flush()
            time.sleep(0.1)
        delivered = [m.data for m in sink.messages]
        queued = postfix.queue_size()
        return Outcome(reply, delivered, postfix.corrupt_files(), queued, postfix.log_text())

    yield run
    for milter, postfix, sink in started:
        postfix.stop()
        if milter.poll() is None:
            milter.kill()
        milter.wait(5)
        sink.stop()


def test_tempfail_defers_the_message(send_through_dying_milter) -> None:  # type: ignore[no-untyped-def]
    out = send_through_dying_milter("tempfail")
    assert 400 <= out.reply < 500, out.log[-2000:]
    assert out.delivered == [] and out.corrupt == [] and out.queued == 0
    assert "message-id=<dies-mid-edit@test.sigfilter>" in out.log  # it reached cleanup


def test_accept_loses_the_message_or_refuses_it(send_through_dying_milter) -> None:  # type: ignore[no-untyped-def]
    """One of Postfix's two known answers, never a delivered or silently dropped message.
    Debian 12's 3.7.11 gives the first (seen here 2026-12-03); a Postfix with the fix (or
    a distribution's backport of it: the version number alone cannot tell) the second."""
    out = send_through_dying_milter("accept")
    assert out.delivered == [], "Postfix delivered a message whose body replacement broke off"
    if out.reply == 250:  # taken, then lost: the half-edited queue file is set aside
        assert len(out.corrupt) == 1, out.log[-2000:]
        assert "bad record type" in out.log
    else:  # the fix: refused with 4xx, nothing kept
        assert 400 <= out.reply < 500 and out.corrupt == [] and out.queued == 0, out.log[-2000:]
