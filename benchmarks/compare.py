"""Project vs the FastAPI peer vs a bare ASGI ceiling, side by side in one run (issue 5).

    .venv/bin/python -m benchmarks.compare                         # quick: about 2 minutes
    .venv/bin/python -m benchmarks.compare --rounds 5 --duration 15  # full: about 12 minutes

Starts the three servers one after another (timing each start-up to ``/readyz``), then runs
wrk with the example invoice at each concurrency, alternating the servers in every round
(the first server rotates each round, so drift on this noisy machine hits all three alike),
and reports the median over rounds:

- requests/s, p50, p99, errors (HTTP status >= 400, and socket errors), and the server's CPU
  time per request (all its processes; the figure a busy machine disturbs least);
- ratios project/peer and project/bare-ASGI (requests/s; p50 and p99 as latency ratios,
  below 1 means the project is quicker);
- invoices/s through the project's batch endpoint (10,000 per request), beside the bare
  app's parse-only batch ceiling, alternated the same way;
- each worker's RSS after the load, and start-up time;
- the model alone in-process (one invoice; 100k invoices), the floor under every figure.

Servers: ``project`` is ``bentoml serve service:InvoiceFraudService`` as configured (2
workers, prediction store and metrics on); ``peer`` is benchmarks/baseline_fastapi.py on
uvicorn with 2 workers; ``bare-asgi`` is benchmarks/bare_asgi.py on uvicorn with 2 workers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.common import (
    BatchResult,
    Server,
    WrkResult,
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
    start_bare,
    start_peer,
    start_project,
    worker_processes,
    write_wrk_script,
)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _rotate(servers: list[Server], round_index: int) -> list[Server]:
    shift = round_index % len(servers)
    return servers[shift:] + servers[:shift]


def main() -> None:
    """Run the comparison and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bentoml-home", type=Path, help="store to serve (default: trains)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (median)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--batch-requests", type=int, default=3, help="per round and server")
    parser.add_argument("--peer-workers", type=int, default=2)
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args()
    require_wrk()

    home = resolve_bentoml_home(args.bentoml_home, print)
    model = load_stored_model(home)
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    model_file = export_booster(model, work)
    print(f"model {model.tag} (threshold {model.threshold:.4f}); logs in {work}")

    if not args.skip_in_process:
        f = measure_in_process(model, model_file)
        print("\nModel alone, in-process (the floor under every HTTP figure)")
        print(f"  project way, features + inplace_predict, one invoice: median "
              f"{f.one_invoice_us:.0f} us (p99 {f.one_invoice_p99_us:.0f} us)")  # fmt: skip
        print(f"  peer way, features + predict + predict_proba, one row: median "
              f"{f.peer_one_invoice_us:.0f} us")  # fmt: skip
        print(f"  {f.bulk_rows:,} invoices: {f.bulk_invoices_per_s:,.0f}/s on one thread, "
              f"{f.bulk_invoices_per_s_all_threads:,.0f}/s on all cores")  # fmt: skip

    script = write_wrk_script(work)
    body = batch_body(sample_invoices(args.batch_size))
    servers: list[Server] = []
    with running(servers):
        servers.append(start_project(home, work))
        servers.append(start_peer(model_file, model, work, workers=args.peer_workers))
        servers.append(start_bare(work))
        print("\nStart-up to /readyz: " + ", ".join(
            f"{s.name} {s.startup_s:.1f} s" for s in servers))  # fmt: skip
        project_answer = score_example(servers[0].url)
        peer_answer = score_example(servers[1].url)
        diff = abs(project_answer["fraud_probability"] - peer_answer["fraud_probability"])
        print(f"Same model, same features: example invoice scores project "
              f"{project_answer['fraud_probability']:.6f}, peer "
              f"{peer_answer['fraud_probability']:.6f} (|diff| {diff:.1e})")  # fmt: skip

        for server in servers:  # warm-up: imports, first-request paths, connection pools
            run_wrk(server.url, script, 8, 2.0)

        results: dict[tuple[str, int], list[WrkResult]] = defaultdict(list)
        batches: dict[str, list[BatchResult]] = defaultdict(list)
        batch_servers = [servers[0], servers[2]]  # the peer has no batch endpoint
        for round_index in range(args.rounds):
            for concurrency in args.concurrency:
                for server in _rotate(servers, round_index):
                    r = run_wrk_on(server, script, concurrency, args.duration)
                    results[(server.name, concurrency)].append(r)
            for server in _rotate(batch_servers, round_index):
                batches[server.name].append(
                    run_batch(server.url, body, args.batch_size, args.batch_requests)
                )
            print(f"  round {round_index + 1}/{args.rounds} done")
        rss = {s.name: worker_processes(s) for s in servers}

    names = [s.name for s in servers]
    print(f"\nSingle invoices, wrk, {args.duration:g} s x {args.rounds} rounds per cell, "
          "medians over rounds")  # fmt: skip
    header = (f"{'conc':>4}  {'server':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'non2xx':>7} {'sockerr':>7} {'cpu ms/req':>10}")  # fmt: skip
    print(header)
    print("-" * len(header))
    med: dict[tuple[str, int], tuple[float, float, float, float]] = {}
    for concurrency in args.concurrency:
        for name in names:
            runs = results[(name, concurrency)]
            rps = _median([r.requests_per_s for r in runs])
            p50 = _median([r.p50_ms for r in runs])
            p99 = _median([r.p99_ms for r in runs])
            cpu = _median([r.cpu_ms_per_request for r in runs])
            med[(name, concurrency)] = (rps, p50, p99, cpu)
            print(f"{concurrency:>4}  {name:<10} {rps:>8,.0f} {p50:>8.2f} {p99:>8.2f} "
                  f"{sum(r.non_2xx for r in runs):>7} "
                  f"{sum(r.socket_errors for r in runs):>7} {cpu:>10.2f}")  # fmt: skip

    print("\nRatios (requests/s: higher is better for the project; latency: lower is better)")
    print(f"{'conc':>4}  {'vs':<10} {'req/s':>8} {'p50':>8} {'p99':>8} {'cpu/req':>8}  "
          "project p99 < peer p50?")  # fmt: skip
    for concurrency in args.concurrency:
        ours = med[("project", concurrency)]
        for other in ("peer", "bare-asgi"):
            theirs = med[(other, concurrency)]
            note = ""
            if other == "peer":
                note = "yes" if ours[2] < theirs[1] else "no"
            print(f"{concurrency:>4}  {other:<10} {ours[0] / theirs[0]:>7.2f}x "
                  f"{ours[1] / theirs[1]:>7.2f}x {ours[2] / theirs[2]:>7.2f}x "
                  f"{ours[3] / theirs[3]:>7.2f}x  {note}")  # fmt: skip

    print(f"\nBatch, {args.batch_size:,} invoices per request "
          f"({len(body) / 1e6:.1f} MB), median over rounds")  # fmt: skip
    for name, runs in batches.items():
        label = "project" if name == "project" else "bare-asgi (parse only, constant answer)"
        rate = _median([b.invoices_per_s for b in runs])
        seconds = _median([b.median_s for b in runs])
        sustained = _median([b.sustained_per_s for b in runs])
        print(f"  {label:<40} {rate:>10,.0f} invoices/s ({seconds * 1e3:.0f} ms per request); "
              f"{runs[0].in_flight} in flight, store drained: {sustained:,.0f}/s")  # fmt: skip

    print("\nWorker RSS after the load")
    for name, procs in rss.items():
        print(f"  {name:<10} " + ", ".join(f"pid {p.pid}: {p.rss_mb:.0f} MB" for p in procs))


if __name__ == "__main__":
    main()
