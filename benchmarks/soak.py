"""A longer soak: full-concurrency load for minutes, errors, throughput and worker RSS drift.

    python -m benchmarks.soak [--minutes 5] [--concurrency 32]

Prints, per interval, requests/s, p99 and each worker's RSS, then the RSS growth over the
soak (issue 5: under 5 %) and the rows stored against the answers. A minute of the same load
comes first (``--warmup-minutes``): bounded caches fill there (SQLite's page cache and
statement cache, the allocator's arenas), and growth is measured from its end. The growth
since the server started is printed too.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from benchmarks.common import (
    require_wrk,
    resolve_bentoml_home,
    run_wrk,
    start_project,
    worker_processes,
    write_wrk_script,
)
from tests.servers import stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bentoml-home", type=Path, default=None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per report")
    parser.add_argument("--warmup-minutes", type=float, default=1.0)
    args = parser.parse_args()
    require_wrk()
    home = resolve_bentoml_home(args.bentoml_home, print)
    logs = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    server = start_project(home, logs)
    try:
        script = write_wrk_script(logs)
        started_rss = [p.rss_mb for p in worker_processes(server)]
        if args.warmup_minutes > 0:
            r = run_wrk(server.url, script, args.concurrency, args.warmup_minutes * 60)
            print(
                f"warm-up: {args.warmup_minutes:g} min at concurrency {args.concurrency}, "
                f"{r.requests_per_s:.0f} req/s, errors {r.non_2xx + r.socket_errors}; RSS "
                + ", ".join(f"{m:.0f}" for m in started_rss)
                + " -> "
                + ", ".join(f"{p.rss_mb:.0f}" for p in worker_processes(server))
                + " MB"
            )
        first_rss = [p.rss_mb for p in worker_processes(server)]
        answered = r.requests if args.warmup_minutes > 0 else 0
        errors = 0
        steps = max(1, round(args.minutes * 60 / args.interval))
        print(f"soak: {steps} x {args.interval:g} s at concurrency {args.concurrency}")
        for step in range(steps):
            r = run_wrk(server.url, script, args.concurrency, args.interval)
            rss = [p.rss_mb for p in worker_processes(server)]
            answered += r.requests
            errors += r.non_2xx + r.socket_errors
            print(
                f"  {step + 1:3d}  {r.requests_per_s:8.0f} req/s  p99 {r.p99_ms:7.1f} ms  "
                f"errors {r.non_2xx + r.socket_errors}  RSS {', '.join(f'{m:.0f}' for m in rss)} MB"
            )
        growth = [100.0 * (b - a) / a for a, b in zip(first_rss, rss, strict=False)]
        since_start = [100.0 * (b - a) / a for a, b in zip(started_rss, rss, strict=False)]
        print(
            f"errors: {errors}; RSS growth over the soak (after the warm-up): "
            + ", ".join(f"{g:+.1f} %" for g in growth)
            + " (target: under 5 %); since start-up: "
            + ", ".join(f"{g:+.1f} %" for g in since_start)
        )
    finally:
        stop(server.process)
    db = next(logs.rglob("*.sqlite3"), None)
    if db is not None:
        with sqlite3.connect(db) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM predictions").fetchone()
        print(
            f"stored rows: {rows:,} for {answered:,} answers wrk counted, warm-up included "
            "(requests still in flight when wrk stopped its clock add a few)"
        )


if __name__ == "__main__":
    main()
