"""Defaults and fixed names, in one place."""

from __future__ import annotations

from typing import Literal

Mode = Literal["marker", "mobile", "full"]
MODES: tuple[Mode, ...] = ("marker", "mobile", "full")
# What happens to the signature the sender's mail client inserted (tenant setting).
ClientPolicy = Literal["replace", "keep"]
CLIENT_POLICIES: tuple[ClientPolicy, ...] = ("replace", "keep")
DEFAULT_CLIENT_SIGNATURE: ClientPolicy = "replace"

# Our processed header: the Exchange transport rule excepts messages that carry it.
PROCESSED_HEADER = "X-Sigfilter-Processed"
DEFAULT_MARKER = "{EMAILSIGNATURE}"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024  # bytes; larger messages pass unchanged

# The serving layer (Redis) and the in-process cache in front of it.
REDIS_PREFIX = "sigfilter"
REDIS_TIMEOUT = 0.2  # seconds; a lookup waits at most about this long for Redis
REDIS_KEEP_VERSIONS = 2  # the current version and the one before, for readers in flight
PUBLISH_BATCH = 1000  # records per pipeline round trip
CACHE_TTL = 20 * 60.0  # seconds an in-process answer is fresh
CACHE_MAX_ENTRIES = 100_000
LISTENER_BACKOFF_MIN = 0.1  # seconds between reconnects of the version listener …
LISTENER_BACKOFF_MAX = 2.0  # … doubling up to this
REDIS_HEALTH_CHECK_INTERVAL = 30  # seconds idle before a pooled connection is PINGed first
LISTENER_POLL = 0.2  # seconds the version listener waits per poll; bounds how fast stop() is
# The record of each version that holds every tenant and domain: each milter keeps it
# in memory, so the tenant check never waits on Redis (identity.py).
IDENTITY_KEY = "identity"
# Each milter also holds every user record of the published version (loaded with the
# identity record): ~1.5 KB a user in memory, 10,000 users 14 MiB read in 0.17 s
# (tests/bench/bench_identity.py), so a Redis outage never leaves a known sender
# unsigned. False: users go through the TTL cache, as before.
HOLD_USERS = True
CACHE_RETRY_AFTER = 1.0  # seconds the cache stops asking a backend that just failed

# The milter.
MILTER_BACKLOG = 1024  # listen backlog: room for every smtpd process connecting at once
MESSAGE_TIME_LIMIT = 5.0  # seconds for one message's rewrite; then it passes unchanged
REWRITE_WORKERS = 8  # threads that run rewrites (the GIL makes more pointless)
# One CPU for the milter (milter/cpu.py): its threads hand the GIL to each other many
# times a message, which costs less on one CPU (stack, 5 pairs: 12-26% less milter CPU).
SINGLE_CPU = True
LOG_BATCH_SECONDS = 0.05  # the per-message log lines are written this late at most
# Memory (budget.py). All messages in flight together reserve at most this many bytes;
# a message whose reservation does not fit passes unchanged (or is deferred:
# OVER_BUDGET_ACTIONS). Peak RSS ≈ the idle milter (~45 MiB with the example catalog)
# + the budget: 1 GiB suits the 4 GiB Standard_B2s the inventories use (Postfix, the
# OS and Redis keep the rest); take 512 MiB on a 2 GiB VM. 0: no budget (no bound).
DEFAULT_MEMORY_BUDGET = 1024 * 1024 * 1024
OVER_BUDGET_ACTIONS = ("pass", "tempfail")
OVER_BUDGET = "pass"  # a message that does not fit passes unchanged
# What a message reserves, per byte. Measured as RSS growth of one message's end-of-
# message work, each in a fresh process (Python 3.11, lxml 6.1, dkimpy 1.1.8, this machine):
# - COPY_FACTOR per header/body byte: the chunks as they arrive, then the joined message
#   (the chunks are dropped once joined) and the new body the engine returns: 2 copies.
COPY_FACTOR = 2
# - TEXT_FACTOR per byte of the text parts the engine decodes and places into (at most
#   two, each under MAX_TEXT_LEAF): decoded text, line lists, the lxml tree and its
#   proxies. Typical mail 17x (plain) and 27x (HTML); worst seen 70x (a text of empty
#   lines) and 128x (HTML of bare <p> tags, an element every 3 bytes).
TEXT_FACTOR = 160
# - AUTH_FACTORS per message byte for the DKIM/ARC step, beyond the two copies above:
#   measured 2x for resign (the message as sent, dkimpy's copy of its body) and 6x for
#   resign + ARC (25 MiB message), with a copy to spare; and with ARC, ARC_SPACE_FACTOR
#   per blank (space or tab) in the message: dkimpy's relaxed body canonicalisation
#   (verifying the original signature, then sealing) makes an object per run of blanks
#   (measured 165-240 bytes per blank on 3.7 MB texts).
AUTH_FACTORS = {"keep": 0, "resign": 3, "arc": 7}
ARC_SPACE_FACTOR = 256

# Postfix's milter settings the relay ships with (postfix/README.md, the Ansible role's
# defaults, and what `doctor` warns above): seconds. The content timeout covers the end
# of message, where the rewrite (MESSAGE_TIME_LIMIT) and DKIM/ARC (DKIM_SIGN_TIME_LIMIT)
# run: 30 s leaves room for both on a loaded machine.
MILTER_TIMEOUTS = {
    "milter_connect_timeout": 5,
    "milter_command_timeout": 10,
    "milter_content_timeout": 30,
}
# Identity fails closed: while the milter cannot be reached, smtpd answers 4xx and
# Exchange keeps the message and retries. "accept" is an explicit operator choice.
MILTER_DEFAULT_ACTION = "tempfail"

# Operations: metrics, logs, health.
DEFAULT_CONFIG = "/etc/sigfilter/sigfilter.toml"  # what `sigfilter doctor` reads if it exists
METRICS_LISTEN = "127.0.0.1:9464"  # the metrics port (loopback); "" or "off" switches it off
METRICS_URL = "http://127.0.0.1:9464"  # where `sigfilter stats` and `health` look by default
HISTORY_MINUTES = 60  # per-minute counts kept for `sigfilter stats` (the last hour)
# Rewrite time histogram buckets (seconds): the engine takes ~1 ms; the limit is 5 s.
REWRITE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
LOG_FORMATS = ("kv", "json")  # the per-message log line: key=value or one JSON object
LOG_FORMAT = "kv"
LOG_SENDERS = ("domain", "address")  # what of the sender the log line shows
LOG_SENDER = "domain"
HEALTH_TIMEOUT = 3.0  # seconds `sigfilter health` waits for the milter and the status
CERT_WARN_DAYS = 21  # doctor warns when a certificate expires sooner than this
# DKIM and ARC after the rewrite (dkim/sign.py, dkim/keys.py).
DKIM_DEFAULT_POLICY = "keep"  # keep | strip | resign; keep is safe behind Exchange Online
DKIM_MAX_VERIFY = 5  # original DKIM signatures checked for our Authentication-Results
DKIM_DNS_TIMEOUT = 2.0  # seconds per DNS TXT lookup
DKIM_DNS_CACHE_TTL = 300.0  # seconds a key record (or its absence) is remembered
DKIM_KEY_BITS = 2048  # `sigfilter dkim keygen`
DKIM_SIGN_TIME_LIMIT = 5.0  # seconds for one message's DKIM/ARC step; then it passes unchanged
# Who may submit, and tenant isolation (SECURITY.md).
# The subject CN Exchange Online's outbound connector presents as a TLS client.
CONNECTOR_CERT_NAME = "mail.protection.outlook.com"
# Exchange stamps the sending tenant's id into this header on the first leg.
TENANT_ID_HEADER = "X-MS-Exchange-CrossTenant-Id"
# What the milter does when that header names another tenant than the sender domain's,
# and when it is absent (or the catalog has no tenant_id): refuse, or defer.
TENANT_MISMATCH_ACTIONS = ("reject", "tempfail")
TENANT_MISSING_ACTIONS = ("reject", "tempfail", "accept")
TENANT_ID_MISMATCH = "reject"  # a foreign tenant stamp (SECURITY.md)
TENANT_ID_MISSING = "reject"  # no tenant stamp
# The Exchange Online setup script (m365.py).
# Mail over this size is never routed to the relay by the transport rule: well under
# Postfix's message_size_limit (35 MB in postfix/), as the vendors do (22.5–30 MB).
RULE_SIZE_LIMIT = 25 * 1024 * 1024
# Hostile MIME: bounds on the work one message can cause; beyond them it passes unchanged.
MIME_MAX_DEPTH = 40  # nested multiparts
MIME_MAX_PARTS = 2000  # MIME entities in one message
MIME_MAX_HEADER_LINES = 10_000  # lines in one header block (EXO's are a few hundred)
MAX_TEXT_LEAF = 4 * 1024 * 1024  # bytes of one text part the engine decodes and edits (~1 s)
# TNEF (winmail.dat) from Exchange: pass it unchanged, or convert an IPM.Note to MIME and
# sign it (tenant.toml `tnef`). Bounds on the work one TNEF part can cause (mime/tnef.py).
TNEF_MODES = ("pass", "convert")
DEFAULT_TNEF = "pass"
TNEF_MAX_BYTES = 20 * 1024 * 1024  # the decoded winmail.dat; larger passes unchanged
TNEF_MAX_COPY = 2 * 1024**3  # attributes x bytes: tnefparse copies the rest per attribute
TNEF_CALLS_BASE = 200_000  # calls tnefparse may make, plus …
TNEF_CALLS_PER_BYTE = 4  # … this many per byte (the corpus needs < 0.1 per byte)
TNEF_MAX_RTF = 32 * 1024  # bytes of RTF whose HTML RTFDE extracts: ~20-80 µs a byte here
TNEF_MAX_ATTACHMENTS = 200
# Directory sync from Microsoft Entra ID over Microsoft Graph (`sigfilter users sync`).
GRAPH_AUTHORITY = "https://login.microsoftonline.com"  # US Gov: login.microsoftonline.us
GRAPH_URL = "https://graph.microsoft.com"  # US Gov: graph.microsoft.us; China: …chinacloudapi.cn
SYNC_STATE_DIR = "/var/lib/sigfilter/sync"  # deltaLink and directory copy, one file per tenant
SYNC_FULL_EVERY = 7 * 24 * 3600.0  # seconds; a full resync at least weekly (delta tokens age out)
SYNC_STALE_AFTER = 3600.0  # seconds; doctor warns when the last good sync is older (timer: 15 min)
GRAPH_TIMEOUT = 60.0  # seconds per Graph or token request
GRAPH_MAX_RETRIES = 6  # 429/503/504 and connection errors, each waiting Retry-After
GRAPH_RETRY_DEFAULT = 5.0  # seconds to wait when a 429/503 has no Retry-After
GRAPH_RETRY_MAX = 300.0  # seconds; a longer Retry-After is cut to this
# Users per /users/delta page asked for (Prefer: odata.maxpagesize; 999 is $top's maximum).
# Graph may grant fewer: a Microsoft Q&A answer (learn.microsoft.com/answers/a/2052165)
# says directory objects' delta pages hold at most 200; the sync follows nextLink anyway.
GRAPH_PAGE_SIZE = 999
SYNC_PHOTOS_EVERY = 24 * 3600.0  # seconds; photos are not in delta: their ETags checked daily
