"""The prediction store against real SQLite and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invoice_fraud.store import STORED_FEATURES, PendingRows, PredictionStore, StoreCounters
from tests.postgres import PrivatePostgres, private_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    pg: PrivatePostgres = request.getfixturevalue("postgres")
    yield pg.url
    import sqlalchemy as sa

    engine = sa.create_engine(pg.url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    engine.dispose()


class Tally:
    """Counts what the store reports, like the service's metrics do."""

    def __init__(self) -> None:
        self.written = self.failed = self.dropped = 0
        self.lock = threading.Lock()

    def counters(self) -> StoreCounters:
        def add(name: str) -> Any:
            def inc(n: int) -> None:
                with self.lock:
                    setattr(self, name, getattr(self, name) + n)

            return inc

        return StoreCounters(written=add("written"), failed=add("failed"), dropped=add("dropped"))


def pending(
    ids: list[str], *, flagged: list[int] | None = None, at: dt.datetime | None = None
) -> PendingRows:
    n = len(ids)
    flagged = flagged if flagged is not None else [0] * n
    return PendingRows(
        columns={
            "prediction_id": ids,
            "invoice_id": [f"INV-{i}" for i in ids],
            "amount": [100.0 + k for k in range(n)],
            "tax": [20.0] * n,
            "total": [120.0 + k for k in range(n)],
            "invoice_year": [2024] * n,
            "invoice_month": [5] * n,
            "invoice_day": [15] * n,
            "invoice_weekday": [2] * n,
            "client_weekday": [None] * n,
            "fraud_probability": [0.9 if f else 0.01 for f in flagged],
            "prediction": flagged,
            "warnings": [None] * n,
            **{f"feature_{name}": [0.2] * n for name in STORED_FEATURES},
        },
        scored_at=(at or dt.datetime.now(dt.UTC)).timestamp(),
        threshold=0.5,
        model_tag="invoice_fraud:test",
    )


def test_store_writes_queries_and_counts(store_url: str) -> None:
    tally = Tally()
    store = PredictionStore(store_url, flush_interval=0.05, counters=tally.counters())
    store.start()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    store.add(pending(["a" * 32, "b" * 32], flagged=[1, 0], at=old))
    store.add(pending(["c" * 32, "d" * 32, "e" * 32], flagged=[1, 1, 0]))
    assert store.flush(10)
    assert store.count() == 5 and tally.written == 5

    recent = store.recent(limit=10)
    assert [r["prediction_id"][0] for r in recent[:3]] != []
    assert {r["prediction_id"][0] for r in recent[-2:]} == {"a", "b"}  # oldest last
    assert recent[0]["scored_at"].endswith("+00:00")
    assert recent[0]["features"]["tax_rate"] == 0.2 and recent[0]["warnings"] == []
    flagged = store.recent(limit=10, only_flagged=True)
    assert {r["prediction_id"][0] for r in flagged} == {"a", "c", "d"}
    since = store.recent(limit=10, since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert {r["prediction_id"][0] for r in since} == {"c", "d", "e"}
    assert len(store.recent(limit=2)) == 2

    summary = store.summary(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert summary["scored"] == 3 and summary["flagged"] == 2

    row, previous = store.set_verdict("c" * 32, "legitimate", "known vendor") or ({}, "x")
    assert previous is None and row["verdict"] == "legitimate"
    assert row["verdict_comment"] == "known vendor" and row["verdict_at"] is not None
    store.set_verdict("e" * 32, "fraud", None)
    summary = store.summary(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert summary["false_positives"] == 1 and summary["false_negatives"] == 1
    assert store.set_verdict("z" * 32, "fraud", None) is None
    with pytest.raises(ValueError, match="verdict"):
        store.set_verdict("c" * 32, "maybe", None)
    assert store.close()


def test_store_never_duplicates_a_retried_row(store_url: str) -> None:
    store = PredictionStore(store_url, flush_interval=0.05)
    store.start()
    store.add(pending(["f" * 32, "g" * 32]))
    assert store.flush(10)
    store.add(pending(["f" * 32, "h" * 32]))  # "f" again, as after an ambiguous commit
    assert store.close()
    check = PredictionStore(store_url)
    assert check.count() == 3
    check.engine.dispose()


def test_store_many_threads_lose_and_duplicate_nothing(store_url: str) -> None:
    store = PredictionStore(store_url, flush_interval=0.02, batch_rows=50)
    store.start()

    def work(t: int) -> None:
        for k in range(40):
            store.add(pending([f"{t:016x}{k:016x}"], flagged=[k % 2]))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.close()
    check = PredictionStore(store_url)
    assert check.count() == 320
    check.engine.dispose()


def test_sqlite_writes_any_number_of_rows_with_a_few_statement_shapes(tmp_path: Path) -> None:
    """Every row of flushes of every awkward size is written once, in a bounded set of
    statement sizes: sqlite3 keeps each distinct statement it prepares, and a statement per
    remainder size once held tens of MB per worker."""
    import sqlalchemy as sa

    store = PredictionStore(f"sqlite:///{tmp_path / 'store.sqlite3'}", flush_interval=30.0)
    statement_rows: set[int] = set()

    def trace(sql: str) -> None:
        if sql.startswith("INSERT INTO predictions"):
            statement_rows.add(sql.count("), (") + 1)

    sa.event.listen(store.engine, "connect", lambda conn, _: conn.set_trace_callback(trace))
    store.start()
    sizes = [1, 2, 3, 7, 511, 513, 999, 1_000, 1_001, 1_999, 2_500, 347]
    written = 0
    for n in sizes:
        store.add(pending([f"{written + k:032x}" for k in range(n)]))
        assert store.flush(30)
        written += n
    assert store.close()
    assert statement_rows <= {1_000, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1}
    assert statement_rows >= {1_000, 512, 1}
    check = PredictionStore(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    assert check.count() == written == sum(sizes)
    with check.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT prediction_id, amount FROM predictions")).all()
    assert len({r.prediction_id for r in rows}) == written
    check.engine.dispose()


def test_close_writes_everything_still_queued(store_url: str) -> None:
    store = PredictionStore(store_url, flush_interval=30.0)  # the timer would never fire
    store.start()
    store.add(pending([f"{k:032x}" for k in range(1_000)]))
    assert store.close()
    check = PredictionStore(store_url)
    assert check.count() == 1_000
    check.engine.dispose()


def test_store_keeps_rows_while_database_is_down_and_resumes(postgres: PrivatePostgres) -> None:
    tally = Tally()
    store = PredictionStore(postgres.url, flush_interval=0.05, counters=tally.counters())
    store.start()
    store.add(pending(["1" * 32]))
    assert store.flush(10)
    postgres.stop()
    try:
        store.add(pending(["2" * 32, "3" * 32]))
        assert not store.flush(2.0)  # cannot be written now ...
        assert tally.failed >= 2  # ... and the failure is counted, not hidden
        with pytest.raises(Exception, match="(?i)connect|refused|server"):
            store.recent()
    finally:
        postgres.start()
        postgres.wait_ready()
    assert store.flush(30)  # ... and written once the database is back
    assert store.count() == 3 and tally.dropped == 0
    assert store.close()
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    store.engine.dispose()


def test_store_starts_while_database_is_down(tmp_path: Path, postgres: PrivatePostgres) -> None:
    from tests.servers import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    tally = Tally()
    store = PredictionStore(url, flush_interval=0.05, counters=tally.counters())
    store.start()  # logs, does not raise: scoring must come up without its database
    store.add(pending(["4" * 32]))
    assert not store.flush(1.0)
    assert tally.failed >= 1
    assert not store.close(timeout=0.5)


def test_full_queue_counts_dropped_rows(tmp_path: Path) -> None:
    tally = Tally()
    store = PredictionStore(
        f"sqlite:///{tmp_path / 'never' / 'x.sqlite3'}",  # directory missing: writes fail
        max_pending=1_000,
        counters=tally.counters(),
    )
    store.add(pending([f"{k:032x}" for k in range(900)]))
    store.add(pending([f"{k + 900:032x}" for k in range(200)]))
    assert tally.dropped == 200


def test_a_refused_row_never_blocks_the_others(postgres: PrivatePostgres) -> None:
    tally = Tally()
    store = PredictionStore(postgres.url, flush_interval=0.05, counters=tally.counters())
    store.start()
    bad = pending(["5" * 32, "6" * 32, "7" * 32])
    bad.columns["invoice_id"] = ["ok", "a\x00b", "x" * 500]  # NUL byte; longer than 128
    store.add(bad)
    store.add(pending(["8" * 32]))
    assert store.flush(10)
    assert store.count() == 2  # the good row of the bad batch, and the next batch
    assert tally.dropped == 2 and tally.written == 2
    assert store.close()
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    store.engine.dispose()


def test_postgres_copies_batches_and_falls_back_on_a_retried_one(
    postgres: PrivatePostgres,
) -> None:
    copied: list[bool] = []

    class Spy(PredictionStore):
        def _copy_rows(self, cursor: Any, chunks: list[PendingRows]) -> bool:
            copied.append(super()._copy_rows(cursor, chunks))
            return copied[-1]

    store = Spy(postgres.url, flush_interval=0.05)
    store.start()
    store.add(pending(["9" * 32, "a" * 31 + "9"]))
    assert store.flush(10)
    # A retried batch repeats an id: COPY is refused, the idempotent insert takes over.
    store.add(pending(["9" * 32, "b" * 31 + "9"]))
    assert store.flush(10)
    assert copied == [True, False]
    assert store.count() == 3
    assert store.close()
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    store.engine.dispose()


def test_store_writes_integer_invoice_ids_as_text(store_url: str) -> None:
    store = PredictionStore(store_url, flush_interval=0.05)
    store.start()
    rows = pending(["c" * 31 + "1", "c" * 31 + "2"])
    rows.columns["invoice_id"] = [12345, None]
    store.add(rows)
    assert store.flush(10)
    assert (store.get("c" * 31 + "1") or {})["invoice_id"] == "12345"
    assert (store.get("c" * 31 + "2") or {})["invoice_id"] is None
    assert store.close()


def test_store_opens_a_database_of_the_previous_schema(store_url: str) -> None:
    import sqlalchemy as sa

    from invoice_fraud.store import metadata

    engine = sa.create_engine(store_url)
    metadata.create_all(engine)
    with engine.begin() as conn:  # the previous schema also indexed prediction
        conn.exec_driver_sql("CREATE INDEX ix_predictions_prediction ON predictions (prediction)")
    store = PredictionStore(store_url, flush_interval=0.05)
    store.start()
    store.add(pending(["d" * 31 + "1"], flagged=[1]))
    assert store.flush(10)
    assert [r["prediction_id"] for r in store.recent(only_flagged=True)] == ["d" * 31 + "1"]
    assert store.close()
    names = {ix["name"] for ix in sa.inspect(engine).get_indexes("predictions")}
    assert names == {"ix_predictions_scored_at"}
    engine.dispose()


def test_batch_load_waits_for_the_writer_instead_of_dropping_rows(store_url: str) -> None:
    """Producers faster than the database go at its pace; the queue stays bounded."""
    tally = Tally()
    store = PredictionStore(
        store_url, flush_interval=60, batch_rows=2_000, max_pending=20_000,
        counters=tally.counters(),
    )  # fmt: skip
    store.start()
    high_water, size = 6_000, 3_000
    results: list[bool] = []

    def producer(who: int) -> None:  # six batch clients at once, five batches each
        for call in range(5):
            deadline = time.monotonic() + 30
            while not store.reserve(size, high_water):
                assert time.monotonic() < deadline
                time.sleep(0.002)
            with store._cond:  # never more than the mark plus one batch, however many wait
                assert store._pending + store._in_flight + store._reserved <= high_water + size
            ids = [f"{who:04x}{call:04x}{k:024x}" for k in range(size)]
            results.append(store.add(pending(ids), reserved=size))

    threads = [threading.Thread(target=producer, args=(who,)) for who in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 90,000 rows, four times the queue limit, went through a writer woken by the waiters
    # (its flush interval is a minute): none dropped.
    assert results == [True] * 30
    assert store.flush(60)
    assert tally.dropped == 0 and store.count() == 90_000 == tally.written
    assert store.close()


def test_released_room_admits_the_next_batch(tmp_path: Path) -> None:
    store = PredictionStore(f"sqlite:///{tmp_path / 'x.sqlite3'}", flush_interval=60)
    assert store.reserve(3_000, 3_000)
    assert not store.reserve(3_000, 3_000)  # the first batch's room is taken ...
    store.release(3_000)  # ... until it gives it back (it was never scored)
    assert store.reserve(3_000, 3_000)
    store.close()


def test_every_batch_is_admitted_while_the_database_is_away(tmp_path: Path) -> None:
    tally = Tally()
    store = PredictionStore(
        f"sqlite:///{tmp_path / 'never' / 'x.sqlite3'}",  # directory missing: writes fail
        flush_interval=0.05,
        max_pending=5_000,
        counters=tally.counters(),
    )
    assert store.reserve(3_000, 1_000)
    assert store.add(pending([f"{k:032x}" for k in range(3_000)]), reserved=3_000)
    assert not store.reserve(3_000, 1_000)
    store.start()
    deadline = time.monotonic() + 10
    while tally.failed == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.reserve(3_000, 1_000)  # the outage is the queue's job ...
    rows = pending([f"{k + 3_000:032x}" for k in range(3_000)])
    assert not store.add(rows, reserved=3_000)  # ... up to its limit, then refused
    assert tally.dropped == 3_000
    assert not store.close(timeout=0.5)
