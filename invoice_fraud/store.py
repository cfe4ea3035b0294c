"""The prediction store: every scored invoice, kept in SQLite or PostgreSQL.

Scoring must not wait for the database, so requests only append rows to an in-memory queue
and one writer thread per worker inserts them in batches. The queue is drained on graceful
shutdown (:meth:`PredictionStore.close`), so nothing acknowledged is lost on SIGTERM. Inserts
are idempotent (``ON CONFLICT DO NOTHING`` on the unique prediction id), so a retried batch
never duplicates rows, and when the database is unreachable the writer keeps the rows,
counts and logs the failure and retries with backoff: scoring keeps answering.

The writer talks to the driver directly (``executemany`` of tuples zipped from the columns;
binary ``COPY`` on PostgreSQL, which falls back to the idempotent insert whenever it is
refused). ``python -m benchmarks.bench_store`` measures the CPU each way costs per row.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

VERDICTS = ("fraud", "legitimate")

#: Derived features kept with each prediction (what an analyst looks at first), stored as
#: plain numeric columns: JSON would cost an encode per row on the write path.
STORED_FEATURES: tuple[str, ...] = (
    "tax_rate",
    "tax_rate_distance",
    "total_gap",
    "total_gap_ratio",
    "amount_roundness",
    "below_limit_ratio",
    "is_weekend",
)
_FEATURE_COLUMNS = tuple(f"feature_{name}" for name in STORED_FEATURES)


def new_prediction_ids(n: int) -> list[str]:
    """``n`` unique prediction ids: 32 hex digits, the time in milliseconds first.

    48 bits of time then 80 random bits (the layout of UUIDv7). Time first, because the id
    is the primary key: random keys land all over the index, and once it outgrows the page
    cache every insert reads and dirties a page of its own; ordered keys append. Into a
    table of 1 million rows SQLite inserted at 14 us CPU per row with random ids and 5 us
    with these (``python -m benchmarks.bench_store --prefill 1000000 --only ids``). 80
    random bits keep ids from colliding across workers and restarts. One syscall for all
    ``n``, not ``n`` uuid calls.
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    raw = secrets.token_bytes(10 * n).hex()
    return [prefix + raw[i : i + 20] for i in range(0, 20 * n, 20)]


def prediction_id_time(prediction_id: str) -> float | None:
    """When a prediction id says it was made (epoch seconds), None if it does not parse.

    Ids from versions before the time-ordered ones are random: they parse to a moment
    anywhere in 9,000 years, which callers treat as "not recent" like any other.
    """
    try:
        return int(prediction_id[:12], 16) / 1000 if len(prediction_id) == 32 else None
    except ValueError:
        return None


metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    # Seconds since the epoch (UTC): one float per row to write, portable, and indexable.
    sa.Column("scored_at", sa.Float, nullable=False, index=True),
    sa.Column("invoice_id", sa.String(128), nullable=True),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("tax", sa.Float, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("invoice_year", sa.Integer, nullable=False),
    sa.Column("invoice_month", sa.Integer, nullable=False),
    sa.Column("invoice_day", sa.Integer, nullable=False),
    sa.Column("invoice_weekday", sa.Integer, nullable=False),
    sa.Column("client_weekday", sa.Integer, nullable=True),
    sa.Column("fraud_probability", sa.Float, nullable=False),
    # Not indexed: recent(only_flagged) and summary() both go by scored_at, and an index
    # on a 0/1 column costs every insert (bench_store, SQLite: 15.3 -> 13.6 us CPU per
    # row without it). _ensure_schema drops it from databases made by earlier versions.
    sa.Column("prediction", sa.SmallInteger, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("model_tag", sa.String(128), nullable=False),
    # A JSON array of strings, NULL when there is none (almost always).
    sa.Column("warnings", sa.Text, nullable=True),
    *(sa.Column(name, sa.Float, nullable=False) for name in _FEATURE_COLUMNS),
    sa.Column("verdict", sa.String(16), nullable=True),
    sa.Column("verdict_comment", sa.Text, nullable=True),
    sa.Column("verdict_at", sa.Float, nullable=True),
)

#: An index earlier versions created and this one drops (see the prediction column).
_DROPPED_INDEX = "ix_predictions_prediction"

#: Per-row columns a scoring call hands over, in insert order; see :class:`PendingRows`.
ROW_COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "invoice_id",
    "amount",
    "tax",
    "total",
    "invoice_year",
    "invoice_month",
    "invoice_day",
    "invoice_weekday",
    "client_weekday",
    "fraud_probability",
    "prediction",
    "warnings",
    *_FEATURE_COLUMNS,
)
_INSERT_COLUMNS = (*ROW_COLUMNS, "scored_at", "threshold", "model_tag")


@dataclass
class PendingRows:
    """Rows of one scoring call, kept as columns until the writer thread inserts them.

    ``columns`` maps every name in :data:`ROW_COLUMNS` to a list (all the same length);
    ``warnings`` holds JSON text or None. The request path only hands over lists it already
    has; the writer zips them into tuples for the driver's ``executemany``.
    """

    columns: dict[str, Sequence[Any]]
    scored_at: float
    threshold: float
    model_tag: str
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.columns["prediction_id"])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows as parameter tuples in :data:`_INSERT_COLUMNS` order, made one at a time.

        The driver binds each tuple and lets it go: no list of 10,000 tuples to allocate
        (and for the garbage collector to walk) per batch.
        """
        n = self.size
        cols = [self.columns[name] for name in ROW_COLUMNS]
        ids = self.columns["invoice_id"]
        if any(isinstance(i, int) for i in ids):
            cols[1] = [None if i is None else str(i) for i in ids]
        constants = (
            repeat(self.scored_at, n),
            repeat(self.threshold, n),
            repeat(self.model_tag, n),
        )
        return zip(*cols, *constants, strict=False)

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows as a list of parameter tuples (see :meth:`rows`)."""
        return list(self.rows())


@dataclass
class StoreCounters:
    """Hooks the store calls to report what happened (the service wires them to metrics)."""

    written: Callable[[int], None] = lambda n: None
    failed: Callable[[int], None] = lambda n: None
    dropped: Callable[[int], None] = lambda n: None
    pending: Callable[[int], None] = lambda n: None


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so two workers can write.

    ``busy_timeout`` is how long a SQLite statement waits for another connection's lock.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )
        busy_ms = int(busy_timeout * 1000)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            # SQLite's default 2 MiB page cache. 16 MiB paid while prediction ids were
            # random and every insert landed at a random place in the primary-key index;
            # time-ordered ids append, 2 MiB writes as fast (bench_store, 200k rows: 4.8
            # against 5.3 us CPU per row) and a worker's two connections hold about 25 MB
            # less after batch load (benchmarks/README.md).
            cursor.close()

        return engine
    # A database that has gone away must fail fast: the writer retries, readers answer 503.
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
        connect_args={"connect_timeout": 5},
    )


def _insert_sql(engine: Engine, rows: int = 1) -> str:
    """A driver-level idempotent insert of ``rows`` rows: ON CONFLICT DO NOTHING on the id."""
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(_INSERT_COLUMNS)
    values = ", ".join(["(" + ", ".join([mark] * len(_INSERT_COLUMNS)) + ")"] * rows)
    return (
        f"INSERT INTO predictions ({names}) VALUES {values} ON CONFLICT (prediction_id) DO NOTHING"
    )


#: How long a read or a verdict waits for a SQLite lock held by another connection.
QUERY_BUSY_TIMEOUT_SECONDS = 5.0

#: Rows per SQLite INSERT statement on the write path (see PredictionStore._insert_rows);
#: 1,000 rows of 30 columns stay under SQLite's default limit of 32,766 parameters.
SQLITE_ROWS_PER_INSERT = 1_000


def _powers_of_two_below(limit: int) -> list[int]:
    """1, 2, 4, ... below ``limit``, largest first: any shorter block is a sum of them."""
    return [1 << bit for bit in reversed(range(max(limit - 1, 0).bit_length()))]


def _writer_lock_path(engine: Engine) -> str | None:
    """Beside a SQLite file, the lock its writers queue on (None for other databases)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return f"{database}.writer-lock"


def _copy_sql(engine: Engine) -> str | None:
    """PostgreSQL's binary COPY of the same columns; None where the driver has no COPY."""
    if engine.dialect.driver != "psycopg":
        return None
    return f"COPY predictions ({', '.join(_INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


#: PostgreSQL type of each column binary COPY writes, in :data:`_INSERT_COLUMNS` order:
#: the driver dumps every value as its column's type instead of guessing from the value.
_PG_TYPES = {
    "float": "float8",
    "small_integer": "int2",
    "integer": "int4",
    "string": "text",
    "text": "text",
}
_COPY_TYPES = [_PG_TYPES[predictions.c[name].type.__visit_name__] for name in _INSERT_COLUMNS]


def _rows(chunks: Iterable[PendingRows]) -> Iterator[tuple[Any, ...]]:
    """Every row of the chunks, one tuple at a time."""
    for chunk in chunks:
        yield from chunk.rows()


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def row_to_dict(row: sa.RowMapping) -> dict[str, Any]:
    """A stored row as the API's StoredPrediction."""
    out = {key: row[key] for key in row.keys() if not key.startswith("feature_")}
    out["scored_at"] = _iso(row["scored_at"])
    out["verdict_at"] = _iso(row["verdict_at"])
    out["warnings"] = json.loads(row["warnings"]) if row["warnings"] else []
    out["features"] = {
        name: row[column] for name, column in zip(STORED_FEATURES, _FEATURE_COLUMNS, strict=True)
    }
    return out


class PredictionStore:
    """Write-behind store of scored invoices, with the queries the service exposes."""

    def __init__(
        self,
        url: str,
        *,
        flush_interval: float = 0.2,
        batch_rows: int = 5_000,
        max_pending: int = 200_000,
        counters: StoreCounters | None = None,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.max_pending = max_pending
        self.counters = counters or StoreCounters()
        self._queue: collections.deque[PendingRows] = collections.deque()
        self._pending = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closing = False
        #: True from a failed write to the next successful one (the database is away).
        self._failing = False
        #: Rows batches were admitted for (:meth:`reserve`) and have not queued yet.
        self._reserved = 0
        self._schema_ready = False
        self._thread: threading.Thread | None = None
        self._insert = _insert_sql(self.engine)
        self._rows_per_insert = (
            SQLITE_ROWS_PER_INSERT if self.engine.dialect.name == "sqlite" else 1
        )
        #: The multi-row INSERT of each block size :meth:`_insert_rows` uses: the full block
        #: and the powers of two below it. sqlite3 keeps every statement it prepares (128 a
        #: connection), and one of 1,000 rows holds a few MB; a statement per remainder
        #: size would fill a worker's memory with hundreds of them (+60 MB RSS measured).
        self._insert_blocks = {
            size: _insert_sql(self.engine, size)
            for size in {self._rows_per_insert, *_powers_of_two_below(self._rows_per_insert)}
        }
        dbapi = self.engine.dialect.loaded_dbapi
        #: What the database raises for a row it refuses (sqlite3 and psycopg alike).
        self._refusals: tuple[type[Exception], ...] = (dbapi.DataError, dbapi.IntegrityError)
        self._copy = _copy_sql(self.engine)
        self._writer_lock = _writer_lock_path(self.engine)
        self._writer_lock_fd: int | None = None
        sqlite_file = self.engine.dialect.name == "sqlite" and self._writer_lock is not None
        self._sqlite_path = self.engine.url.database if sqlite_file else None
        #: (device, inode) of the SQLite file the pools have open (see _check_file).
        self._file_identity: tuple[int, int] | None = None
        #: Reads and verdicts: on SQLite their own pool with a busy timeout well inside
        #: BentoML's 30 s request timeout, so a locked database answers 503, never a 504
        #: after which the statement still runs. The writer may wait as long as it takes.
        self._queries = (
            make_engine(url, busy_timeout=QUERY_BUSY_TIMEOUT_SECONDS)
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Create the schema (if the database answers) and start the writer thread."""
        try:
            self._ensure_schema()
        except sa.exc.SQLAlchemyError as exc:
            # Scoring must start anyway; the writer retries until the database is back.
            logger.error("prediction store unreachable at start-up (%s); will retry", exc)
        self._thread = threading.Thread(
            target=self._run, name="prediction-store-writer", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 30.0) -> bool:
        """Write everything queued, stop the writer; True when nothing was left behind."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self._pending + self._in_flight
        if left:
            logger.error("prediction store closed with %d rows not written", left)
        self.engine.dispose()
        self._queries.dispose()
        self._close_writer_lock()
        return left == 0

    def _close_writer_lock(self) -> None:
        if self._writer_lock_fd is not None:
            os.close(self._writer_lock_fd)
            self._writer_lock_fd = None

    def _check_file(self, writer: bool = False) -> None:
        """SQLite: notice the database file removed or replaced under the running service.

        Pooled connections keep writing to a deleted file's inode, and those rows are gone
        for good the moment the last connection closes: an operator's ``rm`` would lose
        every prediction after it with nothing in the metrics. Checked before every write
        and read (one ``stat``). A reader only drops its own pool (it then reads the path
        afresh); the writer (``writer=True``) also drops its pool and lock and makes the
        schema again, so the next write opens the path: a new file gets the schema, a
        missing directory fails, is counted and retried with the rows kept.
        """
        if self._sqlite_path is None or self._file_identity is None:
            return
        try:
            st = os.stat(self._sqlite_path)
            identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            identity = None
        if identity == self._file_identity:
            return
        self._queries.dispose()
        if not writer:
            return
        logger.error(
            "prediction store file %s was %s while in use; reopening it",
            self._sqlite_path,
            "removed" if identity is None else "replaced",
        )
        self._file_identity = None
        self._schema_ready = False
        self.engine.dispose()
        self._close_writer_lock()

    @contextlib.contextmanager
    def _writers_in_turn(self) -> Iterator[None]:
        """SQLite: hold the file's writer lock (an flock) for a whole write transaction.

        Every worker has a writer and SQLite lets one write at a time. Left to SQLite, the
        writer that finds the database locked sleeps in its busy handler (1, 2, 5, 10, ...
        up to 100 ms between tries) while the other commits in a few: under sustained batch
        load the cores sat idle half the time. Queued on an flock, it starts the moment the
        other one is done. Other writers (verdicts) still go through the busy timeout.
        """
        if self._writer_lock is None:
            yield
            return
        if self._writer_lock_fd is None:
            self._writer_lock_fd = os.open(self._writer_lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._writer_lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock_fd, fcntl.LOCK_UN)

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            try:
                metadata.create_all(self.engine, checkfirst=True)
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
                # Each worker creates the schema at start-up: the other one may have created
                # a table between the check and the CREATE. Checking again sees it.
                metadata.create_all(self.engine, checkfirst=True)
            with self.engine.begin() as conn:
                # Earlier versions indexed prediction; see the column's comment.
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_DROPPED_INDEX}")
            if self._sqlite_path is not None:
                st = os.stat(self._sqlite_path)
                self._file_identity = (st.st_dev, st.st_ino)
            self._schema_ready = True

    # -- writing --------------------------------------------------------------------------

    def add(self, rows: PendingRows, reserved: int = 0) -> bool:
        """Queue a scoring call's rows for writing; never blocks on the database.

        ``reserved`` returns the room :meth:`reserve` set aside for these rows. False when
        the rows could not be kept (the queue is full: the database has been away long).
        """
        with self._cond:
            self._reserved -= reserved
            if self._pending + rows.size > self.max_pending:
                # Memory is the last line of defence when the database stays away: keep
                # the rows already queued and count the ones that cannot be kept.
                self.counters.dropped(rows.size)
                logger.error(
                    "prediction store queue full (%d rows); dropped %d rows",
                    self._pending,
                    rows.size,
                )
                return False
            self._queue.append(rows)
            self._pending += rows.size
            self.counters.pending(self._pending + self._in_flight)
            if self._pending >= self.batch_rows:
                self._cond.notify()
            return True

    def reserve(self, rows: int, high_water: int) -> bool:
        """Admit a batch of ``rows`` for scoring if the writer is keeping up (True).

        Backpressure for batches: under sustained batch load scoring outruns the writer,
        and without a bound the queue would grow until ``max_pending`` and drop rows from
        a database that works. A batch is admitted while fewer than ``high_water`` rows are
        queued or admitted, so the queue never holds more than ``high_water`` plus one
        batch, however many batches wait; the caller then scores and calls :meth:`add` with
        ``reserved=rows`` (or :meth:`release`). While writes fail, every batch is
        admitted: an outage is what the queue (and its limit) are for.
        """
        with self._cond:
            waiting = self._pending + self._in_flight + self._reserved
            if self._failing or waiting < high_water:
                self._reserved += rows
                return True
            # Someone waits: write now rather than at the next flush interval.
            self._cond.notify()
            return False

    def release(self, rows: int) -> None:
        """Give back room reserved for a batch that was not scored after all."""
        with self._cond:
            self._reserved -= rows

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row queued so far is written (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def _take(self) -> list[PendingRows]:
        taken: list[PendingRows] = []
        size = 0
        while self._queue and size < self.batch_rows:
            chunk = self._queue.popleft()
            taken.append(chunk)
            size += chunk.size
        self._pending -= size
        self._in_flight += size
        return taken

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(self.flush_interval)
                if not self._queue:
                    if self._closing:
                        return
                    continue
                chunks = self._take()
            size = sum(c.size for c in chunks)
            try:
                self._check_file(writer=True)
                self._ensure_schema()
                refused = self._write(chunks)
            except Exception as exc:  # noqa: BLE001 - any other failure must keep the rows
                backoff = min(max(backoff * 2, 0.25), 5.0)
                self.counters.failed(size)
                logger.error(
                    "prediction store write of %d rows failed (%s: %s); retrying in %.2fs",
                    size,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                with self._cond:
                    self._failing = True
                    self._queue.extendleft(reversed(chunks))
                    self._pending += size
                    self._in_flight -= size
                    self._cond.notify_all()
                    # While closing, keep trying until close()'s timeout gives up on us.
                    self._cond.wait(backoff)
                continue
            backoff = 0.0
            self.counters.written(size - refused)
            with self._cond:
                self._failing = False
                self._in_flight -= size
                self.counters.pending(self._pending + self._in_flight)
                self._cond.notify_all()

    def _write(self, chunks: list[PendingRows]) -> int:
        """Insert the chunks in one transaction; returns how many rows were refused.

        Straight on the driver's connection, for COPY and so the driver takes a generator
        of rows (no list of 10,000 tuples per batch). On SQLite this costs what SQLAlchemy's
        ``exec_driver_sql`` did (bench_store: within 1 us of 15-19 us CPU per row, noise):
        SQLite's own work is the cost there.
        """
        with self._writers_in_turn():
            return self._write_locked(chunks)

    def _write_locked(self, chunks: list[PendingRows]) -> int:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                try:
                    if self._copy is not None and self._copy_rows(cursor, chunks):
                        raw.commit()
                        return 0
                    self._insert_rows(cursor, chunks)
                    raw.commit()
                    return 0
                except self._refusals:
                    # A row the database refuses would block every row behind it forever:
                    # write the batch row by row and give up on the refused ones only.
                    raw.rollback()
                return self._insert_one_by_one(raw, cursor, chunks)
            finally:
                cursor.close()
        except BaseException:
            # The connection may be broken (the database went away): never pool it again.
            raw.invalidate()
            raise
        finally:
            raw.close()

    def _copy_rows(self, cursor: Any, chunks: list[PendingRows]) -> bool:
        """PostgreSQL: COPY the rows in (True), or roll back and return False.

        Binary COPY, because it is far cheaper on both sides (bench_store, 200k rows, CPU
        us per row, ours + the server's): executemany 27.4 + 42.3, text COPY 13.2 + 12.6
        (every float formatted as text), binary COPY 2.1 + 9.3. COPY has no ON CONFLICT:
        the ids are unique (:func:`new_prediction_ids`), so a conflict only comes from a
        batch retried after an ambiguous commit; that, or a row PostgreSQL refuses, ends the
        COPY and the caller falls back to the idempotent, row-refusing ``executemany`` path.
        """
        try:
            with cursor.copy(self._copy) as copy:
                copy.set_types(_COPY_TYPES)
                write_row = copy.write_row
                for row in _rows(chunks):
                    write_row(row)
        except self._refusals:
            cursor.connection.rollback()
            return False
        return True

    def _insert_rows(self, cursor: Any, chunks: list[PendingRows]) -> None:
        """The idempotent insert of every row: in blocks of many rows a statement on SQLite.

        The writer is a thread beside the scoring threads, and ``executemany`` gives up the
        GIL for every row's step and must win it back for the next row's binding: while a
        batch is being scored, each of those waits can last the interpreter's 5 ms switch
        interval, and a measured 5 us row took milliseconds. One statement of 1,000 rows
        binds them in one go and steps once, so the writer waits for the GIL once per
        1,000 rows; alone it is also cheaper (in-process, 200k rows: 4.7-6.0 -> 4.4-4.7 us
        CPU per row).
        """
        k = self._rows_per_insert
        if k == 1:
            cursor.executemany(self._insert, _rows(chunks))
            return
        rows = _rows(chunks)
        width = len(_INSERT_COLUMNS)
        while block := tuple(chain.from_iterable(islice(rows, k))):
            count = len(block) // width
            if count == k:
                cursor.execute(self._insert_blocks[k], block)
                continue
            # The last, shorter block as blocks of 512, 256, ... rows (its binary digits).
            start = 0
            for size in _powers_of_two_below(k):
                if count & size:
                    end = start + size * width
                    cursor.execute(self._insert_blocks[size], block[start:end])
                    start = end

    def _insert_one_by_one(self, raw: Any, cursor: Any, chunks: list[PendingRows]) -> int:
        """Insert rows singly; drop (count, log) the ones the database refuses."""
        refused = 0
        for row in _rows(chunks):
            try:
                cursor.execute(self._insert, row)
                raw.commit()
            except self._refusals as exc:
                raw.rollback()
                refused += 1
                logger.error(
                    "prediction store refused prediction %s (%s); dropped it",
                    row[0],
                    str(exc).splitlines()[0],
                )
        if refused:
            self.counters.dropped(refused)
        return refused

    # -- reading --------------------------------------------------------------------------

    def recent(
        self, limit: int = 50, only_flagged: bool = False, since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Stored predictions, newest first."""
        query = sa.select(predictions).order_by(
            predictions.c.scored_at.desc(), predictions.c.prediction_id
        )
        if only_flagged:
            query = query.where(predictions.c.prediction == 1)
        if since is not None:
            query = query.where(predictions.c.scored_at >= since.timestamp())
        self._check_file()
        with self._queries.connect() as conn:
            return [row_to_dict(r) for r in conn.execute(query.limit(limit)).mappings()]

    def get(self, prediction_id: str) -> dict[str, Any] | None:
        """One stored prediction, or None."""
        query = sa.select(predictions).where(predictions.c.prediction_id == prediction_id)
        self._check_file()
        with self._queries.connect() as conn:
            row = conn.execute(query).mappings().first()
        return row_to_dict(row) if row is not None else None

    def count(self) -> int:
        """Rows stored."""
        self._check_file()
        with self._queries.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar())

    def summary(self, since: dt.datetime) -> dict[str, int]:
        """Counts of scored, flagged and verdicts since a time."""
        c = predictions.c
        flagged = sa.func.coalesce(sa.func.sum(c.prediction), 0)

        def verdicts(prediction: int, verdict: str) -> Any:
            cond = sa.and_(c.prediction == prediction, c.verdict == verdict)
            return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

        query = sa.select(
            sa.func.count().label("scored"),
            flagged.label("flagged"),
            verdicts(1, "fraud").label("true_positives"),
            verdicts(1, "legitimate").label("false_positives"),
            verdicts(0, "fraud").label("false_negatives"),
            verdicts(0, "legitimate").label("true_negatives"),
        ).where(c.scored_at >= since.timestamp())
        self._check_file()
        with self._queries.connect() as conn:
            row = conn.execute(query).mappings().one()
        return {key: int(value) for key, value in row.items()}

    def set_verdict(
        self, prediction_id: str, verdict: str, comment: str | None
    ) -> tuple[dict[str, Any], str | None] | None:
        """Record a verdict; returns (updated row, previous verdict), or None if unknown."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")
        c = predictions.c
        self._check_file()
        with self._queries.begin() as conn:
            previous = conn.execute(
                sa.select(c.verdict).where(c.prediction_id == prediction_id)
            ).first()
            if previous is None:
                return None
            conn.execute(
                predictions.update()
                .where(c.prediction_id == prediction_id)
                .values(verdict=verdict, verdict_comment=comment, verdict_at=time.time())
            )
        row = self.get(prediction_id)
        assert row is not None
        return row, previous[0]
