"""Which setting buys how much: the project service under environment variants, side by side.

    .venv/bin/python -m benchmarks.ab_settings [--duration 5] [--rounds 2]

Starts one project server per variant (all at once, loaded one at a time, alternating in
every round, medians) and prints requests/s, p50, p99 and server CPU ms per request for
single invoices. Variants:

- ``default``: as service.py configures it (store and metrics on);
- ``no-store``: ``INVOICE_FRAUD_STORE_ENABLED=false`` (the prediction store off);
- ``no-store-no-access-log``: also BentoML's access log off, through
  ``BENTOML_CONFIG_OPTIONS='services.logging.access.enabled=false'``.

Only environment variables change, so the code under test is exactly the repository's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.common import (
    Server,
    WrkResult,
    require_wrk,
    resolve_bentoml_home,
    run_wrk,
    run_wrk_on,
    running,
    start_project,
    write_wrk_script,
)

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    # The scoring routes through BentoML's own API handler instead of the direct route.
    "bentoml-handler": {"INVOICE_FRAUD_DIRECT_SCORING": "false"},
    "no-store": {"INVOICE_FRAUD_STORE_ENABLED": "false"},
    # Scoring routes traced by OpenTelemetry like every other route (BentoML's default).
    "traced-scoring": {
        "BENTOML_CONFIG_OPTIONS": "services.invoice_fraud_service.tracing.excluded_urls=/none"
    },
}


def main() -> None:
    """Run every variant side by side and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME"
    )
    args = parser.parse_args()
    require_wrk()
    home = resolve_bentoml_home(args.bentoml_home, print)
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    script = write_wrk_script(work)
    servers: list[Server] = []
    results: dict[tuple[str, int], list[WrkResult]] = defaultdict(list)
    with running(servers):
        for name in args.variants:
            env = VARIANTS[name]
            logs = work / name
            logs.mkdir()
            server = start_project(home, logs, env)
            server.name = name
            servers.append(server)
            run_wrk(server.url, script, 8, 2.0)  # warm-up
        for round_index in range(args.rounds):
            order = servers[round_index % len(servers) :] + servers[: round_index % len(servers)]
            for concurrency in args.concurrency:
                for server in order:
                    r = run_wrk_on(server, script, concurrency, args.duration)
                    results[(server.name, concurrency)].append(r)
    print(f"Single invoices, wrk, {args.duration:g} s x {args.rounds} rounds, medians")
    print(f"{'conc':>4}  {'variant':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'cpu ms/req':>10}")  # fmt: skip
    for concurrency in args.concurrency:
        for name in args.variants:
            runs = results[(name, concurrency)]
            rps = statistics.median(r.requests_per_s for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            errors = sum(r.non_2xx + r.socket_errors for r in runs)
            cpu = statistics.median(r.cpu_ms_per_request for r in runs)
            print(f"{concurrency:>4}  {name:<24} {rps:>8,.0f} {p50:>8.2f} {p99:>8.2f} "
                  f"{errors:>7} {cpu:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
