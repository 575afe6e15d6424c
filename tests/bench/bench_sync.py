"""Benchmark `sigfilter users sync`: a full sync of 10,000 users, then a delta of 50.

    .venv/bin/python tests/bench/bench_sync.py [--users 10000] [--changes 50] [--page 999]

Runs the real command (msal signing in with a certificate, the Graph client, users.csv
written atomically, the state saved) against the fake Microsoft identity platform and
Graph (tests/harness/fakegraph.py) over HTTPS on 127.0.0.1, stopped at the end. The baseline,
measured in the same run, is fetching the same pages with a bare requests session and
json-decoding them (what any client must at least do): the ratio is what sync adds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import requests
from click.testing import CliRunner
from test_graph_sync import KEY, World, make_app_certificate

from harness.fakegraph import TENANT_ID, FakeMicrosoft, sample_user
from sigfilter.cli import main
from sigfilter.graph.sync import DELTA_PATH


def bare_fetch(fake: FakeMicrosoft, token: str, page: int) -> tuple[float, int]:
    session = requests.Session()
    session.verify = str(fake.ca_file)
    headers = {"Authorization": f"Bearer {token}", "Prefer": f"odata.maxpagesize={page}"}
    url: str | None = f"{fake.url}/v1.0{DELTA_PATH}"
    started = time.perf_counter()
    users = 0
    while url:
        doc = session.get(url, headers=headers, timeout=60).json()
        users += len(doc["value"])
        url = doc.get("@odata.nextLink")
    return time.perf_counter() - started, users


def timed_sync(world: World, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["users", "sync", "--tenant", KEY, "--catalog", str(world.catalog),
         "--state-dir", str(world.state), *args],
    )  # fmt: skip
    took = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"sync failed: {result.output}")
    return took, result.output.strip().splitlines()[-1]


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--page", type=int, default=999)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sigfilter-bench-sync-"))
    both, cert_pem = make_app_certificate()
    fake = FakeMicrosoft(tmp / "fake", cert_pem=cert_pem, page_size=args.page).start()
    try:
        run(fake, tmp, both, args)
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(fake: FakeMicrosoft, tmp: Path, both: bytes, args: argparse.Namespace) -> None:
    import os  # noqa: PLC0415

    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_file)
    pem = tmp / "app.pem"
    pem.write_bytes(both)
    pem.chmod(0o600)
    world = World(tmp, fake, f'certificate_file = "{pem}"')
    for i in range(args.users):
        fake.directory.add_user(f"00000000-0000-4000-8000-{i:012d}", **sample_user(i))
    token = fake.issue_token(fake.url)["access_token"]
    base, seen = bare_fetch(fake, token, args.page)
    before = len(fake.requests)
    full, full_line = timed_sync(world)
    requests_full = len(fake.requests) - before
    for i in range(args.changes):
        fake.directory.change(f"00000000-0000-4000-8000-{i * 7:012d}", jobTitle=f"Title {i}")
    before = len(fake.requests)
    delta, delta_line = timed_sync(world)
    requests_delta = len(fake.requests) - before
    rows = world.users_csv.read_text().count("\n") - 1
    print(f"users sync bench: {args.users} users, pages of {args.page}, tenant {TENANT_ID}")
    print(f"  baseline: bare GET + json of every page   {base:7.3f} s ({seen} users)")
    print(f"  full sync (sign-in, fetch, write, state)  {full:7.3f} s "
          f"= {full / base:.2f}x baseline, {args.users / full:,.0f} users/s, "
          f"{requests_full} HTTP requests")  # fmt: skip
    print(f"    {full_line[:150]}")
    print(f"  delta sync of {args.changes} changes              {delta:7.3f} s "
          f"= {delta / full:.3f} of the full sync, {requests_delta} HTTP requests")  # fmt: skip
    print(f"    {delta_line[:150]}")
    print(f"  users.csv rows: {rows}")


if __name__ == "__main__":
    main_()
