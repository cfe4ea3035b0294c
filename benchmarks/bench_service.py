"""Speed of the project service (issue 2): model in-process, single invoices, batch.

    .venv/bin/python -m benchmarks.bench_service [--bentoml-home DIR] [--duration 10]

Starts ``bentoml serve service:InvoiceFraudService`` on a free loopback port (training a
model into a temporary store when the store has none) and prints:

- the model alone in this process: features + ``Booster.inplace_predict`` for one invoice
  (median of thousands of calls) and invoices/s over 100k invoices;
- single invoices over HTTP with wrk (closed loop, the example body) at concurrency 1 and
  32: requests/s, p50, p99, errors;
- invoices/s through ``/predict_invoice_fraud_batch`` with 10,000 invoices per request
  (median of a few requests, client encoding excluded);

with the issue's targets beside them: p50 < 5 ms at concurrency 1, batch > 100,000/s.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import (
    batch_body,
    export_booster,
    load_stored_model,
    measure_in_process,
    require_wrk,
    resolve_bentoml_home,
    run_batch,
    run_wrk,
    run_wrk_on,
    running,
    sample_invoices,
    score_example,
    start_project,
    worker_processes,
    write_wrk_script,
)

TARGET_P50_C1_MS = 5.0
TARGET_BATCH_PER_S = 100_000.0


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path, help="store to serve (default: trains)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--batch-requests", type=int, default=5)
    args = parser.parse_args()
    require_wrk()

    home = resolve_bentoml_home(args.bentoml_home, print)
    model = load_stored_model(home)
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    model_file = export_booster(model, work)
    print(f"model {model.tag} (threshold {model.threshold:.4f}) from {home}")

    figures = measure_in_process(model, model_file)
    print("\nModel alone, in-process (features + booster.inplace_predict, nthread=1)")
    print(f"  one invoice: median {figures.one_invoice_us:.1f} us, p99 "
          f"{figures.one_invoice_p99_us:.1f} us")  # fmt: skip
    print(f"  {figures.bulk_rows:,} invoices: {figures.bulk_invoices_per_s:,.0f} invoices/s "
          f"(all cores: {figures.bulk_invoices_per_s_all_threads:,.0f}/s)")  # fmt: skip

    script = write_wrk_script(work)
    body = batch_body(sample_invoices(args.batch_size))
    with running([start_project(home, work)]) as (server,):
        print(f"\nservice ready on {server.url} in {server.startup_s:.1f} s (to /readyz)")
        print(f"  example invoice -> {score_example(server.url)}")
        run_wrk(server.url, script, 8, 2.0)  # warm-up
        print(f"\nSingle invoices over HTTP (wrk, {args.duration:g} s per run)")
        print(f"  {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non2xx':>7} {'sock':>5} "
              f"{'cpu ms/req':>10}")  # fmt: skip
        p50_c1 = float("inf")
        for concurrency in (1, 32):
            r = run_wrk_on(server, script, concurrency, args.duration)
            if concurrency == 1:
                p50_c1 = r.p50_ms
            print(f"  {concurrency:>4} {r.requests_per_s:>9,.0f} {r.p50_ms:>8.2f} "
                  f"{r.p99_ms:>8.2f} {r.non_2xx:>7} {r.socket_errors:>5} "
                  f"{r.cpu_ms_per_request:>10.2f}")  # fmt: skip
        batch = run_batch(server.url, body, args.batch_size, args.batch_requests)
        workers = worker_processes(server)

    print(f"\nBatch endpoint: {args.batch_size:,} invoices per request ({batch.body_mb:.1f} MB), "
          f"median of {batch.requests}: {batch.median_s * 1e3:.0f} ms "
          f"= {batch.invoices_per_s:,.0f} invoices/s; {batch.in_flight} in flight until the "
          f"store has written them all: {batch.sustained_per_s:,.0f} invoices/s")  # fmt: skip
    print("  worker RSS after load: " + ", ".join(f"{p.rss_mb:.0f} MB" for p in workers))
    print("\nTargets (issue 2)")
    print(f"  p50 at concurrency 1 < {TARGET_P50_C1_MS:g} ms: {p50_c1:.2f} ms  "
          f"{_mark(p50_c1 < TARGET_P50_C1_MS)}")  # fmt: skip
    print(f"  batch > {TARGET_BATCH_PER_S:,.0f} invoices/s: {batch.invoices_per_s:,.0f}/s  "
          f"{_mark(batch.invoices_per_s > TARGET_BATCH_PER_S)}")  # fmt: skip


if __name__ == "__main__":
    main()
