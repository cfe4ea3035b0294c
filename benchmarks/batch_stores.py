"""The batch endpoint with each prediction store side by side: SQLite, PostgreSQL, none.

    .venv/bin/python -m benchmarks.batch_stores [--rounds 2] [--requests 4]

With the store on, a batch is scored only while the store keeps up (backpressure), so the
batch figures are the store's pace; this shows how much each store costs. PostgreSQL is a
private cluster started from Debian's binaries (tests/postgres.py) on the same machine, so
it competes for the same cores as the service.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import (
    Server,
    batch_body,
    resolve_bentoml_home,
    run_batch,
    running,
    sample_invoices,
    start_project,
)
from tests.postgres import private_postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=4, help="per figure and client")
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    home = resolve_bentoml_home(args.bentoml_home, print)
    body = batch_body(sample_invoices(args.batch_size))
    with private_postgres() as postgres, tempfile.TemporaryDirectory() as work:
        variants = {
            "sqlite": {},
            "postgres": {"INVOICE_FRAUD_DATABASE_URL": postgres.url},
            "no-store": {"INVOICE_FRAUD_STORE_ENABLED": "false"},
        }
        servers: list[Server] = []
        with running(servers):
            for name, env in variants.items():
                logs = Path(work) / name
                logs.mkdir()
                server = start_project(home, logs, env)
                server.name = name
                servers.append(server)
            for _ in range(args.rounds):
                for server in servers:
                    r = run_batch(server.url, body, args.batch_size, args.requests)
                    print(
                        f"{server.name:<9} one at a time {r.invoices_per_s:>9,.0f}/s "
                        f"({r.median_s * 1e3:.0f} ms); {r.in_flight} in flight until the "
                        f"store has written them all {r.sustained_per_s:>9,.0f}/s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
