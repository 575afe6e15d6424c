"""`sigfilter doctor`: check everything a relay needs and say what to fix.

Each check yields Findings (ok, warn or fail, with the fix). The outside world comes
in through injectable functions: ``postconf`` (runs Postfix's postconf), ``resolve``
(DNS), ``now`` (certificate expiry) and ``redis_client`` — tests pass their own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import CatalogError, load_catalog
from ..catalog.check import check_catalog
from ..catalog.compiled import tenant_record
from ..catalog.model import Catalog
from ..config import MilterConfig
from ..defaults import (
    CERT_WARN_DAYS,
    HEALTH_TIMEOUT,
    SYNC_STATE_DIR,
)
from ..postfix_maps import MapError, differences, render_maps
from ..secrets import SecretFileError, read_secret
from ..store.redis_store import RedisPublisher, connect, redacted
from . import postfix_checks as checks
from .findings import Finding
from .health import HealthError, Negotiated, fetch_json, probe_milter
from .postfix_checks import (
    CERT_PARAMS,
    MAP_PARAMS,
    MAP_SUFFIX,
    PARAMS,
    map_files,
    parse_postconf,
    words,
)


class LookupFailed(Exception):
    """DNS could not answer (timeout, SERVFAIL): not the same as "no such record"."""


class PostconfFailed(Exception):
    """postconf could not run or refused the configuration directory."""


Postconf = Callable[[Sequence[str]], str]
Resolve = Callable[[str, str], list[str]]  # (name, type) -> answers; [] for none


def run_postconf(args: Sequence[str]) -> str:
    try:
        proc = subprocess.run(
            ["postconf", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostconfFailed(str(exc)) from exc
    if proc.returncode != 0:
        raise PostconfFailed(proc.stderr.strip() or f"exit {proc.returncode}")
    return proc.stdout


def dns_resolve(name: str, rdtype: str) -> list[str]:
    """Look ``name`` up with dnspython; [] when it has no such record."""
    # Imported here: every `sigfilter` start (the milter's too) would pay ~50 ms for them.
    import dns.exception  # noqa: PLC0415
    import dns.resolver  # noqa: PLC0415

    try:
        answer = dns.resolver.resolve(name, rdtype, lifetime=HEALTH_TIMEOUT)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise LookupFailed(str(exc) or type(exc).__name__) from exc
    return [r.to_text() for r in answer]


@dataclass
class Doctor:
    conf: MilterConfig
    where: str  # the config file (or "flags") named in fixes
    tenant: str | None = None
    postfix_dir: str | None = None  # postconf -c DIR (a private instance)
    postconf: Postconf = run_postconf
    resolve: Resolve | None = dns_resolve  # None: no DNS checks
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    redis_client: Callable[[str], Any] | None = None
    probe: Callable[[str], Negotiated] = probe_milter
    fetch: Callable[[str], dict[str, Any]] = fetch_json
    sync_state_dir: str = SYNC_STATE_DIR  # `users sync` state (deltaLinks, last success)
    catalog: Catalog | None = field(default=None, init=False)
    published: str | None = field(default=None, init=False)  # the version in Redis

    def run(self) -> list[Finding]:
        found: list[Finding] = []
        for check in (
            self.check_catalog,
            self.check_redis,
            self.check_milter,
            self.check_postfix,
            self.check_dns,
            self.check_sync,
        ):
            found += check()
        return found

    # -- catalog, Redis, the milter --------------------------------------------------------

    def check_catalog(self) -> Iterator[Finding]:
        if not self.conf.catalog:
            return
        try:
            cat = load_catalog(Path(self.conf.catalog))
        except CatalogError as exc:
            yield _catalog_fail(self.conf.catalog, exc.problems)
            return
        problems, summary = check_catalog(cat)
        if problems:
            yield _catalog_fail(self.conf.catalog, problems)
            return
        self.catalog = cat
        yield Finding("ok", "catalog", f"{self.conf.catalog}: {summary}")
        if self.tenant and self.tenant not in cat.tenants:
            yield Finding(
                "fail",
                "catalog",
                f"no tenant {self.tenant} in {self.conf.catalog} "
                f"(have: {', '.join(sorted(cat.tenants))})",
                f"create {self.conf.catalog}/tenants/{self.tenant}/tenant.toml or pick one above",
            )

    def check_redis(self) -> Iterator[Finding]:
        if not self.conf.redis:
            return
        url = redacted(self.conf.redis)  # what findings show: never a password
        password = None
        if self.conf.redis_password_file:
            try:
                password = read_secret(Path(self.conf.redis_password_file))
            except SecretFileError as exc:
                yield Finding("fail", "redis", f"redis_password_file: {exc}",
                              f"correct redis_password_file in {self.where}")  # fmt: skip
                return
        connect_to = self.redis_client or (lambda u: connect(u, self.conf.redis_timeout, password))
        client = connect_to(self.conf.redis)
        try:
            client.ping()
            status = RedisPublisher(client).status()
        except Exception:  # noqa: BLE001 - any client error means the same to the operator
            yield Finding(
                "fail",
                "redis",
                f"{url} does not answer PING",
                f"start Redis (systemctl start redis-server) or correct milter.redis in "
                f"{self.where}; the milter serves from its cache meanwhile",
            )
            return
        version = status.get("current_version", "none")
        if version == "none":
            yield Finding(
                "fail",
                "redis",
                f"{url} answers but holds no published catalog",
                "publish one: sigfilter publish CATALOG_DIR --redis " + url,
            )
            return
        self.published = version
        yield Finding("ok", "redis", f"{url} answers; catalog version {version} published")

    def check_milter(self) -> Iterator[Finding]:
        spec = self.conf.socket
        if not spec:
            return
        try:
            got = self.probe(spec)
        except HealthError as exc:
            yield Finding(
                "fail",
                "milter",
                f"the milter does not answer on {spec}: {exc}",
                "start it (systemctl start sigfilter) and see its log (journalctl -u sigfilter)",
            )
            return
        yield Finding("ok", "milter", f"answers on {spec} (milter protocol {got.version})")
        yield from self._served_version()

    def _served_version(self) -> Iterator[Finding]:
        """The milter's /status against what Redis holds: a stale milter missed a switch."""
        listen = self.conf.metrics
        if listen in ("", "off"):
            return
        url = f"http://{listen}/status"
        try:
            served = self.fetch(url).get("catalog_version")
        except HealthError as exc:
            yield Finding(
                "warn",
                "milter",
                f"its metrics port does not answer: {exc}",
                f"check milter.metrics in {self.where} and the milter's log",
            )
            return
        if self.published is not None and str(served) != self.published:
            yield Finding(
                "warn",
                "milter",
                f"the milter serves catalog version {served}, Redis holds {self.published}",
                "look for Redis errors in the milter's log; systemctl reload sigfilter",
            )
        else:
            yield Finding("ok", "milter", f"serves catalog version {served}")

    # -- Postfix ---------------------------------------------------------------------------

    def _postconf(self, *args: str) -> str:
        prefix = ["-c", self.postfix_dir] if self.postfix_dir else []
        return self.postconf([*prefix, *args])

    def check_postfix(self) -> Iterator[Finding]:
        try:
            values = parse_postconf(self._postconf(*PARAMS))
            explicit = set(parse_postconf(self._postconf("-n")))
            services = parse_postconf(self._postconf("-P"))
        except PostconfFailed as exc:
            where = f"-c {self.postfix_dir}" if self.postfix_dir else "the default instance"
            yield Finding(
                "fail",
                "postfix",
                f"postconf failed for {where}: {exc}",
                "install Postfix, or pass --postfix-config DIR for a private instance",
            )
            return
        yield from checks.milter_params(values, explicit, self.conf.socket)
        yield from checks.size(values, self.conf.max_size, self.where)
        yield from checks.memory(values, self.conf.max_size, self.conf.memory_budget, self.where)
        yield from checks.tls(values)
        yield from checks.relay(values)
        yield from self._maps(values)
        yield from self._certificates(values, services)

    def _maps(self, v: dict[str, str]) -> Iterator[Finding]:
        maps = [(n, kind, path) for n in MAP_PARAMS for kind, path in map_files(v.get(n, ""))]
        problems = [f for name, kind, path in maps for f in _map_problem(name, kind, path)]
        yield from problems
        if maps and not problems:
            yield Finding("ok", "postfix", f"{len(maps)} map file(s) present")
            yield from self._maps_match_catalog(v)

    def _maps_match_catalog(self, v: dict[str, str]) -> Iterator[Finding]:
        """Postfix's sender-domain and return-host maps against the catalog (one list)."""
        if self.catalog is None:
            return
        try:
            expected = render_maps(tenant_record(t) for t in self.catalog.tenants.values())
        except MapError as exc:
            yield Finding("fail", "postfix", f"the catalog cannot be routed: {exc}")
            return
        fix = (
            f"sigfilter postfix-maps --catalog {self.conf.catalog} --out DIR "
            "(the maps' directory) && postfix reload"
        )
        for param, name in (
            ("smtpd_sender_restrictions", "tenant_senders"),
            ("sender_dependent_relayhost_maps", "relayhost_by_sender"),
        ):
            for _, path in map_files(v.get(param, ""))[:1]:
                drift = differences(expected, name, Path(path).read_text("utf-8", "replace"))
                if drift:
                    shown = "; ".join(drift[:5]) + (
                        f" (+{len(drift) - 5} more)" if len(drift) > 5 else ""
                    )
                    yield Finding(
                        "fail",
                        "postfix",
                        f"{path} ({param}) differs from the catalog: {shown}",
                        fix,
                    )
                else:
                    yield Finding("ok", "postfix", f"{path} ({param}) agrees with the catalog")

    def _certificates(self, v: dict[str, str], services: dict[str, str]) -> Iterator[Finding]:
        files: dict[str, str] = {}
        for name in CERT_PARAMS:
            for path in words(v.get(name, "")):
                files.setdefault(path, name)
        for name, value in services.items():  # master.cf -o overrides (tenant transports)
            if name.rpartition("/")[2] in CERT_PARAMS:
                for path in words(value):
                    files.setdefault(path, name)
        for path, name in files.items():
            yield from self._certificate(path, name)

    def _certificate(self, path: str, name: str) -> Iterator[Finding]:
        from cryptography import x509  # noqa: PLC0415 - see dns_resolve

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            yield Finding(
                "fail",
                "tls",
                f"{path} ({name}) cannot be read: {exc.strerror}",
                f"put the file there or correct {name}",
            )
            return
        if b"-----BEGIN CERTIFICATE-----" not in data:
            return  # a key file in a chain_files list
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            yield Finding(
                "fail", "tls", f"{path} ({name}): not a PEM certificate ({exc})", f"replace {path}"
            )
            return
        leaf = certs[0]
        ends = leaf.not_valid_after_utc
        subject = leaf.subject.rfc4514_string()
        days = (ends - self.now()).total_seconds() / 86400
        day = ends.strftime("%Y-%m-%d")
        if days < 0:
            yield Finding(
                "fail",
                "tls",
                f"certificate {path} ({subject}) expired on {day}",
                f"renew it, install it at {path} and run postfix reload",
            )
        elif days < CERT_WARN_DAYS:
            yield Finding(
                "warn",
                "tls",
                f"certificate {path} ({subject}) expires on {day}, in {int(days)} days",
                "renew it soon",
            )
        else:
            yield Finding("ok", "tls", f"certificate {path} ({subject}) valid until {day}")

    # -- directory sync (users sync) ---------------------------------------------------------

    def check_sync(self) -> Iterator[Finding]:
        if self.catalog is None:
            return
        from ..graph.status import sync_status  # noqa: PLC0415 - only when a tenant syncs

        for key, tenant in sorted(self.catalog.tenants.items()):
            if tenant.graph is not None and (not self.tenant or key == self.tenant):
                for level, message, fix in sync_status(
                    tenant, Path(self.sync_state_dir), self.now()
                ):
                    yield Finding(level, "sync", message, fix)

    # -- DNS --------------------------------------------------------------------------------

    def check_dns(self) -> Iterator[Finding]:
        if self.resolve is None or self.catalog is None:
            return
        tenants = self.catalog.tenants
        if self.tenant and self.tenant not in tenants:
            return  # the catalog check said so
        for key in [self.tenant] if self.tenant else sorted(tenants):
            tenant = tenants[key]
            yield from self._return_host(key, tenant.return_host)
            selector = str(getattr(tenant, "dkim_selector", "") or "")
            if selector:
                signing = str(getattr(tenant, "dkim_domain", "") or "")
                for domain in [signing] if signing else tenant.domains:
                    yield from self._dkim(key, selector, domain)

    def _lookup(self, name: str, rdtype: str) -> list[str]:
        assert self.resolve is not None
        return self.resolve(name, rdtype)

    def _return_host(self, key: str, spec: str) -> Iterator[Finding]:
        host = _host_of(spec)
        if not host or _is_address(host):
            return
        try:
            records = self._lookup(host, "MX") or self._lookup(host, "A")
        except LookupFailed as exc:
            yield Finding(
                "warn",
                "dns",
                f"cannot look up {host} (tenant {key}): {exc}",
                "check the resolver in /etc/resolv.conf",
            )
            return
        if not records:
            yield Finding(
                "fail",
                "dns",
                f"return host {host} of tenant {key} has no MX or A record",
                f"correct return_host in tenants/{key}/tenant.toml (Exchange Online: "
                "DOMAIN-TLD.mail.protection.outlook.com)",
            )
        else:
            yield Finding("ok", "dns", f"return host {host} of tenant {key}: {records[0]}")

    def _dkim(self, key: str, selector: str, domain: str) -> Iterator[Finding]:
        name = f"{selector}._domainkey.{domain}"
        try:
            records = self._lookup(name, "TXT")
        except LookupFailed as exc:
            yield Finding("warn", "dns", f"cannot look up {name}: {exc}", "check the resolver")
            return
        text = " ".join(r.replace('" "', "").strip('"') for r in records)
        if "p=" not in text:
            yield Finding(
                "fail",
                "dns",
                f"no DKIM key at {name} (tenant {key})",
                f"publish the TXT record that sigfilter dkim prints for {domain}",
            )
        else:
            yield Finding("ok", "dns", f"DKIM key published at {name}")


# -- helpers ----------------------------------------------------------------------------------


def _catalog_fail(where: str, problems: list[str]) -> Finding:
    shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    return Finding(
        "fail",
        "catalog",
        f"{where} has {len(problems)} problem(s): {shown}",
        f"sigfilter catalog check {where} lists them; fix, then reload the milter "
        "(kill -USR1 its pid)",
    )


def _map_problem(name: str, kind: str, path: str) -> list[Finding]:
    postmap = f"postmap {path} && " if kind in MAP_SUFFIX else ""
    if not Path(path).is_file():
        return [
            Finding(
                "fail",
                "postfix",
                f"map file {path} ({name}) is missing",
                f"create it (postfix/README.md lists its lines), then {postmap}postfix reload",
            )
        ]
    if kind in MAP_SUFFIX and not Path(path + MAP_SUFFIX[kind]).is_file():
        return [
            Finding(
                "fail",
                "postfix",
                f"map {kind}:{path} ({name}) was never built",
                f"{postmap}postfix reload",
            )
        ]
    return []


def _host_of(spec: str) -> str:
    host = spec.strip()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rpartition(":")[0] if re.search(r":\d+$", host) else host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
