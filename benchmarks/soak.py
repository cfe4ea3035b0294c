"""A longer soak: full-concurrency load for minutes, errors, throughput and worker RSS drift.

    python -m benchmarks.soak [--minutes 5] [--concurrency 32]

Prints, per interval, requests/s, p99 and each worker's RSS, then the RSS growth from the
first interval to the last (issue 5: under 5 %) and the rows stored against the answers.
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
    args = parser.parse_args()
    require_wrk()
    home = resolve_bentoml_home(args.bentoml_home, print)
    logs = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    server = start_project(home, logs)
    try:
        script = write_wrk_script(logs)
        run_wrk(server.url, script, args.concurrency, 5)  # warm-up, not counted
        first_rss: list[float] = []
        answered = errors = 0
        steps = max(1, round(args.minutes * 60 / args.interval))
        print(f"soak: {steps} x {args.interval:g} s at concurrency {args.concurrency}")
        for step in range(steps):
            r = run_wrk(server.url, script, args.concurrency, args.interval)
            rss = [p.rss_mb for p in worker_processes(server)]
            first_rss = first_rss or rss
            answered += r.requests
            errors += r.non_2xx + r.socket_errors
            print(
                f"  {step + 1:3d}  {r.requests_per_s:8.0f} req/s  p99 {r.p99_ms:7.1f} ms  "
                f"errors {r.non_2xx + r.socket_errors}  RSS {', '.join(f'{m:.0f}' for m in rss)} MB"
            )
        growth = [100.0 * (b - a) / a for a, b in zip(first_rss, rss, strict=False)]
        print(
            f"errors: {errors}; RSS growth first -> last interval: "
            + ", ".join(f"{g:+.1f} %" for g in growth)
            + " (target: under 5 %)"
        )
    finally:
        stop(server.process)
    db = next(logs.rglob("*.sqlite3"), None)
    if db is not None:
        with sqlite3.connect(db) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM predictions").fetchone()
        print(f"stored rows: {rows:,} for {answered:,} answers counted by wrk (+ warm-up)")


if __name__ == "__main__":
    main()
