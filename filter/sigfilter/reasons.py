"""The words that say why a message was decided as it was: one vocabulary, typed.

Every reason in a log line, a metric label, ``sigfilter preview`` and ``sigfilter
stats`` is one of these (mypy --strict checks each place that makes one). A bug is not
a reason: it is an error, counted by exception type in ``sigfilter_errors_total{kind}``.
"""

from __future__ import annotations

from typing import Literal

# Why the engine passes a message unchanged (skips.Skip, mime.leaf.LeafError,
# mime.tnef.TnefRefused): the message needs no signature, or cannot be signed safely.
SkipReason = Literal[
    # decided by the header block or the MIME types (skips.py)
    "loop",
    "auto-reply",
    "calendar",
    "dsn",
    "encrypted",
    "signed-pgp",
    "signed-smime",
    # MIME the engine cannot edit with certainty
    "malformed",
    "charset",
    "too-large",
    "no-text-part",
    # no room in the milter's memory budget for the message (budget.py)
    "over-budget",
    # the tenant's mode, or our signature already there
    "no-marker",
    "not-mobile",
    "already-signed",
    # TNEF (winmail.dat): passed, or not convertible without losing meaning
    "tnef",
    "tnef-damaged",
    "tnef-too-large",
    "tnef-layout",
    "tnef-no-body",
    "tnef-voting",
    "tnef-embedded",
    "tnef-ole",
    "tnef-attach-ref",
    "tnef-calendar",
    "tnef-task",
    "tnef-secure",
    "tnef-class",
]

# The signature lookup for one sender (service.Lookup, catalog.compiled.Resolution).
LookupReason = Literal[
    "ok", "unknown-sender", "no-signature", "no-rule", "rule-skip", "store-unavailable"
]

# DKIM/ARC signing that cannot be done as the tenant's policy asks (dkim.sign.SigningError).
SignReason = Literal["dkim-key", "dkim-sign", "arc-config", "arc-sign"]

# What the engine's Result says: signed ("ok") or why not.
Reason = Literal[SkipReason, LookupReason]

# Every reason a message passes the milter unchanged.
PassReason = Literal[Reason, SignReason, "time-limit", "sign-time-limit"]
