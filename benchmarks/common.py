"""Shared helpers for the benchmark scripts: model store, servers, wrk, batch, RSS.

Everything here prints nothing; the scripts decide what to show. Servers bind 127.0.0.1 on a
free port, run in their own process group and are always stopped; every load is bounded in
time (wrk ``-d``, httpx timeouts).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.factories import ORDINARY
from tests.servers import REPO, free_port, stop, wait_until_ready

#: The example body existing clients send (README): an ordinary invoice, 15 May 2024.
EXAMPLE_INVOICE: dict[str, Any] = ORDINARY
SEVEN_FIELDS: tuple[str, ...] = tuple(EXAMPLE_INVOICE)
SINGLE_ROUTE = "/predict_invoice_fraud"
BATCH_ROUTE = "/predict_invoice_fraud_batch"
MODEL_NAME = "invoice_fraud"
PYTHON = sys.executable


# --------------------------------------------------------------------------- model store


def store_has_model(home: Path, name: str = MODEL_NAME) -> bool:
    """Whether the BentoML store at ``home`` holds ``name:latest`` (without importing bentoml)."""
    return (home / "models" / name / "latest").is_file()


def resolve_bentoml_home(requested: Path | None, log: Callable[[str], None]) -> Path:
    """The store to benchmark: ``requested``, else ``$BENTOML_HOME`` or ``~/bentoml``.

    When that store has no model, a model is trained (default ``train.py`` settings) into
    ``requested`` if one was given, else into a fresh temporary store, so a benchmark never
    writes a model into the user's own store uninvited.
    """
    home = requested or Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    if store_has_model(home):
        return home.resolve()
    if requested is None:
        home = Path(tempfile.mkdtemp(prefix="bench-bentoml-home-"))
    home.mkdir(parents=True, exist_ok=True)
    log(f"no model in {home}; training one with train.py (about 15 s) ...")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    subprocess.run(
        [PYTHON, "train.py"], cwd=REPO, env=env, check=True, capture_output=True, timeout=600
    )
    return home.resolve()


@dataclass(frozen=True)
class StoredModel:
    """The served model: its booster, threshold and tag."""

    booster: Any  # xgboost.Booster
    threshold: float
    tag: str


def load_stored_model(home: Path) -> StoredModel:
    """Load ``invoice_fraud:latest`` from the store at ``home`` as the service does."""
    os.environ["BENTOML_HOME"] = str(home)  # read by bentoml when it is first imported
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    import bentoml

    stored = bentoml.models.get(f"{MODEL_NAME}:latest")
    booster = bentoml.xgboost.load_model(stored)
    return StoredModel(booster, float(stored.info.metadata["threshold"]), str(stored.tag))


def export_booster(model: StoredModel, directory: Path) -> Path:
    """Write the booster to ``directory/model.json``, the file the FastAPI peer loads."""
    path = directory / "model.json"
    model.booster.save_model(str(path))
    return path


def sample_invoices(rows: int, seed: int = 1) -> list[dict[str, Any]]:
    """``rows`` realistic invoices (the synthetic generator) as request bodies."""
    from invoice_fraud.synthetic import GeneratorParams, generate_invoices

    frame = generate_invoices(GeneratorParams(rows=rows, seed=seed))[list(SEVEN_FIELDS)]
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    for record in records:  # plain JSON numbers: floats for money, ints for dates
        for key in ("amount", "tax", "total"):
            record[key] = round(float(record[key]), 2)
        for key in ("invoice_year", "invoice_month", "invoice_day", "invoice_weekday"):
            record[key] = int(record[key])
    return records


# --------------------------------------------------------------------------- in-process


@dataclass(frozen=True)
class InProcessFigures:
    """The model alone, in this process: no HTTP, no validation, no metrics."""

    one_invoice_us: float  # median of features + inplace_predict for one invoice
    one_invoice_p99_us: float
    bulk_rows: int
    bulk_invoices_per_s: float  # features + inplace_predict over bulk_rows, nthread=1
    bulk_invoices_per_s_all_threads: float  # same, xgboost on every core
    peer_one_invoice_us: float  # XGBClassifier predict + predict_proba on one numpy row


def measure_in_process(
    model: StoredModel, model_file: Path, repeats: int = 3000, bulk_rows: int = 100_000
) -> InProcessFigures:
    """Time the model alone the way the service calls it, and the peer's way."""
    import xgboost as xgb

    from invoice_fraud.features import build_features
    from invoice_fraud.synthetic import GeneratorParams, generate_invoices

    booster = model.booster
    booster.set_param({"nthread": 1})  # as service.py does
    one = {k: np.asarray([v]) for k, v in EXAMPLE_INVOICE.items() if k != "invoice_weekday"}
    for _ in range(200):
        booster.inplace_predict(build_features(one))
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        booster.inplace_predict(build_features(one))
        samples.append(time.perf_counter_ns() - started)
    one_us = statistics.median(samples) / 1e3
    p99_us = float(np.percentile(samples, 99)) / 1e3

    frame = generate_invoices(GeneratorParams(rows=bulk_rows, seed=3))
    columns = {k: frame[k].to_numpy() for k in SEVEN_FIELDS}

    def bulk_rate() -> float:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            booster.inplace_predict(build_features(columns))
            timings.append(time.perf_counter() - started)
        return bulk_rows / statistics.median(timings)

    rate_one_thread = bulk_rate()
    booster.set_param({"nthread": os.cpu_count() or 1})
    rate_all = bulk_rate()
    booster.set_param({"nthread": 1})

    classifier = xgb.XGBClassifier()
    classifier.load_model(str(model_file))
    row = build_features(one)
    for _ in range(50):
        classifier.predict(row)
        classifier.predict_proba(row)
    peer = []
    for _ in range(max(200, repeats // 5)):
        started = time.perf_counter_ns()
        classifier.predict(row)
        classifier.predict_proba(row)
        peer.append(time.perf_counter_ns() - started)
    return InProcessFigures(
        one_us, p99_us, bulk_rows, rate_one_thread, rate_all, statistics.median(peer) / 1e3
    )


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A running HTTP server under test."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    startup_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


def _launch(
    name: str,
    cmd: Sequence[str],
    env: dict[str, str],
    log: Path,
    port: int,
    ready_path: str = "/readyz",
    timeout: float = 120.0,
) -> Server:
    full_env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", **env}
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(cmd), cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}{ready_path}", process, log, timeout)
    except BaseException:
        stop(process)
        raise
    server = Server(name, url, process, log, time.perf_counter() - started)
    return server


def start_project(home: Path, logs: Path, env: dict[str, str] | None = None) -> Server:
    """``bentoml serve service:InvoiceFraudService`` as configured in service.py."""
    port = free_port()
    cmd = [
        PYTHON, "-m", "bentoml", "serve", "service:InvoiceFraudService",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    base = {
        "BENTOML_HOME": str(home),
        # The prediction store stays on (issue 5 measures with it), in a throwaway SQLite
        # file beside the log, never the repository's data/.
        "INVOICE_FRAUD_STORE_PATH": str(logs / "project-predictions.sqlite3"),
    }
    return _launch("project", cmd, {**base, **(env or {})}, logs / "project.log", port)


def start_peer(model_file: Path, model: StoredModel, logs: Path, workers: int = 2) -> Server:
    """The FastAPI peer (benchmarks/baseline_fastapi.py) on uvicorn, ``workers`` processes."""
    port = free_port()
    multiproc = logs / "peer-prometheus"
    shutil.rmtree(multiproc, ignore_errors=True)
    multiproc.mkdir(parents=True)
    cmd = [
        PYTHON, "-m", "uvicorn", "--factory", "benchmarks.baseline_fastapi:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    env = {
        "PEER_MODEL_FILE": str(model_file),
        "PEER_MODEL_TAG": model.tag,
        "PEER_THRESHOLD": repr(model.threshold),
        # prometheus-fastapi-instrumentator's documented setting for more than one worker.
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    return _launch("peer", cmd, env, logs / "peer.log", port)


def start_bare(logs: Path, workers: int = 2) -> Server:
    """The bare Starlette app (benchmarks/bare_asgi.py) on uvicorn, no access log."""
    port = free_port()
    cmd = [
        PYTHON, "-m", "uvicorn", "benchmarks.bare_asgi:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
    ]  # fmt: skip
    return _launch("bare-asgi", cmd, {}, logs / "bare.log", port)


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server in ``servers`` on the way out, whatever happened."""
    try:
        yield servers
    finally:
        for server in servers:
            stop(server.process)


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    """One process of a server's tree."""

    pid: int
    rss_mb: float
    cmdline: str


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc (parents first)."""
    out = [pid]
    index = 0
    while index < len(out):
        current = out[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                out.extend(int(c) for c in children)
    return out


def process_tree(pid: int) -> list[Proc]:
    """RSS and command line of ``pid``'s process tree."""
    procs = []
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{p}/status").read_text()
            rss_kb = next(
                (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")),
                0,
            )
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            procs.append(Proc(p, rss_kb / 1024, cmd))
    return procs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` and its living descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            # Fields after the parenthesised command name; utime and stime are 14th and 15th.
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def worker_processes(server: Server) -> list[Proc]:
    """The processes that serve requests (not supervisors, trackers or the arbiter)."""
    tree = process_tree(server.process.pid)
    if server.name == "project":
        # bentoml serve -> circus arbiter -> `_bentoml_impl.worker.service` processes
        return [p for p in tree if "_bentoml_impl.worker" in p.cmdline]
    # uvicorn --workers N -> N multiprocessing spawn children (+ a resource tracker)
    spawned = [p for p in tree if "multiprocessing.spawn" in p.cmdline]
    return [p for p in spawned if "resource_tracker" not in p.cmdline]


# --------------------------------------------------------------------------- wrk

_WRK_LUA = """
wrk.method = "POST"
wrk.body = [==[%BODY%]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def write_wrk_script(directory: Path, body: dict[str, Any] | None = None) -> Path:
    """A wrk Lua script that POSTs ``body`` (the example invoice) as JSON."""
    path = directory / "post_invoice.lua"
    text = json.dumps(body or EXAMPLE_INVOICE, separators=(",", ":"))
    path.write_text(_WRK_LUA.replace("%BODY%", text))
    return path


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and errors."""

    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # wrk counts HTTP status > 399
    socket_errors: int  # connect + read + write + timeout
    requests: int
    cpu_ms_per_request: float = float("nan")  # server CPU (all its processes) / requests


def run_wrk_on(server: Server, script: Path, concurrency: int, duration_s: float) -> WrkResult:
    """:func:`run_wrk` against ``server``, adding the server's CPU time per request.

    CPU per request is the figure least disturbed by a noisy machine: time spent waiting
    for a core does not count, only the work the server did.
    """
    before = cpu_seconds(server.process.pid)
    result = run_wrk(server.url, script, concurrency, duration_s)
    used = cpu_seconds(server.process.pid) - before
    return dataclasses.replace(
        result, cpu_ms_per_request=1e3 * used / result.requests if result.requests else 0.0
    )


def run_wrk(
    url: str, script: Path, concurrency: int, duration_s: float, threads: int = 1
) -> WrkResult:
    """Run wrk against ``url`` for ``duration_s`` seconds; closed loop, ``concurrency`` conns.

    One wrk thread by default: on 2 cores it already drives more requests than any Python
    server here answers, and a second thread would take more CPU from the server under test.
    """
    cmd = [
        "wrk", f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{duration_s:g}s",
        "--timeout", "10s", "--latency", "-s", str(script), f"{url}{SINGLE_ROUTE}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration_s + 30)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        requests_per_s=raw["requests"] / seconds,
        p50_ms=raw["p50"] / 1e3,
        p90_ms=raw["p90"] / 1e3,
        p99_ms=raw["p99"] / 1e3,
        max_ms=raw["max"] / 1e3,
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        requests=raw["requests"],
    )


def require_wrk() -> None:
    """Fail early, with the fix, when wrk is not installed."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: run scripts/system-deps.sh (apt-get install wrk)")


# --------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class BatchResult:
    """Batch endpoint throughput: median over requests."""

    invoices: int
    requests: int
    median_s: float
    invoices_per_s: float
    body_mb: float
    #: ``in_flight`` clients posting back to back, until the prediction store has written
    #: every scored invoice (servers without a store: until the last answer).
    sustained_per_s: float = 0.0
    in_flight: int = 0


def batch_body(invoices: list[dict[str, Any]]) -> bytes:
    """The batch request body, encoded once so client-side encoding is not timed."""
    return json.dumps({"invoices": invoices}, separators=(",", ":")).encode()


def run_batch(
    url: str, body: bytes, invoices: int, requests: int = 5, in_flight: int = 2
) -> BatchResult:
    """Time the batch endpoint two ways, after one warm-up request.

    Sequential: ``requests`` requests one after another, median time to the full response.
    Sustained: ``in_flight`` clients each send ``requests`` requests back to back (one per
    worker keeps both cores busy); the clock stops when the prediction store's queue is
    empty again, so a store that falls behind cannot flatter the figure.
    """
    headers = {"content-type": "application/json"}
    timings = []
    with httpx.Client(timeout=120.0) as client:
        client.post(f"{url}{BATCH_ROUTE}", content=body, headers=headers).raise_for_status()
        wait_for_store(client, url)
        for _ in range(requests):
            started = time.perf_counter()
            response = client.post(f"{url}{BATCH_ROUTE}", content=body, headers=headers)
            response.read()
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
        wait_for_store(client, url)

    def client_loop() -> None:
        with httpx.Client(timeout=120.0) as own:
            for _ in range(requests):
                own.post(f"{url}{BATCH_ROUTE}", content=body, headers=headers).raise_for_status()

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        for future in [pool.submit(client_loop) for _ in range(in_flight)]:
            future.result()
    with httpx.Client(timeout=30.0) as client:
        wait_for_store(client, url)
    sustained = invoices * requests * in_flight / (time.perf_counter() - started)
    median = statistics.median(timings)
    return BatchResult(
        invoices, requests, median, invoices / median, len(body) / 1e6, sustained, in_flight
    )


def wait_for_store(client: httpx.Client, url: str, timeout: float = 120.0) -> None:
    """Until ``invoice_fraud_store_queue_depth`` is 0 (at once for a server without it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"{url}/metrics")
        if response.status_code != 200:
            return
        depth = [
            float(line.rsplit(" ", 1)[1])
            for line in response.text.splitlines()
            if line.startswith("invoice_fraud_store_queue_depth")
        ]
        if not depth or sum(depth) == 0:
            return
        time.sleep(0.02)
    raise RuntimeError(f"the prediction store still had rows queued after {timeout:.0f} s")


def score_example(url: str) -> dict[str, Any]:
    """The server's answer for the example invoice."""
    response = httpx.post(f"{url}{SINGLE_ROUTE}", json=EXAMPLE_INVOICE, timeout=10.0)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
