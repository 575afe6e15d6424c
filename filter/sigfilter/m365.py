"""The Exchange Online PowerShell that wires a tenant to the relay, and its undo.

Pure: values in, script text out. Every value that comes from a tenant or an operator is
written as a PowerShell single-quoted string (nothing inside is expanded: no ``$()``,
no backtick escapes), with each quote character doubled. PowerShell also closes a
single-quoted string at the typographic quotes U+2018..U+201B, so those are doubled
too. Control characters are refused: a line break inside a value would make the script
unreadable to the admin who must review it.

The shape follows Microsoft's "email add-on service" pattern and the vendors' scripts
(../shared/notes/exchange-online-azure-postfix.md §1): a rule-scoped outbound connector
to our smart host with TLS domain validation, a certificate-based inbound connector
(the tenant's own certificate name, TLS required), and a transport rule at priority 0,
created disabled, with exceptions for our processed header, the null sender, calendar
items, large messages and Microsoft 365 group resubmissions. A second rule marks
automatic replies as processed, so the first never routes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .defaults import PROCESSED_HEADER, RULE_SIZE_LIMIT

_QUOTES = "'\u2018\u2019\u201a\u201b"  # what ends a single-quoted string in PowerShell
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_HOST = re.compile(
    r"(?=.{1,253}\Z)(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
MAX_RULE_NAME = 64  # New-TransportRule -Name: "The maximum length is 64 characters"
GROUP_HEADER = "X-MS-Exchange-UnifiedGroup-SubmittedViaGroupAddress"
GROUP_WORDS = "/o=ExchangeLabs/ou=Exchange Administrative Group"


class ScriptError(ValueError):
    """A value cannot go into the script (the message says which and why)."""


def ps_quote(value: str, what: str = "value") -> str:
    """``value`` as a PowerShell single-quoted string literal."""
    if _CONTROL.search(value):
        raise ScriptError(f"{what} contains a control character or line break: {value!r}")
    return "'" + "".join(c + c if c in _QUOTES else c for c in value) + "'"


def _host(value: str, what: str) -> str:
    if not _HOST.fullmatch(value):
        raise ScriptError(f"{what} must be a DNS name such as relay.example.net, not {value!r}")
    return value.lower()


@dataclass(frozen=True)
class TenantSetup:
    """What the script needs to know; names default from the tenant key."""

    tenant: str  # the catalog's tenant key (its folder name)
    smart_host: str  # our regional relay name, e.g. weu.sigfilter.example.net
    certificate_name: str  # the tenant's unique certificate domain on the return leg
    display_name: str = ""
    size_limit: int = RULE_SIZE_LIMIT  # bytes; larger mail is never routed to us
    pilot_group: str = ""  # FromMemberOf: only this group's members, for a pilot
    external_only: bool = False  # SentToScope NotInOrganization

    @property
    def outbound_name(self) -> str:
        return f"sigfilter to relay ({self.tenant})"

    @property
    def inbound_name(self) -> str:
        return f"sigfilter from relay ({self.tenant})"

    @property
    def rule_name(self) -> str:
        return f"sigfilter: route to relay ({self.tenant})"

    @property
    def autoreply_rule_name(self) -> str:
        return f"sigfilter: mark auto-replies ({self.tenant})"


def _command(cmdlet: str, params: list[tuple[str, str | None]]) -> str:
    """One cmdlet call, a parameter per line (backtick continuations)."""
    lines = [cmdlet]
    for name, value in params:
        lines.append(f"-{name}" if value is None else f"-{name} {value}")
    return " `\n    ".join(lines)


def _check_rule_names(s: TenantSetup) -> None:
    for name in (s.rule_name, s.autoreply_rule_name):
        if len(name) > MAX_RULE_NAME:
            raise ScriptError(
                f"transport rule name {name!r} is {len(name)} characters; Exchange allows "
                f"{MAX_RULE_NAME}: use a shorter tenant key"
            )


def setup_script(s: TenantSetup, version: str) -> str:
    _check_rule_names(s)
    smart_host = ps_quote(_host(s.smart_host, "smart host"), "smart host")
    cert = ps_quote(_host(s.certificate_name, "certificate name"), "certificate name")
    if s.size_limit <= 0:
        raise ScriptError("size limit must be a positive number of bytes")
    outbound = _command("New-OutboundConnector", [
        ("Name", ps_quote(s.outbound_name, "tenant")),
        ("ConnectorType", "OnPremises"),
        ("IsTransportRuleScoped", "$true"),
        ("UseMXRecord", "$false"),
        ("SmartHosts", smart_host),
        ("TlsSettings", "DomainValidation"),
        ("TlsDomain", smart_host),
        ("CloudServicesMailEnabled", "$true"),
        ("RouteAllMessagesViaOnPremises", "$false"),
        ("AllAcceptedDomains", "$false"),
        ("Enabled", "$true"),
    ])  # fmt: skip
    inbound = _command("New-InboundConnector", [
        ("Name", ps_quote(s.inbound_name, "tenant")),
        ("ConnectorType", "OnPremises"),
        ("SenderDomains", "'*'"),
        ("RequireTls", "$true"),
        ("RestrictDomainsToCertificate", "$true"),
        ("RestrictDomainsToIPAddresses", "$false"),
        ("TlsSenderCertificateName", cert),
        ("CloudServicesMailEnabled", "$true"),
        ("Enabled", "$true"),
    ])  # fmt: skip
    rule_params: list[tuple[str, str | None]] = [
        ("Name", ps_quote(s.rule_name, "tenant")),
        ("Priority", "0"),
        ("Enabled", "$false"),
        ("FromScope", "InOrganization"),
        ("SenderAddressLocation", "Envelope"),
        ("RouteMessageOutboundConnector", ps_quote(s.outbound_name, "tenant")),
        ("ExceptIfHeaderMatchesMessageHeader", ps_quote(PROCESSED_HEADER)),
        ("ExceptIfHeaderMatchesPatterns", "'.'"),
        ("ExceptIfFromAddressMatchesPatterns", "'<>'"),
        ("ExceptIfMessageTypeMatches", "Calendaring"),
        ("ExceptIfMessageSizeOver", str(s.size_limit)),
        ("ExceptIfHeaderContainsMessageHeader", ps_quote(GROUP_HEADER)),
        ("ExceptIfHeaderContainsWords", ps_quote(GROUP_WORDS)),
        ("StopRuleProcessing", "$true"),
    ]
    if s.external_only:
        rule_params.insert(4, ("SentToScope", "NotInOrganization"))
    if s.pilot_group:
        rule_params.insert(4, ("FromMemberOf", ps_quote(s.pilot_group, "pilot group")))
    rule = _command("New-TransportRule", rule_params)
    autoreply = _command("New-TransportRule", [
        ("Name", ps_quote(s.autoreply_rule_name, "tenant")),
        ("Priority", "0"),
        ("Enabled", "$true"),
        ("MessageTypeMatches", "OOF"),
        ("SetHeaderName", ps_quote(PROCESSED_HEADER)),
        ("SetHeaderValue", "'1'"),
    ])  # fmt: skip
    enable = _command("Enable-TransportRule", [("Identity", ps_quote(s.rule_name, "tenant"))])
    title = f"{s.tenant} ({s.display_name})" if s.display_name else s.tenant
    return "\n".join([
        f"# sigfilter {version}: Exchange Online setup for tenant {_comment(title)}",
        "# Review, then run in Exchange Online PowerShell (module ExchangeOnlineManagement):",
        "#   Connect-ExchangeOnline -UserPrincipalName admin@<your tenant>",
        "# Undo with the script `sigfilter m365 remove` prints.",
        "$ErrorActionPreference = 'Stop'",
        "",
        "# 1. Exchange Online -> our relay: used only by the rule below (transport-rule",
        "#    scoped), TLS with the relay's name validated.",
        outbound,
        "",
        "# 2. Our relay -> Exchange Online: accepted only with this tenant's own",
        "#    certificate name, TLS required.",
        inbound,
        "",
        "# 3. The rule that routes outbound mail to the relay: priority 0, created",
        "#    DISABLED. Not routed: mail we already processed, the null sender, calendar",
        f"#    items, mail over {s.size_limit} bytes, Microsoft 365 group resubmissions.",
        rule,
        "",
        "# 4. Automatic replies get our processed header, so rule 3 never routes them",
        "#    (created at priority 0, it runs before rule 3).",
        autoreply,
        "",
        "# 5. Test first: with the tenant in marker mode, send a message containing the",
        "#    marker and check it arrives signed. Then enable the routing rule:",
        "# " + enable.replace("\n", "\n# "),
        "",
    ])  # fmt: skip


def remove_script(s: TenantSetup, version: str) -> str:
    """Rules first (they name the outbound connector), then the connectors."""
    _check_rule_names(s)
    steps = [
        ("Remove-TransportRule", s.rule_name),
        ("Remove-TransportRule", s.autoreply_rule_name),
        ("Remove-InboundConnector", s.inbound_name),
        ("Remove-OutboundConnector", s.outbound_name),
    ]
    calls = [
        _command(cmdlet, [("Identity", ps_quote(name, "tenant")), ("Confirm:$false", None)])
        for cmdlet, name in steps
    ]
    return "\n".join([
        f"# sigfilter {version}: remove the Exchange Online setup for tenant {_comment(s.tenant)}",
        "# Mail flows directly again as soon as the routing rule is gone.",
        "$ErrorActionPreference = 'Stop'",
        "",
        *calls,
        "",
    ])  # fmt: skip


def _comment(text: str) -> str:
    if _CONTROL.search(text):
        raise ScriptError(f"contains a control character or line break: {text!r}")
    return text
