"""Each tenant returns through its own smtp transport, with its own client certificate."""

from __future__ import annotations

import re
import smtplib
import subprocess
from pathlib import Path

from postfixctl import PostfixInstance, new_workdir
from sink import Sink, free_port


def self_signed(folder: Path, name: str) -> tuple[str, str]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o644)  # the smtp client runs as postfix (test keys only)
    return str(key), str(cert)


def test_each_tenant_uses_its_own_transport() -> None:
    work = new_workdir("sigfilter-tenants-")
    certs = work / "certs"
    certs.mkdir()
    certs.chmod(0o755)
    sink = Sink()
    domains = {"example.com": "", "example.org": ""}
    tenant_certs = {d: self_signed(certs, d.replace(".", "-")) for d in domains}
    sink.start()
    postfix = PostfixInstance(
        work / "postfix", free_port(), sink.port, None,
        tenant_domains={d: f"127.0.0.1:{sink.port}" for d in domains},
        tenant_certs=tenant_certs,
    )  # fmt: skip
    try:
        postfix.start()
        master = (postfix.conf_dir / "master.cf").read_text()
        for domain, (key, cert) in tenant_certs.items():
            assert f"smtp_tls_chain_files = {key}, {cert}" in master, domain
        with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as client:
            for n, domain in enumerate(sorted(domains), 1):
                client.sendmail(
                    f"avery@{domain}",
                    ["jane@customer.example"],
                    f"Subject: {n}\r\n\r\nhi\r\n".encode(),
                )
        assert sink.wait_for(2, timeout=30)
        log = postfix.log_text()
        for n, domain in enumerate(sorted(domains), 1):
            # the delivery of that tenant's message is logged by that tenant's transport
            assert re.search(
                rf"postfix-sigtest/tenant{n}/smtp\[\d+\]: \w+: to=<jane@customer.example>.*status=sent",
                log,
            ), log[-2000:]
    finally:
        postfix.stop()
        sink.stop()
