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
from pathlib import Path

import Milter  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from harness.milterscript import serve

NEW_BODY = b"replaced by a milter that then died\r\n"


class Dying(Milter.Base):  # type: ignore[misc]
    def eom(self) -> int:
        self.replacebody(NEW_BODY)  # libmilter writes the packet before returning
        os._exit(0)  # no reply, no other request: as SIGKILL right here


def main() -> None:
    serve(sys.argv, "dying", Dying, Milter.CHGBODY, 60)


if __name__ == "__main__":
    main()
