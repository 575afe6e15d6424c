"""The one log line per message: key=value (default) or one JSON object.

The only place that formats it. It carries ids, names, sizes and times — never body
content, and the sender's full address only when configured (``log_sender = "address"``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping

# Field order of a line; fields with no value (None or "") are left out.
FIELDS = (
    "queue_id", "tenant", "sender_domain", "sender", "action", "reason", "placement",
    "replaced", "rule", "tnef_class", "bytes_in", "bytes_out", "ms", "detail",
)  # fmt: skip

_PLAIN = re.compile(r"[A-Za-z0-9.\-_@:/+,()]+")
_ORDER = {name: n for n, name in enumerate(FIELDS)}


def _kv_value(value: object) -> str:
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    return json.dumps(text)  # quoted: spaces, quotes, '=' and non-ASCII stay unambiguous


def format_line(fields: Mapping[str, object], fmt: str = "kv") -> str:
    """``fields`` in FIELDS order (then any others), as ``key=value …`` or JSON."""
    keys = sorted(fields, key=lambda k: _ORDER.get(k, len(FIELDS)))  # stable: others keep order
    present = {k: fields[k] for k in keys if fields[k] is not None and fields[k] != ""}
    if fmt == "json":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        return json.dumps({"ts": stamp, **present}, separators=(",", ":"))
    return " ".join(f"{k}={_kv_value(v)}" for k, v in present.items())


def parse_kv(line: str) -> dict[str, str]:
    """The fields of a key=value line (for tests and log tools); quoted values unquoted."""
    out: dict[str, str] = {}
    decoder = json.JSONDecoder()
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        eq = line.find("=", i)
        if eq < 0:
            break
        space = line.find(" ", i)
        if 0 <= space < eq:  # a word without '=' (a log prefix such as the time)
            i = space
            continue
        key = line[i:eq]
        if line.startswith('"', eq + 1):
            value, i = decoder.raw_decode(line, eq + 1)
            out[key] = str(value)
        else:
            end = line.find(" ", eq + 1)
            end = len(line) if end < 0 else end
            out[key] = line[eq + 1 : end]
            i = end
    return out
