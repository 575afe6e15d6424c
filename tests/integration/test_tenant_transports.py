"""Each tenant returns through its own smtp transport, with its own client certificate."""

from __future__ import annotations

import re
import smtplib
import subprocess
import time
from pathlib import Path

from harness.postfixctl import PostfixInstance, new_workdir
from harness.sink import Sink, free_port


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
        deadline = time.monotonic() + 30  # postlogd writes the log a moment later
        while postfix.log_text().count("status=sent") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        log = postfix.log_text()
        queue_ids = {d: re.findall(rf"(\w+): from=<avery@{re.escape(d)}>", log) for d in domains}
        for n, domain in enumerate(sorted(domains), 1):
            # that tenant's message is delivered by that tenant's transport, and only it
            (qid,) = queue_ids[domain]
            sent = re.findall(
                rf"postfix-sigtest/(tenant\d)/smtp\[\d+\]: {qid}: to=.*status=sent", log
            )
            assert sent == [f"tenant{n}"], log[-2000:]
    finally:
        postfix.stop()
        sink.stop()
