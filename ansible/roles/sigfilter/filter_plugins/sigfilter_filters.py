"""Filters that render sigfilter's Postfix templates exactly as the test stack does.

postfix/*.tmpl use ${NAME} placeholders (Python's string.Template), shared by this role
and tests/harness/postfixctl.py, so the relay Ansible writes and the relay the tests run come
from one source.
"""

from __future__ import annotations

from string import Template
from typing import Any


def postfix_template(text: str, variables: dict[str, Any]) -> str:
    """Fill every ${NAME}; a missing one is an error naming it."""
    try:
        return Template(text).substitute({k: str(v) for k, v in variables.items()})
    except KeyError as exc:
        raise ValueError(f"postfix template needs the variable {exc.args[0]}") from exc


def connector_networks(text: str) -> list[str]:
    """The networks of a ranges file: one CIDR a line, # comments."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def transport_args(tenants: list[dict[str, Any]]) -> list[str]:
    """`--transport KEY=tenantN` for each tenant with its own certificate, numbered as
    postfix_values.yml.j2 numbers their master.cf transports."""
    own = [t for t in tenants if t.get("cert_file")]
    return [arg for n, t in enumerate(own, 1) for arg in ("--transport", f"{t['tenant']}=tenant{n}")]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sigfilter_postfix_template": postfix_template,
            "sigfilter_connector_networks": connector_networks,
            "sigfilter_transport_args": transport_args,
        }
