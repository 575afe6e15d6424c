"""The connector allow-list: postfix/eop-outbound-ranges.txt as a Postfix cidr table."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.postfixctl import EOP_RANGES, POSTMAP, cidr_table, connector_ranges


def lookup(table: Path, addresses: list[str]) -> dict[str, str]:
    """What Postfix's own postmap answers for each address in the cidr table (absent = no)."""
    conf = table.parent  # postmap reads a main.cf
    (conf / "main.cf").write_text("compatibility_level = 3.6\nmyhostname = relay.sigfilter.test\n")
    past = time.time() - 2  # Postfix waits for a file modified this very second
    for path in (table, conf / "main.cf"):
        os.utime(path, (past, past))
    proc = subprocess.run(
        [POSTMAP, "-c", str(conf), "-q", "-", f"cidr:{table}"],
        input="\n".join(addresses) + "\n", capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1) and not proc.stderr, proc.stderr  # 1 = none found
    return dict(line.split("\t", 1) for line in proc.stdout.splitlines())


def test_ranges_file_has_a_date_and_valid_networks() -> None:
    taken, networks = connector_ranges()
    assert dt.date.fromisoformat(taken) <= dt.date.today()
    parsed = [ipaddress.ip_network(n) for n in networks]  # raises on a bad line
    assert ipaddress.ip_network("40.107.0.0/16") in parsed
    assert not any(n.is_private or n.is_loopback for n in parsed)


@pytest.mark.skipif(not Path(POSTMAP).exists(), reason="postfix is not installed")
def test_rendered_table_admits_exchange_and_nobody_else(tmp_path: Path) -> None:
    _, networks = connector_ranges(EOP_RANGES)
    table = tmp_path / "connector_networks.cidr"
    table.write_text(cidr_table(networks))
    inside = ["40.92.0.1", "40.93.255.254", "40.107.12.34", "52.103.1.1", "104.47.127.1",
              "2a01:111:f400::1", "2a01:111:f403:ffff::1"]  # fmt: skip
    outside = ["127.0.0.1", "127.0.0.2", "10.0.0.1", "40.94.0.1", "104.47.128.1",
               "52.104.0.1", "2a01:111:f401::1"]  # fmt: skip
    assert lookup(table, inside + outside) == dict.fromkeys(inside, "OK")
