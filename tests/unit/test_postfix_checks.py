"""Doctor's Postfix checks as tables: postconf values in, the findings' levels out.

The checks are pure (ops/postfix_checks.py); tests/unit/test_ops.py and
tests/integration/test_ops_doctor.py run them through postconf and a real Postfix.
"""

from __future__ import annotations

import pytest

from sigfilter.ops import postfix_checks as checks
from sigfilter.ops.findings import Finding
from support import POSTCONF_GOOD

SOCK = "unix:/run/sigfilter/milter.sock"
GOOD = POSTCONF_GOOD


def run_all(v: dict[str, str], explicit: set[str] | None = None) -> list[Finding]:
    explicit = set(v) if explicit is None else explicit
    return [
        *checks.milter_params(v, explicit, SOCK),
        *checks.size(v, 50 * 1024 * 1024, "sigfilter.toml"),
        *checks.tls(v),
        *checks.relay(v),
    ]


def test_the_shipped_shape_has_no_warning_or_failure() -> None:
    found = run_all(GOOD)
    assert [f for f in found if f.level != "ok"] == []
    assert {f.message for f in found} >= {
        f"smtpd_milters = {SOCK}",
        "milter_default_action = tempfail",
    }


# (what changes, the level it must give, words the message must contain)
ROWS = [
    ({"smtpd_milters": ""}, "fail", "no mail is signed"),
    ({"smtpd_milters": "unix:/other.sock"}, "fail", "does not name the milter's socket"),
    ({"milter_default_action": "accept"}, "warn", "relayed unsigned"),
    ({"milter_default_action": "accept"}, "warn", "loses that message"),
    ({"milter_default_action": "reject"}, "warn", "not set explicitly"),
    ({"milter_content_timeout": "300s"}, "warn", "milter_content_timeout = 300s"),
    ({"milter_command_timeout": "1h"}, "warn", "milter_command_timeout = 1h"),
    ({"milter_connect_timeout": "soon"}, "warn", "milter_connect_timeout = soon"),
    ({"message_size_limit": "0"}, "warn", "exceeds the milter's max_size"),
    ({"message_size_limit": str(60 * 1024 * 1024)}, "warn", "passes unsigned"),
    ({"smtpd_tls_security_level": "none"}, "warn", "arrives unencrypted"),
    ({"smtp_tls_security_level": "may"}, "warn", "not verified"),
    ({"smtpd_tls_protocols": "!SSLv2, !SSLv3"}, "warn", "older than 1.2"),
    ({"smtp_tls_mandatory_protocols": ">=TLSv1"}, "warn", "older than 1.2"),
    ({"smtpd_relay_restrictions": "permit_mynetworks"}, "fail", "open relay risk"),
    ({"mynetworks": "0.0.0.0/0"}, "fail", "open relay risk"),
    ({"smtpd_sender_restrictions": "permit"}, "fail", "does not end with reject"),
]


@pytest.mark.parametrize(("change", "level", "words"), ROWS)
def test_one_bad_value_gives_one_finding(change: dict[str, str], level: str, words: str) -> None:
    bad = [f for f in run_all({**GOOD, **change}) if f.level != "ok"]
    assert len(bad) == 1, bad
    assert bad[0].level == level
    assert words in bad[0].message
    assert bad[0].fix  # every problem says how to fix it


def test_a_default_action_postfix_merely_defaults_to_is_not_trusted() -> None:
    explicit = set(GOOD) - {"milter_default_action"}
    bad = [f for f in run_all(GOOD, explicit) if f.level != "ok"]
    assert [(f.level, "not set explicitly" in f.message) for f in bad] == [("warn", True)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30), ("30s", 30), ("2m", 120), ("1h", 3600), ("1d", 86400), ("1w", 604800),
     ("", None), ("30x", None), ("-1s", None)],
)  # fmt: skip
def test_postfix_time_values(value: str, seconds: int | None) -> None:
    assert checks.seconds(value) == seconds


def test_parse_postconf_keeps_empty_values_and_strips() -> None:
    text = "smtpd_milters = unix:/a.sock\nmynetworks =\nmessage_size_limit = 10 \n"
    assert checks.parse_postconf(text) == {
        "smtpd_milters": "unix:/a.sock",
        "mynetworks": "",
        "message_size_limit": "10",
    }


def test_map_files_are_the_file_based_ones_only() -> None:
    value = (
        "check_sender_access texthash:/etc/postfix/a, hash:/etc/postfix/b, proxy:mysql:x, reject"
    )
    assert checks.map_files(value) == [("texthash", "/etc/postfix/a"), ("hash", "/etc/postfix/b")]


@pytest.mark.parametrize(
    ("limit", "max_size", "budget", "warned"),
    [
        ("36700160", 50 * 1024 * 1024, 1024**3, False),  # the shipped values
        ("36700160", 50 * 1024 * 1024, 0, False),  # no budget: nothing to hold
        ("36700160", 50 * 1024 * 1024, 2 * 36700160, False),  # exactly two copies
        ("36700160", 50 * 1024 * 1024, 2 * 36700160 - 1, True),
        ("0", 10_000, 20_000, False),  # no Postfix limit: the milter's max_size counts
        ("0", 10_000, 19_999, True),
    ],
)
def test_the_memory_budget_holds_the_largest_message(
    limit: str, max_size: int, budget: int, warned: bool
) -> None:
    found = list(checks.memory({**GOOD, "message_size_limit": limit}, max_size, budget, "f"))
    assert [f.level for f in found] == (["warn"] if warned else [])
    assert all("always pass unsigned" in f.message for f in found)
