"""Benchmark: how long after a template is saved the preview page hears of it.

    .venv/bin/python tests/bench/bench_preview.py [--users 2 2000] [--saves 10]

Starts the real `sigfilter catalog preview --serve` on 127.0.0.1 over a copy of the
example catalog (with N generated users), keeps an event stream open as a page does,
saves reply.txt SAVES times and prints the time from each save to the `catalog` event
(the watcher's debounce plus loading, checking and compiling the whole catalog), and
then to the answer of the page's next /api/render. Stops the server at the end. The
issue asks for "within a second"; the tests check that it arrives, this prints how fast.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.previewctl import EventStream, PreviewServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"
REPLY = Path("tenants") / "example.com" / "templates" / "default" / "reply.txt"
RENDER = "api/render?tenant=example.com&user=avery.quill@example.com&variant=reply&scope=external"


def make_catalog(root: Path, users: int) -> None:
    shutil.copytree(EXAMPLE, root)
    csv = root / "tenants" / "example.com" / "users.csv"
    rows = csv.read_text().splitlines()
    rows += [f"user{i}@example.com,User {i},Analyst,Sales,+1 555 {i:04d},,Staff"
             for i in range(max(0, users - 2))]  # fmt: skip
    csv.write_text("\n".join(rows) + "\n")


def measure(users: int, saves: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="sigfilter-bench-preview-"))
    make_catalog(work / "catalog", users)
    server = PreviewServer(work / "catalog", work).start()
    stream = EventStream(server.url)
    try:
        stream.next_event()
        to_event, to_render = [], []
        for n in range(saves):
            started = time.monotonic()
            (work / "catalog" / REPLY).write_text(f"-- \n{{{{ display_name }}}} save {n}\n")
            _, data = stream.next_event()
            to_event.append(time.monotonic() - started)
            answer = server.get(RENDER)
            to_render.append(time.monotonic() - started)
            assert f"save {n}" in answer["text"], answer
            time.sleep(0.3)  # saves further apart than the watcher's debounce
        print(f"{users:>6} users: save -> event  median {statistics.median(to_event) * 1000:6.0f} ms"
              f"  max {max(to_event) * 1000:6.0f} ms;  save -> rendered answer median "
              f"{statistics.median(to_render) * 1000:6.0f} ms  max {max(to_render) * 1000:6.0f} ms"
              f"  ({saves} saves)")  # fmt: skip
    finally:
        stream.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[2, 2000])
    parser.add_argument("--saves", type=int, default=10)
    args = parser.parse_args()
    for users in args.users:
        measure(users, args.saves)


if __name__ == "__main__":
    main()
