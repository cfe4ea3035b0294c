"""Where a request's time goes in the project service: py-spy on every worker under wrk load.

    .venv/bin/python -m benchmarks.profile_service [--concurrency 32] [--duration 20]
    .venv/bin/python -m benchmarks.profile_service --batch   # the batch endpoint instead

Starts the service (prediction store and metrics on), drives single invoices with wrk and
meanwhile runs ``py-spy record --format raw`` on each worker (``--nonblocking``, so the
workers are not paused while sampled). Each sample is charged to the innermost frame that
belongs to a known part (our feature code, the booster, pydantic, JSON, metrics, store,
BentoML, Starlette, uvicorn/h11, asyncio, logging ...), and the script prints the share of
samples per part plus the hottest functions. The raw stacks stay in the log directory
(load them into speedscope or flamegraph.pl for a picture).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import (
    batch_body,
    require_wrk,
    resolve_bentoml_home,
    run_batch,
    run_wrk,
    running,
    sample_invoices,
    start_project,
    worker_processes,
    write_wrk_script,
)

#: (part, pattern on "function (file:line)"), checked innermost frame first.
PARTS: tuple[tuple[str, str], ...] = (
    ("features (invoice_fraud/features.py)", r"invoice_fraud/features\.py"),
    ("booster (xgboost inplace_predict)", r"xgboost/"),
    (
        "prediction store (invoice_fraud/store.py, sqlalchemy, sqlite)",
        r"invoice_fraud/store\.py|sqlalchemy/|sqlite3/|psycopg",
    ),  # fmt: skip
    ("explanations (invoice_fraud/explain.py)", r"invoice_fraud/explain\.py"),
    ("our metrics (invoice_fraud/metrics.py)", r"invoice_fraud/metrics\.py"),
    ("prometheus_client (mmap writes, exposition)", r"prometheus_client/"),
    ("pydantic (validation, serialization)", r"pydantic(_core)?/|model_validate|model_dump"),
    ("json encode/decode", r"/json/|orjson"),
    ("schema validators (invoice_fraud/schema.py)", r"invoice_fraud/schema\.py"),
    ("service.py (our API code)", r"/service\.py"),
    ("opentelemetry (tracing)", r"opentelemetry/"),
    ("logging (access log)", r"/logging/"),
    ("numpy (outside features)", r"numpy/"),
    ("BentoML request handling", r"_bentoml_impl/|_bentoml_sdk/|bentoml/"),
    ("starlette (ASGI routing, request/response)", r"starlette/"),
    ("uvicorn + h11 (HTTP parsing, transport)", r"uvicorn/|h11/"),
    ("anyio / threads", r"anyio/|concurrent/futures|threading\.py"),
    ("asyncio event loop", r"asyncio/|selectors\.py"),
)
BATCH = 10_000
_COMPILED = [(name, re.compile(pattern)) for name, pattern in PARTS]


def attribute(frames: list[str]) -> str:
    """The part an innermost-first walk of a stack lands in first."""
    for frame in reversed(frames):
        for name, pattern in _COMPILED:
            if pattern.search(frame):
                return name
    return "other"


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: ``frame;frame;... count`` per line, root first."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def main() -> None:
    """Profile the workers under load and print where the samples land."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--batch", action="store_true", help="load the batch endpoint (10,000 per request)"
    )
    args = parser.parse_args()
    require_wrk()
    py_spy = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv/bin/py-spy")

    home = resolve_bentoml_home(args.bentoml_home, print)
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    script = write_wrk_script(work)
    body = batch_body(sample_invoices(BATCH)) if args.batch else b""
    with running([start_project(home, work)]) as (server,):
        run_wrk(server.url, script, 8, 3.0)  # warm-up
        workers = worker_processes(server)
        record_s = max(5, int(args.duration) - 4)
        spies = []
        for proc in workers:
            out = work / f"pyspy-{proc.pid}.txt"
            cmd = [
                py_spy, "record", "--pid", str(proc.pid), "--format", "raw", "--output",
                str(out), "--rate", str(args.rate), "--duration", str(record_s),
                "--nonblocking",
            ]  # fmt: skip
            log = (work / f"pyspy-{proc.pid}.log").open("wb")
            spies.append((out, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(0.5)
        if args.batch:
            deadline = time.monotonic() + args.duration
            rates = []
            while time.monotonic() < deadline:
                rates.append(run_batch(server.url, body, BATCH, 1).invoices_per_s)
            load = f"batch of {BATCH:,}, {len(rates)} rounds: {statistics.median(rates):,.0f}/s"
        else:
            r = run_wrk(server.url, script, args.concurrency, args.duration)
            load = (f"wrk c={args.concurrency} {args.duration:g} s -> {r.requests_per_s:,.0f} "
                    f"req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms")  # fmt: skip
        for _, spy in spies:
            spy.wait(timeout=60)

    print(f"load: {load}")
    parts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for out, _ in spies:
        for frames, count in parse_raw(out):
            total += count
            parts[attribute(frames)] += count
            leaves[frames[-1]] += count
    if not total:
        raise SystemExit(f"py-spy recorded nothing; see {work}/pyspy-*.log")
    possible = args.rate * record_s * len(spies)
    share = 100 * total / possible
    # py-spy samples every thread that is not idle (the event loop and the store's writer
    # thread alike), so more than 100% means several threads were busy at once.
    print(f"py-spy: {total:,} active samples over {len(spies)} workers, all threads "
          f"({share:.0f}% of one thread per worker busy all the time)")  # fmt: skip
    threads: Counter[str] = Counter()
    for out, _ in spies:
        for frames, count in parse_raw(out):
            main_thread = not frames[0].startswith("Thread._bootstrap")
            threads["event loop (main thread)" if main_thread else "other threads"] += count
    print("  " + ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in threads.items()))
    print("\nShare of active samples, charged to the innermost known part")
    for name, count in parts.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\nHottest functions (self time, top {args.top})")
    for frame, count in leaves.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print(f"\nraw stacks: {work}/pyspy-*.txt")


if __name__ == "__main__":
    main()
