"""Builders of hostile-shaped messages, shared by the hostile tests and benchmark."""

from __future__ import annotations

HEAD = (
    b"From: Avery Quill <avery.quill@example.com>\r\nTo: jane@customer.example\r\n"
    b"Subject: hostile\r\nMIME-Version: 1.0\r\n"
)


def nested(levels: int, head: bytes = HEAD) -> bytes:
    """A text part inside ``levels`` nested multipart/mixed."""
    out = [head]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="n%06d"\r\n\r\n--n%06d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\nhello\r\n")
    out += [b"--n%06d--\r\n" % i for i in reversed(range(levels))]
    return b"".join(out)


def many_parts(n: int, head: bytes = HEAD) -> bytes:
    """One multipart/mixed with ``n`` text parts."""
    parts = [head + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n']
    parts += [b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(n)]
    return b"".join(parts) + b"--B--\r\n"
