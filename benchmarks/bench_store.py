"""CPU per row of the prediction store's write path, variant by variant, in one run.

Each variant writes the same rows (``--batches`` scoring calls of ``--batch`` invoices,
built like service.py ``_keep`` builds them) through a :class:`PredictionStore` into a
fresh SQLite file (and, with ``--postgres``, a private PostgreSQL cluster from
``tests/postgres.py``). The clock runs from the first ``add`` to the end of ``flush``; rows
are built before it starts. Variants run alternately, ``--rounds`` times, so a busy shared
machine hurts them alike; the figure to read is CPU time of this process per row
(``time.process_time``: the writer thread's work, whatever it waited for a core). For
PostgreSQL the server's CPU (every process of the cluster, from ``/proc``) is shown beside.

    .venv/bin/python -m benchmarks.bench_store [--rounds 3] [--postgres] [--prefill N]

``--prefill N`` writes N rows (untimed) before each timed run: what a store that has been
running a while looks like. Random primary keys cost little in a small table and a lot
once the index outgrows the page cache (``--prefill 1000000 --only ids``).

``--contended`` writes beside a thread that runs Python half the time, as the threads
scoring batches do in the service: the writer then has to win the GIL back after every
step into SQLite, and how often it steps is what matters (``--batches 2 --only before``:
executemany against 1,000 rows a statement).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from invoice_fraud.store import (
    STORED_FEATURES,
    PendingRows,
    PredictionStore,
    _rows,
    new_prediction_ids,
    predictions,
)


def random_ids(n: int) -> list[str]:
    """Ids as the store had them before: 128 random bits, no order."""
    raw = secrets.token_bytes(16 * n).hex()
    return [raw[i : i + 32] for i in range(0, 32 * n, 32)]


ID_MAKERS: dict[str, Callable[[int], list[str]]] = {
    "ordered": new_prediction_ids,
    "random": random_ids,
}


def with_ids(batch: PendingRows, ids: str) -> PendingRows:
    """``batch`` with fresh prediction ids of the kind ``ids`` names."""
    columns = {**batch.columns, "prediction_id": ID_MAKERS[ids](batch.size)}
    return PendingRows(
        columns=columns,
        scored_at=batch.scored_at,
        threshold=batch.threshold,
        model_tag=batch.model_tag,
    )


def realistic_rows(n: int, seed: int) -> PendingRows:
    """One scoring call's rows, with the types and spread service.py ``_keep`` hands over."""
    rnd = random.Random(seed)
    amount = [round(rnd.uniform(10, 20_000), 2) for _ in range(n)]
    tax = [round(a * rnd.choice((0.0, 0.05, 0.1, 0.2)), 2) for a in amount]
    weekdays = [rnd.randrange(7) for _ in range(n)]
    proba = [rnd.random() ** 6 for _ in range(n)]
    return PendingRows(
        columns={
            "prediction_id": new_prediction_ids(n),
            "invoice_id": [f"INV-{rnd.randrange(10**8):08d}" if k % 10 else None for k in range(n)],
            "amount": amount,
            "tax": tax,
            "total": [round(a + t, 2) for a, t in zip(amount, tax, strict=True)],
            "invoice_year": [rnd.choice((2023, 2024, 2025)) for _ in range(n)],
            "invoice_month": [rnd.randint(1, 12) for _ in range(n)],
            "invoice_day": [rnd.randint(1, 28) for _ in range(n)],
            "invoice_weekday": weekdays,
            "client_weekday": [w if k % 4 else None for k, w in enumerate(weekdays)],
            "fraud_probability": proba,
            "prediction": [int(p >= 0.5) for p in proba],
            "warnings": [None] * n,
            **{
                f"feature_{name}": [round(rnd.random(), 6) for _ in range(n)]
                for name in STORED_FEATURES
            },
        },
        scored_at=time.time(),
        threshold=0.5,
        model_tag="invoice_fraud:abcdefghijklmnop",
    )


# --------------------------------------------------------------------------- variants


class BeforeStore(PredictionStore):
    """The write path before this benchmark: SQLAlchemy ``exec_driver_sql`` on a list."""

    def _write(self, chunks: list[PendingRows]) -> int:
        rows = [row for chunk in chunks for row in chunk.tuples()]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._insert, rows)
        return 0


class ListStore(PredictionStore):
    """Raw driver ``executemany``, but handed a list of tuples instead of a generator."""

    def _write(self, chunks: list[PendingRows]) -> int:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.executemany(self._insert, [r for c in chunks for r in c.tuples()])
            raw.commit()
            cursor.close()
        finally:
            raw.close()
        return 0


class ExecutemanyStore(PredictionStore):
    """SQLite: the driver's ``executemany``, one step per row (the write path before)."""

    def _insert_rows(self, cursor: Any, chunks: list[PendingRows]) -> None:
        cursor.executemany(self._insert, _rows(chunks))


class NoCopyStore(PredictionStore):
    """PostgreSQL: the driver's ``executemany`` (pipelined INSERTs) instead of COPY."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._copy = None


class TextCopyStore(PredictionStore):
    """PostgreSQL: text COPY (the driver formats every value as text, floats by repr)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self._copy is not None
        self._copy = self._copy.replace(" (FORMAT BINARY)", "")

    def _copy_rows(self, cursor: Any, chunks: list[PendingRows]) -> bool:
        with cursor.copy(self._copy) as copy:
            for chunk in chunks:
                for row in chunk.rows():
                    copy.write_row(row)
        return True


@dataclass
class Variant:
    """One way of writing: a store class, its settings and the schema it writes into."""

    name: str
    store: type[PredictionStore] = PredictionStore
    batch_rows: int = 5_000
    #: SQL run once on an empty database before the store creates what is missing.
    ddl: list[str] = field(default_factory=list)
    #: SQL run once after the store has created its schema.
    ddl_after: list[str] = field(default_factory=list)
    #: PRAGMAs (SQLite) run on every new connection.
    pragmas: list[str] = field(default_factory=list)
    #: Which prediction ids the rows carry (a key of :data:`ID_MAKERS`).
    ids: str = "ordered"


HEAD_INDEX = "CREATE INDEX ix_predictions_prediction ON predictions (prediction)"
SCORED_AT_INDEX = "CREATE INDEX ix_predictions_scored_at ON predictions (scored_at)"


def _sqlite_table(transform: Callable[[str], str]) -> str:
    from sqlalchemy.dialects import sqlite

    ddl = str(sa.schema.CreateTable(predictions).compile(dialect=sqlite.dialect())).strip()
    return transform(ddl)


ROWID_TABLE = _sqlite_table(
    lambda d: d.replace(
        "prediction_id VARCHAR(32) NOT NULL,", "prediction_id VARCHAR(32) NOT NULL UNIQUE,"
    ).replace("PRIMARY KEY (prediction_id)", "rowid_pk INTEGER PRIMARY KEY")
)
WITHOUT_ROWID_TABLE = _sqlite_table(lambda d: d + " WITHOUT ROWID")

BEFORE = "before: SQLAlchemy exec_driver_sql of a list (HEAD)"
SQLITE_VARIANTS = [
    Variant(
        BEFORE,
        BeforeStore,
        ddl_after=[HEAD_INDEX],
        pragmas=["PRAGMA cache_size=-2000"],
        ids="random",
    ),
    Variant("store as shipped (1,000 rows/statement, time-ordered ids)"),
    Variant("store as shipped but random ids", ids="random"),
    Variant("store, 16 MiB page cache (before)", pragmas=["PRAGMA cache_size=-16384"]),
    Variant("raw executemany, list of tuples", ListStore),
    Variant("+ index on prediction (HEAD schema)", ddl_after=[HEAD_INDEX]),
    Variant("INTEGER rowid PK + UNIQUE prediction_id", ddl=[ROWID_TABLE, SCORED_AT_INDEX]),
    Variant("WITHOUT ROWID table", ddl=[WITHOUT_ROWID_TABLE, SCORED_AT_INDEX]),
    Variant("PRAGMA cache_size=-32768 (32 MiB)", pragmas=["PRAGMA cache_size=-32768"]),
    Variant("PRAGMA cache_size=-65536 (64 MiB)", pragmas=["PRAGMA cache_size=-65536"]),
    Variant(
        "cache_size 32 MiB + batch_rows=40,000",
        batch_rows=40_000,
        pragmas=["PRAGMA cache_size=-32768"],
    ),
    Variant("PRAGMA mmap_size=256 MiB", pragmas=["PRAGMA mmap_size=268435456"]),
    Variant("PRAGMA wal_autocheckpoint=10000", pragmas=["PRAGMA wal_autocheckpoint=10000"]),
    Variant("executemany, a step per row (before)", ExecutemanyStore),
    Variant("batch_rows=1,000 (one 10k call per txn anyway)", batch_rows=1_000),
    Variant("batch_rows=40,000", batch_rows=40_000),
]

POSTGRES_VARIANTS = [
    Variant(BEFORE, BeforeStore, ddl_after=[HEAD_INDEX], ids="random"),
    Variant("store as shipped (binary COPY, time-ordered ids)"),
    Variant("store as shipped but random ids", ids="random"),
    Variant("raw executemany (pipelined INSERT)", NoCopyStore),
    Variant("text COPY", TextCopyStore),
    Variant("+ index on prediction (HEAD schema)", ddl_after=[HEAD_INDEX]),
    Variant("batch_rows=40,000", batch_rows=40_000),
]


# --------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    cpu_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)
    server_us: list[float] = field(default_factory=list)


def cluster_cpu_seconds(datadir: Path) -> float:
    """User + system CPU of the postmaster and its children, from /proc."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


class BusyNeighbour:
    """A thread that runs Python half the time, in 40 ms bursts, as a thread scoring batches.

    The writer shares its worker's GIL with the threads that score batches; alone in a
    process it never waits for the GIL, and that hides what its write path costs in the
    service. ``cpu`` is this thread's own CPU time, taken off the figures.
    """

    def __init__(self) -> None:
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.is_set():
            until = time.perf_counter() + 0.04  # about one 10,000-invoice batch
            while time.perf_counter() < until:
                sum(range(200))
            time.sleep(0.04)
        self.cpu = time.thread_time() - started

    def __enter__(self) -> BusyNeighbour:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_once(
    variant: Variant,
    url: str,
    batches: list[PendingRows],
    server_cpu: Callable[[], float] | None,
    prefill: int = 0,
    contended: bool = False,
) -> tuple[float, float, float]:
    """CPU us/row, wall us/row and server CPU us/row of writing ``batches`` once.

    ``prefill`` rows are written first, off the clock; ``contended`` writes beside a
    :class:`BusyNeighbour`.
    """
    rows = sum(b.size for b in batches)
    size = max(rows, prefill)
    store = variant.store(url, flush_interval=0.05, batch_rows=variant.batch_rows, max_pending=size)
    if variant.pragmas:

        @sa.event.listens_for(store.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            for pragma in variant.pragmas:
                dbapi_connection.execute(pragma)

    with store.engine.begin() as conn:
        for statement in variant.ddl:
            conn.exec_driver_sql(statement)
    store._ensure_schema()
    with store.engine.begin() as conn:
        for statement in variant.ddl_after:
            conn.exec_driver_sql(statement)
    store.start()
    written = 0
    while written < prefill:
        for batch in batches:
            if written >= prefill:
                break
            store.add(with_ids(batch, variant.ids))
            written += batch.size
        assert store.flush(600), f"{variant.name}: prefill left unwritten"
    batches = [with_ids(batch, variant.ids) for batch in batches]
    server0 = server_cpu() if server_cpu else 0.0
    with contextlib.ExitStack() as stack:
        neighbour = stack.enter_context(BusyNeighbour()) if contended else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for batch in batches:
            store.add(batch)
        assert store.flush(3600), f"{variant.name}: rows left unwritten"
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if neighbour is not None:
        cpu -= neighbour.cpu
    server = (server_cpu() - server0) if server_cpu else 0.0
    stored = store.count()
    assert stored == rows + written, f"{variant.name}: {stored} rows stored, not {rows + written}"
    assert store.close()
    return cpu / rows * 1e6, wall / rows * 1e6, server / rows * 1e6


def measure(
    variants: list[Variant],
    urls: Iterator[str],
    batches: list[PendingRows],
    rounds: int,
    server_cpu: Callable[[], float] | None = None,
    reset: Callable[[str], None] | None = None,
    prefill: int = 0,
    contended: bool = False,
) -> dict[str, Figures]:
    figures = {v.name: Figures() for v in variants}
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            url = next(urls)
            if reset:
                reset(url)
            cpu, wall, server = run_once(variant, url, batches, server_cpu, prefill, contended)
            f = figures[variant.name]
            f.cpu_us.append(cpu)
            f.wall_us.append(wall)
            f.server_us.append(server)
    return figures


def show(title: str, figures: dict[str, Figures], server: bool) -> None:
    print(f"\n{title}")
    head = f"{'variant':58s} {'cpu us/row':>10s} {'(min)':>6s} {'wall us/row':>11s}"
    print(head + (f" {'server cpu us/row':>17s}" if server else ""))
    base = statistics.median(next(iter(figures.values())).cpu_us)
    for name, f in figures.items():
        cpu = statistics.median(f.cpu_us)
        line = f"{name:58s} {cpu:10.2f} {min(f.cpu_us):6.2f} {statistics.median(f.wall_us):11.2f}"
        if server:
            line += f" {statistics.median(f.server_us):17.2f}"
        print(f"{line}   x{cpu / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=10_000, help="rows per scoring call")
    parser.add_argument("--batches", type=int, default=20, help="scoring calls per variant")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every variant")
    parser.add_argument("--postgres", action="store_true", help="also a private PostgreSQL")
    parser.add_argument(
        "--prefill", type=int, default=0, help="rows written, untimed, before each timed run"
    )
    parser.add_argument(
        "--only",
        default="",
        help="only variants whose name contains one of these (comma-separated)",
    )
    parser.add_argument(
        "--contended",
        action="store_true",
        help="write beside a thread running Python half the time (as scoring does); "
        "wall us/row is the figure to read; executemany crawls here, use --batches 2",
    )
    args = parser.parse_args()

    batches = [realistic_rows(args.batch, seed) for seed in range(args.batches)]
    total = args.batch * args.batches
    print(
        f"{total:,} rows per variant ({args.batches} calls of {args.batch:,}), "
        f"{args.rounds} rounds, medians; {args.prefill:,} rows already in the table; "
        f"{'beside a busy Python thread; ' if args.contended else ''}"
        f"load average {os.getloadavg()[0]:.1f}"
    )

    def pick(variants: list[Variant]) -> list[Variant]:
        # The first variant (the write path before) always runs: the ratios are against it.
        wanted = [w.strip() for w in args.only.split(",")]
        return [variants[0], *(v for v in variants[1:] if any(w in v.name for w in wanted))]

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        urls = (f"sqlite:///{tmp}/store-{k}.sqlite3" for k in range(10**6))
        sqlite = measure(
            pick(SQLITE_VARIANTS), urls, batches, args.rounds, prefill=args.prefill,
            contended=args.contended,
        )  # fmt: skip
    show("SQLite (fresh file per run, WAL, synchronous=NORMAL)", sqlite, server=False)

    if args.postgres:
        from tests.postgres import private_postgres

        with private_postgres() as pg:

            def reset(url: str) -> None:
                engine = sa.create_engine(url)
                with engine.begin() as conn:
                    conn.exec_driver_sql("DROP TABLE IF EXISTS predictions")
                engine.dispose()

            def forever() -> Iterator[str]:
                while True:
                    yield pg.url

            postgres = measure(
                pick(POSTGRES_VARIANTS),
                forever(),
                batches,
                args.rounds,
                server_cpu=lambda: cluster_cpu_seconds(pg.datadir),
                reset=reset,
                prefill=args.prefill,
                contended=args.contended,
            )
        show("PostgreSQL (private cluster, fsync off)", postgres, server=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
