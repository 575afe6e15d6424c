"""Send a filtered message back into Postfix over SMTP (run by filter.sh).

    python3 -S reinject.py PORT FILE -f SENDER -- RECIPIENT...

A minimal SMTP client on a bare socket: importing smtplib (which pulls in email and
ssl) triples Python's start-up time, and this runs once per message. Exit codes
follow sysexits: 0 sent, 75 temporary failure (Postfix retries), 69 permanent
refusal (Postfix bounces).
"""

import socket
import sys

EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75


class Refused(Exception):
    def __init__(self, code: int, text: bytes) -> None:
        super().__init__(f"{code} {text!r}")
        self.code = code


def reply(f) -> int:
    lines = []
    while True:
        line = f.readline(2048)
        if not line:
            raise OSError("connection closed")
        lines.append(line)
        if line[3:4] != b"-":
            break
    code = int(line[:3])
    if code >= 400:
        raise Refused(code, b"".join(lines))
    return code


def send(port: int, sender: str, recipients: list[str], data: bytes) -> None:
    # pipe(8) hands over LF line ends; SMTP wants CRLF, and dot-stuffing.
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"EHLO localhost\r\n")
        reply(f)
        s.sendall(f"MAIL FROM:<{sender}>\r\n".encode())
        reply(f)
        for rcpt in recipients:
            s.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            reply(f)
        s.sendall(b"DATA\r\n")
        reply(f)
        s.sendall(body + b".\r\n")
        reply(f)
        s.sendall(b"QUIT\r\n")


def main() -> int:
    port, path, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if len(args) < 4 or args[0] != "-f" or args[2] != "--":
        print(f"usage: reinject.py PORT FILE -f SENDER -- RECIPIENT... (got {args})")
        return EX_UNAVAILABLE
    with open(path, "rb") as f:
        data = f.read()
    try:
        send(port, args[1], args[3:], data)
    except Refused as exc:
        print(f"reinjection refused: {exc}")
        return EX_UNAVAILABLE if exc.code >= 500 else EX_TEMPFAIL
    except (OSError, ValueError) as exc:
        print(f"reinjection failed: {exc!r}")
        return EX_TEMPFAIL
    return 0


if __name__ == "__main__":
    sys.exit(main())
