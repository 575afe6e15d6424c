"""Doctor's Postfix checks, pure: postconf's values in, findings out.

doctor.py runs postconf (and reads map and certificate files); these functions only
look at the values, so tests feed them tables (tests/unit/test_postfix_checks.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..defaults import COPY_FACTOR, MILTER_DEFAULT_ACTION, MILTER_TIMEOUTS
from .findings import Finding

Values = dict[str, str]  # postconf's parameter -> value

# Postfix parameters the checks read.
PARAMS = (
    "smtpd_milters",
    "milter_default_action",
    "milter_connect_timeout",
    "milter_command_timeout",
    "milter_content_timeout",
    "message_size_limit",
    "smtpd_tls_security_level",
    "smtp_tls_security_level",
    "smtpd_tls_protocols",
    "smtpd_tls_mandatory_protocols",
    "smtp_tls_protocols",
    "smtp_tls_mandatory_protocols",
    "smtpd_relay_restrictions",
    "smtpd_sender_restrictions",
    "mynetworks",
    "sender_dependent_relayhost_maps",
    "sender_dependent_default_transport_maps",
    "smtp_tls_policy_maps",
    "smtpd_tls_chain_files",
    "smtp_tls_chain_files",
    "smtpd_tls_cert_file",
    "smtp_tls_cert_file",
)
MAP_PARAMS = (
    "smtpd_sender_restrictions",
    "sender_dependent_relayhost_maps",
    "sender_dependent_default_transport_maps",
    "smtp_tls_policy_maps",
)
CERT_PARAMS = (
    "smtpd_tls_chain_files",
    "smtp_tls_chain_files",
    "smtpd_tls_cert_file",
    "smtp_tls_cert_file",
)
# Longest sensible waits for a milter (seconds): a hung milter holds each SMTP session.
TIMEOUT_LIMITS = MILTER_TIMEOUTS
# Map types whose file postmap builds, and the suffix it adds.
MAP_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
FILE_MAPS = {"texthash", "regexp", "pcre", "cidr", *MAP_SUFFIX}


def milter_params(v: Values, explicit: set[str], socket: str) -> Iterator[Finding]:
    """smtpd_milters names our socket; the default action and the timeouts."""
    milters = v.get("smtpd_milters", "")
    if not milters:
        yield Finding(
            "fail",
            "postfix",
            "smtpd_milters is empty: no mail is signed",
            f"postconf -e 'smtpd_milters = {socket or 'unix:/run/sigfilter/milter.sock'}'"
            " && postfix reload",
        )
    elif socket and socket not in milters.replace(",", " ").split():
        yield Finding(
            "fail",
            "postfix",
            f"smtpd_milters = {milters} does not name the milter's socket {socket}",
            f"postconf -e 'smtpd_milters = {socket}' && postfix reload",
        )
    else:
        yield Finding("ok", "postfix", f"smtpd_milters = {milters}")
    yield from default_action(v, explicit)
    for name, limit in TIMEOUT_LIMITS.items():
        wait = seconds(v.get(name, ""))
        if wait is None or wait > limit:
            yield Finding(
                "warn",
                "postfix",
                f"{name} = {v.get(name)}: a hung milter holds SMTP sessions that long",
                f"postconf -e {name}={limit}s",
            )


def default_action(v: Values, explicit: set[str]) -> Iterator[Finding]:
    action = v.get("milter_default_action", "")
    fix = f"postconf -e milter_default_action={MILTER_DEFAULT_ACTION} && postfix reload"
    if "milter_default_action" not in explicit or action not in ("accept", "tempfail"):
        yield Finding(
            "warn", "postfix", f"milter_default_action is not set explicitly (now {action})",
            fix + " (mail waits at Exchange while the milter is down)",
        )  # fmt: skip
    elif action == "accept":
        yield Finding(
            "warn", "postfix",
            "milter_default_action = accept: while the milter is down nothing checks the "
            "tenant stamp and mail is relayed unsigned (only for a single-tenant relay "
            "that prefers unsigned mail to delayed mail); and a milter that dies while "
            "it replaces a body loses that message (Postfix before 3.12-20260821 "
            "commits the half-replaced queue file)",
            fix,
        )  # fmt: skip
    else:
        yield Finding("ok", "postfix", f"milter_default_action = {action}")


def size(v: Values, max_size: int, where: str) -> Iterator[Finding]:
    """Mail Postfix takes but the milter would pass unsigned."""
    limit = int(v.get("message_size_limit", "0") or 0)
    if limit == 0 or limit > max_size:
        yield Finding(
            "warn",
            "postfix",
            f"message_size_limit = {limit} exceeds the milter's max_size "
            f"{max_size}: mail in between passes unsigned",
            f"raise milter.max_size in {where} or lower message_size_limit",
        )


def memory(v: Values, max_size: int, budget: int, where: str) -> Iterator[Finding]:
    """The largest message the milter would sign must fit into its memory budget."""
    limit = int(v.get("message_size_limit", "0") or 0)
    largest = min(limit or max_size, max_size)
    if budget and largest * COPY_FACTOR > budget:
        yield Finding(
            "warn",
            "milter",
            f"memory_budget {budget} cannot hold a message of {largest} bytes "
            f"({COPY_FACTOR} copies): messages that large always pass unsigned",
            f"raise milter.memory_budget in {where} to at least "
            f"{largest * COPY_FACTOR} (README, Memory)",
        )


def tls(v: Values) -> Iterator[Finding]:
    """TLS on both legs, TLS 1.2 or newer."""
    inbound = v.get("smtpd_tls_security_level", "")
    if inbound not in ("may", "encrypt"):
        yield Finding(
            "warn",
            "tls",
            f"smtpd_tls_security_level = {inbound or '(empty)'}: mail from "
            "Exchange Online arrives unencrypted",
            "set it to may (or encrypt) with smtpd_tls_chain_files",
        )
    outbound = v.get("smtp_tls_security_level", "")
    if outbound not in ("secure", "verify", "encrypt", "dane", "dane-only"):
        yield Finding(
            "warn",
            "tls",
            f"smtp_tls_security_level = {outbound or '(empty)'}: the return leg "
            "to Exchange Online is not verified",
            "set it to secure with smtp_tls_CAfile",
        )
    for name in (
        "smtpd_tls_protocols",
        "smtpd_tls_mandatory_protocols",
        "smtp_tls_protocols",
        "smtp_tls_mandatory_protocols",
    ):
        if not modern_tls(v.get(name, "")):
            yield Finding(
                "warn",
                "tls",
                f"{name} = {v.get(name)} allows TLS older than 1.2",
                f"postconf -e '{name} = >=TLSv1.2'",
            )


def relay(v: Values) -> Iterator[Finding]:
    """Not an open relay; only tenant sender domains."""
    relay = words(v.get("smtpd_relay_restrictions", ""))
    networks = words(v.get("mynetworks", ""))
    if not relay or relay[-1] != "reject" or any(n.endswith("/0") for n in networks):
        yield Finding(
            "fail",
            "postfix",
            f"open relay risk: smtpd_relay_restrictions = {' '.join(relay)}, "
            f"mynetworks = {' '.join(networks)}",
            "smtpd_relay_restrictions = permit_mynetworks, reject with mynetworks "
            "= Exchange Online's outbound ranges only",
        )
    sender = words(v.get("smtpd_sender_restrictions", ""))
    if not sender or sender[-1] != "reject":
        yield Finding(
            "fail",
            "postfix",
            "smtpd_sender_restrictions does not end with reject: mail of any "
            "sender domain is relayed",
            "check_sender_access texthash:/etc/postfix/tenant_senders, reject",
        )


def parse_postconf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            out[name.strip()] = value.strip()
        elif line.rstrip().endswith(" ="):
            out[line.rstrip()[:-2].strip()] = ""
    return out


def words(value: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", value.strip("{} ")) if w]


def seconds(value: str) -> int | None:
    m = re.fullmatch(r"(\d+)([smhdw]?)", value.strip())
    if not m:
        return None
    return int(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]


def modern_tls(value: str) -> bool:
    v = value.replace(" ", "")
    if v.startswith(">="):
        return v[2:] in ("TLSv1.2", "TLSv1.3")
    excluded = {w[1:] for w in re.split(r"[,:]", v) if w.startswith("!")}
    return {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"} <= excluded


def map_files(value: str) -> list[tuple[str, str]]:
    out = []
    for word in words(value):
        kind, sep, path = word.partition(":")
        if sep and kind in FILE_MAPS and path.startswith("/"):
            out.append((kind, path))
    return out
