"""Benchmark: bare Postfix, Postfix + our milter and Postfix + alterMIME, same run.

    .venv/bin/python tests/bench/bench_altermime.py [--messages 1000] [--concurrency 20] [--repeats 2]

Starts everything on 127.0.0.1 and stops it. For each repeat it sends the same ~20 KB
HTML+text reply as bench_stack.py through three private Postfix instances:

- bare: no milter, no content filter;
- milter: `sigfilter milter` on a unix socket with the example catalog;
- altermime: alterMIME as an after-queue content filter, Postfix's "simple content
  filter" from FILTER_README: `content_filter = altermime:dummy` sends every message to
  a pipe(8) service that runs tests/bench/altermime/filter.sh as user `nobody`; the
  script runs `altermime --htmltoo --force-for-bad-html` on a temp copy (the reply's
  HTML part has no </body>; without that flag alterMIME leaves the HTML part alone)
  and reinjects it over SMTP (system python3 -S, a bare-socket client: smtplib would
  triple Python's start-up) into a second smtpd listener on another loopback port
  that has no content filter and no milter (sendmail cannot reach a private instance
  as nobody). Three forks per message: sh, altermime, python3.

It prints messages/second for the three, the ratios milter/bare, altermime/bare and
milter/altermime (target: milter at least 2.5x alterMIME), and how many messages
arrived signed (X-Sigfilter-Processed) or altered (the disclaimer's marker). Every
message must arrive. Needs root, Postfix and alterMIME (`apt-get install -y altermime`;
exits 2 if it is missing).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stack import CATALOG, messages, run_load

from harness.milterctl import MilterProcess
from harness.postfixctl import HOST, PostfixInstance, available, new_workdir
from harness.sink import Sink, SinkMessage, free_port

ALTERMIME = "/usr/bin/altermime"
HELPERS = Path(__file__).resolve().parent / "altermime"
HELPER_FILES = ("filter.sh", "reinject.py", "disclaimer.txt", "disclaimer.html")
MARKER = b"altermime-bench-disclaimer"  # in both disclaimers
SIGNED = b"X-Sigfilter-Processed"
FILTER_USER = "nobody"
TARGET = 2.5  # milter/altermime


class AltermimeInstance(PostfixInstance):
    """The relay from the templates plus alterMIME as an after-queue content filter.

    The templates know nothing about content filters, so write_config() appends to the
    rendered files (reload() re-renders and appends again):
    main.cf gets `content_filter = altermime:dummy`; master.cf gets the `altermime` pipe
    service and the reinjection smtpd on 127.0.0.1:`reinject_port`, which overrides
    content_filter and milters so filtered mail is not filtered again.
    """

    def __init__(
        self,
        workdir: Path,
        smtpd_port: int,
        sink_port: int,
        reinject_port: int,
        filter_dir: Path,
        maxproc: int,
    ) -> None:
        super().__init__(workdir, smtpd_port, sink_port, None)
        self.reinject_port = reinject_port
        self.filter_dir = filter_dir
        self.maxproc = maxproc

    def write_config(self) -> None:
        super().write_config()
        main_extra = (
            "\n# --- bench_altermime.py: alterMIME as an after-queue content filter ---\n"
            "content_filter = altermime:dummy\n"
            # every message goes to the one destination "dummy": allow maxproc at once
            f"altermime_destination_concurrency_limit = {self.maxproc}\n"
        )
        master_extra = (
            "\n# --- bench_altermime.py: content filter and reinjection listener ---\n"
            f"{HOST}:{self.reinject_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix-sigtest/reinject\n"
            "  -o content_filter=\n"
            "  -o smtpd_milters=\n"
            "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"
            f"altermime unix - n n - {self.maxproc} pipe\n"
            f"  flags=Rq user={FILTER_USER} null_sender=\n"
            f"  argv={self.filter_dir}/filter.sh {self.filter_dir} {self.reinject_port}"
            " -f ${sender} -- ${recipient}\n"
        )
        past = time.time() - 2  # see PostfixInstance.write_config: backdated files load at once
        for name, extra in (("main.cf", main_extra), ("master.cf", master_extra)):
            path = self.conf_dir / name
            with path.open("a", encoding="utf-8") as f:
                f.write(extra)
            os.utime(path, (past, past))


def install_filter(work: Path) -> Path:
    """Copy the helper files where user nobody can read them; spool/ is nobody's."""
    nobody = pwd.getpwnam(FILTER_USER)
    target = work / "altermime-filter"
    target.mkdir()
    target.chmod(0o755)
    for name in HELPER_FILES:
        shutil.copy(HELPERS / name, target / name)
        (target / name).chmod(0o755 if name.endswith(".sh") else 0o644)
    spool = target / "spool"
    spool.mkdir()
    os.chown(spool, nobody.pw_uid, nobody.pw_gid)
    spool.chmod(0o700)
    return target


def count(got: list[SinkMessage], marker: bytes) -> int:
    return sum(marker in m.data for m in got)


def measure(
    port: int, sink: Sink, load: list[tuple[str, bytes]], concurrency: int
) -> tuple[float, list[SinkMessage]]:
    """(msg/s, messages as received); run_load raises unless every message arrived."""
    rate, _ = run_load(port, sink, load, concurrency)
    got = sink.messages
    mids = {m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in got}
    if len(got) != len(load) or len(mids) != len(load):
        raise RuntimeError(f"{len(got)} messages arrived ({len(mids)} distinct) of {len(load)}")
    return rate, got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if not Path(ALTERMIME).exists():
        print(f"{ALTERMIME} not found: apt-get install -y altermime", file=sys.stderr)
        return 2
    if not available():
        print("needs root and Debian's postfix package", file=sys.stderr)
        return 2
    load = messages(args.messages)
    print(
        f"{args.messages} messages of {len(load[0][1])} bytes, "
        f"{args.concurrency} concurrent, {args.repeats} repeats"
    )
    work = new_workdir("sigfilter-bench-altermime-")
    sink = Sink()
    milter = MilterProcess(work / "milter", CATALOG)
    bare = PostfixInstance(work / "bare", free_port(), sink.port, None)
    filtered = PostfixInstance(work / "milter-pf", free_port(), sink.port, milter.postfix_spec)
    altered = AltermimeInstance(
        work / "altermime-pf",
        free_port(),
        sink.port,
        free_port(),
        install_filter(work),
        args.concurrency,
    )
    instances = {"bare": bare, "milter": filtered, "altermime": altered}
    try:
        sink.start()
        milter.start()
        for instance in instances.values():
            instance.start()
        for instance in instances.values():  # warm up all three
            measure(instance.smtpd_port, sink, load[:100], args.concurrency)
        rates: dict[str, list[float]] = {name: [] for name in instances}
        for r in range(args.repeats):
            line = []
            for name, instance in instances.items():
                rate, got = measure(instance.smtpd_port, sink, load, args.concurrency)
                rates[name].append(rate)
                signed, marked = count(got, SIGNED), count(got, MARKER)
                both = sum(m.data.count(MARKER) >= 2 for m in got)
                line.append(
                    f"{name} {rate:5.0f} msg/s ({signed} signed, {marked} altered, "
                    f"{both} in both parts)"
                )
            b, m, a = (rates[name][-1] for name in instances)
            print(f"run {r + 1}: " + "; ".join(line))
            print(
                f"       milter/bare {m / b:.2f}, altermime/bare {a / b:.2f}, "
                f"milter/altermime {m / a:.2f}"
            )
        med = {name: statistics.median(values) for name, values in rates.items()}
        ratio = [m / a for m, a in zip(rates["milter"], rates["altermime"], strict=True)]
        print(
            f"median: bare {med['bare']:.0f}, milter {med['milter']:.0f}, "
            f"altermime {med['altermime']:.0f} msg/s; milter/bare "
            f"{statistics.median(m / b for m, b in zip(rates['milter'], rates['bare'], strict=True)):.2f}, "
            f"altermime/bare "
            f"{statistics.median(a / b for a, b in zip(rates['altermime'], rates['bare'], strict=True)):.2f}, "
            f"milter/altermime {statistics.median(ratio):.2f} "
            f"(min {min(ratio):.2f}; target >= {TARGET})"
        )
        return 0 if min(ratio) >= TARGET else 1
    finally:
        errors = []
        for stop in (
            *(i.stop for i in instances.values()),
            lambda: milter.stop(kill=True),
            sink.stop,
        ):
            try:
                stop()
            except (
                OSError,
                RuntimeError,
                subprocess.SubprocessError,
            ) as exc:  # stop the rest anyway, then report
                errors.append(repr(exc))
        if errors:
            print("cleanup errors:\n" + "\n".join(errors), file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
