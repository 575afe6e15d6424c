"""The Exchange Online PowerShell: every parameter by name and value, and quoting.

The scripts are read back with a small reader of the PowerShell they use (cmdlets,
backtick line continuations, `-Name value` parameters, single-quoted strings in which
a doubled quote character is one literal quote), written here from PowerShell's
quoting rules, not from the generator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.cli import main
from sigfilter.m365 import ScriptError, TenantSetup, ps_quote, remove_script, setup_script

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell ends a single-quoted string at any of these
SETUP = TenantSetup(
    tenant="example.com",
    smart_host="weu.sigfilter.example.net",
    certificate_name="example-com.weu.sigfilter.example.net",
    display_name="Example Corp",
)

Call = tuple[str, dict[str, str | None]]


def read_string(text: str, pos: int) -> tuple[str, int]:
    """A single-quoted string starting at ``pos``: (its value, the offset after it)."""
    assert text[pos] in QUOTES
    out, i = [], pos + 1
    while True:
        if i >= len(text):
            raise AssertionError(f"unterminated string at {pos}")
        c = text[i]
        if c in QUOTES:
            if i + 1 < len(text) and text[i + 1] in QUOTES:
                out.append(text[i + 1])
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1


def read_script(script: str) -> list[Call]:
    """The cmdlet calls of ``script`` (comments and blank lines skipped)."""
    statements: list[str] = []
    current = ""
    for line in script.split("\n"):
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith(" `"):
            current += line[:-2] + " "
            continue
        statements.append(current + line)
        current = ""
    assert not current, "a continuation runs off the end"
    calls: list[Call] = []
    for text in statements:
        if text.startswith("$ErrorActionPreference"):
            continue
        cmdlet, _, rest = text.partition(" ")
        params: dict[str, str | None] = {}
        i = 0
        while i < len(rest):
            if rest[i] == " ":
                i += 1
                continue
            assert rest[i] == "-", f"expected a parameter at {rest[i:]!r}"
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            name = rest[i + 1 : end]
            i = end + 1
            if i >= len(rest) or rest[i] == "-":
                params[name] = None
                continue
            if rest[i] in QUOTES:
                value, i = read_string(rest, i)
            else:
                end = rest.find(" ", i)
                end = len(rest) if end < 0 else end
                value, i = rest[i:end], end
                assert not any(q in value for q in QUOTES + '"$`') or value in (
                    "$true",
                    "$false",
                ), value
            assert name not in params, f"{name} given twice"
            params[name] = value
        calls.append((cmdlet, params))
    return calls


def calls(setup: TenantSetup = SETUP) -> dict[str, dict[str, str | None]]:
    found = read_script(setup_script(setup, "9.9"))
    assert [c for c, _ in found] == [
        "New-OutboundConnector",
        "New-InboundConnector",
        "New-TransportRule",
        "New-TransportRule",
    ]
    names = ["outbound", "inbound", "rule", "autoreply"]
    return dict(zip(names, (p for _, p in found), strict=True))


def test_outbound_connector_is_rule_scoped_with_tls_domain_validation() -> None:
    assert calls()["outbound"] == {
        "Name": "sigfilter to relay (example.com)",
        "ConnectorType": "OnPremises",
        "IsTransportRuleScoped": "$true",
        "UseMXRecord": "$false",
        "SmartHosts": "weu.sigfilter.example.net",
        "TlsSettings": "DomainValidation",
        "TlsDomain": "weu.sigfilter.example.net",
        "CloudServicesMailEnabled": "$true",
        "RouteAllMessagesViaOnPremises": "$false",
        "AllAcceptedDomains": "$false",
        "Enabled": "$true",
    }


def test_inbound_connector_requires_the_tenants_own_certificate_and_tls() -> None:
    assert calls()["inbound"] == {
        "Name": "sigfilter from relay (example.com)",
        "ConnectorType": "OnPremises",
        "SenderDomains": "*",
        "RequireTls": "$true",
        "RestrictDomainsToCertificate": "$true",
        "RestrictDomainsToIPAddresses": "$false",
        "TlsSenderCertificateName": "example-com.weu.sigfilter.example.net",
        "CloudServicesMailEnabled": "$true",
        "Enabled": "$true",
    }


def test_routing_rule_is_priority_zero_disabled_with_every_exception() -> None:
    assert calls()["rule"] == {
        "Name": "sigfilter: route to relay (example.com)",
        "Priority": "0",
        "Enabled": "$false",
        "FromScope": "InOrganization",
        "SenderAddressLocation": "Envelope",
        "RouteMessageOutboundConnector": "sigfilter to relay (example.com)",
        "ExceptIfHeaderMatchesMessageHeader": "X-Sigfilter-Processed",
        "ExceptIfHeaderMatchesPatterns": ".",
        "ExceptIfFromAddressMatchesPatterns": "<>",
        "ExceptIfMessageTypeMatches": "Calendaring",
        "ExceptIfMessageSizeOver": str(25 * 1024 * 1024),
        "ExceptIfHeaderContainsMessageHeader": "X-MS-Exchange-UnifiedGroup-SubmittedViaGroupAddress",
        "ExceptIfHeaderContainsWords": "/o=ExchangeLabs/ou=Exchange Administrative Group",
        "StopRuleProcessing": "$true",
    }


def test_automatic_replies_are_stamped_processed_by_a_rule_that_runs_first() -> None:
    assert calls()["autoreply"] == {
        "Name": "sigfilter: mark auto-replies (example.com)",
        "Priority": "0",
        "Enabled": "$true",
        "MessageTypeMatches": "OOF",
        "SetHeaderName": "X-Sigfilter-Processed",
        "SetHeaderValue": "1",
    }


def test_enabling_the_rule_is_left_to_the_admin_as_a_comment() -> None:
    script = setup_script(SETUP, "9.9")
    assert "# Enable-TransportRule `" in script
    assert "#     -Identity 'sigfilter: route to relay (example.com)'" in script
    assert not any(c == "Enable-TransportRule" for c, _ in read_script(script))


def test_pilot_group_external_only_and_size_limit() -> None:
    setup = TenantSetup(
        tenant="example.com",
        smart_host="weu.sigfilter.example.net",
        certificate_name="example-com.weu.sigfilter.example.net",
        size_limit=10_000_000,
        pilot_group="Signature pilot",
        external_only=True,
    )
    rule = calls(setup)["rule"]
    assert rule["FromMemberOf"] == "Signature pilot"
    assert rule["SentToScope"] == "NotInOrganization"
    assert rule["ExceptIfMessageSizeOver"] == "10000000"


def test_remove_undoes_exactly_what_setup_created_rules_first() -> None:
    made = calls()
    removed = read_script(remove_script(SETUP, "9.9"))
    assert [c for c, _ in removed] == [
        "Remove-TransportRule",
        "Remove-TransportRule",
        "Remove-InboundConnector",
        "Remove-OutboundConnector",
    ]
    assert [p["Identity"] for _, p in removed] == [
        made["rule"]["Name"],
        made["autoreply"]["Name"],
        made["inbound"]["Name"],
        made["outbound"]["Name"],
    ]
    assert all("Confirm:$false" in p for _, p in removed)


HOSTILE = [
    "O'Brien & Sons",
    "it\u2019s \u2018quoted\u2019 \u201aand\u201b",
    "'; Remove-Mailbox -Identity * -Confirm:$false; '",
    "$(Remove-Item C:\\ -Recurse) `n $env:USERNAME",
    '"double" `backtick` ; | & @()',
    "''",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_tenant_provided_strings_cannot_break_out(text: str) -> None:
    key = text[:30]  # rule names carry the key, and Exchange allows 64 characters
    setup = TenantSetup(
        tenant=key,
        smart_host="weu.sigfilter.example.net",
        certificate_name="example-com.weu.sigfilter.example.net",
        pilot_group=text,
    )
    found = calls(setup)
    assert found["outbound"]["Name"] == f"sigfilter to relay ({key})"
    assert found["rule"]["RouteMessageOutboundConnector"] == f"sigfilter to relay ({key})"
    assert found["rule"]["FromMemberOf"] == text
    removed = read_script(remove_script(setup, "9.9"))
    assert removed[3][1]["Identity"] == f"sigfilter to relay ({key})"
    assert read_string(ps_quote(text), 0) == (text, len(ps_quote(text)))


@pytest.mark.parametrize("text", ["line\nbreak", "tab\there", "nul\x00", "sep\u2028", "del\x7f"])
def test_control_characters_are_refused(text: str) -> None:
    with pytest.raises(ScriptError, match="control character"):
        ps_quote(text, "pilot group")


@pytest.mark.parametrize(
    "host", ["bad host", "-lead.example.net", "example", "a..b.net", "x'y.net"]
)
def test_smart_host_must_be_a_dns_name(host: str) -> None:
    setup = TenantSetup(tenant="t", smart_host=host, certificate_name="c.example.net")
    with pytest.raises(ScriptError, match="smart host must be a DNS name"):
        setup_script(setup, "9.9")


def test_cli_prints_the_scripts_for_a_catalog_tenant() -> None:
    runner = CliRunner()
    args = ["--tenant", "example.com", "--smart-host", "weu.sigfilter.example.net"]
    args += ["--catalog", str(CATALOG)]
    script = runner.invoke(main, ["m365", "script", *args])
    assert script.exit_code == 0, script.output
    found = read_script(script.output)
    assert found[1][1]["TlsSenderCertificateName"] == "example-com.weu.sigfilter.example.net"
    assert "example.com (Example Corp)" in script.output.splitlines()[0]
    removed = runner.invoke(main, ["m365", "remove", *args])
    assert removed.exit_code == 0 and len(read_script(removed.output)) == 4


def test_cli_errors_name_the_problem() -> None:
    runner = CliRunner()
    base = [
        "m365",
        "script",
        "--smart-host",
        "weu.sigfilter.example.net",
        "--catalog",
        str(CATALOG),
    ]
    unknown = runner.invoke(main, [*base, "--tenant", "nope.example"])
    assert unknown.exit_code == 1 and "no tenant 'nope.example'" in unknown.output
    bad = runner.invoke(main, [*base, "--tenant", "example.com", "--pilot-group", "a\nb"])
    assert bad.exit_code == 1 and "control character" in bad.output
    missing = runner.invoke(main, ["m365", "script", "--tenant", "example.com"], env={})
    assert missing.exit_code == 2 and "--smart-host" in missing.output


def test_rule_names_over_exchanges_64_characters_are_refused() -> None:
    long = TenantSetup(tenant="x" * 40 + ".example.com", smart_host="weu.sigfilter.example.net",
                       certificate_name="c.example.net")  # fmt: skip
    with pytest.raises(ScriptError, match="Exchange allows 64"):
        setup_script(long, "9.9")
    with pytest.raises(ScriptError, match="Exchange allows 64"):
        remove_script(long, "9.9")
