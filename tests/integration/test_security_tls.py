"""TLS on both legs, with throwaway CAs (tests/harness/tlsca.py) and the real Postfix.

Inbound: TLS 1.2+ only (a TLS 1.1 client is refused by our smtpd, not by its own
OpenSSL). Return leg: the tenant host's certificate is verified (chain and name); a
wrong one keeps the message queued, the right one gets it, and the tenant sees the
per-tenant client certificate from master.cf.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time

import pytest

from harness.securestack import TENANT_HOST, SecureStack, TlsSink, message, peer_cn
from harness.sink import Sink
from harness.tlsca import TestCA, client_context, pin_version, server_context


def offered_version(ca: TestCA, version: ssl.TLSVersion, ciphers: str = "") -> str | None:
    """Handshake the test client with a permissive local server: what does it speak?"""
    cert = ca.issue("permissive.test")
    server_ctx = server_context(cert)
    pin_version(server_ctx, version)
    server_ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ctx = client_context(ca, None, version)
        if ciphers:
            ctx.set_ciphers(ciphers)
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                ctx.wrap_socket(raw) as tls,
            ):
                return tls.version()
        except ssl.SSLError:
            return None
        finally:
            thread.join(10)


def test_tls_1_1_client_is_refused_by_our_server() -> None:
    with SecureStack() as stack:
        # The client really speaks TLS 1.1 here (so a refusal is not its own policy) ...
        assert offered_version(stack.connector_ca, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"
        # ... and our smtpd refuses it, while the same client at TLS 1.2 gets through.
        with pytest.raises(ssl.SSLError) as err:
            stack.send(message(), cert=stack.exo_cert, version=ssl.TLSVersion.TLSv1_1)
        # the server's alert, as the client saw it
        assert "ALERT_PROTOCOL_VERSION" in str(err.value), err.value
        log = stack.wait_log("unsupported protocol")
        assert "SSL_accept error from unknown[127.0.0.1]" in log
        assert "unsupported protocol" in log, log[-2000:]
        stack.send(message(), cert=stack.exo_cert, version=ssl.TLSVersion.TLSv1_2)
        (got,) = stack.sinks["example.com"].wait_for(1, timeout=30)
        assert b"X-Sigfilter-Processed: 1" in got.data


def test_weak_ciphers_are_refused_by_our_server() -> None:
    # CBC suites with SHA-1 MACs (our certificates are ECDSA): fine for TLS 1.2, not for us
    weak = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"
    with SecureStack() as stack:
        assert offered_version(stack.connector_ca, ssl.TLSVersion.TLSv1_2, weak) == "TLSv1.2"
        ctx = client_context(stack.connector_ca, stack.exo_cert, ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(weak)
        with (
            pytest.raises(ssl.SSLError) as err,
            smtplib.SMTP("127.0.0.1", stack.postfix.smtpd_port, timeout=30) as client,
        ):
            client.starttls(context=ctx)
        assert "HANDSHAKE_FAILURE" in str(err.value), err.value
        assert "no shared cipher" in stack.wait_log("no shared cipher")


def _swap_sink(stack: SecureStack, domain: str, sink: TlsSink) -> TlsSink:
    stack.sinks[domain].stop()
    stack.sinks[domain] = sink
    sink.start()
    return sink


def _still_queued(stack: SecureStack, needle: str, count: int) -> None:
    """The return leg was tried and refused `count` times in all, and the message waits."""
    deadline = time.monotonic() + 20
    while stack.postfix.log_text().count(needle) < count and time.monotonic() < deadline:
        stack.postfix.flush()
        time.sleep(0.2)
    log = stack.postfix.log_text()
    assert log.count(needle) >= count, log[-3000:]
    assert "status=sent" not in log
    assert stack.postfix.queue_size() == 1


def test_return_leg_verifies_the_tenant_host() -> None:
    domain = "example.com"
    stack = SecureStack()
    port = stack.sinks[domain].port
    right_name = TENANT_HOST[domain]
    # 1. the right name from a CA we do not trust
    stack.sinks[domain] = TlsSink(server_context(stack.rogue_ca.issue(right_name)), port)
    with stack:
        stack.send(message(), cert=stack.exo_cert)
        _still_queued(stack, "untrusted issuer /O=sigfilter tests/CN=Rogue Root", 1)
        assert stack.sinks[domain].messages == []

        # 2. a trusted CA, but a certificate for another host
        wrong = _swap_sink(
            stack, domain, TlsSink(server_context(stack.tenant_ca.issue("other.mail.test")), port)
        )
        _still_queued(stack, "Server certificate not verified", 2)
        assert wrong.messages == []

        # 3. the tenant's real host: delivered, and it saw our per-tenant certificate
        right = _swap_sink(
            stack,
            domain,
            TlsSink(
                server_context(stack.tenant_ca.issue(right_name), client_ca=stack.tenant_ca), port
            ),
        )
        stack.postfix.flush()
        (got,) = right.wait_for(1, timeout=30)
        assert b"X-Sigfilter-Processed: 1" in got.data
        assert peer_cn(right.peer_certs[0]) == "example-com.sigrelay.test"
        log = stack.wait_log("status=sent")
        assert f"Verified TLS connection established to 127.0.0.1[127.0.0.1]:{port}" in log
        assert "postfix-sigtest/tenant1/smtp" in log  # the per-tenant transport sent it
        assert stack.postfix.queue_size() == 0


def test_plaintext_return_host_gets_nothing() -> None:
    """A tenant host that offers no STARTTLS at all is not sent the message in clear."""
    domain = "example.com"
    stack = SecureStack()
    port = stack.sinks[domain].port
    plain = Sink(port)
    stack.sinks[domain] = plain  # type: ignore[assignment]
    with stack:
        stack.send(message(), cert=stack.exo_cert)
        _still_queued(stack, "TLS is required, but was not offered", 1)
        assert plain.messages == []
