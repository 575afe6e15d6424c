"""Run a private Postfix instance on loopback for tests, from the templates in postfix/.

Everything lives under `workdir`: conf/ (main.cf, master.cf, the two texthash maps),
queue/, data/ and log/maillog. The system instance (/etc/postfix, /var/spool/postfix)
is never touched. Needs root (postfix start) and Debian's postfix package, which may be
installed but never configured.

See /work/shared/notes/postfix-test-instance.md for why things are done this way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pty
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from string import Template
from types import ModuleType

from sigfilter.catalog import load_catalog
from sigfilter.catalog.compiled import tenant_record
from sigfilter.defaults import MILTER_TIMEOUTS
from sigfilter.postfix_maps import render_maps, return_host

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "postfix"
HOST = "127.0.0.1"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTMAP = "/usr/sbin/postmap"
EOP_RANGES = TEMPLATES / "eop-outbound-ranges.txt"
# The test profile's connector source: only 127.0.0.1 (127.0.0.2 and up are strangers).
TEST_CONNECTOR_NETWORKS = ("127.0.0.1/32",)
MAIL_OWNER = "postfix"

RELOAD_LINE = "]: reload -- version"  # what master logs once it has re-read its config
START_TIMEOUT = 60.0  # postfix start (its integrity check runs first) + smtpd answering
STOP_TIMEOUT = 30.0  # postfix stop waits up to 5 s itself, then kills with force
COMMAND_TIMEOUT = 30.0
LOG_TAIL = 60  # log lines quoted in errors


class PostfixError(RuntimeError):
    """A postfix command failed; the message carries its output and the log's tail."""


def available() -> bool:
    """Whether this process can run a private instance (postfix installed, running as root)."""
    return os.geteuid() == 0 and Path(POSTFIX).exists() and _has_user(MAIL_OWNER)


def new_workdir(prefix: str = "sigfilter-postfix-") -> Path:
    """A fresh directory under the system temp dir that the `postfix` user can traverse.

    pytest's tmp_path does not do: /tmp/pytest-of-root is mode 700.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def render_template(name: str, variables: Mapping[str, str]) -> str:
    """Render postfix/`name` with string.Template; every placeholder must be given."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    try:
        return Template(text).substitute(variables)
    except (KeyError, ValueError) as exc:
        raise PostfixError(f"cannot render {name}: missing or bad placeholder {exc}") from exc


def connector_ranges(path: Path = EOP_RANGES) -> tuple[str, list[str]]:
    """The `# taken:` date and the networks of a ranges file (one CIDR a line, # comments)."""
    taken = ""
    networks = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("# taken:"):
            taken = line.partition(":")[2].strip()
        elif line and not line.startswith("#"):
            networks.append(line)
    return taken, networks


def cidr_table(networks: list[str] | tuple[str, ...]) -> str:
    """A Postfix cidr table that answers OK for each network (mynetworks = cidr:FILE)."""
    return "".join(f"{net} OK\n" for net in networks)


def _role_filters() -> ModuleType:
    """The Ansible role's filter plugin: the deployed relay and this one share its code."""
    path = REPO / "ansible" / "roles" / "sigfilter" / "filter_plugins" / "sigfilter_filters.py"
    spec = importlib.util.spec_from_file_location("sigfilter_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROLE_FILTERS = _role_filters()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    """True unless /proc says the process is gone or a zombie (PID 1 may reap late here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


def _run_pty(args: list[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run `args` with stdout/stderr on a pseudo-terminal and return (status, output).

    postfix(1) prints its errors only when stderr is a terminal; with a pipe it exits 1
    silently (see the notes).
    """
    master_fd, slave_fd = pty.openpty()
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=slave_fd,
            stderr=slave_fd,
            start_new_session=True,
        )
    finally:
        os.close(slave_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                output = b"".join(chunks).decode(errors="replace")
                raise PostfixError(f"{' '.join(args)} timed out after {timeout:.0f}s:\n{output}")
            ready, _, _ = select.select([master_fd], [], [], min(remaining, 0.1))
            if ready:
                try:
                    data = os.read(master_fd, 65536)
                except OSError:  # EIO: every slave side is closed
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break  # exited; a daemon it started may still hold the terminal
        status = proc.wait(max(deadline - time.monotonic(), 0.1))
    finally:
        os.close(master_fd)
    output = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return status, output


class PostfixInstance:
    """A private Postfix relay on 127.0.0.1:`smtpd_port`.

    tenant_domains maps a sender domain to its return host "127.0.0.1:PORT"; by default
    example.com returns to the sink on `sink_port`. `milter` is the Postfix spelling
    ("unix:/path/sigfilter.sock" or "inet:127.0.0.1:PORT") or None for a bare relay.
    `overrides` replaces any template variable (see postfix/README.md), e.g.
    {"MINIMAL_BACKOFF_TIME": "5s"}. After changing attributes, reload() re-renders the
    configuration and makes Postfix pick it up.
    """

    def __init__(
        self,
        workdir: Path,
        smtpd_port: int,
        sink_port: int,
        milter: str | None,
        tenant_domains: dict[str, str] | None = None,
        default_action: str = "accept",
        size_limit: int = 36700160,
        overrides: Mapping[str, str] | None = None,
        tenant_certs: Mapping[str, tuple[str, str]] | None = None,
        connector_networks: tuple[str, ...] = TEST_CONNECTOR_NETWORKS,
        tls_policy: Mapping[str, str] | None = None,
        catalog: Path | None = None,
    ) -> None:
        if default_action not in ("accept", "tempfail"):
            raise ValueError(f"default_action must be accept or tempfail, not {default_action!r}")
        self.workdir = Path(workdir).resolve()
        self.smtpd_port = smtpd_port
        self.sink_port = sink_port
        self.milter = milter
        self.tenant_domains = (
            dict(tenant_domains)
            if tenant_domains is not None
            else {"example.com": f"{HOST}:{sink_port}"}
        )
        self.default_action = default_action
        self.size_limit = size_limit
        self.overrides = dict(overrides or {})
        # sender domain -> (key file, certificate chain file) for its own return transport
        self.tenant_certs = dict(tenant_certs or {})
        # written to conf/connector_networks.cidr, the test profile's mynetworks
        self.connector_networks = tuple(connector_networks)
        # next hop ("[127.0.0.1]:PORT") -> policy ("secure match=NAME"), smtp_tls_policy_maps
        self.tls_policy = dict(tls_policy or {})
        # The production way: the tenant maps generated from a catalog by the code of
        # `sigfilter postfix-maps` (tenant_domains is then unused).
        self.catalog = catalog
        self.conf_dir = self.workdir / "conf"
        self.queue_dir = self.workdir / "queue"
        self.data_dir = self.workdir / "data"
        self.log_dir = self.workdir / "log"
        self.log_file = self.log_dir / "maillog"

    # --- configuration -------------------------------------------------------------

    def variables(self) -> dict[str, str]:
        """The template variables for this instance (the test profile)."""
        values = {
            "MYHOSTNAME": "relay.sigfilter.test",
            "SYSLOG_NAME": "postfix-sigtest",
            "QUEUE_DIR": str(self.queue_dir),
            "DATA_DIR": str(self.data_dir),
            "CONFIG_DIR": str(self.conf_dir),
            "LOG_FILE": str(self.log_file),
            "LOG_PREFIXES": str(self.log_dir),
            "SMTPD_ADDR": HOST,
            "SMTPD_PORT": str(self.smtpd_port),
            "SMTP_DNS_SUPPORT_LEVEL": "disabled",
            "SMTP_HOST_LOOKUP": "native",
            "SMTPD_PEERNAME_LOOKUP": "no",
            "CONNECTOR_NETWORKS": f"cidr:{self.conf_dir}/connector_networks.cidr",
            "MAP_TYPE": "texthash",
            "MILTER": self.milter or "",
            "MILTER_DEFAULT_ACTION": self.default_action,
            **{name.upper(): f"{s}s" for name, s in MILTER_TIMEOUTS.items()},
            "MESSAGE_SIZE_LIMIT": str(self.size_limit),
            "TLS_SMTPD_LEVEL": "none",
            "TLS_SMTPD_CHAIN_FILES": "",
            "TLS_SMTPD_REQ_CCERT": "no",
            "TLS_SMTPD_CA_FILE": "",
            "TLS_SMTP_LEVEL": "may",
            "TLS_SMTP_CHAIN_FILES": "",
            "TLS_SMTP_CA_FILE": "",
            "TLS_SMTP_POLICY_MAPS": (
                f"texthash:{self.conf_dir}/tls_policy" if self.tls_policy else ""
            ),
            "QUEUE_RUN_DELAY": "1s",
            "MINIMAL_BACKOFF_TIME": "1s",
            "MAXIMAL_BACKOFF_TIME": "2s",
            "TENANT_TRANSPORTS": self._tenant_transports(),
        }
        values.update(self.overrides)
        return values

    def _tenant_names(self) -> dict[str, str]:
        return {domain: f"tenant{n}" for n, domain in enumerate(sorted(self.tenant_certs), 1)}

    def _tenant_transports(self) -> str:
        lines = []
        for domain, name in self._tenant_names().items():
            key, cert = self.tenant_certs[domain]
            lines += [
                f"# {domain}",
                f"{name} unix - - n - - smtp",
                f"  -o syslog_name=postfix-sigtest/{name}",
                f"  -o {{ smtp_tls_chain_files = {key}, {cert} }}",
            ]
        return "\n".join(lines)

    def make_dirs(self) -> None:
        """The instance's directories, owned as Postfix wants them."""
        mail_owner = pwd.getpwnam(MAIL_OWNER)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Postfix daemons run as `postfix` and open maps (and the milter socket) by
        # absolute path, so the whole path must be traversable.
        for path in (self.workdir, self.conf_dir, self.queue_dir, self.log_dir):
            path.mkdir(exist_ok=True)
            os.chown(path, 0, 0)
            path.chmod(0o755)
        self._check_traversable(self.workdir)
        self.data_dir.mkdir(exist_ok=True)
        os.chown(self.data_dir, mail_owner.pw_uid, mail_owner.pw_gid)
        self.data_dir.chmod(0o700)

    def write_config(self) -> None:
        """Render main.cf, master.cf and the maps into conf/; create the directories."""
        self.make_dirs()
        variables = self.variables()
        files = {
            "main.cf": render_template("main.cf.tmpl", variables),
            "master.cf": render_template("master.cf.tmpl", variables),
            **(self._catalog_maps() if self.catalog is not None else self._tenant_maps()),
            "connector_networks.cidr": cidr_table(self.connector_networks),
            "tls_policy": "".join(f"{hop} {policy}\n" for hop, policy in self.tls_policy.items()),
        }
        # Postfix does not read a file modified in the current second: it sleeps 300 ms
        # at a time until the mtime is in the past (measured: ~2.4 s per fresh start).
        # Backdate the files so it reads them at once.
        past = time.time() - 2
        for name, text in files.items():
            path = self.conf_dir / name
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o644)
            os.utime(tmp, (past, past))
            tmp.replace(path)

    def _tenant_maps(self) -> dict[str, str]:
        """The maps from tenant_domains (the dev stacks: no catalog routes them)."""
        return {
            "tenant_senders": "".join(f"{domain} OK\n" for domain in self.tenant_domains),
            "relayhost_by_sender": "".join(
                f"@{domain} {return_host(host)}\n" for domain, host in self.tenant_domains.items()
            ),
            "transport_by_sender": "".join(
                f"@{domain} {name}:{return_host(self.tenant_domains[domain])}\n"
                for domain, name in self._tenant_names().items()
            ),
        }

    def _catalog_maps(self) -> dict[str, str]:
        tenants = load_catalog(self.catalog).tenants.values() if self.catalog else ()
        transports = dict(self._tenant_names())  # the tenant's key is its domain here
        return dict(render_maps([tenant_record(t) for t in tenants], transports).files)

    @staticmethod
    def _check_traversable(path: Path) -> None:
        for parent in (path, *path.parents):
            if not parent.stat().st_mode & 0o001:
                raise PostfixError(
                    f"{parent} is not searchable by others (mode {parent.stat().st_mode & 0o777:o}): "
                    f"Postfix daemons (user {MAIL_OWNER}) could not reach {path}. Use a work "
                    "directory under a world-searchable parent, e.g. tempfile.mkdtemp() + chmod 755."
                )

    # --- lifecycle ---------------------------------------------------------------------

    def _postfix(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        status, output = _run_pty([POSTFIX, "-c", str(self.conf_dir), *args], timeout)
        if status != 0:
            raise PostfixError(
                f"postfix {' '.join(args)} exited {status}:\n{output}\n--- log tail ---\n{self._log_tail()}"
            )
        return output

    def start(self) -> None:
        if not available():
            raise PostfixError("a private Postfix instance needs root and the postfix package")
        self.write_config()
        self._postfix("check")
        started = time.monotonic()
        self._postfix("start", timeout=START_TIMEOUT)
        try:
            self._wait_for_smtpd(START_TIMEOUT - (time.monotonic() - started))
        except BaseException:
            self.stop()
            raise

    def _wait_for_smtpd(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 1.0)
        last = "no attempt"
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.smtpd_port), timeout=2) as s:
                    s.settimeout(max(deadline - time.monotonic(), 0.5))
                    banner = s.recv(512)
                    if banner.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
                    last = f"banner {banner!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise PostfixError(
            f"smtpd on {HOST}:{self.smtpd_port} did not answer ({last})\n--- log tail ---\n{self._log_tail()}"
        )

    def reload(self) -> None:
        """Re-render the configuration, reload Postfix, and return once it serves with it.

        `postfix reload` only signals the master: until the master has re-read main.cf,
        and while an smtpd started before stays alive, a new connection can still get
        the old settings (a test failed that way on a busy machine). So wait for the
        master's "reload" log line and for the old smtpd processes to be gone.
        """
        old_smtpd = [pid for pid in self.instance_pids() if _comm(pid) == "smtpd"]
        reloads = self.log_text().count(RELOAD_LINE)
        self.write_config()
        self._postfix("check")
        self._postfix("reload")
        deadline = time.monotonic() + START_TIMEOUT
        while self.log_text().count(RELOAD_LINE) <= reloads or any(map(_pid_alive, old_smtpd)):
            if time.monotonic() > deadline:
                raise PostfixError(
                    f"reload not in effect after {START_TIMEOUT:g} s\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def master_pid(self) -> int | None:
        try:
            text = (self.queue_dir / "pid" / "master.pid").read_text()
        except OSError:
            return None
        fields = text.split()
        return int(fields[0]) if fields and fields[0].isdigit() else None

    def running(self) -> bool:
        pid = self.master_pid()
        return pid is not None and _pid_alive(pid)

    def instance_pids(self) -> list[int]:
        """Live processes of this instance: those whose environment names our config dir.

        master passes MAIL_CONFIG to every daemon it starts (import_environment), so this
        finds the master and its children even if master.pid is gone.
        """
        needle = f"MAIL_CONFIG={self.conf_dir}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0") and _pid_alive(int(entry.name)):
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """postfix stop, then make sure no process of this instance survives."""
        pid = self.master_pid()
        errors = []
        if pid is not None and _pid_alive(pid):
            try:
                self._postfix("stop", timeout=STOP_TIMEOUT)
            except PostfixError as exc:
                errors.append(str(exc))
        if not self._wait_gone(pid, 5.0):
            for victim in {*self.instance_pids(), *([pid] if pid else [])}:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(victim, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
            if not self._wait_gone(pid, 5.0):
                raise PostfixError(
                    f"Postfix processes survive SIGKILL: {self.instance_pids()}\n"
                    + "\n".join(errors)
                )

    def _wait_gone(self, pid: int | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if (pid is None or not _pid_alive(pid)) and not self.instance_pids():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def __enter__(self) -> PostfixInstance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- queue ---------------------------------------------------------------------------

    def _postqueue(self, *args: str) -> str:
        proc = subprocess.run(
            [POSTQUEUE, "-c", str(self.conf_dir), *args],
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise PostfixError(
                f"postqueue {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace')}\n--- log tail ---\n{self._log_tail()}"
            )
        return proc.stdout.decode(errors="replace")

    def flush(self) -> None:
        """Attempt delivery of every queued message now (postqueue -f)."""
        self._postqueue("-f")

    def queue_size(self) -> int:
        """Messages in the queue (incoming, active, deferred, hold), from postqueue -j."""
        if not self.running():
            return self._queue_files()
        return sum(1 for line in self._postqueue("-j").splitlines() if line.strip())

    def corrupt_files(self) -> list[str]:
        """Queue files Postfix set aside as corrupt (queue/corrupt): each a lost message."""
        root = self.queue_dir / "corrupt"
        return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.is_dir() else []

    def _queue_files(self) -> int:
        count = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            root = self.queue_dir / sub
            if root.is_dir():
                count += sum(1 for p in root.rglob("*") if p.is_file())
        return count

    # --- logs -----------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-LOG_TAIL:]) or "(empty log)"

    def remove(self) -> None:
        """Delete the work directory (after stop())."""
        shutil.rmtree(self.workdir, ignore_errors=True)
