"""A milter that replaces the body of the first message and dies before its reply.

    python dying_milter.py unix:/path/dying.sock

What a milter killed at the worst moment does: Postfix has received SMFIR_REPLBODY
(the whole new body, one packet) and then the connection ends, with no further
request and no ACCEPT. tests/integration/test_milter_dies_mid_edit.py shows what
Postfix makes of it under each milter_default_action.
"""

from __future__ import annotations

import os
import sys

import Milter  # type: ignore[import-untyped]

NEW_BODY = b"replaced by a milter that then died\r\n"


class Dying(Milter.Base):  # type: ignore[misc]
    def eom(self) -> int:
        self.replacebody(NEW_BODY)  # libmilter writes the packet before returning
        os._exit(0)  # no reply, no other request: as SIGKILL right here


def main() -> None:
    spec = sys.argv[1]
    if not spec.startswith("unix:"):
        raise SystemExit("usage: dying_milter.py unix:/path/to/socket")
    path = spec.removeprefix("unix:")
    if os.path.exists(path):
        os.unlink(path)
    os.umask(0o000)  # smtpd and cleanup (user postfix) must be able to connect
    Milter.factory = Dying
    Milter.set_flags(Milter.CHGBODY)
    Milter.runmilter("dying", spec, 60)


if __name__ == "__main__":
    main()
