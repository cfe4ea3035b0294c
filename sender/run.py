"""The send loop: pace invoices, score each, log one line per invoice and a summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sender.client import Abandoned, GaveUp, Rejected, Scored, ScoringClient
from sender.source import OutgoingInvoice, RowError
from sender.stopping import Stopper

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What a run did; :meth:`line` is the sender's last log line."""

    scored: int = 0
    flagged: int = 0
    rejected: int = 0
    failed: int = 0
    abandoned: int = 0
    skipped_rows: int = 0
    elapsed_seconds: float = 0.0
    stopped_by: str = "end of input"

    @property
    def sent(self) -> int:
        return self.scored + self.rejected + self.failed + self.abandoned

    def line(self) -> str:
        return (
            f"summary sent={self.sent} scored={self.scored} flagged={self.flagged} "
            f"rejected={self.rejected} failed={self.failed} abandoned={self.abandoned} "
            f"skipped_rows={self.skipped_rows} elapsed_seconds={self.elapsed_seconds:.1f} "
            f"stopped_by={self.stopped_by.replace(' ', '_')}"
        )


def run_sender(
    source: Iterable[OutgoingInvoice | RowError],
    client: ScoringClient,
    stopper: Stopper,
    *,
    interval_seconds: float,
    count: int | None = None,
    duration_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Summary:
    """Send invoices from ``source`` every ``interval_seconds`` until a limit or a stop.

    The first invoice goes at once, the next ones on a fixed schedule; after a slow answer
    or an outage the schedule restarts from now instead of bursting to catch up.
    """
    summary = Summary()
    started = clock()
    if duration_seconds is not None:
        stopper.stop_after(duration_seconds)
    next_at = started
    items = iter(source)
    try:
        while True:
            if count is not None and summary.sent >= count:
                summary.stopped_by = "count"
                break
            if stopper.stopped:
                break
            item = next(items, None)
            if item is None:
                break
            if isinstance(item, RowError):
                summary.skipped_rows += 1
                log.warning("%s; row skipped", item)
                continue
            if stopper.wait(next_at - clock()):
                break
            next_at = max(next_at + interval_seconds, clock())
            _record(client.score(item), item, summary)
    finally:
        if stopper.reason is not None:
            summary.stopped_by = stopper.reason
        summary.elapsed_seconds = clock() - started
    return summary


def _record(outcome: object, invoice: OutgoingInvoice, summary: Summary) -> None:
    if isinstance(outcome, Scored):
        summary.scored += 1
        summary.flagged += outcome.prediction
        extra = "" if invoice.is_fraud is None else f" generated_fraud={invoice.is_fraud}"
        if outcome.warnings:
            extra += f" warnings={list(outcome.warnings)}"
        log.info(
            "invoice_id=%s fraud_probability=%.4f prediction=%d%s",
            outcome.invoice_id,
            outcome.fraud_probability,
            outcome.prediction,
            extra,
        )
    elif isinstance(outcome, Rejected):
        summary.rejected += 1
        log.error(
            "invoice_id=%s rejected by the API (HTTP %d, not retried): %s",
            outcome.invoice_id,
            outcome.status,
            outcome.body,
        )
    elif isinstance(outcome, GaveUp):
        summary.failed += 1
        log.error(
            "invoice_id=%s not scored after %d attempts: %s",
            outcome.invoice_id,
            outcome.attempts,
            outcome.last_problem,
        )
    elif isinstance(outcome, Abandoned):
        summary.abandoned += 1
        log.info("invoice_id=%s abandoned: stopping", outcome.invoice_id)
