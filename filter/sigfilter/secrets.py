"""Read secrets (passwords, private keys) from files whose permissions are checked.

A secret file must be a regular file owned by the reading user (or root) that nobody
else may read or write: mode 0600 or 0400. systemd's ``LoadCredential=`` gives
exactly that. Secrets never come from command-line arguments (visible to every user in
/proc/PID/cmdline) and never go into log lines or error messages.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# The only modes a secret file may have: owner read(-write), nothing for anyone else,
# not executable.
SECRET_MODES = (0o600, 0o400)
MAX_SECRET_BYTES = 1 << 20  # a password or a PEM key is far smaller


class SecretFileError(ValueError):
    """The secret file is missing, unsafe or empty; the message never holds the secret."""


def check_secret_file(path: Path) -> None:
    """Raise SecretFileError unless `path` is safe to hold a secret (see module doc)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SecretFileError(f"{path}: cannot read the secret file: {exc.strerror}") from exc
    _check_stat(path, info)


def _check_stat(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"{path}: a secret file must be a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode not in SECRET_MODES:
        raise SecretFileError(
            f"{path}: mode {mode:04o} lets others read it; a secret file must be 0600 or "
            f"0400 (run: chmod 600 {path})"
        )
    if info.st_uid not in (os.geteuid(), 0):
        raise SecretFileError(
            f"{path}: owned by uid {info.st_uid}, not by this user ({os.geteuid()}) or root"
        )


def read_secret_bytes(path: Path) -> bytes:
    """The file's bytes, after the permission check (made on the open file: no race)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretFileError(f"{path}: cannot read the secret file: {exc.strerror}") from exc
    try:
        _check_stat(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(f"{path}: larger than {MAX_SECRET_BYTES} bytes; not a secret file")
    return data


def read_secret(path: Path) -> str:
    """A one-line secret such as a password: the file's text without the final newline."""
    try:
        text = read_secret_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SecretFileError(f"{path}: not UTF-8 text") from exc
    secret = text.rstrip("\r\n")
    if not secret:
        raise SecretFileError(f"{path}: the secret file is empty")
    if "\n" in secret:
        raise SecretFileError(f"{path}: a password file must hold one line")
    return secret
